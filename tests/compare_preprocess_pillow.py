#!/usr/bin/python3
"""Counts how many images our C preprocessing reproduces bit for bit against Pillow + torchvision.

Run by hand (not part of make check), from a build directory that has tests/test_image built:
  /usr/bin/python3 ../tests/compare_preprocess_pillow.py --tool ./tests/qs_preprocess_dump \
      DIR [DIR...]
The tool is tests/qs_preprocess_dump (a tiny C driver built by `make tests/qs_preprocess_dump`): it
decodes a file and writes the float32 NCHW tensor of the ImageNet recipe (RGB, Resize(256) bilinear,
CenterCrop(224), /255, mean/std) to stdout. The reference is the same recipe computed with Pillow
(Image.open(f).convert('RGB'), EXIF orientation applied as our decoder does) and numpy float32, the
way torchvision 0.14 does it on a PIL image. Prints a summary and every image that differs.
Needs python3-pil and python3-numpy (Debian).
"""
import argparse
import os
import subprocess
import sys

import numpy as np
from PIL import Image, ImageOps

MEAN = np.asarray((0.485, 0.456, 0.406), dtype=np.float32)
STD = np.asarray((0.229, 0.224, 0.225), dtype=np.float32)


def reference(path, size=256, crop=224):
    img = Image.open(path)
    img = ImageOps.exif_transpose(img).convert("RGB")
    w, h = img.size
    if w <= h:
        ow, oh = size, int(size * h / w)
    else:
        ow, oh = int(size * w / h), size
    if (ow, oh) != (w, h):
        img = img.resize((ow, oh), Image.Resampling.BILINEAR)
    w, h = img.size
    if crop > w or crop > h:
        left, top = ((crop - w) // 2 if crop > w else 0), ((crop - h) // 2 if crop > h else 0)
        padded = Image.new("RGB", (max(w, crop), max(h, crop)), 0)
        padded.paste(img, (left, top))
        img = padded
        w, h = img.size
    top = int(round((h - crop) / 2.0))
    left = int(round((w - crop) / 2.0))
    img = img.crop((left, top, left + crop, top + crop))
    x = np.asarray(img, dtype=np.uint8).astype(np.float32) / np.float32(255)
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1).astype(np.float32))


def ours(tool, path):
    out = subprocess.run([tool, path], check=True, stdout=subprocess.PIPE).stdout
    return np.frombuffer(out, dtype="<f4").reshape(3, 224, 224)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", required=True, help="path of the qs_preprocess_dump driver")
    ap.add_argument("dirs", nargs="+", help="directories of JPEG/PNG images")
    args = ap.parse_args()
    total = identical = 0
    worst = 0.0
    for d in args.dirs:
        names = sorted(n for n in os.listdir(d) if n.lower().endswith((".jpeg", ".jpg", ".png")))
        d_total = d_ident = 0
        for n in names:
            p = os.path.join(d, n)
            ref = reference(p)
            got = ours(args.tool, p)
            same = ref.tobytes() == got.tobytes()
            diff = float(np.max(np.abs(ref.astype(np.float64) - got.astype(np.float64))))
            worst = max(worst, diff)
            d_total += 1
            d_ident += same
            if not same:
                nbad = int(np.count_nonzero(ref != got))
                print("DIFF %s: %d of %d values differ, max abs diff %.3g" % (p, nbad, ref.size, diff))
        print("%s: %d/%d bit-identical" % (d, d_ident, d_total))
        total += d_total
        identical += d_ident
    print("total: %d/%d bit-identical, max abs diff %.3g" % (identical, total, worst))
    return 0 if identical == total else 1


if __name__ == "__main__":
    sys.exit(main())
