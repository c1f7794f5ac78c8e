# Engine tests (Check) and the test helpers they share.
noinst_LTLIBRARIES += tests/libqstest.la
tests_libqstest_la_SOURCES = tests/helpers/npy.c tests/helpers/npy.h \
	tests/helpers/onnx_builder.c tests/helpers/onnx_builder.h
tests_libqstest_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_libqstest_la_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS) -Wno-conversion

check_PROGRAMS += tests/test_engine
TESTS += tests/test_engine
tests_test_engine_SOURCES = tests/test_engine.c
tests_test_engine_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_test_engine_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_engine_LDADD = tests/libqstest.la engine/libqsengine.la $(CHECK_LIBS) -lm

check_PROGRAMS += tests/test_quant
TESTS += tests/test_quant
tests_test_quant_SOURCES = tests/test_quant.c
tests_test_quant_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_test_quant_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -Wno-double-promotion
tests_test_quant_LDADD = tests/libqstest.la engine/libqsengine.la $(CHECK_LIBS) -lm

check_PROGRAMS += tests/test_external_data
TESTS += tests/test_external_data
tests_test_external_data_SOURCES = tests/test_external_data.c
tests_test_external_data_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_test_external_data_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_external_data_LDADD = tests/libqstest.la engine/libqsengine.la $(CHECK_LIBS) -lm
