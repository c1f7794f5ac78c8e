# Operator tests (Check): Mod, ScatterND, Einsum on inputs fed at run time; training Dropout.
check_PROGRAMS += tests/test_ops
TESTS += tests/test_ops
tests_test_ops_SOURCES = tests/test_ops.c
tests_test_ops_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_test_ops_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_ops_LDADD = tests/libqstest.la engine/libqsengine.la $(CHECK_LIBS) -lm
