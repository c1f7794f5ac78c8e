# quantserve-run: run a model on .npy inputs (the engine's counterpart of ort-run), and the
# PyTorch export tools with `make sweep` (every torchvision classifier through the engine).
bin_PROGRAMS += tools/quantserve-run
tools_quantserve_run_SOURCES = tools/run.c
tools_quantserve_run_LDADD = engine/libqsengine.la -lm
EXTRA_DIST += tools/export_pytorch.py tools/torchvision_sweep.py

# `make sweep`: export every torchvision classifier (random weights) and compare the engine with
# PyTorch. Needs python3-torch, python3-torchvision, python3-onnx; not part of `make check`.
# Exports are cached in $(SWEEP_CACHE); pass more options with SWEEP_ARGS="--only resnet18 ...".
SWEEP_PY = /usr/bin/python3
SWEEP_CACHE = $${XDG_CACHE_HOME:-$$HOME/.cache}/quantserve-sweep
SWEEP_REPORT = $(SWEEP_CACHE)/report.md
SWEEP_ARGS =
.PHONY: sweep
sweep: tools/quantserve-run$(EXEEXT)
	$(SWEEP_PY) $(top_srcdir)/tools/torchvision_sweep.py \
	    --run $(abs_top_builddir)/tools/quantserve-run$(EXEEXT) \
	    --cache "$(SWEEP_CACHE)" --report $(SWEEP_REPORT) $(SWEEP_ARGS)
