#!/usr/bin/env python3
"""Score a labelled image folder through a running quantserve: top-1/top-5 per variant.

Sends every image to POST /models/NAME/predict?variant=V&topk=5 of a running server and compares
the predictions with the labels. Standard library only.

Labels, one of:
  --labels FILE   a TSV of "filename<TAB>class index[<TAB>class name]" (ImageNet's
                  ../shared/data/images/imagenet-val/labels.tsv); images next to it, or in --dir
  --dir DIR       an ImageFolder tree (one subfolder per class, named by its index or by its
                  label in the model's labels file), or flat files whose names hold
                  "label<N>" (the bundled calibration/ folder)

Examples:
  tools/score_server.py --model mobilenet_v2 \\
      --labels ../shared/data/images/imagenet-val/labels.tsv
  tools/score_server.py --model fashion-mnist --dir models/fashion-mnist/calibration --jobs 2
"""

import argparse
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
}


def content_type(path):
    return IMAGE_TYPES.get(os.path.splitext(path)[1].lower(), "application/octet-stream")


def http_json(url, data=None, ctype=None, timeout=60, retries=0):
    """GET or POST; returns (status, parsed JSON or None). A 503 with Retry-After (queue full,
    variant still loading) is retried up to `retries` times after the advised delay."""
    for attempt in range(retries + 1):
        req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
        if ctype:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            body = e.read().decode("utf-8", "replace")
            retry_after = e.headers.get("Retry-After")
            if e.code == 503 and retry_after and attempt < retries:
                time.sleep(min(float(retry_after), 5.0))
                continue
            try:
                return e.code, json.loads(body)
            except ValueError:
                return e.code, None
    return 0, None


def load_tsv(path, image_dir):
    items = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2 or not parts[1].strip().lstrip("-").isdigit():
                continue  # header or blank line
            items.append((os.path.join(image_dir, parts[0]), int(parts[1])))
    return items


def load_dir(root, labels):
    """ImageFolder subfolders, or flat files named ..._label<N>...."""
    by_name = {name: i for i, name in enumerate(labels)} if labels else {}
    items = []
    entries = sorted(os.listdir(root))
    subdirs = [e for e in entries if os.path.isdir(os.path.join(root, e))]
    if subdirs:
        for d in subdirs:
            if d.isdigit():
                cls = int(d)
            elif d in by_name:
                cls = by_name[d]
            else:
                sys.exit(f"score_server: folder {d!r} is neither a class index nor a label")
            for f in sorted(os.listdir(os.path.join(root, d))):
                if os.path.splitext(f)[1].lower() in IMAGE_TYPES:
                    items.append((os.path.join(root, d, f), cls))
        return items
    for f in entries:
        m = re.search(r"label(\d+)", f)
        if m and os.path.splitext(f)[1].lower() in IMAGE_TYPES:
            items.append((os.path.join(root, f), int(m.group(1))))
    if not items:
        sys.exit(f"score_server: no labelled images in {root}")
    return items


class Score:
    def __init__(self):
        self.n = 0
        self.top1 = 0
        self.top5 = 0
        self.errors = 0
        self.error_codes = {}
        self.latency_ms = 0.0
        self.inference_ms = 0.0
        self.top1_by_image = {}
        self.lock = threading.Lock()


