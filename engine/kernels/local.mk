# Kernels: CPU dispatch, thread pool, reference and SIMD kernels (own flags per ISA).
engine_libqsengine_la_SOURCES += engine/kernels/kernels.h engine/kernels/ukernels.h \
	engine/kernels/cpu.c engine/kernels/threadpool.c engine/kernels/act.c \
	engine/kernels/gemm.c engine/kernels/conv2d.c \
	engine/kernels/ref/act_ref.c engine/kernels/ref/gemm_ref.c engine/kernels/ref/dwconv_ref.c
# The fused NHWC convolution operator lives with the ops but is built here, beside its kernels.
engine_libqsengine_la_SOURCES += engine/ops/conv_nhwc.c

# SIMD kernels: only these files get ISA flags; everything else runs on any x86-64.
noinst_LTLIBRARIES += engine/kernels/libqskern_avx2.la engine/kernels/libqskern_avx512.la
engine_kernels_libqskern_avx2_la_SOURCES = engine/kernels/avx2/gemm_6x16_avx2.c \
	engine/kernels/avx2/vec_avx2.c engine/kernels/simd_act.inc.h
engine_kernels_libqskern_avx2_la_CFLAGS = $(AM_CFLAGS) $(QS_AVX2_CFLAGS)
engine_kernels_libqskern_avx512_la_SOURCES = engine/kernels/avx512/gemm_8x32_avx512.c \
	engine/kernels/avx512/vec_avx512.c engine/kernels/avx512/simd512.h engine/kernels/simd_act.inc.h
engine_kernels_libqskern_avx512_la_CFLAGS = $(AM_CFLAGS) $(QS_AVX512_CFLAGS)
engine_libqsengine_la_LIBADD += engine/kernels/libqskern_avx2.la engine/kernels/libqskern_avx512.la
