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
	server/multipart.c server/multipart.h
libqsserver_la_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS)
QS_SERVER_LIBS = libqsserver.la libqsimage.la engine/libqsengine.la $(MHD_LIBS) $(JANSSON_LIBS) \
	-lpthread -lm
EXTRA_DIST += conf/quantserve.json conf/mobilenet_v2.json
# ---- end quantserve daemon ----
