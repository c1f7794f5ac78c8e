/* A bounded multipart/form-data reader that finds the one file part of a buffered request body. */
#ifndef QS_SERVER_MULTIPART_H
#define QS_SERVER_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api_status.h"

#define QS_MULTIPART_BOUNDARY_MAX 70  /* RFC 2046 */
#define QS_MULTIPART_MAX_PARTS 16
#define QS_MULTIPART_MAX_HEADER_BYTES 4096 /* per part */

/* The file part: a view into the body (nothing is copied); the strings are cut at their size. */
typedef struct {
    const uint8_t *data;
    size_t size;
    char name[64];          /* the form field name */
    char filename[128];
    char content_type[96];  /* "" when the part has none */
} qs_multipart_file;

/* Take the boundary parameter out of a Content-Type value such as
 * `multipart/form-data; boundary="abc"`. boundary must hold QS_MULTIPART_BOUNDARY_MAX + 1 bytes.
 * Fails with MALFORMED_MULTIPART when it is missing, empty or too long. */
bool qs_multipart_boundary(const char *content_type, char *boundary, size_t boundary_size,
                           qs_api_error *err);

/* Find the file part: the one part with a filename, else the one named "file" or "image". Other
 * (text) fields are skipped. Fails with MALFORMED_MULTIPART for a missing delimiter, a truncated
 * body, more than QS_MULTIPART_MAX_PARTS parts, an oversized part header, no file part, or more
 * than one. Never reads outside body[0..size). */
bool qs_multipart_find_file(const uint8_t *body, size_t size, const char *boundary,
                            qs_multipart_file *out, qs_api_error *err);

#endif /* QS_SERVER_MULTIPART_H */
