#!/bin/sh
# The bundled model on the first 1,000 Fashion-MNIST test images (Debian's dataset-fashion-mnist),
# through quantserve-eval: fp32 as documented in README/MODEL.md (93.0% on this subset) and the
# static int8 variant within 0.5 points of it. Skipped (77) when the dataset is not installed.
set -eu
data=${QS_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
[ -r "$data/t10k-images-idx3-ubyte.gz" ] || { echo "SKIP: $data not installed"; exit 77; }
top=${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
out=$(tools/quantserve-eval --config "$top/conf/quantserve.json" --limit 1000 --json \
      --idx "$data/t10k-images-idx3-ubyte.gz" "$data/t10k-labels-idx1-ubyte.gz" 2>/dev/null)
echo "$out"
python3 - "$out" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
v = {x["name"]: x for x in r["variants"]}
assert r["samples"] == 1000 and r["errors"] == 0, r
assert v["fp32"]["state"] == "ready" and v["int8"]["state"] == "ready", v
assert abs(v["fp32"]["top1"] - 0.930) < 1e-9, "fp32 top-1 %.4f, documented 0.930" % v["fp32"]["top1"]
assert abs(v["int8"]["top1"] - v["fp32"]["top1"]) <= 0.005, "int8 %.4f vs fp32 %.4f" % (v["int8"]["top1"], v["fp32"]["top1"])
print("1 passed, 0 failed")
PY
