# Operators: one file per operator or small family (reference semantics), plus the registry.
engine_libqsengine_la_SOURCES += engine/ops/op.h
engine_libqsengine_la_SOURCES += \
	engine/ops/op_util.h \
	engine/ops/op_util.c \
	engine/ops/registry.c \
	engine/ops/binary.c \
	engine/ops/unary.c
