# Tools: quantserve-onnx-test runs ONNX backend test cases (model.onnx + test data) on the engine.
bin_PROGRAMS += tools/quantserve-onnx-test
tools_quantserve_onnx_test_SOURCES = tools/onnx_test.c
tools_quantserve_onnx_test_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
tools_quantserve_onnx_test_LDADD = engine/libqsengine.la $(PROTOBUF_C_LIBS) -lm
