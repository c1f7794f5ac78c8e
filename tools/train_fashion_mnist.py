#!/usr/bin/python3
"""Train quantserve's bundled default model: a small MobileNetV2-style CNN on Fashion-MNIST.

Reads the idx files shipped by Debian's dataset-fashion-mnist package, trains on
CPU with fixed seeds, exports ONNX opset 13 and writes the files of
models/fashion-mnist/ (model.onnx, labels.txt, preprocess.json, calibration/,
samples/, MODEL.md).

Usage:
    /usr/bin/python3 tools/train_fashion_mnist.py [--data DIR] [--out DIR]
                                                  [--epochs N] [--threads N]

Needs the Debian packages python3-torch, python3-numpy, python3-pil and
dataset-fashion-mnist and python3-onnx.
"""

import argparse
import gzip
import json
import os
import platform
import random
import shutil
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

import onnx
from onnx import numpy_helper

SEED = 20240501
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"

# Mean and standard deviation of all training pixels after scaling by 1/255
# (computed from train-images-idx3-ubyte: 0.28604..., 0.35302...).
MEAN = 0.2860
STD = 0.3530

LABELS = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
SAMPLE_NAMES = [
    "tshirt-top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle-boot",
]

# (expansion factor, output channels, stride) of each inverted residual block.
BLOCKS = [
    (1, 16, 2),
    (4, 24, 1),
    (4, 24, 1),
    (4, 48, 2),
    (4, 48, 1),
    (4, 48, 1),
    (4, 64, 1),
]
STEM_CHANNELS = 16
HEAD_CHANNELS = 128

ALLOWED_OPS = {"Conv", "Clip", "Add", "GlobalAveragePool", "ReduceMean",
               "Flatten", "Reshape", "Gemm"}

CALIB_PER_CLASS = 20


# ---------------------------------------------------------------- data

def read_idx(path):
    """Read a gzip'd idx file (ubyte) into a numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    if magic >> 8 != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: size does not match header")
    return arr.reshape(dims)


def load_split(data_dir, prefix):
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    return images, labels


def to_tensor(images_u8):
    """uint8 [N,28,28] -> normalized float [N,1,28,28] (the preprocessing)."""
    x = torch.from_numpy(images_u8.astype(np.float32) / 255.0)
    return ((x - MEAN) / STD).unsqueeze(1).contiguous()


def augment(x, gen):
    """Random horizontal flip and random 28x28 crop of the image padded by 2 black pixels."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad_value = (0.0 - MEAN) / STD  # black background after normalization
    xp = F.pad(x, (2, 2, 2, 2), value=pad_value)
    oy = torch.randint(0, 5, (n,), generator=gen)
    ox = torch.randint(0, 5, (n,), generator=gen)
    ar = torch.arange(28)
    rows = (oy[:, None] + ar)[:, :, None]
    cols = (ox[:, None] + ar)[:, None, :]
    idx = torch.arange(n)[:, None, None]
    return xp[:, 0][idx, rows, cols].unsqueeze(1).contiguous()


# ---------------------------------------------------------------- model

def conv_bn(cin, cout, k, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return layers


class InvertedResidual(nn.Module):
    """1x1 expand, 3x3 depthwise, 1x1 linear project; Add when shapes allow."""

    def __init__(self, cin, cout, expand, stride):
        super().__init__()
        hidden = cin * expand
        layers = []
        if expand != 1:
            layers += conv_bn(cin, hidden, 1)
        layers += conv_bn(hidden, hidden, 3, stride, groups=hidden)
        layers += conv_bn(hidden, cout, 1, act=False)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class FashionNet(nn.Module):
    def __init__(self):
        super().__init__()
        layers = conv_bn(1, STEM_CHANNELS, 3)
        cin = STEM_CHANNELS
        for expand, cout, stride in BLOCKS:
            layers.append(InvertedResidual(cin, cout, expand, stride))
            cin = cout
        layers += conv_bn(cin, HEAD_CHANNELS, 1)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(HEAD_CHANNELS, 10)

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, 1)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def count_macs(model):
    """Multiply-accumulates for one 1x28x28 image (Conv2d and Linear only)."""
    total = [0]

    def conv_hook(m, inp, out):
        kh, kw = m.kernel_size
        total[0] += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m, inp, out):
        total[0] += out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    for h in hooks:
        h.remove()
    return total[0]


