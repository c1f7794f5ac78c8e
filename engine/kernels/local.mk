# Kernels: CPU dispatch, thread pool, reference and SIMD kernels (own flags per ISA).
engine_libqsengine_la_SOURCES += engine/kernels/kernels.h engine/kernels/ukernels.h \
	engine/kernels/cpu.c engine/kernels/threadpool.c engine/kernels/act.c \
	engine/kernels/gemm.c engine/kernels/conv2d.c \
	engine/kernels/ref/act_ref.c engine/kernels/ref/gemm_ref.c engine/kernels/ref/dwconv_ref.c
# The fused NHWC convolution operator lives with the ops but is built here, beside its kernels.
engine_libqsengine_la_SOURCES += engine/ops/conv_nhwc.c
