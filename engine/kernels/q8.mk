# Int8 kernels (reference, AVX2, AVX-512 VNNI).
engine_libqsengine_la_SOURCES += engine/kernels/q8.h
engine_libqsengine_la_SOURCES += engine/kernels/q8_ukernels.h engine/kernels/q8_dispatch.c \
	engine/kernels/q8_gemm.c engine/kernels/q8_conv.c engine/kernels/q8_elementwise.c \
	engine/kernels/ref/q8_gemm_ref.c engine/kernels/ref/q8_dwconv_ref.c \
	engine/kernels/ref/q8_elementwise_ref.c
