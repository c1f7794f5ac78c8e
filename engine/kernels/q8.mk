# Int8 kernels (reference, AVX2, AVX-512 VNNI).
engine_libqsengine_la_SOURCES += engine/kernels/q8.h
