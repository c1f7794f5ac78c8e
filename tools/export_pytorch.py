#!/usr/bin/python3
"""export_pytorch.py - export a PyTorch image classifier to ONNX with a ready-to-serve quantserve config.

usage (Debian's /usr/bin/python3 with python3-torch python3-torchvision python3-onnx python3-numpy):

  tools/export_pytorch.py (--arch NAME | --module PKG.MOD:CALLABLE)
                          (--weights FILE | --pretrained | --random-weights [--seed N])
                          --out DIR [--name NAME] [--opset 13] [--kwargs JSON]
                          [--size S] [--resize R] [--mean M,M,M] [--std S,S,S]
                          [--labels FILE] [--calibration DIR|LIST] [--calibration-count N]
                          [--check] [--check-batch 2] [--check-tol 1e-4] [--quantserve-run PATH]

Model (one of):
  --arch NAME            a torchvision classifier (resnet50, mobilenet_v3_large, vit_b_16, ...;
                         --list-archs prints them)
  --module PKG.MOD:FN    your own: FN (a function or an nn.Module class) is called with the --kwargs
                         (a JSON object, default {}) and must return an nn.Module; PKG.MOD is
                         imported from the current directory or PYTHONPATH
  (--weights FILE alone works too when FILE is a whole pickled nn.Module)
Weights (one of):
  --weights FILE         a state_dict (also {"state_dict": ...} / {"model": ...} checkpoints;
                         a "module." prefix from DataParallel is dropped) or a whole pickled module
  --pretrained           torchvision's default pretrained weights (downloads them: needs internet,
                         or the file already in torch's hub cache)
  --random-weights       seeded random init (--seed N, default 0); BatchNorm running statistics
                         are then re-estimated on synthetic images so activations are not
                         degenerate, and all-zero initialized layers (e.g. ViT's head) get random
                         values. For testing the engine only: the predictions are meaningless.
Output, in --out DIR:
  model.onnx        opset --opset (default 13), input "input" float32 [N,3,S,S] (N dynamic),
                    output "logits" [N,classes]; BatchNorm folded by constant folding
  model.onnx.data   only for models over protobuf's 2 GB limit: their weights as ONNX external
                    data (keep it beside model.onnx; quantserve reads it when loading the file)
  labels.txt        class names, one per line: --labels FILE, else torchvision's 1000 ImageNet names
                    when the model has 1000 outputs, else class_0, class_1, ...
  quantserve.json   a complete config for `quantserve --config DIR/quantserve.json`: one model with
                    torchvision's ImageNet preprocessing (RGB, shorter side R, center crop S,
                    bilinear, x/255, ImageNet mean/std, NCHW) and two variants: "fp32" (default)
                    and "int8": static, calibrated on --calibration images if given, else dynamic
  calibration.txt   only when --calibration DIR holds its images in subfolders (ImageFolder
                    layout): the images listed round-robin over the subfolders, since the server
                    reads only a folder's top-level images
Preprocessing: S/R default to 224/256 (299/342 for inception_v3); with --pretrained, the weights'
own recipe (crop, resize, mean, std). The server resizes bilinearly only: weights trained with
bicubic resizing (EfficientNet, ViT, ...) get a note and bilinear.
  --check           after the export, run PyTorch and quantserve-run on the same seeded random batch
                    (--check-batch, default 2) and report max abs and relative error
                    (||q - t||_inf / ||t||_inf); exit 1 if above --check-tol (default 1e-4) or if
                    quantserve cannot run the model. quantserve-run is taken from --quantserve-run,
                    else next to this script (an in-tree build), else from PATH.
stdout: one JSON line describing the export (and the check); progress on stderr.
exit status: 0 done, 1 export or check failed, 2 bad arguments.

examples:
  tools/export_pytorch.py --arch resnet18 --random-weights --seed 0 --out /tmp/resnet18 --check
  tools/export_pytorch.py --arch mobilenet_v2 --weights mobilenet_v2-b0353104.pth --out models/mnv2 \\
      --calibration ../shared/data/images/imagenet-val --calibration-count 200
  tools/export_pytorch.py --module mypkg.net:build_model --kwargs '{"num_classes": 10}' \\
      --weights net.pth --labels classes.txt --size 160 --resize 182 --out models/mynet --check
  quantserve --config models/mnv2/quantserve.json
"""
import argparse
import importlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

