#!/usr/bin/env python3
"""bench_compare.py - quantserve against ONNX Runtime (and optionally PyTorch), interleaved.

usage: tools/bench_compare.py [--rounds 3] [--runs 30] [--threads 1,2] [--models mobilenet_v2,resnet50]
                              [--anchors ../shared/anchors] [--bench tools/quantserve-bench] [--out FILE.md]

For each model, thread count and round, runs in turn: quantserve fp32, ORT fp32, quantserve int8
(the model's QDQ file run by the int8 kernels, static int8 calibrated on random inputs and dynamic int8, each
with 7-bit activations (reduce_range, the default) and with 8-bit ones), ORT int8
QDQ; then reports the median of the per-round medians and the ratios (quantserve / ORT, lower is
better); a second table gives the minimum over all timed runs, which on a busy shared machine is
the steadier estimate of what each engine can do. Models: mobilenet_v2 from ../shared/data; resnet50 (and any other name) from the anchors'
make-models cache (~/.cache/quantserve-anchors/models/NAME_{fp32,int8_qdq}.onnx; run
`../shared/anchors/make-models NAME` first). The machine is shared: compare only within one run.
Standard library only.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def run_json(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write("failed: %s\n%s\n" % (" ".join(cmd), out.stderr[-2000:]))
        return None
    for line in out.stdout.splitlines()[::-1]:
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    return None


def model_files(name, shared, cache):
    if name == "mobilenet_v2":
        d = os.path.join(shared, "models", "mobilenet_v2")
        return os.path.join(d, "mobilenet_v2_fp32.onnx"), os.path.join(d, "mobilenet_v2_int8_qdq.onnx")
    return (os.path.join(cache, name + "_fp32.onnx"), os.path.join(cache, name + "_int8_qdq.onnx"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.dirname(here)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--models", default="mobilenet_v2,resnet50")
    ap.add_argument("--anchors", default=os.path.join(top, "..", "shared", "anchors"))
    ap.add_argument("--shared", default=os.path.join(top, "..", "shared", "data"))
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/quantserve-anchors/models"))
    ap.add_argument("--bench", default=os.path.join(here, "quantserve-bench"))
    ap.add_argument("--out")
    a = ap.parse_args()
    ort = os.path.join(a.anchors, "ort-bench")
    rows = []
    for name in a.models.split(","):
        fp32, qdq = model_files(name, a.shared, a.cache)
        if not (os.path.exists(fp32) and os.path.exists(qdq)):
            sys.stderr.write("skipping %s: %s or %s missing\n" % (name, fp32, qdq))
            continue
        for t in [int(x) for x in a.threads.split(",")]:
            res = {k: [] for k in ("qs_fp32", "ort_fp32", "qs_qdq", "qs_static", "qs_static8", "qs_dynamic",
                                   "qs_dynamic8", "ort_qdq")}
            mins = {k: [] for k in res}
            for r in range(a.rounds):
                common = ["--threads", str(t), "--runs", str(a.runs), "--json"]
                plan = [
                    ("qs_fp32", [a.bench, fp32] + common),
                    ("ort_fp32", [ort, fp32, "--threads", str(t), "--runs", str(a.runs)]),
                    ("qs_qdq", [a.bench, qdq, "--variant", "qdq"] + common),
                    ("qs_static", [a.bench, fp32, "--variant", "static"] + common),
                    ("qs_static8", [a.bench, fp32, "--variant", "static", "--reduce-range", "off"] + common),
                    ("qs_dynamic", [a.bench, fp32, "--variant", "dynamic"] + common),
                    ("qs_dynamic8", [a.bench, fp32, "--variant", "dynamic", "--reduce-range", "off"] + common),
                    ("ort_qdq", [ort, qdq, "--threads", str(t), "--runs", str(a.runs)]),
                ]
                for key, cmd in plan:
                    j = run_json(cmd)
                    if j:
                        res[key].append(j["median_ms"])
                        mins[key].append(j["min_ms"])
                sys.stderr.write("%s %dT round %d: %s\n" % (name, t, r + 1,
                                 {k: (v[-1] if v else None) for k, v in res.items()}))
            med = {k: statistics.median(v) if v else float("nan") for k, v in res.items()}
            low = {k: min(v) if v else float("nan") for k, v in mins.items()}
            rows.append((name, t, med, low))
    def table(pick):
        lines = ["| model | threads | quantserve fp32 | ORT fp32 | ratio | quantserve int8 QDQ | quantserve static | static 8-bit | quantserve dynamic | dynamic 8-bit | ORT int8 QDQ | ratio (QDQ) | static vs fp32 | dynamic vs fp32 |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in rows:
            name, t, m = row[0], row[1], row[pick]
            lines.append("| %s | %d | %.2f | %.2f | %.2fx | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2fx | %.2fx faster | %.2fx faster |" % (
                name, t, m["qs_fp32"], m["ort_fp32"], m["qs_fp32"] / m["ort_fp32"], m["qs_qdq"], m["qs_static"],
                m["qs_static8"], m["qs_dynamic"], m["qs_dynamic8"], m["ort_qdq"], m["qs_qdq"] / m["ort_qdq"], m["qs_fp32"] / m["qs_static"],
                m["qs_fp32"] / m["qs_dynamic"]))
        return "\n".join(lines) + "\n"
    text = ("latency, batch 1, median of %d rounds of %d runs, ms (ratio = quantserve / ORT)\n\n" % (a.rounds, a.runs)
            + table(2) + "\nminimum over all rounds and runs, ms\n\n" + table(3))
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