# ---------------------------------------------------------------- training

def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            pred = model(x[i:i + batch]).argmax(1)
            correct += int((pred == y[i:i + batch]).sum())
    return correct / x.shape[0]


def train(model, xtr, ytr, xte, yte, args, log):
    gen = torch.Generator().manual_seed(SEED + 1)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": args.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=args.lr, momentum=0.9, nesterov=True)
    steps_per_epoch = (xtr.shape[0] + args.batch - 1) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch,
        pct_start=0.25, div_factor=20.0, final_div_factor=200.0)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    history = []
    t_start = time.monotonic()
    for epoch in range(1, args.epochs + 1):
        t0 = time.monotonic()
        model.train()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, xtr.shape[0], args.batch):
            idx = perm[i:i + args.batch]
            # channels_last makes the CPU convolutions about twice as fast.
            xb = augment(xtr[idx], gen).contiguous(memory_format=torch.channels_last)
            yb = ytr[idx]
            out = model(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss) * idx.shape[0]
            correct += int((out.argmax(1) == yb).sum())
        train_s = time.monotonic() - t0
        test_acc = evaluate(model, xte, yte)
        row = {"epoch": epoch, "loss": loss_sum / xtr.shape[0],
               "train_acc": correct / xtr.shape[0], "test_acc": test_acc,
               "seconds": time.monotonic() - t0, "train_seconds": train_s,
               "load": os.getloadavg()[0]}
        history.append(row)
        log(f"epoch {epoch:2d}/{args.epochs}  loss {row['loss']:.4f}  "
            f"train_acc {100 * row['train_acc']:.2f}%  test_acc {100 * test_acc:.2f}%  "
            f"{row['seconds']:.1f}s  load {row['load']:.2f}")
    return history, time.monotonic() - t_start


# ---------------------------------------------------------------- export and checks

def export_onnx(model, path):
    model.eval()
    dummy = torch.zeros(1, 1, 28, 28)
    torch.onnx.export(
        model, dummy, path, opset_version=13, do_constant_folding=True,
        training=torch.onnx.TrainingMode.EVAL,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    # The exporter emits ReLU6's bounds as Constant nodes, and an Identity
    # node for a weight equal to another one.  Store the constants as
    # initializers and let the consumers of such an Identity read the
    # initializer directly, so the graph holds only compute ops.
    m = onnx.load(path)
    inits = {t.name for t in m.graph.initializer}
    alias = {}
    keep = []
    for node in m.graph.node:
        if node.op_type == "Constant":
            t = onnx.helper.get_attribute_value(node.attribute[0])
            t.name = node.output[0]
            m.graph.initializer.append(t)
            inits.add(t.name)
        elif node.op_type == "Identity" and node.input[0] in inits:
            alias[node.output[0]] = node.input[0]
        else:
            keep.append(node)
    for node in keep:
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]
    del m.graph.node[:]
    m.graph.node.extend(keep)
    onnx.checker.check_model(m)
    onnx.save(m, path)


