# Int8 kernels (reference, AVX2, AVX-512 VNNI).
engine_libqsengine_la_SOURCES += engine/kernels/q8.h
engine_libqsengine_la_SOURCES += engine/kernels/q8_ukernels.h engine/kernels/q8_dispatch.c \
	engine/kernels/q8_gemm.c engine/kernels/q8_conv.c engine/kernels/q8_elementwise.c \
	engine/kernels/ref/q8_gemm_ref.c engine/kernels/ref/q8_dwconv_ref.c \
	engine/kernels/ref/q8_elementwise_ref.c

# SIMD int8 kernels: only these files get ISA flags. No FMA contraction, so that float epilogues
# round exactly like the reference.
noinst_LTLIBRARIES += engine/kernels/libqsq8_avx2.la
engine_kernels_libqsq8_avx2_la_SOURCES = engine/kernels/avx2/q8_gemm_avx2.c \
	engine/kernels/avx2/q8_dwconv_avx2.c engine/kernels/avx2/q8_elementwise_avx2.c
engine_kernels_libqsq8_avx2_la_CFLAGS = $(AM_CFLAGS) $(QS_AVX2_CFLAGS) -ffp-contract=off
engine_libqsengine_la_LIBADD += engine/kernels/libqsq8_avx2.la
noinst_LTLIBRARIES += engine/kernels/libqsq8_avx512.la
engine_kernels_libqsq8_avx512_la_SOURCES = engine/kernels/avx512/q8_simd512.h \
	engine/kernels/avx512/q8_gemm_avx512vnni.c engine/kernels/avx512/q8_dwconv_avx512vnni.c \
	engine/kernels/avx512/q8_elementwise_avx512.c
engine_kernels_libqsq8_avx512_la_CFLAGS = $(AM_CFLAGS) $(QS_AVX512_CFLAGS) -ffp-contract=off
engine_libqsengine_la_LIBADD += engine/kernels/libqsq8_avx512.la