PROG = "export_pytorch"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
HERE = os.path.dirname(os.path.abspath(__file__))


class ExportError(Exception):
    """A failure to report as one clear line (exit 1)."""


def log(msg):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def import_torch():
    try:
        import numpy  # noqa: F401
        import torch
        import torchvision  # noqa: F401
        import onnx  # noqa: F401
    except ImportError as e:
        raise SystemExit(f"{PROG}: error: {e}; install Debian's packages: apt-get install -y python3-torch "
                         "python3-torchvision python3-onnx python3-numpy (and run with /usr/bin/python3)")
    return torch


def classifier_archs():
    """The classification architectures this torchvision provides (not detection, video, ...)."""
    import torchvision.models as tvm
    if hasattr(tvm, "list_models"):
        return sorted(tvm.list_models(module=tvm))
    # older torchvision: lower-case builders defined in the classification modules
    import torch.nn as nn
    names = []
    for name in dir(tvm):
        f = getattr(tvm, name)
        if name[0].islower() and not name.startswith("_") and callable(f) and not isinstance(f, type) \
                and getattr(f, "__module__", "").startswith("torchvision.models.") \
                and f.__module__.count(".") == 2 and not issubclass(type(f), nn.Module):
            names.append(name)
    return sorted(names)


# ---- building the model ----

