# Engine core: status, graph, ONNX import, optimization passes, planning, sessions.
engine_libqsengine_la_SOURCES += engine/core/graph.h engine/core/status.c engine/core/graph.c \
	engine/core/onnx_import.h engine/core/onnx_import.c \
	engine/core/optimize.h engine/core/optimize.c \
	engine/core/plan.h engine/core/plan.c \
	engine/core/model.h engine/core/model.c engine/core/session.c
engine_libqsengine_la_SOURCES += engine/core/rewrite.h engine/core/rewrite.c

# Quantization: int8 operators, QDQ lowering, calibration.
engine_libqsengine_la_SOURCES += engine/quant/quant.h engine/quant/registry.c \
	engine/quant/qparams.c engine/quant/qdq_ops.c engine/quant/qconv.c engine/quant/qgemm.c \
	engine/quant/qeltwise.c engine/quant/lower.c engine/quant/observer.c \
	engine/quant/calibrator.c engine/quant/static.c engine/quant/dynamic.c \
	engine/quant/report.c engine/quant/qoperator_ops.c