def run_onnx_with_torch(path, x):
    """Interpret the exported graph node by node with torch functional ops.

    Independent of the torch module: uses only the ONNX file's nodes and
    initializers, so it checks what a server will load.  Returns
    (logits, sorted op types, initializer parameter count).
    """
    m = onnx.load(path)
    onnx.checker.check_model(m)
    env = {}
    n_params = 0
    for init in m.graph.initializer:
        arr = numpy_helper.to_array(init)
        n_params += arr.size
        env[init.name] = torch.from_numpy(arr.copy())
    env[m.graph.input[0].name] = x
    ops = set()
    for node in m.graph.node:
        ops.add(node.op_type)
        a = {at.name: onnx.helper.get_attribute_value(at) for at in node.attribute}
        ins = [env[n] if n else None for n in node.input]
        if node.op_type == "Conv":
            pads = list(a.get("pads", [0, 0, 0, 0]))
            if pads[0] != pads[2] or pads[1] != pads[3]:
                raise ValueError("asymmetric pads not handled")
            y = F.conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None,
                         stride=tuple(a.get("strides", [1, 1])),
                         padding=(pads[0], pads[1]),
                         dilation=tuple(a.get("dilations", [1, 1])),
                         groups=a.get("group", 1))
        elif node.op_type == "Clip":
            lo = float(ins[1]) if len(ins) > 1 and ins[1] is not None else None
            hi = float(ins[2]) if len(ins) > 2 and ins[2] is not None else None
            y = torch.clamp(ins[0], lo, hi)
        elif node.op_type == "Add":
            y = ins[0] + ins[1]
        elif node.op_type == "GlobalAveragePool":
            y = ins[0].mean(dim=(2, 3), keepdim=True)
        elif node.op_type == "ReduceMean":
            y = ins[0].mean(dim=tuple(a["axes"]), keepdim=bool(a.get("keepdims", 1)))
        elif node.op_type == "Flatten":
            axis = a.get("axis", 1)
            y = ins[0].reshape(int(np.prod(ins[0].shape[:axis])), -1)
        elif node.op_type == "Reshape":
            y = ins[0].reshape([int(v) for v in ins[1]])
        elif node.op_type == "Gemm":
            aa = ins[0].t() if a.get("transA", 0) else ins[0]
            bb = ins[1].t() if a.get("transB", 0) else ins[1]
            y = a.get("alpha", 1.0) * (aa @ bb)
            if len(ins) > 2:
                y = y + a.get("beta", 1.0) * ins[2]
        else:
            raise ValueError(f"unexpected op {node.op_type}")
        env[node.output[0]] = y
    return env[m.graph.output[0].name], sorted(ops), n_params


def resize_bilinear(img, out_h, out_w):
    """Plain bilinear resize, half-pixel centres, no antialiasing, edge clamp.

    This is the resize a server must implement (documented in MODEL.md).
    img: float array [H, W].
    """
    in_h, in_w = img.shape
    sy = (np.arange(out_h) + 0.5) * in_h / out_h - 0.5
    sx = (np.arange(out_w) + 0.5) * in_w / out_w - 0.5
    sy = np.clip(sy, 0, in_h - 1)
    sx = np.clip(sx, 0, in_w - 1)
    y0 = np.floor(sy).astype(int)
    x0 = np.floor(sx).astype(int)
    y1 = np.minimum(y0 + 1, in_h - 1)
    x1 = np.minimum(x0 + 1, in_w - 1)
    wy = (sy - y0)[:, None]
    wx = (sx - x0)[None, :]
    top = img[y0][:, x0] * (1 - wx) + img[y0][:, x1] * wx
    bot = img[y1][:, x0] * (1 - wx) + img[y1][:, x1] * wx
    return top * (1 - wy) + bot * wy


def preprocess_file(path):
    """Apply preprocess.json to an image file the way a server would."""
    im = Image.open(path)
    if im.mode != "L":
        im = im.convert("RGB")
        rgb = np.asarray(im, dtype=np.float64)
        # ITU-R BT.601 luma, the same weights PIL's convert("L") uses.
        gray = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    else:
        gray = np.asarray(im, dtype=np.float64)
    if gray.shape != (28, 28):
        gray = resize_bilinear(gray, 28, 28)
    x = (gray / 255.0 - MEAN) / STD
    return torch.from_numpy(x.astype(np.float32))[None, None]


# ---------------------------------------------------------------- outputs

def write_samples(out_dir, images, labels, model_pred):
    """First test image of each class that the final model classifies correctly."""
    sdir = os.path.join(out_dir, "samples")
    os.makedirs(sdir, exist_ok=True)
    chosen = []
    for c in range(10):
        idx = np.nonzero((labels == c) & (model_pred == c))[0][0]
        chosen.append(int(idx))
        im = Image.fromarray(images[idx], mode="L")
        im.save(os.path.join(sdir, f"{SAMPLE_NAMES[c]}.png"), optimize=True)
        big = im.resize((224, 224), Image.BILINEAR).convert("RGB")
        big.save(os.path.join(sdir, f"{SAMPLE_NAMES[c]}-224.jpg"), quality=90)
    return chosen


