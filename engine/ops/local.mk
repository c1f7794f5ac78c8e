# Operators: one file per operator or small family (reference semantics), plus the registry.
engine_libqsengine_la_SOURCES += engine/ops/op.h
engine_libqsengine_la_SOURCES += \
	engine/ops/op_util.h \
	engine/ops/op_util.c \
	engine/ops/registry.c \
	engine/ops/binary.c \
	engine/ops/unary.c \
	engine/ops/clip.c \
	engine/ops/batchnorm.c \
	engine/ops/conv.c \
	engine/ops/pool.c \
	engine/ops/global_pool.c \
	engine/ops/gemm.c \
	engine/ops/reshape.c \
	engine/ops/identity.c \
	engine/ops/transpose.c \
	engine/ops/concat.c \
	engine/ops/softmax.c \
	engine/ops/pad.c \
	engine/ops/reduce.c \
	engine/ops/shape.c \
	engine/ops/gather.c \
	engine/ops/slice.c \
	engine/ops/cast.c \
	engine/ops/constant.c \
	engine/ops/compare.c \
	engine/ops/where.c \
	engine/ops/range.c \
	engine/ops/split.c \
	engine/ops/variadic.c \
	engine/ops/pow.c \
	engine/ops/argmax.c \
	engine/ops/norm.c \
	engine/ops/tile.c \
	engine/ops/scatternd.c \
	engine/ops/einsum.c
