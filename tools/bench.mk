# quantserve-bench: latency/throughput/memory benchmark of one model.
bin_PROGRAMS += tools/quantserve-bench
tools_quantserve_bench_SOURCES = tools/bench.c
tools_quantserve_bench_LDADD = engine/libqsengine.la -lm

# make bench: quantserve against ONNX Runtime, interleaved (needs ../shared/anchors; long).
.PHONY: bench
bench: tools/quantserve-bench
	$(top_srcdir)/tools/bench_compare.py --bench $(abs_top_builddir)/tools/quantserve-bench $(BENCH_ARGS)
EXTRA_DIST += tools/bench_compare.py
