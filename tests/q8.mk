# ---- int8 kernel tests: tests/test_q8_kernels ----
check_PROGRAMS += tests/test_q8_kernels
TESTS += tests/test_q8_kernels
tests_test_q8_kernels_SOURCES = tests/test_q8_kernels.c
tests_test_q8_kernels_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_q8_kernels_LDADD = engine/libqsengine.la $(CHECK_LIBS) -lm
# The AVX-512 VNNI sources against SIMDe, so that they are checked on CPUs without AVX-512.
check_PROGRAMS += tests/test_q8_kernels_avx512emu
TESTS += tests/test_q8_kernels_avx512emu
tests_test_q8_kernels_avx512emu_SOURCES = tests/test_q8_kernels.c
tests_test_q8_kernels_avx512emu_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -DQS_Q8_TEST_AVX512_EMU -Wno-psabi
tests_test_q8_kernels_avx512emu_LDADD = engine/libqsengine.la $(CHECK_LIBS) -lm
# ---- end int8 kernel tests ----