def _unwrap_state_dict(obj):
    """A state_dict from common checkpoint layouts, or None when obj is not one."""
    import torch
    for key in ("state_dict", "model_state_dict", "model", "net"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        return None
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _callable_from_spec(spec):
    if ":" not in spec:
        raise ExportError(f"--module expects PKG.MOD:CALLABLE, got '{spec}'")
    mod_name, attr = spec.split(":", 1)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        mod = importlib.import_module(mod_name)
    except Exception as e:
        raise ExportError(f"--module: cannot import {mod_name}: {type(e).__name__}: {e}")
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ExportError(f"--module: {mod_name} has no attribute '{attr}'")
        obj = getattr(obj, part)
    return obj


def _head_classes_from_mismatch(model, sd):
    """If a state_dict only disagrees with the model on the class count of its head, that count."""
    own = model.state_dict()
    bad = [k for k in sd if k in own and own[k].shape != sd[k].shape]
    if not bad or any(own[k].shape[1:] != sd[k].shape[1:] or own[k].shape[0] != 1000 for k in bad):
        return None
    counts = {int(sd[k].shape[0]) for k in bad}
    return counts.pop() if len(counts) == 1 else None


def build_model(a):
    """The eval-mode nn.Module and a description of its weights."""
    import torch
    import torch.nn as nn
    import torchvision.models as tvm
    kwargs = a.kwargs
    loaded = None
    if a.weights:
        if not os.path.isfile(a.weights):
            raise ExportError(f"--weights: no such file: {a.weights}")
        if a.module:  # the class of a pickled module may live there
            _callable_from_spec(a.module)
        try:
            loaded = torch.load(a.weights, map_location="cpu")
        except Exception as e:
            raise ExportError(f"--weights {a.weights}: cannot load: {type(e).__name__}: {e}")
        if isinstance(loaded, nn.Module):
            log(f"{a.weights}: a whole pickled module ({type(loaded).__name__})")
            return loaded.eval(), f"module:{a.weights}"
        sd = _unwrap_state_dict(loaded)
        if sd is None:
            raise ExportError(f"--weights {a.weights}: neither a state_dict nor an nn.Module "
                              f"(a {type(loaded).__name__})")
        if not a.arch and not a.module:
            raise ExportError(f"--weights {a.weights} is a state_dict: say which model it belongs to with "
                              "--arch NAME or --module PKG.MOD:CALLABLE")

    if a.arch:
        if a.arch not in classifier_archs():
            raise ExportError(f"unknown --arch '{a.arch}'; torchvision classifiers here: "
                              + " ".join(classifier_archs()))
        builder = getattr(tvm, a.arch)
        weights = None
        if a.pretrained:
            weights = tvm.get_model_weights(a.arch).DEFAULT if hasattr(tvm, "get_model_weights") else "DEFAULT"
            log(f"{a.arch}: torchvision pretrained weights {weights}")
            try:
                model = builder(weights=weights, **kwargs)
            except Exception as e:
                url = getattr(weights, "url", "")
                raise ExportError(
                    f"--pretrained: could not get {weights} ({type(e).__name__}: {e}). Downloading needs "
                    f"internet access; on a machine with it, download {url or 'the weights'} and pass the file "
                    f"with --weights FILE, or put it in {os.path.join(torch.hub.get_dir(), 'checkpoints')}/")
            return model.eval(), f"pretrained:{weights}"
        if a.random_weights:
            torch.manual_seed(a.seed)
        model = builder(weights=None, **kwargs)
    else:
        fn = _callable_from_spec(a.module)
        if a.random_weights:
            torch.manual_seed(a.seed)
        if isinstance(fn, nn.Module):
            model = fn
        else:
            try:
                model = fn(**kwargs)
            except Exception as e:
                raise ExportError(f"--module {a.module}: calling it failed: {type(e).__name__}: {e}")
        if not isinstance(model, nn.Module):
            raise ExportError(f"--module {a.module} returned a {type(model).__name__}, not an nn.Module")

    if loaded is not None:
        sd = _unwrap_state_dict(loaded)
        try:
            model.load_state_dict(sd)
        except RuntimeError as e:
            k = _head_classes_from_mismatch(model, sd) if a.arch and "num_classes" not in kwargs else None
            if k is None:
                raise ExportError(f"--weights {a.weights} does not fit the model: {e}")
            log(f"{a.weights}: the head has {k} classes; rebuilding {a.arch} with num_classes={k}")
            model = getattr(tvm, a.arch)(weights=None, num_classes=k, **kwargs)
            try:
                model.load_state_dict(sd)
            except RuntimeError as e2:
                raise ExportError(f"--weights {a.weights} does not fit the model: {e2}")
        return model.eval(), f"state_dict:{a.weights}"
    if a.random_weights:
        randomize(model, a.seed, a.size)
        return model.eval(), f"random(seed {a.seed})"
    raise ExportError("no weights: give --weights FILE, --pretrained or --random-weights")


# ---- random weights ----

def synthetic_images(n, size, seed):
    """n float32 NCHW images, ImageNet-normalized, that look vaguely like photos: a lit gradient
    background, a few overlapping coloured ellipses with soft edges, and some grain."""
    import torch
    g = torch.Generator().manual_seed(seed)
    coords = torch.linspace(-1.0, 1.0, size)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    out = torch.empty(n, 3, size, size)
    for i in range(n):
        r = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
        base = r(3, 1, 1)
        img = base + (r(3, 1, 1) - 0.5) * xx + (r(3, 1, 1) - 0.5) * yy
        for _ in range(int(r(1).item() * 6) + 2):
            cx, cy = (r(2) * 2 - 1).tolist()
            ax, ay = (r(2) * 0.6 + 0.1).tolist()
            theta = float(r(1).item() * math.pi)
            u = (xx - cx) * math.cos(theta) + (yy - cy) * math.sin(theta)
            v = -(xx - cx) * math.sin(theta) + (yy - cy) * math.cos(theta)
            d = (u / ax) ** 2 + (v / ay) ** 2
            alpha = torch.sigmoid((1.0 - d) * (4.0 + 20.0 * float(r(1).item())))
            img = img * (1 - alpha) + r(3, 1, 1) * alpha
        img = img + 0.04 * torch.randn(3, size, size, generator=g)
        out[i] = img.clamp(0.0, 1.0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((out - mean) / std).contiguous()


def randomize(model, seed, size, images=32, batch=8):
    """Make a randomly initialized model usable as a numerical test subject."""
    import torch
    import torch.nn as nn
    for name, mod in model.named_modules():
        w = getattr(mod, "weight", None)
        if isinstance(mod, (nn.Linear, nn.Conv2d)) and w is not None and not bool(w.detach().any()):
            # zero-initialized layers (ViT's head, some residual branches) would make outputs constant
            mod.reset_parameters()
            log(f"random weights: {name or type(mod).__name__} was initialized to zeros; re-drawn")
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    # Only the BatchNorms train: they accumulate a plain average of the batch statistics, while
    # dropout and stochastic depth stay in eval mode.
    model.eval()
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    x = synthetic_images(images, size, seed + 1)
    log(f"random weights: re-estimating {len(bns)} BatchNorm statistics on {images} synthetic "
        f"{size}x{size} images")
    with torch.no_grad():
        for i in range(0, images, batch):
            model(x[i:i + batch])
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()


# ---- export ----

class _Logits:
    """Wraps a model whose forward returns a tuple/dict so that the export gets one logits tensor."""

    @staticmethod
    def wrap(model, sample):
        import torch
        import torch.nn as nn
        with torch.no_grad():
            y = model(sample)
        if torch.is_tensor(y):
            pick = None
        elif isinstance(y, dict) and "logits" in y:
            pick = "logits"
        elif isinstance(y, (tuple, list)) and y and torch.is_tensor(y[0]):
            pick = 0
        elif hasattr(y, "logits") and torch.is_tensor(y.logits):
            pick = "attr:logits"
        else:
            raise ExportError(f"the model returns a {type(y).__name__}; quantserve needs one tensor of "
                              "class scores [N, classes]")
        if pick is not None:
            log(f"the model returns a {type(y).__name__}; exporting its "
                f"{'first element' if pick == 0 else 'logits'} as the logits")

            class Picked(nn.Module):
                def __init__(self, inner):
                    super().__init__()
                    self.inner = inner

                def forward(self, x):
                    out = self.inner(x)
                    if pick == "attr:logits":
                        return out.logits
                    return out[pick]
            model = Picked(model).eval()
            with torch.no_grad():
                y = model(sample)
        if y.dim() != 2 or y.shape[0] != sample.shape[0]:
            raise ExportError(f"the model's output has shape {list(y.shape)}; expected [N, classes] "
                              f"for an input of {list(sample.shape)}")
        return model, int(y.shape[1])


def _register_zero_symbolic(opset):
    """torch 1.13 cannot export aten::zero (the in-place zero_() of Swin V2's qkv bias): export it as
    zeros_like, i.e. ConstantOfShape(Shape(x)) with x's dtype."""
    import torch
    import torch.onnx.symbolic_opset9 as sym9

    def zero(g, self):
        return sym9.zeros_like(g, self)
    torch.onnx.register_custom_op_symbolic("aten::zero", zero, opset)
    log("exporting aten::zero (unsupported by this torch.onnx) as zeros_like")


def external_data_path(path):
    """Where export_onnx puts the weights of a model over 2 GB: beside it, PATH.data."""
    return path + ".data"


def onnx_size(path):
    """Bytes of an exported model: the .onnx file plus its external data file, if any."""
    data = external_data_path(path)
    return os.path.getsize(path) + (os.path.getsize(data) if os.path.exists(data) else 0)


def export_onnx(model, path, size, opset):
    """Export to path (atomically); returns the number of classes. A model over protobuf's 2 GB
    limit gets its weights as ONNX external data in one file beside it, external_data_path(path)
    (location: that file's name), which quantserve reads when loading from the file."""
    import torch
    import onnx
    sample = synthetic_images(2, size, 12345)
    model, classes = _Logits.wrap(model, sample)
    # A private folder: over 2 GB, torch.onnx writes one file per weight next to the model.
    tmp_dir = tempfile.mkdtemp(prefix=".export-", dir=os.path.dirname(os.path.abspath(path)))
    tmp = os.path.join(tmp_dir, os.path.basename(path))
    data = external_data_path(path)

    def run_export():
        # Not under no_grad: nn.MultiheadAttention (ViT) takes its fused inference path, which
        # torch.onnx cannot export, when gradients are off or no weight requires them.
        params = list(model.parameters())
        saved = [p.requires_grad for p in params]
        try:
            for p in params:
                p.requires_grad_(True)
            with torch.enable_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, sample[:1], tmp, opset_version=opset, input_names=["input"],
                                  output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                                  do_constant_folding=True)
        finally:
            for p, r in zip(params, saved):
                p.requires_grad_(r)
    try:
        try:
            run_export()
        except Exception as e:
            if "'aten::zero'" not in str(e):
                raise
            _register_zero_symbolic(opset)
            run_export()
        m = onnx.load(tmp, load_external_data=False)
        external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in m.graph.initializer)
        if not external:
            onnx.checker.check_model(m)
            os.replace(tmp, path)
            if os.path.exists(data):
                os.remove(data)  # left by an earlier export over 2 GB
        else:
            # Gather torch's per-weight files into one, as onnx.save_model does; the checker needs
            # the path (an in-memory model over 2 GB cannot be serialized for it).
            del m
            onnx.checker.check_model(tmp)
            m = onnx.load(tmp)
            log(f"model over 2 GB: weights go to {data} (ONNX external data)")
            one = os.path.join(tmp_dir, "one.onnx")
            onnx.save_model(m, one, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=os.path.basename(data), size_threshold=1024)
            del m
            os.replace(os.path.join(tmp_dir, os.path.basename(data)), data)
            os.replace(one, path)
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"torch.onnx.export failed: {type(e).__name__}: {str(e).strip().splitlines()[0]}")
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return classes


