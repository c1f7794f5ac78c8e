#!/usr/bin/python3
"""torchvision_sweep.py - every torchvision classifier through quantserve, checked against PyTorch.

usage (Debian's /usr/bin/python3 with python3-torch python3-torchvision python3-onnx python3-numpy):

  tools/torchvision_sweep.py [ARCH ...] [--report FILE.md] [--run PATH/quantserve-run]
                             [--cache DIR] [--threads 1] [--batch 2] [--seed 0] [--opset 13]
                             [--tol 1e-4] [--max-mb 600] [--all] [--exclude ARCH,...] [--force]
                             [--export-timeout 3600] [--run-timeout 1200] [--ort-run PATH]
                             [--ref torch32|float64] [--list]
  make sweep [SWEEP_ARGS="..."]        (from the build folder; report in the cache: report.md)

For every classification architecture of the installed torchvision (torchvision.models.list_models,
at run time; or only the ARCHs given), in a child process per architecture:
  1. build it with seeded random weights exactly as `export_pytorch.py --arch A --random-weights
     --seed S` does (BatchNorm statistics re-estimated on synthetic images) and export it to
     CACHE/A/model.onnx (opset --opset, dynamic batch, input 224x224; 299x299 for inception_v3);
  2. run PyTorch (eager, --threads threads) on a seeded synthetic batch of --batch images (2 by
     default, to exercise the dynamic batch): CACHE/A/x.npy -> CACHE/A/torch.npy, and time it;
then run quantserve-run on the same x.npy (--runs 4: one cold run, median of three warm ones) and
compare. Status per architecture:
  PASS         ||q - t||_inf / ||t||_inf <= --tol (default 1e-4)
  FAIL         larger error, wrong shape, non-finite output, or a load/run error other than
               "unsupported" (or a crash), with the message. Over the tolerance, ONNX Runtime
               (the anchors' ort-run, --ort-run, when present) runs the same file too and the
               reason gives its error against PyTorch: when ORT is as far off, the cause is fp32
               rounding amplified by the random deep net, not the engine
  UNSUPPORTED  quantserve refused to load the model (status "unsupported": an operator, attribute
               or dtype it does not have yet), with the failing node and op from the error
  SKIPPED      fp32 weights above --max-mb MB (default 600; --all includes them)
  EXPORT-FAIL  PyTorch could not export the architecture to ONNX at this opset
--ref float64 compares against PyTorch in float64 instead (model.double() on the same images, from
the same seeded weights, checked to give torch.npy again in fp32; cached as CACHE/A/torch64.npy) and
also reports how far PyTorch's own fp32 output is from it. The tolerance is the same: a model whose
PyTorch fp32 misses it too is one where 1e-4 is below fp32's reach, not one the sweep excuses.
Exports are cached in --cache (default ${XDG_CACHE_HOME:-~/.cache}/quantserve-sweep; some GB for
all models) and reused while the recipe, seed, batch, opset and torch version are the same
(--force re-exports; failed exports are always retried), so re-running after an engine change
only re-runs quantserve. A first full sweep takes about 75 minutes on 2 busy cores.
Output: one JSON line per architecture on stdout, a table at the end, and the same table as
markdown in --report (rewritten after every architecture, so a long sweep can be watched),
followed by the failures grouped by operator. Progress on stderr. Exit status 0 when the sweep ran
(whatever the statuses), 2 for bad arguments.

examples:
  tools/torchvision_sweep.py resnet18 mobilenet_v3_small --report /tmp/sweep.md
  nohup tools/torchvision_sweep.py --report sweep.md > sweep.jsonl 2> sweep.log &
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_pytorch as E  # noqa: E402

RECIPE = 1  # bump when the files the worker writes would change
PROG = "sweep"


def log(msg):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


# ---- child process: one architecture ----

def new_model(a, arch):
    """The architecture with the seeded initialization export_pytorch.build_model gives it."""
    import torch
    import torchvision.models as tvm
    torch.manual_seed(a.seed)
    return getattr(tvm, arch)(weights=None)


def randomize(a, model, size):
    """Random weights and BatchNorm statistics as export_pytorch --random-weights --seed gives them,
    eval mode: one recipe for the export and for the float64 reference rebuilt from it."""
    E.randomize(model, a.seed, size)
    model.eval()


def worker(a):
    """Export one architecture and compute PyTorch's reference; writes CACHE/ARCH/meta.json."""
    import numpy as np
    import torch
    import torchvision
    torch.set_num_threads(a.threads)
    arch = a.worker
    out = os.path.join(a.cache, arch)
    os.makedirs(out, exist_ok=True)
    stale64 = os.path.join(out, "torch64.npy")  # made from the previous export's weights
    if os.path.exists(stale64):
        os.remove(stale64)
    size, _ = E.default_size(arch)
    meta = {"recipe": RECIPE, "arch": arch, "seed": a.seed, "batch": a.batch, "opset": a.opset, "size": size,
            "torch": torch.__version__, "torchvision": torchvision.__version__}
    t0 = time.perf_counter()
    model = new_model(a, arch)
    params = sum(p.numel() for p in model.parameters())
    meta["params"] = params
    meta["fp32_mb"] = round(params * 4 / 1e6, 1)
    if params * 4 > a.max_mb * 1e6 and not a.all:
        meta["skipped"] = f"{meta['fp32_mb']:.0f} MB of fp32 weights > --max-mb {a.max_mb} (--all includes it)"
    else:
        randomize(a, model, size)
        onnx_path = os.path.join(out, "model.onnx")
        try:
            E.export_onnx(model, onnx_path, size, a.opset)
        except E.ExportError as e:
            meta["export_error"] = str(e)
        if "export_error" not in meta:
            meta["onnx_mb"] = round(E.onnx_size(onnx_path) / 1e6, 1)
            meta["export_s"] = round(time.perf_counter() - t0, 1)
            x = E.synthetic_images(a.batch, size, a.seed + 1000)
            times = []
            with torch.no_grad():
                for _ in range(4):
                    s = time.perf_counter()
                    ref = model(x)
                    times.append((time.perf_counter() - s) * 1e3)
            np.save(os.path.join(out, "x.npy"), x.numpy())
            np.save(os.path.join(out, "torch.npy"), ref.numpy())
            warm = sorted(times[1:])
            meta["torch_ms"] = round(warm[len(warm) // 2], 2)
    tmp = os.path.join(out, f"meta.json.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(meta, f)
    os.replace(tmp, os.path.join(out, "meta.json"))
    return 0


def worker64(a):
    """PyTorch in float64 on the cached images, from the cached export's weights rebuilt by the same
    recipe: CACHE/ARCH/torch64.npy. Exit status 3 when the rebuilt model's fp32 output is not
    torch.npy (then it is not the exported model)."""
    import numpy as np
    import torch
    torch.set_num_threads(a.threads)
    arch = a.worker64
    d = os.path.join(a.cache, arch)
    size, _ = E.default_size(arch)
    model = new_model(a, arch)
    randomize(a, model, size)
    x = torch.from_numpy(np.load(os.path.join(d, "x.npy")))
    want = np.load(os.path.join(d, "torch.npy"))
    with torch.no_grad():
        again = model(x).numpy()
        if not np.array_equal(again, want):
            print(f"{arch}: the rebuilt model's fp32 output differs from torch.npy by "
                  f"{float(np.abs(again - want).max()):.3g}", file=sys.stderr)
            return 3
        ref = model.double()(x.double()).numpy()
    tmp = os.path.join(d, f"torch64.npy.tmp{os.getpid()}.npy")
    np.save(tmp, ref)
    os.replace(tmp, os.path.join(d, "torch64.npy"))
    return 0


def float64_reference(a, arch):
    """CACHE/ARCH/torch64.npy, computed in a child process when missing: (array, None) or (None, why)."""
    import numpy as np
    path = os.path.join(a.cache, arch, "torch64.npy")
    if not os.path.exists(path):
        log(f"{arch}: PyTorch float64 reference")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker64", arch, "--cache", a.cache, "--seed",
               str(a.seed), "--threads", str(a.threads)]
        try:
            p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               timeout=a.export_timeout)
        except subprocess.TimeoutExpired:
            return None, f"float64 reference timed out after {a.export_timeout} s"
        if p.returncode != 0 or not os.path.exists(path):
            lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
            return None, "float64 reference: " + (lines[-1] if lines else f"exit status {p.returncode}")
    return np.load(path), None


# ---- parent ----

def cached_meta(a, arch):
    import torch
    path = os.path.join(a.cache, arch, "meta.json")
    if a.force or not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            meta = json.load(f)
    except ValueError:
        return None
    same = (meta.get("recipe") == RECIPE and meta.get("seed") == a.seed and meta.get("batch") == a.batch
            and meta.get("opset") == a.opset and meta.get("torch") == torch.__version__)
    if not same:
        return None
    if ("skipped" in meta and a.all) or "export_error" in meta:
        return None  # export failures are retried: the exporter may have learnt the operator since
    if "skipped" not in meta and "export_error" not in meta and not all(
            os.path.exists(os.path.join(a.cache, arch, f)) for f in ("model.onnx", "x.npy", "torch.npy")):
        return None
    return meta


def run_worker(a, arch):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", arch, "--cache", a.cache, "--seed", str(a.seed),
           "--batch", str(a.batch), "--opset", str(a.opset), "--threads", str(a.threads), "--max-mb", str(a.max_mb)]
    if a.all:
        cmd.append("--all")
    try:
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=a.export_timeout)
    except subprocess.TimeoutExpired:
        return None, f"export timed out after {a.export_timeout} s"
    meta = None
    try:
        with open(os.path.join(a.cache, arch, "meta.json")) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        pass
    if meta is not None and "export_error" not in meta:
        meta = cached_meta(argparse.Namespace(**{**vars(a), "force": False}), arch)
    if p.returncode != 0 or meta is None:
        lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit status {p.returncode}"
        if p.returncode < 0:
            why = f"killed by signal {-p.returncode} (out of memory?)"
        return None, why
    return meta, None