def write_calibration(out_dir, images, labels):
    """A seeded, class-balanced choice of training images, CALIB_PER_CLASS per class."""
    cdir = os.path.join(out_dir, "calibration")
    os.makedirs(cdir, exist_ok=True)
    rng = np.random.RandomState(SEED + 2)
    picks = []
    for c in range(10):
        idx = np.nonzero(labels == c)[0]
        picks.extend(int(i) for i in rng.choice(idx, CALIB_PER_CLASS, replace=False))
    picks = [picks[i] for i in rng.permutation(len(picks))]
    for n, idx in enumerate(picks):
        Image.fromarray(images[idx], mode="L").save(
            os.path.join(cdir, f"calib_{n:03d}_label{int(labels[idx])}.png"), optimize=True)
    return picks


def write_preprocess(out_dir):
    pre = {
        "color": "gray",
        "resize": {"width": 28, "height": 28, "filter": "bilinear"},
        "scale": 1.0 / 255.0,
        "mean": [MEAN],
        "std": [STD],
        "layout": "NCHW",
        "input": "input",
        "output": "logits",
        "labels": "labels.txt",
    }
    with open(os.path.join(out_dir, "preprocess.json"), "w") as f:
        json.dump(pre, f, indent=2)
        f.write("\n")


def write_model_md(out_dir, s):
    hist = "\n".join(
        f"| {r['epoch']} | {r['loss']:.4f} | {100 * r['train_acc']:.2f}% | "
        f"{100 * r['test_acc']:.2f}% | {r['seconds']:.1f} | {r['load']:.2f} |" for r in s["history"])
    blocks = "\n".join(
        f"| {i + 1} | {t} | {c} | {st} | {'yes' if r else 'no'} |"
        for i, ((t, c, st), r) in enumerate(zip(BLOCKS, s["residual"])))
    samples = "\n".join(
        f"| `{SAMPLE_NAMES[c]}.png` / `{SAMPLE_NAMES[c]}-224.jpg` | {LABELS[c]} | "
        f"{s['test_indices'][c]} | {LABELS[s['sample_pred_png'][c]]} | "
        f"{LABELS[s['sample_pred_jpg'][c]]} |" for c in range(10))
    text = f"""# fashion-mnist: quantserve's bundled default model

A small MobileNetV2-style CNN trained by us on Fashion-MNIST (10 classes of
clothing, 28x28 grayscale). It lets `quantserve` start on a model that really
classifies, with no download. Everything here is written by
`tools/train_fashion_mnist.py`; do not edit by hand, retrain instead.

## Result

| | |
| --- | --- |
| test accuracy (10,000 test images, float32, final epoch) | **{100 * s['test_acc']:.2f}%** |
| training time | {s['train_seconds']:.0f} s on {s['threads']} CPU threads ({s['cpu']}; mean 1-minute load average at epoch ends {s['mean_load']:.2f}, above {s['threads']} means other work shared the cores) |
| epochs | {s['epochs']} (batch {s['batch']}, SGD Nesterov, OneCycle max lr {s['lr']}, weight decay {s['weight_decay']}, label smoothing {s['label_smoothing']}) |
| parameters (torch, incl. BatchNorm) | {s['params_torch']:,} |
| parameters (ONNX initializers, BatchNorm folded) | {s['params_onnx']:,} |
| MACs per image | {s['macs']:,} |
| `model.onnx` size | {s['onnx_bytes']:,} bytes |
| ONNX ops | {', '.join(s['ops'])} |
| ONNX vs torch max abs diff (logits, 256 test images) | {s['onnx_diff']:.2e} |
| torch / numpy / onnx | {s['torch_version']} / {s['numpy_version']} / {s['onnx_version']} (Debian packages) |
| python | {s['python']} |

The test set is only reported each epoch, never used to choose anything: the
model is the one after the last epoch.

Per-epoch log:

| epoch | train loss | train acc (augmented) | test acc | seconds | load |
| --- | --- | --- | --- | --- | --- |
{hist}

## Retrain

```
apt-get install -y python3-torch python3-numpy python3-pil python3-onnx dataset-fashion-mnist
/usr/bin/python3 tools/train_fashion_mnist.py --out models/fashion-mnist
```

Options: `--data DIR` (default `{DEFAULT_DATA}`, the idx files of
Debian's `dataset-fashion-mnist`), `--out DIR`, `--epochs N` (default
{s['default_epochs']}), `--threads N` (default 2). Seeds are fixed
(seed {SEED}), the data order and augmentation come from a seeded generator
and deterministic algorithms are on. Runs were still seen not to be
bit-identical on a busy machine (the epoch-1 loss differed in the fourth
decimal; the cause is not pinned down), so the final test accuracy can move by
a few tenths of a point between runs.

## Architecture

Input `input` float32 [N,1,28,28], output `logits` float32 [N,10] (no softmax;
take argmax, or softmax for probabilities).

- stem: Conv 3x3, 1 -> {STEM_CHANNELS}, stride 1, BatchNorm, ReLU6
- inverted residual blocks (expansion t: 1x1 Conv to t x channels + BN + ReLU6,
  3x3 depthwise Conv + BN + ReLU6, 1x1 project Conv + BN, no activation;
  residual Add when stride 1 and channels match; t = 1 has no expand conv):

| block | t | out channels | stride | residual Add |
| --- | --- | --- | --- | --- |
{blocks}

- head: Conv 1x1, {BLOCKS[-1][1]} -> {HEAD_CHANNELS}, BatchNorm, ReLU6
- global average pool, flatten, Linear {HEAD_CHANNELS} -> 10

Exported with `torch.onnx.export`, opset 13, eval mode, constant folding on, so
every BatchNorm is folded into the Conv before it (Convs carry a bias). ReLU6
appears as `Clip(min=0, max=6)` with min and max as constant inputs; Linear as
`Gemm(transB=1)`.

## Preprocessing (`preprocess.json`)

1. Decode the image; convert to one gray channel. For colour images use
   ITU-R BT.601 luma, gray = 0.299 R + 0.587 G + 0.114 B (what PIL does).
2. If it is not 28x28, resize to exactly 28x28 (aspect ratio not kept) with
   plain bilinear interpolation: half-pixel centres
   (src = (dst + 0.5) * in / out - 0.5, clamped to the edge), no antialiasing.
3. x = (pixel / 255 - {MEAN}) / {STD}   (scale 1/255, mean {MEAN}, std {STD}:
   the mean and standard deviation of all training pixels, 0.28604 and 0.35302).
4. Layout NCHW, shape [1,1,28,28], float32.

Fashion-MNIST images are a **light object on a black background**, centred,
filling most of the frame. A photo of a dark shirt on a white table is outside
what this model knows; invert such an image first.

## Other files

- `labels.txt`: the 10 class names in output order.
- `calibration/`: {CALIB_PER_CLASS * 10} training images ({CALIB_PER_CLASS} per class, seeded random
  choice), 28x28 grayscale PNG, named `calib_NNN_labelC.png` with C the class
  index, for int8 calibration.
- `samples/`: for each class the first test image that the final model
  classifies correctly, as the original 28x28 PNG and as a 224x224 RGB JPEG
  (bilinear upscale) to show that other sizes and colour images go through the
  same preprocessing. The predictions below are computed by the training script
  from the files, with the preprocessing above, through the exported ONNX graph.

| files | class | test index | prediction (png) | prediction (224 jpg) |
| --- | --- | --- | --- | --- |
{samples}
"""
    with open(os.path.join(out_dir, "MODEL.md"), "w") as f:
        f.write(text)


