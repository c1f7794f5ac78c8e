# Engine core: status, graph, ONNX import, optimization passes, planning, sessions.
engine_libqsengine_la_SOURCES += engine/core/graph.h
engine_libqsengine_la_SOURCES += engine/core/status.c engine/core/graph.c \
	engine/core/onnx_import.h engine/core/onnx_import.c
