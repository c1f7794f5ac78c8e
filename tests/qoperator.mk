# ---- QOperator lowering tests: tests/test_qoperator ----
check_PROGRAMS += tests/test_qoperator
TESTS += tests/test_qoperator
tests_test_qoperator_SOURCES = tests/test_qoperator.c
tests_test_qoperator_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_test_qoperator_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_qoperator_LDADD = tests/libqstest.la engine/libqsengine.la $(CHECK_LIBS) -lm
# ---- end QOperator lowering tests ----
