# ---- kernel tests: tests/test_kernels ----
check_PROGRAMS += tests/test_kernels
TESTS += tests/test_kernels
tests_test_kernels_SOURCES = tests/test_kernels.c
tests_test_kernels_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_kernels_LDADD = engine/libqsengine.la $(CHECK_LIBS)
# The AVX-512 kernels' sources built against SIMDe (skipped, exit 77, without libsimde-dev).
check_PROGRAMS += tests/test_kernels_avx512emu
TESTS += tests/test_kernels_avx512emu
tests_test_kernels_avx512emu_SOURCES = tests/test_kernels.c
tests_test_kernels_avx512emu_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -DQS_TEST_AVX512_EMU -Wno-psabi
tests_test_kernels_avx512emu_LDADD = engine/libqsengine.la $(CHECK_LIBS)
# ---- end kernel tests ----
