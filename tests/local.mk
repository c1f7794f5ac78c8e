# tests build rules

# ---- shared test environment (used by every test program; keep additions here) ----
AM_TESTS_ENVIRONMENT = QS_TEST_DATA='$(abs_top_srcdir)/tests/data' QS_SHARED_DATA='$(abs_top_srcdir)/../shared/data'; export QS_TEST_DATA QS_SHARED_DATA;
# make check never writes a calibration cache into $HOME: programs that use the default cache
# folder ($XDG_CACHE_HOME/quantserve; quantserve-eval in tests/eval_fashion.sh) get one in the
# build tree instead. test_server sets its own cache.dir.
AM_TESTS_ENVIRONMENT += XDG_CACHE_HOME='$(abs_top_builddir)/tests/cache'; export XDG_CACHE_HOME;
clean-local:
	-rm -rf tests/cache
# ---- end shared test environment ----

# ---- image pipeline tests: tests/test_image ----
check_PROGRAMS += tests/test_image
TESTS += tests/test_image
tests_test_image_SOURCES = tests/test_image.c
tests_test_image_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/server
tests_test_image_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_image_LDADD = libqsimage.la $(CHECK_LIBS) -lz
# allocation-failure injection (see test_alloc_failures)
tests_test_image_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=malloc
# a driver for the hand-run comparison with Pillow (tests/compare_preprocess_pillow.py); built, not run
check_PROGRAMS += tests/qs_preprocess_dump
tests_qs_preprocess_dump_SOURCES = tests/qs_preprocess_dump.c
tests_qs_preprocess_dump_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/server
tests_qs_preprocess_dump_LDADD = libqsimage.la
# golden data: the whole directory (inputs, expected pixels and tensors, manifest.txt)
EXTRA_DIST += tests/gen_image_golden.py tests/compare_preprocess_pillow.py tests/data/image
# ---- end image pipeline tests ----
include tests/kernels.mk
include tests/engine.mk
include tests/ops.mk
include tests/server.mk
include tests/onnx.mk
include tests/q8.mk
include tests/qoperator.mk
