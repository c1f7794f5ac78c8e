# server build rules

# ---- image pipeline (decoding + preprocessing): libqsimage.la ----
noinst_LTLIBRARIES += libqsimage.la
libqsimage_la_SOURCES = server/image.c server/image.h server/preprocess.c server/preprocess.h
libqsimage_la_CFLAGS = $(AM_CFLAGS) $(LIBPNG_CFLAGS)
libqsimage_la_LIBADD = $(JPEG_LIBS) $(LIBPNG_LIBS) -lm
# ---- end image pipeline ----
