# ---- server tests: config, stats, HTTP end to end (tests/test_config, test_stats, test_server) ----
check_PROGRAMS += tests/test_config tests/test_stats
TESTS += tests/test_config tests/test_stats
tests_test_config_SOURCES = tests/test_config.c
tests_test_config_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/server
tests_test_config_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_config_LDADD = $(QS_SERVER_LIBS) $(CHECK_LIBS)
tests_test_stats_SOURCES = tests/test_stats.c
tests_test_stats_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/server
tests_test_stats_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_stats_LDADD = $(QS_SERVER_LIBS) $(CHECK_LIBS)
check_PROGRAMS += tests/test_server
TESTS += tests/test_server
tests_test_server_SOURCES = tests/test_server.c tests/http_client.c tests/http_client.h
tests_test_server_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/server -I$(top_srcdir)/tests
tests_test_server_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS) \
	$(LIBPNG_CFLAGS)
tests_test_server_LDADD = tests/libqstest.la $(QS_SERVER_LIBS) $(CHECK_LIBS) $(JPEG_LIBS) \
	$(LIBPNG_LIBS) $(PROTOBUF_C_LIBS) -lz
# ---- end server tests ----

# Memory check of the server tests in one process each (CK_FORK=no), so valgrind sees the
# server threads too: make check-valgrind-server
QS_VALGRIND = valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--error-exitcode=1
check-valgrind-server: quantserve tests/test_config tests/test_stats tests/test_server
	@for t in tests/test_config tests/test_stats tests/test_server; do \
	  echo "valgrind $$t"; \
	  CK_FORK=no QS_TEST_DATA='$(abs_top_srcdir)/tests/data' $(QS_VALGRIND) ./$$t || exit 1; \
	done
.PHONY: check-valgrind-server
