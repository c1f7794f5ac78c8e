# Operators: one file per operator (reference semantics), plus the registry.
engine_libqsengine_la_SOURCES += engine/ops/op.h
