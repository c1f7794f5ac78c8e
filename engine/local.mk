# Engine library: core (import, graph, planning), operators, kernels. Each part lists its files in
# its own local.mk; ISA-specific kernels are separate convenience libraries with their own flags.
noinst_LTLIBRARIES += engine/libqsengine.la
engine_libqsengine_la_SOURCES =
engine_libqsengine_la_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
engine_libqsengine_la_LIBADD = $(PROTOBUF_C_LIBS) -lm -lpthread
quantserveincludedir = $(includedir)/quantserve
quantserveinclude_HEADERS = engine/include/quantserve/engine.h

# ONNX schema: compiled at build time from libonnx-dev's onnx.proto with protoc-c.
ONNX_PB_C = engine/onnx/onnx.pb-c.c engine/onnx/onnx.pb-c.h
BUILT_SOURCES += $(ONNX_PB_C)
CLEANFILES += $(ONNX_PB_C)
nodist_engine_libqsengine_la_SOURCES = $(ONNX_PB_C)
$(ONNX_PB_C): $(ONNX_PROTO)
	@$(MKDIR_P) engine/onnx
	$(AM_V_GEN)$(PROTOC_C) --c_out=engine/onnx -I$(dir $(ONNX_PROTO)) $(ONNX_PROTO)

include engine/core/local.mk
include engine/ops/local.mk
include engine/kernels/local.mk
include engine/kernels/q8.mk
