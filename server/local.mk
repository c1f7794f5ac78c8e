# server build rules

# ---- image pipeline (decoding + preprocessing): libqsimage.la ----
noinst_LTLIBRARIES += libqsimage.la
libqsimage_la_SOURCES = server/image.c server/image.h server/preprocess.c server/preprocess.h
libqsimage_la_CFLAGS = $(AM_CFLAGS) $(LIBPNG_CFLAGS)
libqsimage_la_LIBADD = $(JPEG_LIBS) $(LIBPNG_LIBS) -lm
# ---- end image pipeline ----

# ---- quantserve daemon: libqsserver.la holds everything but main.c, so tests link the same code ----
noinst_LTLIBRARIES += libqsserver.la
libqsserver_la_SOURCES = \
	server/log.c server/log.h \
	server/api_status.c server/api_status.h \
	server/qs_config.c server/qs_config.h \
	server/stats.c server/stats.h \
	server/multipart.c server/multipart.h \
	server/labels.c server/labels.h \
	server/clock.h \
	server/progress.c server/progress.h \
	server/calibration.c server/calibration.h \
	server/calib_cache.c server/calib_cache.h \
	server/quant_report.c server/quant_report.h server/json_util.h \
	server/registry.c server/registry.h \
	server/inference.c server/inference.h \
	server/workers.c server/workers.h \
	server/request.c server/request.h server/response.c \
	server/routes.c server/routes.h server/handlers.h \
	server/handler_health.c server/handler_models.c server/handler_predict.c \
	server/http.c server/http.h \
	server/app.c server/app.h \
	server/cli.c server/cli.h
libqsserver_la_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS)
QS_SERVER_LIBS = libqsserver.la libqsimage.la engine/libqsengine.la $(MHD_LIBS) $(JANSSON_LIBS) \
	-lpthread -lm
bin_PROGRAMS += quantserve
quantserve_SOURCES = server/main.c
quantserve_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS)
quantserve_LDADD = $(QS_SERVER_LIBS)
EXTRA_DIST += conf/quantserve.json conf/mobilenet_v2.json conf/README.md
# ---- end quantserve daemon ----