# ---- labels and config ----

def imagenet_names():
    """torchvision's 1000 ImageNet class names (bundled with torchvision; no download)."""
    try:
        from torchvision.models._meta import _IMAGENET_CATEGORIES
        return list(_IMAGENET_CATEGORIES)
    except ImportError:
        pass
    for cand in (os.path.join(HERE, "..", "..", "shared", "data", "imagenet_classes.txt"),
                 os.path.join(os.getcwd(), "..", "shared", "data", "imagenet_classes.txt")):
        if os.path.isfile(cand):
            with open(cand, encoding="utf-8") as f:
                return f.read().splitlines()
    return None


def write_labels(path, classes, labels_file):
    if labels_file:
        with open(labels_file, encoding="utf-8") as f:
            names = [ln.rstrip("\r\n") for ln in f]
        while names and not names[-1].strip():
            names.pop()
        if len(names) != classes:
            raise ExportError(f"--labels {labels_file} has {len(names)} names; the model has {classes} outputs")
        source = labels_file
    elif classes == 1000 and imagenet_names():
        names, source = imagenet_names(), "torchvision ImageNet-1k names"
    else:
        names, source = [f"class_{i}" for i in range(classes)], "class_i placeholders"
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(n + "\n" for n in names))
    return source


def find_images(root):
    """Top-level images of root, or (when there are none) images of its subfolders interleaved."""
    top = sorted(e for e in os.listdir(root)
                 if not e.startswith(".") and e.lower().endswith(IMAGE_EXTS) and os.path.isfile(os.path.join(root, e)))
    if top:
        return [os.path.join(root, e) for e in top], False
    groups = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        imgs = sorted(os.path.join(dirpath, f) for f in filenames
                      if not f.startswith(".") and f.lower().endswith(IMAGE_EXTS))
        if imgs:
            groups.append(imgs)
    interleaved = []
    for i in range(max((len(g) for g in groups), default=0)):
        interleaved.extend(g[i] for g in groups if i < len(g))
    return interleaved, True