def score_variant(base, model, variant, items, jobs, limit_errors, retries):
    s = Score()
    url = (f"{base}/models/{urllib.parse.quote(model)}/predict?"
           + urllib.parse.urlencode({"variant": variant, "topk": 5}))
    queue = list(enumerate(items))
    qlock = threading.Lock()

    def worker():
        while True:
            with qlock:
                if not queue:
                    return
                idx, (path, label) = queue.pop(0)
            with open(path, "rb") as f:
                data = f.read()
            t0 = time.monotonic()
            status, body = http_json(url, data, content_type(path), retries=retries)
            ms = (time.monotonic() - t0) * 1000.0
            with s.lock:
                if status != 200 or not body:
                    s.errors += 1
                    code = (body or {}).get("error", {}).get("code", str(status))
                    s.error_codes[code] = s.error_codes.get(code, 0) + 1
                    if s.errors <= limit_errors:
                        msg = (body or {}).get("error", {}).get("message", "")
                        print(f"  {variant}: {os.path.basename(path)}: {status} {code} {msg}",
                              file=sys.stderr)
                    continue
                preds = [p["index"] for p in body["predictions"]]
                s.n += 1
                s.top1 += preds[:1] == [label]
                s.top5 += label in preds[:5]
                s.latency_ms += ms
                s.inference_ms += body.get("timing_ms", {}).get("inference", 0.0)
                s.top1_by_image[idx] = preds[0]

    threads = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("QUANTSERVE_URL", "http://127.0.0.1:8080"),
                    help="server base URL (default: $QUANTSERVE_URL or http://127.0.0.1:8080)")
    ap.add_argument("--model", help="model name (default: the server's first model)")
    ap.add_argument("--variant", action="append",
                    help="variant to score (repeatable; default: every ready variant)")
    ap.add_argument("--labels", help="TSV: filename, class index[, class name]")
    ap.add_argument("--dir", help="image folder (ImageFolder tree or files named label<N>)")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N images")
    ap.add_argument("--jobs", type=int, default=1, help="concurrent requests (default 1)")
    ap.add_argument("--retries", type=int, default=20,
                    help="retries of a 503 that carries Retry-After (queue full; default 20)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()
    base = args.url.rstrip("/")

    status, models = http_json(f"{base}/models")
    if status != 200 or not models:
        sys.exit(f"score_server: GET {base}/models answered {status}")
    names = [m["name"] for m in models["models"]]
    model = args.model or names[0]
    if model not in names:
        sys.exit(f"score_server: no model {model!r} on the server (models: {', '.join(names)})")
    info = next(m for m in models["models"] if m["name"] == model)
    ready = [v["name"] for v in info["variants"] if v["state"] == "ready"]
    variants = args.variant or ready
    for v in info["variants"]:
        if v["name"] in variants and v["state"] != "ready":
            print(f"score_server: variant {v['name']} is {v['state']}: {v.get('reason', '')}",
                  file=sys.stderr)
    variants = [v for v in variants if v in ready]
    if not variants:
        sys.exit("score_server: no ready variant to score")

    labels = []
    _, detail = http_json(f"{base}/models/{urllib.parse.quote(model)}")
    if args.labels:
        items = load_tsv(args.labels, args.dir or os.path.dirname(os.path.abspath(args.labels)))
    elif args.dir:
        if detail and detail.get("labels") and os.path.exists(detail["labels"]):
            with open(detail["labels"], encoding="utf-8") as f:
                labels = [line.rstrip("\n") for line in f]
        items = load_dir(args.dir, labels)
    else:
        sys.exit("score_server: give --labels FILE.tsv or --dir DIR")
    if args.limit > 0:
        items = items[:args.limit]

    results = {}
    for v in variants:
        t0 = time.monotonic()
        s = score_variant(base, model, v, items, args.jobs, 5, args.retries)
        wall = time.monotonic() - t0
        results[v] = (s, wall)

    out = {"model": model, "images": len(items), "variants": {}}
    for v, (s, wall) in results.items():
        n = max(s.n, 1)
        out["variants"][v] = {
            "scored": s.n, "errors": s.errors, "error_codes": s.error_codes,
            "top1": 100.0 * s.top1 / n, "top5": 100.0 * s.top5 / n,
            "mean_latency_ms": s.latency_ms / n, "mean_inference_ms": s.inference_ms / n,
            "images_per_s": s.n / wall if wall > 0 else 0.0,
        }
    if len(results) > 1:
        ref_name = variants[0]
        ref = results[ref_name][0].top1_by_image
        for v, (s, _) in list(results.items())[1:]:
            common = [i for i in ref if i in s.top1_by_image]
            agree = sum(ref[i] == s.top1_by_image[i] for i in common)
            out["variants"][v][f"top1_agreement_with_{ref_name}"] = (
                100.0 * agree / len(common) if common else 0.0)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"model {model}: {len(items)} images")
        print(f"{'variant':<16} {'scored':>7} {'errors':>6} {'top-1':>7} {'top-5':>7} "
              f"{'latency ms':>11} {'infer ms':>9} {'img/s':>7}")
        for v, r in out["variants"].items():
            print(f"{v:<16} {r['scored']:>7} {r['errors']:>6} {r['top1']:>6.2f}% "
                  f"{r['top5']:>6.2f}% {r['mean_latency_ms']:>11.2f} "
                  f"{r['mean_inference_ms']:>9.2f} {r['images_per_s']:>7.1f}")
            for k, val in r.items():
                if k.startswith("top1_agreement"):
                    print(f"{'':<16} {k.replace('_', ' ')}: {val:.2f}%")
    return 0 if all(r["errors"] == 0 for r in out["variants"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
