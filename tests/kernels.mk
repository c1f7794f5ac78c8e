# ---- kernel tests: tests/test_kernels ----
check_PROGRAMS += tests/test_kernels
TESTS += tests/test_kernels
tests_test_kernels_SOURCES = tests/test_kernels.c
tests_test_kernels_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_kernels_LDADD = engine/libqsengine.la $(CHECK_LIBS)
# ---- end kernel tests ----
