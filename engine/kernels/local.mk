# Kernels: CPU dispatch, thread pool, reference and SIMD kernels (own flags per ISA).
engine_libqsengine_la_SOURCES += engine/kernels/kernels.h