# ---------------------------------------------------------------- main

def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="directory of the idx .gz files")
    ap.add_argument("--out", default="models/fashion-mnist", help="output directory")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.2)
    ap.add_argument("--weight-decay", type=float, default=5e-5)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    args = ap.parse_args()

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.set_num_threads(args.threads)

    os.makedirs(args.out, exist_ok=True)
    log_lines = []

    def log(msg):
        print(msg, flush=True)
        log_lines.append(msg)

    tr_img, tr_lab = load_split(args.data, "train")
    te_img, te_lab = load_split(args.data, "t10k")
    log(f"data: {tr_img.shape[0]} train, {te_img.shape[0]} test images from {args.data}")
    xtr, ytr = to_tensor(tr_img), torch.from_numpy(tr_lab.astype(np.int64))
    xte, yte = to_tensor(te_img), torch.from_numpy(te_lab.astype(np.int64))

    model = FashionNet()
    params_torch = sum(p.numel() for p in model.parameters())
    macs = count_macs(model)
    log(f"model: {params_torch:,} parameters, {macs:,} MACs per image; "
        f"torch {torch.__version__}, {args.threads} threads")

    model = model.to(memory_format=torch.channels_last)
    history, train_seconds = train(model, xtr, ytr, xte, yte, args, log)
    model = model.to(memory_format=torch.contiguous_format)
    test_acc = history[-1]["test_acc"]

    onnx_path = os.path.join(args.out, "model.onnx")
    export_onnx(model, onnx_path)
    model.eval()

    with torch.no_grad():
        ref = model(xte[:256])
        te_pred = torch.cat([model(xte[i:i + 1000]).argmax(1)
                             for i in range(0, xte.shape[0], 1000)]).numpy()

    with torch.no_grad():
        got, ops, params_onnx = run_onnx_with_torch(onnx_path, xte[:256])
    onnx_diff = float((got - ref).abs().max())
    bad = set(ops) - ALLOWED_OPS
    if bad:
        sys.exit(f"error: exported graph has unexpected ops {sorted(bad)}")

    def predict(x):
        with torch.no_grad():
            return int(run_onnx_with_torch(onnx_path, x)[0].argmax(1))

    with open(os.path.join(args.out, "labels.txt"), "w") as f:
        f.write("\n".join(LABELS) + "\n")
    write_preprocess(args.out)
    for sub in ("calibration", "samples"):
        shutil.rmtree(os.path.join(args.out, sub), ignore_errors=True)
    write_calibration(args.out, tr_img, tr_lab)
    test_indices = write_samples(args.out, te_img, te_lab, te_pred)
    sample_pred_png, sample_pred_jpg = [], []
    for c in range(10):
        base = os.path.join(args.out, "samples", SAMPLE_NAMES[c])
        sample_pred_png.append(predict(preprocess_file(base + ".png")))
        sample_pred_jpg.append(predict(preprocess_file(base + "-224.jpg")))

    summary = {
        "test_acc": test_acc, "history": history, "train_seconds": train_seconds,
        "threads": args.threads, "cpu": cpu_name(),
        "epochs": args.epochs, "default_epochs": ap.get_default("epochs"),
        "batch": args.batch, "lr": args.lr, "weight_decay": args.weight_decay,
        "label_smoothing": args.label_smoothing,
        "params_torch": params_torch, "params_onnx": params_onnx, "macs": macs,
        "onnx_bytes": os.path.getsize(onnx_path), "ops": ops, "onnx_diff": onnx_diff,
        "torch_version": torch.__version__, "numpy_version": np.__version__,
        "onnx_version": onnx.__version__, "python": platform.python_version(),
        "mean_load": sum(r["load"] for r in history) / len(history),
        "residual": [], "test_indices": test_indices,
        "sample_pred_png": sample_pred_png, "sample_pred_jpg": sample_pred_jpg,
    }
    cin = STEM_CHANNELS
    for _, cout, stride in BLOCKS:
        summary["residual"].append(stride == 1 and cin == cout)
        cin = cout
    write_model_md(args.out, summary)

    log("")
    log("summary")
    log(f"  test accuracy      {100 * test_acc:.2f}%")
    log(f"  training time      {train_seconds:.1f} s ({args.epochs} epochs, {args.threads} threads)")
    log(f"  parameters         {params_torch:,} (torch), {params_onnx:,} (ONNX, BN folded)")
    log(f"  MACs per image     {macs:,}")
    log(f"  model.onnx         {summary['onnx_bytes']:,} bytes")
    log(f"  ONNX ops           {', '.join(ops)}")
    log(f"  ONNX vs torch      max abs diff {onnx_diff:.3e} on 256 test images")
    log(f"  samples png ok     {sum(p == c for c, p in enumerate(sample_pred_png))}/10")
    log(f"  samples 224 jpg ok {sum(p == c for c, p in enumerate(sample_pred_jpg))}/10")
    log(f"  wrote              {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
