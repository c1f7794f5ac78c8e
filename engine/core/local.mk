# Engine core: status, graph, ONNX import, optimization passes, planning, sessions.
engine_libqsengine_la_SOURCES += engine/core/graph.h
