/* multipart/form-data parsing over a complete body: delimiters, part headers, one file part. */
#include "multipart.h"

#include <string.h>
#include <strings.h>

static bool fail(qs_api_error *err, const char *what)
{
    return qs_api_fail(err, QS_API_MALFORMED_MULTIPART, "multipart body: %s", what);
}

/* Copy at most size-1 bytes of [s, s+n) into out, NUL-terminated. */
static void copy_cut(char *out, size_t size, const char *s, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

/* Parameter `key` of a header value like `form-data; name="f"; filename="a.jpg"`. Handles quoted
 * and bare values; the match is case-insensitive on the key. */
static bool header_param(const char *value, size_t len, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i < len) {
        /* Move to the start of the next parameter. */
        while (i < len && value[i] != ';')
            i++;
        if (i >= len)
            return false;
        i++;
        while (i < len && (value[i] == ' ' || value[i] == '\t'))
            i++;
        if (len - i > klen && strncasecmp(value + i, key, klen) == 0 && value[i + klen] == '=') {
            i += klen + 1;
            if (i < len && value[i] == '"') {
                size_t start = ++i;
                while (i < len && value[i] != '"') {
                    if (value[i] == '\\' && i + 1 < len)
                        i++;
                    i++;
                }
                if (i >= len)
                    return false;
                copy_cut(out, size, value + start, i - start);
                return true;
            }
            size_t start = i;
            while (i < len && value[i] != ';' && value[i] != ' ' && value[i] != '\t')
                i++;
            copy_cut(out, size, value + start, i - start);
            return true;
        }
    }
    return false;
}

bool qs_multipart_boundary(const char *content_type, char *boundary, size_t boundary_size,
                           qs_api_error *err)
{
    char tmp[QS_MULTIPART_BOUNDARY_MAX + 2];
    if (!content_type ||
        !header_param(content_type, strlen(content_type), "boundary", tmp, sizeof tmp))
        return fail(err, "the Content-Type has no boundary parameter");
    size_t n = strlen(tmp);
    if (n == 0 || n > QS_MULTIPART_BOUNDARY_MAX || n >= boundary_size)
        return fail(err, "the boundary must be 1..70 characters");
    memcpy(boundary, tmp, n + 1);
    return true;
}

static const uint8_t *find(const uint8_t *hay, size_t hay_len, const void *needle, size_t n)
{
    if (n == 0 || hay_len < n)
        return NULL;
    return memmem(hay, hay_len, needle, n);
}

typedef struct {
    char disposition[512];
    char content_type[96];
    bool has_disposition;
} part_headers;

/* Parse a header block [p, end) made of CRLF-terminated lines (the final empty line excluded). */
static bool parse_headers(const uint8_t *p, const uint8_t *end, part_headers *h, qs_api_error *err)
{
    memset(h, 0, sizeof *h);
    while (p < end) {
        const uint8_t *eol = find(p, (size_t)(end - p), "\r\n", 2);
        const uint8_t *line_end = eol ? eol : end;
        const uint8_t *colon = memchr(p, ':', (size_t)(line_end - p));
        if (!colon)
            return fail(err, "a part header line has no colon");
        size_t name_len = (size_t)(colon - p);
        const uint8_t *v = colon + 1;
        while (v < line_end && (*v == ' ' || *v == '\t'))
            v++;
        size_t vlen = (size_t)(line_end - v);
        if (name_len == 19 && strncasecmp((const char *)p, "Content-Disposition", 19) == 0) {
            copy_cut(h->disposition, sizeof h->disposition, (const char *)v, vlen);
            h->has_disposition = true;
        } else if (name_len == 12 && strncasecmp((const char *)p, "Content-Type", 12) == 0) {
            copy_cut(h->content_type, sizeof h->content_type, (const char *)v, vlen);
        }
        p = eol ? eol + 2 : end;
    }
    if (!h->has_disposition)
        return fail(err, "a part has no Content-Disposition header");
    return true;
}

bool qs_multipart_find_file(const uint8_t *body, size_t size, const char *boundary,
                            qs_multipart_file *out, qs_api_error *err)
{
    /* "\r\n--" + boundary: every delimiter but a first one at the very start of the body. */
    char delim[QS_MULTIPART_BOUNDARY_MAX + 5];
    size_t blen = strlen(boundary);
    if (blen == 0 || blen > QS_MULTIPART_BOUNDARY_MAX)
        return fail(err, "bad boundary");
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, blen);
    size_t dlen = blen + 4;
    memset(out, 0, sizeof *out);

    const uint8_t *end = body + size;
    const uint8_t *p;
    if (size >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0) {
        p = body + dlen - 2;
    } else {
        const uint8_t *d = find(body, size, delim, dlen);
        if (!d)
            return fail(err, "no opening boundary delimiter");
        p = d + dlen;
    }
    size_t files = 0, named = 0, parts = 0;
    qs_multipart_file named_part;
    memset(&named_part, 0, sizeof named_part);
    for (;;) {
        /* After a delimiter: "--" closes the body, else optional padding and CRLF. */
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return fail(err, "truncated or malformed after a boundary delimiter");
        p += 2;
        if (++parts > QS_MULTIPART_MAX_PARTS)
            return fail(err, "too many parts (at most 16)");
        size_t avail = (size_t)(end - p);
        size_t window = avail < QS_MULTIPART_MAX_HEADER_BYTES + 4 ? avail
                                                                 : QS_MULTIPART_MAX_HEADER_BYTES + 4;
        const uint8_t *hdr_end;
        if (window >= 2 && p[0] == '\r' && p[1] == '\n')
            hdr_end = p; /* no headers at all */
        else
            hdr_end = find(p, window, "\r\n\r\n", 4);
        if (!hdr_end)
            return fail(err, avail > QS_MULTIPART_MAX_HEADER_BYTES
                                 ? "part headers are larger than 4096 bytes"
                                 : "truncated part headers");
        part_headers h;
        if (!parse_headers(p, hdr_end, &h, err))
            return false;
        const uint8_t *content = hdr_end + (hdr_end == p ? 2 : 4);
        const uint8_t *next = find(content, (size_t)(end - content), delim, dlen);
        if (!next)
            return fail(err, "truncated: no closing boundary delimiter");
        char name[64] = "", filename[128] = "";
        size_t dl = strlen(h.disposition);
        bool has_name = header_param(h.disposition, dl, "name", name, sizeof name);
        bool has_file = header_param(h.disposition, dl, "filename", filename, sizeof filename);
        if (strncasecmp(h.disposition, "form-data", 9) != 0)
            return fail(err, "a part's Content-Disposition is not form-data");
        if (!has_name)
            return fail(err, "a part's Content-Disposition has no name");
        qs_multipart_file f = {.data = content, .size = (size_t)(next - content)};
        copy_cut(f.name, sizeof f.name, name, strlen(name));
        copy_cut(f.filename, sizeof f.filename, filename, strlen(filename));
        copy_cut(f.content_type, sizeof f.content_type, h.content_type, strlen(h.content_type));
        if (has_file) {
            if (++files == 1)
                *out = f;
        } else if (strcmp(name, "file") == 0 || strcmp(name, "image") == 0) {
            if (++named == 1)
                named_part = f;
        }
        p = next + dlen;
    }
    if (files > 1)
        return fail(err, "more than one file part: send one image per request");
    if (files == 1)
        return true;
    if (named == 1) {
        *out = named_part;
        return true;
    }
    if (named > 1)
        return fail(err, "more than one \"file\"/\"image\" field");
    return fail(err, "no file part (a part with a filename, or a field named \"file\")");
}
