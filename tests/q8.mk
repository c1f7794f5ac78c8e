# ---- int8 kernel tests: tests/test_q8_kernels ----
check_PROGRAMS += tests/test_q8_kernels
TESTS += tests/test_q8_kernels
tests_test_q8_kernels_SOURCES = tests/test_q8_kernels.c
tests_test_q8_kernels_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_q8_kernels_LDADD = engine/libqsengine.la $(CHECK_LIBS) -lm
# ---- end int8 kernel tests ----
