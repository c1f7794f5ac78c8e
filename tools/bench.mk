# quantserve-bench: latency/throughput/memory benchmark of one model.
bin_PROGRAMS += tools/quantserve-bench
tools_quantserve_bench_SOURCES = tools/bench.c
tools_quantserve_bench_LDADD = engine/libqsengine.la -lm