def config_path(target, out_dir):
    """Paths inside the output folder stay relative (the config resolves them against its folder)."""
    target = os.path.abspath(target)
    rel = os.path.relpath(target, out_dir)
    return target if rel.startswith("..") else rel


def write_config(path, a, out_dir):
    variants = [{"name": "fp32", "mode": "fp32"}]
    if a.calibration:
        src = os.path.abspath(a.calibration)
        if os.path.isdir(src):
            images, nested = find_images(src)
            if not images:
                raise ExportError(f"--calibration {a.calibration}: no .jpg, .jpeg or .png images in it")
            if nested:
                src = os.path.join(out_dir, "calibration.txt")
                with open(src, "w", encoding="utf-8") as f:
                    f.write("".join(p + "\n" for p in images[:max(a.calibration_count, 1)]))
                log(f"--calibration: images are in subfolders; listed {min(len(images), a.calibration_count)} "
                    f"of them round-robin in {src}")
            count = min(len(images), a.calibration_count)
        elif os.path.isfile(src):
            with open(src, encoding="utf-8") as f:
                count = min(sum(1 for ln in f if ln.strip() and not ln.startswith("#")), a.calibration_count)
        else:
            raise ExportError(f"--calibration {a.calibration}: no such folder or list file")
        if count == 0:
            raise ExportError(f"--calibration {a.calibration}: no images")
        variants.append({"name": "int8", "mode": "static", "observer": "minmax", "per_channel": True,
                         "calibration": {"images": config_path(src, out_dir), "count": count}})
    else:
        variants.append({"name": "int8", "mode": "dynamic", "per_channel": True})
    model = {
        "name": a.name,
        "onnx": "model.onnx",
        "labels": "labels.txt",
        "input": "input",
        "output": "logits",
        "softmax": True,
        "preprocess": {
            "color": "rgb",
            "resize": {"shorter_side": a.resize},
            "crop": {"width": a.size, "height": a.size},
            "interpolation": "bilinear",
            "scale": 1.0 / 255.0,
            "mean": a.mean,
            "std": a.std,
            "layout": "NCHW",
        },
        "default_variant": "fp32",
        "variants": variants,
    }
    conf = {
        "_comment": f"Written by tools/export_pytorch.py ({a.weights_desc}). Keys: conf/README.md; relative "
                    "paths resolve against this file's folder.",
        "server": {"listen": "127.0.0.1", "port": 8080},
        "workers": {"count": 1, "intra_op_threads": 0},
        "models": [model],
    }
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(conf, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


# ---- check against the engine ----

def find_quantserve_run(explicit=None):
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise ExportError(f"--quantserve-run {explicit}: not an executable file")
        return explicit
    local = os.path.join(HERE, "quantserve-run")
    if os.path.isfile(local) and os.access(local, os.X_OK):
        return local
    found = shutil.which("quantserve-run")
    if not found:
        raise ExportError("quantserve-run not found: build it (make tools/quantserve-run) or pass --quantserve-run PATH")
    return found


def run_quantserve(qs_run, onnx_path, x_npy, y_npy, threads=1, runs=1, timeout=None, extra=()):
    """Run quantserve-run; returns (json record or None, error message or None)."""
    cmd = [qs_run, onnx_path, "--input", x_npy, "--output", y_npy, "--threads", str(threads), "--runs", str(runs),
           *extra]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"quantserve-run timed out after {timeout} s"
    if p.returncode != 0:
        lines = [ln for ln in p.stderr.strip().splitlines() if "error" in ln] or p.stderr.strip().splitlines()
        msg = lines[-1] if lines else f"exit status {p.returncode}"
        if p.returncode < 0:
            msg = f"quantserve-run died with signal {-p.returncode}" + (f" ({msg})" if lines else "")
        return None, msg.replace("quantserve-run: error: ", "")
    return json.loads(p.stdout.strip().splitlines()[-1]), None


def compare(ref, out):
    import numpy as np
    ref = ref.astype(np.float64)
    out = out.astype(np.float64)
    if ref.shape != out.shape:
        return {"error": f"shape {list(out.shape)} instead of PyTorch's {list(ref.shape)}"}
    diff = np.abs(out - ref)
    if not np.all(np.isfinite(out)):
        return {"error": "non-finite values in quantserve's output", "max_abs": float("inf"), "rel": float("inf")}
    scale = float(np.abs(ref).max())
    return {"max_abs": float(diff.max()), "ref_max_abs": scale,
            "rel": float(diff.max() / scale) if scale > 0 else (0.0 if diff.max() == 0 else float("inf")),
            "argmax_agree": float(np.mean(ref.argmax(1) == out.argmax(1)))}


def check(model, onnx_path, size, batch, seed, qs_run, tol):
    import numpy as np
    import torch
    work = tempfile.mkdtemp(prefix="export-check.")
    try:
        x = synthetic_images(batch, size, seed + 1000)
        with torch.no_grad():
            out = model(x)
            if not torch.is_tensor(out):
                out = _Logits.wrap(model, x)[0](x)
        ref = out.numpy()
        x_npy, y_npy = os.path.join(work, "x.npy"), os.path.join(work, "y.npy")
        np.save(x_npy, x.numpy())
        rec, err = run_quantserve(qs_run, onnx_path, x_npy, y_npy)
        if err:
            return {"status": "FAIL", "error": err}
        res = compare(ref, np.load(y_npy))
        res["status"] = "PASS" if "error" not in res and res["rel"] <= tol else "FAIL"
        res.update({"batch": batch, "tol": tol, "load_ms": rec.get("load_ms"), "run_ms": rec.get("run_ms")})
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- command line ----

def floats3(s):
    try:
        v = [float(t) for t in s.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 1 or 3 comma-separated numbers, got '{s}'")
    if len(v) not in (1, 3):
        raise argparse.ArgumentTypeError(f"expected 1 or 3 comma-separated numbers, got '{s}'")
    return v * 3 if len(v) == 1 else v


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="export_pytorch.py", description="Export a PyTorch image classifier to "
                                 "ONNX with a quantserve config.", epilog="See the docstring at the top of "
                                 "tools/export_pytorch.py for the details.")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--arch", help="torchvision classifier name")
    src.add_argument("--module", help="PKG.MOD:CALLABLE returning an nn.Module")
    w = ap.add_mutually_exclusive_group()
    w.add_argument("--weights", help="state_dict or pickled module file")
    w.add_argument("--pretrained", action="store_true", help="torchvision's default weights (needs internet)")
    w.add_argument("--random-weights", action="store_true", help="seeded random weights (testing only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kwargs", default="{}", help="JSON object of keyword arguments for the model builder")
    ap.add_argument("--out", help="output folder")
    ap.add_argument("--name", help="model name in the config (default: the arch or callable name)")
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--size", type=int, help="crop size S (input S x S)")
    ap.add_argument("--resize", type=int, help="shorter side before the crop")
    ap.add_argument("--mean", type=floats3, help="per-channel mean after x/255 (default ImageNet's)")
    ap.add_argument("--std", type=floats3, help="per-channel std (default ImageNet's)")
    ap.add_argument("--labels", help="class names file, one per line")
    ap.add_argument("--calibration", help="folder of images (or a list file) for the int8 static variant")
    ap.add_argument("--calibration-count", type=int, default=100)
    ap.add_argument("--check", action="store_true", help="compare PyTorch with quantserve-run after the export")
    ap.add_argument("--check-batch", type=int, default=2)
    ap.add_argument("--check-tol", type=float, default=1e-4)
    ap.add_argument("--quantserve-run", help="path of quantserve-run for --check")
    ap.add_argument("--list-archs", action="store_true", help="print torchvision's classifiers and exit")
    a = ap.parse_args(argv)
    if a.list_archs:
        return a
    if not a.out:
        ap.error("--out DIR is required")
    if not a.arch and not a.module and not a.weights:
        ap.error("give the model: --arch NAME, --module PKG.MOD:CALLABLE, or --weights FILE of a pickled module")
    if not (a.weights or a.pretrained or a.random_weights):
        ap.error("give the weights: --weights FILE, --pretrained or --random-weights")
    if a.pretrained and not a.arch:
        ap.error("--pretrained needs --arch (torchvision's weights)")
    try:
        a.kwargs = json.loads(a.kwargs)
    except ValueError as e:
        ap.error(f"--kwargs is not JSON: {e}")
    if not isinstance(a.kwargs, dict):
        ap.error("--kwargs must be a JSON object")
    if not 7 <= a.opset <= 18:
        ap.error("--opset must be in 7..18")
    for opt in ("size", "resize"):
        v = getattr(a, opt)
        if v is not None and not 1 <= v <= 65535:
            ap.error(f"--{opt} must be in 1..65535")
    if a.calibration_count < 1:
        ap.error("--calibration-count must be positive")
    if a.check_batch < 1:
        ap.error("--check-batch must be positive")
    if a.labels and not os.path.isfile(a.labels):
        ap.error(f"--labels {a.labels}: no such file")
    name = a.name or a.arch or (a.module.split(":")[-1] if a.module else
                                os.path.splitext(os.path.basename(a.weights))[0])
    a.name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64]
    return a