OP_RE = re.compile(r'node "([^"]*)" \(([A-Za-z0-9_]+)\)')
CODE_RE = re.compile(r"^(loading|running|creating a session for) \S+: ([a-z_]+): (.*)$")


def classify(err):
    """(status, short reason, op) from quantserve-run's error line."""
    m = CODE_RE.match(err)
    if not m:
        return "FAIL", err, None
    what, code, rest = m.groups()
    op = OP_RE.search(rest)
    stage = {"loading": "load", "running": "run"}.get(what, "session")
    status = "UNSUPPORTED" if (stage == "load" and code == "unsupported") else "FAIL"
    return status, f"{stage}: {code}: {rest}", op.group(2) if op else None


def test_arch(a, arch, qs_run):
    import numpy as np
    rec = {"arch": arch}
    meta = cached_meta(a, arch)
    if meta is None:
        log(f"{arch}: exporting with random weights (seed {a.seed})")
        meta, why = run_worker(a, arch)
        if meta is None:
            rec.update(status="EXPORT-FAIL", reason=why)
            return rec
    else:
        log(f"{arch}: export cached in {os.path.join(a.cache, arch)}")
    rec["params_m"] = round(meta["params"] / 1e6, 2)
    for k in ("onnx_mb", "torch_ms", "size"):
        if k in meta:
            rec[k] = meta[k]
    if "skipped" in meta:
        rec.update(status="SKIPPED", reason=meta["skipped"])
        return rec
    if "export_error" in meta:
        rec.update(status="EXPORT-FAIL", reason=meta["export_error"])
        return rec
    d = os.path.join(a.cache, arch)
    y_npy = os.path.join(d, "quantserve.npy")
    if os.path.exists(y_npy):
        os.remove(y_npy)
    log(f"{arch}: quantserve-run (batch {a.batch}, {a.threads} thread(s))")
    res, err = E.run_quantserve(qs_run, os.path.join(d, "model.onnx"), os.path.join(d, "x.npy"), y_npy,
                                threads=a.threads, runs=4, timeout=a.run_timeout)
    if err:
        status, reason, op = classify(err)
        rec.update(status=status, reason=reason)
        if op:
            rec["op"] = op
        return rec
    rec["load_ms"] = round(res["load_ms"], 1)
    rec["run_ms"] = round(res.get("median_ms", res["run_ms"]), 2)
    ref = np.load(os.path.join(d, "torch.npy"))
    if a.ref == "float64":
        ref64, why = float64_reference(a, arch)
        if ref64 is None:
            rec.update(status="FAIL", reason=why)
            return rec
        rec["rel_vs_torch32"] = E.compare(ref, np.load(y_npy)).get("rel")
        rec["torch32_rel"] = E.compare(ref64, ref).get("rel")
        ref = ref64
    cmp = E.compare(ref, np.load(y_npy))
    rec["max_abs"] = cmp.get("max_abs")
    rec["rel"] = cmp.get("rel")
    rec["argmax_agree"] = cmp.get("argmax_agree")
    if "error" in cmp:
        rec.update(status="FAIL", reason=cmp["error"])
    elif cmp["rel"] <= a.tol:
        rec["status"] = "PASS"
    else:
        rec.update(status="FAIL", reason=f"relative error {cmp['rel']:.3g} > {a.tol:g} (max abs {cmp['max_abs']:.3g}, "
                                         f"argmax agreement {cmp['argmax_agree']:.2f})")
        if "torch32_rel" in rec:
            rec["reason"] += f"; PyTorch fp32 vs float64 {rec['torch32_rel']:.3g}"
        ort = ort_reference(a, d, ref)
        if ort:
            rec.update(ort)
            rec["reason"] += (f"; ONNX Runtime vs PyTorch{' float64' if a.ref == 'float64' else ''} "
                              f"{ort['ort_rel']:.3g}, quantserve vs ONNX Runtime {ort['qs_vs_ort_rel']:.3g}")
    return rec


