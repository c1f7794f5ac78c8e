# quantserve-eval: accuracy of a configured model's variants on a labelled image set.
bin_PROGRAMS += tools/quantserve-eval
tools_quantserve_eval_SOURCES = tools/eval.c
tools_quantserve_eval_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/server
tools_quantserve_eval_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS)
tools_quantserve_eval_LDADD = $(QS_SERVER_LIBS) -lz

# The bundled model's accuracy on a Fashion-MNIST test subset (skips without the Debian dataset).
TESTS += tests/eval_fashion.sh
EXTRA_DIST += tests/eval_fashion.sh