def default_size(arch):
    """torchvision's evaluation crop and resize for an architecture (random or own weights)."""
    return (299, 342) if arch == "inception_v3" else (224, 256)


def resolve_preprocessing(a):
    """Crop/resize/mean/std: explicit options, else the pretrained weights' recipe, else 224/256."""
    recipe = {}
    if a.pretrained:
        import torchvision.models as tvm
        try:
            t = tvm.get_model_weights(a.arch).DEFAULT.transforms()
            recipe = {"size": t.crop_size[0], "resize": t.resize_size[0], "mean": list(t.mean), "std": list(t.std)}
            if "BILINEAR" not in str(t.interpolation):
                log(f"note: {a.arch}'s weights were evaluated with {t.interpolation.value} resizing; the server "
                    "resizes bilinearly (accuracy may differ slightly)")
        except Exception:
            recipe = {}
    size, resize = default_size(a.arch)
    a.size = a.size or recipe.get("size", size)
    if a.resize is None:
        a.resize = recipe.get("resize") if "resize" in recipe and a.size == recipe.get("size") \
            else (resize if a.size == size else int(round(a.size / 0.875)))
    if a.resize < a.size:
        raise ExportError(f"--resize {a.resize} is smaller than the crop {a.size}")
    a.mean = a.mean or recipe.get("mean", IMAGENET_MEAN)
    a.std = a.std or recipe.get("std", IMAGENET_STD)


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    torch = import_torch()
    if a.list_archs:
        print("\n".join(classifier_archs()))
        return 0
    t0 = time.perf_counter()
    try:
        resolve_preprocessing(a)
        qs_run = find_quantserve_run(a.quantserve_run) if a.check else None
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        model, a.weights_desc = build_model(a)
        out_dir = os.path.abspath(a.out)
        os.makedirs(out_dir, exist_ok=True)
        onnx_path = os.path.join(out_dir, "model.onnx")
        log(f"exporting {a.name} ({a.weights_desc}) to {onnx_path}, opset {a.opset}, input [N,3,{a.size},{a.size}]")
        classes = export_onnx(model, onnx_path, a.size, a.opset)
        labels_src = write_labels(os.path.join(out_dir, "labels.txt"), classes, a.labels)
        conf_path = os.path.join(out_dir, "quantserve.json")
        write_config(conf_path, a, out_dir)
        rec = {
            "model": a.name, "weights": a.weights_desc, "onnx": onnx_path,
            "onnx_mb": round(onnx_size(onnx_path) / 1e6, 3),
            "params": sum(p.numel() for p in model.parameters()), "opset": a.opset,
            "input": f"input [N,3,{a.size},{a.size}] float32", "output": f"logits [N,{classes}]",
            "labels": os.path.join(out_dir, "labels.txt"), "labels_source": labels_src, "config": conf_path,
            "preprocess": {"resize": a.resize, "crop": a.size, "mean": a.mean, "std": a.std},
        }
        status = 0
        if a.check:
            log(f"checking against PyTorch with {qs_run} (batch {a.check_batch})")
            res = check(model, onnx_path, a.size, a.check_batch, a.seed, qs_run, a.check_tol)
            rec["check"] = res
            if res["status"] != "PASS":
                status = 1
                log("check FAILED: " + (res.get("error") or f"relative error {res['rel']:.3g} > {a.check_tol:g}")
                    + " (the export itself is written)")
            else:
                log(f"check passed: max abs error {res['max_abs']:.3g}, relative {res['rel']:.3g}")
        rec["seconds"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(rec, separators=(",", ":")), flush=True)
        return status
    except ExportError as e:
        log(f"error: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