def ort_reference(a, d, ref):
    """For a model over the tolerance: how far ONNX Runtime is from the reference ref on the same file
    (the anchors' ort-run), to tell fp32 rounding amplified by a random deep net from an engine bug."""
    import numpy as np
    if not a.ort_run:
        return None
    out = os.path.join(d, "ort.npy")
    try:
        p = subprocess.run([a.ort_run, os.path.join(d, "model.onnx"), "--input", os.path.join(d, "x.npy"),
                            "--output", out, "--threads", str(a.threads)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=a.run_timeout)
    except subprocess.TimeoutExpired:
        return None
    if p.returncode != 0 or not os.path.exists(out):
        log(f"ort-run failed: {p.stderr.strip().splitlines()[-1:] or p.returncode}")
        return None
    ref = ref.astype(np.float64)
    ort, q = (np.load(os.path.join(d, f)).astype(np.float64) for f in ("ort.npy", "quantserve.npy"))
    scale = float(np.abs(ref).max()) or 1.0
    return {"ort_rel": float(np.abs(ort - ref).max() / scale), "qs_vs_ort_rel": float(np.abs(q - ort).max() / scale)}


def fmt(v, spec):
    return "" if v is None else format(v, spec)


def md_escape(s):
    return (s or "").replace("|", "\\|").replace("\n", " ")


def render(recs, a, env, final):
    r64 = a.ref == "float64"
    cols = ["architecture", "params (M)", "status", "rel. error", "load ms", f"quantserve ms (batch {a.batch})",
            f"PyTorch ms (batch {a.batch})", "error / reason"]
    if r64:
        cols[4:4] = ["vs PyTorch fp32", "PyTorch fp32 vs float64"]
    lines = [f"# torchvision sweep: quantserve fp32 vs PyTorch{' float64' if r64 else ''}", ""]
    lines.append(f"{env}. Random weights (seed {a.seed}, BatchNorm re-estimated), opset {a.opset}, batch {a.batch}, "
                 f"{a.threads} thread(s), PASS if ||q - t||_inf / ||t||_inf <= {a.tol:g}"
                 + (" with t = PyTorch in float64 (model.double()); the next two columns give quantserve's error "
                    "against PyTorch fp32 and PyTorch fp32's own error against float64" if r64 else "")
                 + ". Latencies: median of "
                 "3 warm runs (quantserve-run --runs 4; PyTorch eager, measured when the model was exported and "
                 "cached with it, so possibly in another hour); the machine is shared, so they are indicative "
                 "only." + ("" if final else " **(in progress)**"))
    lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in recs:
        row = [r["arch"], fmt(r.get("params_m"), ".1f"), r["status"], fmt(r.get("rel"), ".2e"),
               fmt(r.get("load_ms"), ".0f"), fmt(r.get("run_ms"), ".1f"), fmt(r.get("torch_ms"), ".1f"),
               md_escape(r.get("reason"))]
        if r64:
            row[4:4] = [fmt(r.get("rel_vs_torch32"), ".2e"), fmt(r.get("torch32_rel"), ".2e")]
        lines.append("| " + " | ".join(row) + " |")
    counts = {}
    for r in recs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    lines += ["", "Summary: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f" of {len(recs)}."]
    by_op = {}
    for r in recs:
        if r["status"] in ("UNSUPPORTED", "FAIL") and r.get("reason") and "rel" not in r:
            by_op.setdefault(r.get("op") or "(no node named in the error)", []).append(r)
    if by_op:
        lines += ["", "## Load and run errors by operator", "",
                  "The engine names the first node it cannot take; \"other op types\" are the model's op types "
                  "that no passing model of this sweep contains (candidates, not all necessarily missing).", ""]
        for op, rs in sorted(by_op.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            lines.append(f"- **{op}** ({len(rs)}): " + ", ".join(r["arch"] for r in rs))
            seen = set()
            for r in rs:
                msg = OP_RE.sub(lambda m: f'node "..." ({m.group(2)})', r["reason"])
                if msg not in seen:
                    seen.add(msg)
                    lines.append(f"  - `{r['arch']}`: {md_escape(r['reason'])}")
            others = sorted({o for r in rs for o in r.get("unseen_ops", ()) if o != op})
            if others:
                lines.append(f"  - other op types: {', '.join(others)}")
    tol = [r for r in recs if r["status"] == "FAIL" and "rel" in r]
    if tol:
        lines += ["", "## Over the tolerance", ""]
        lines += [f"- `{r['arch']}`: {md_escape(r['reason'])}" for r in tol]
    return "\n".join(lines) + "\n"


def model_ops(d):
    """Op types of CACHE/ARCH/model.onnx, cached in ops.json beside it."""
    path, onnx_path = os.path.join(d, "ops.json"), os.path.join(d, "model.onnx")
    if not os.path.exists(onnx_path):
        return None
    if os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(onnx_path):
        with open(path) as f:
            return json.load(f)
    import onnx
    ops = sorted({n.op_type for n in onnx.load(onnx_path, load_external_data=False).graph.node})
    with open(path, "w") as f:
        json.dump(ops, f)
    return ops


def annotate_unseen_ops(recs, a):
    """For models the engine refused: their op types that no passing model has."""
    failed = [r for r in recs if r["status"] in ("UNSUPPORTED", "FAIL") and "rel" not in r]
    if not failed:
        return
    ok = set()
    for r in recs:
        if r["status"] == "PASS" or (r["status"] == "FAIL" and "rel" in r):
            ok.update(model_ops(os.path.join(a.cache, r["arch"])) or ())
    for r in failed:
        ops = model_ops(os.path.join(a.cache, r["arch"]))
        if ops:
            r["unseen_ops"] = sorted(set(ops) - ok)


def print_table(recs):
    print(f"{'architecture':<22} {'status':<12} {'rel.err':>9} {'load ms':>8} {'qs ms':>8} {'torch ms':>9}  reason",
          file=sys.stderr)
    for r in recs:
        print(f"{r['arch']:<22} {r['status']:<12} {fmt(r.get('rel'), '.2e'):>9} {fmt(r.get('load_ms'), '.0f'):>8} "
              f"{fmt(r.get('run_ms'), '.1f'):>8} {fmt(r.get('torch_ms'), '.1f'):>9}  {r.get('reason', '')}",
              file=sys.stderr)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="torchvision_sweep.py", description="Every torchvision classifier through "
                                 "quantserve, checked against PyTorch (see the docstring for details).")
    ap.add_argument("archs", nargs="*", help="only these architectures (default: all)")
    ap.add_argument("--report", help="write the table as markdown to this file")
    ap.add_argument("--run", help="quantserve-run to use (default: next to this script, else PATH)")
    ap.add_argument("--cache", default=os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                                                    "quantserve-sweep"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--max-mb", type=float, default=600.0)
    ap.add_argument("--all", action="store_true", help="include models above --max-mb")
    ap.add_argument("--exclude", default="", help="comma-separated architectures to leave out")
    ap.add_argument("--force", action="store_true", help="re-export even when the cache is valid")
    ap.add_argument("--export-timeout", type=int, default=3600)
    ap.add_argument("--run-timeout", type=int, default=1200)
    ap.add_argument("--ort-run", default=os.path.normpath(os.path.join(HERE, "..", "..", "shared", "anchors", "ort-run")),
                    help="the anchors' ort-run, run on models over the tolerance ('' to skip)")
    ap.add_argument("--ref", choices=("torch32", "float64"), default="torch32",
                    help="reference: PyTorch fp32 (default) or PyTorch float64 (model.double(), cached as "
                         "torch64.npy; reports PyTorch fp32's own error too)")
    ap.add_argument("--list", action="store_true", help="print the architectures and exit")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker64", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.threads < 1 or a.batch < 1 or a.max_mb <= 0 or not 7 <= a.opset <= 18:
        ap.error("--threads and --batch must be positive, --max-mb above 0, --opset in 7..18")
    a.cache = os.path.abspath(a.cache)
    if a.ort_run and not os.access(a.ort_run, os.X_OK):
        a.ort_run = None
    return a


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main():
    a = parse_args(sys.argv[1:])
    torch = E.import_torch()
    if a.worker:
        return worker(a)
    if a.worker64:
        return worker64(a)
    import torchvision
    archs = E.classifier_archs()
    if a.list:
        print("\n".join(archs))
        return 0
    unknown = [x for x in a.archs if x not in archs]
    if unknown:
        print(f"torchvision_sweep.py: error: unknown architecture(s) {', '.join(unknown)}; torchvision "
              f"{torchvision.__version__} has: {' '.join(archs)}", file=sys.stderr)
        return 2
    excluded = {x for x in a.exclude.split(",") if x}
    todo = [x for x in (a.archs or archs) if x not in excluded]
    try:
        qs_run = E.find_quantserve_run(a.run)
    except E.ExportError as e:
        print(f"torchvision_sweep.py: error: {e}", file=sys.stderr)
        return 2
    p = subprocess.run([qs_run, "--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if p.returncode != 0:
        print(f"torchvision_sweep.py: error: {qs_run} --help failed", file=sys.stderr)
        return 2
    os.makedirs(a.cache, exist_ok=True)
    env = (f"{time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
           f"quantserve-run {qs_run}, {os.cpu_count()} CPUs")
    # SIGTERM stops like Ctrl-C: the running child is killed and the report is written
    signal.signal(signal.SIGTERM, _interrupt)
    log(f"{len(todo)} architectures; cache {a.cache}")
    recs = []
    t0 = time.perf_counter()
    try:
        for i, arch in enumerate(todo):
            t = time.perf_counter()
            rec = test_arch(a, arch, qs_run)
            rec["seconds"] = round(time.perf_counter() - t, 1)
            recs.append(rec)
            print(json.dumps(rec, separators=(",", ":")), flush=True)
            log(f"[{i + 1}/{len(todo)}] {arch}: {rec['status']}" + (f" ({rec['reason']})" if rec.get("reason") else ""))
            if a.report:
                with open(a.report, "w") as f:
                    f.write(render(recs, a, env, final=False))
    except KeyboardInterrupt:
        log("interrupted; the report has the architectures done so far")
    annotate_unseen_ops(recs, a)
    if a.report:
        with open(a.report, "w") as f:
            f.write(render(recs, a, env, final=len(recs) == len(todo)))
        log(f"report: {a.report}")
    print_table(recs)
    log(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
