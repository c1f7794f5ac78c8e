/* Image sets: listing a folder or list file, hashing, decoding, preprocessing, feeding. */
#include "calibration.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "clock.h"
#include "log.h"

/* Files bigger than this are not calibration images. */
#define MAX_IMAGE_FILE ((size_t)64 << 20)

static bool is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
                   strcasecmp(dot, ".png") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

static bool push(qs_calibration_set *set, size_t *cap, char *path)
{
    if (!path)
        return false;
    if (set->count == *cap) {
        size_t n = *cap ? *cap * 2 : 64;
        char **p = realloc(set->paths, n * sizeof *p);
        if (!p) {
            free(path);
            return false;
        }
        set->paths = p;
        *cap = n;
    }
    set->paths[set->count++] = path;
    return true;
}

static bool list_dir(const char *dir, qs_calibration_set *set, char *message, size_t size)
{
    DIR *d = opendir(dir);
    size_t cap = 0;
    if (!d) {
        snprintf(message, size, "calibration images %s: %s", dir, strerror(errno));
        return false;
    }
    struct dirent *e;
    bool ok = true;
    while (ok && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && is_image_name(e->d_name))
            ok = push(set, &cap, join(dir, e->d_name));
    closedir(d);
    if (!ok)
        snprintf(message, size, "calibration images %s: out of memory", dir);
    else if (set->count)
        qsort(set->paths, set->count, sizeof *set->paths, cmp_str);
    return ok;
}

static bool list_file(const char *file, qs_calibration_set *set, char *message, size_t size)
{
    FILE *f = fopen(file, "r");
    size_t cap = 0;
    if (!f) {
        snprintf(message, size, "calibration list %s: %s", file, strerror(errno));
        return false;
    }
    char *dir = strdup(file);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    char line[4096];
    bool ok = dir != NULL;
    while (ok && fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\r\n");
        line[n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        ok = push(set, &cap, line[0] == '/' || !slash ? strdup(line) : join(dir, line));
    }
    fclose(f);
    free(dir);
    if (!ok)
        snprintf(message, size, "calibration list %s: out of memory", file);
    return ok;
}

bool qs_calibration_set_load(const char *source, int32_t count, qs_calibration_set *set,
                             char *message, size_t message_size)
{
    struct stat st;
    memset(set, 0, sizeof *set);
    if (stat(source, &st) != 0) {
        snprintf(message, message_size, "calibration images %s: %s", source, strerror(errno));
        return false;
    }
    bool ok = S_ISDIR(st.st_mode) ? list_dir(source, set, message, message_size)
                                  : list_file(source, set, message, message_size);
    if (ok && set->count == 0) {
        snprintf(message, message_size, "calibration images %s: no .jpg, .jpeg or .png image",
                 source);
        ok = false;
    }
    if (!ok) {
        qs_calibration_set_free(set);
        return false;
    }
    set->available = set->count;
    while (count > 0 && set->count > (size_t)count)
        free(set->paths[--set->count]);
    return true;
}

void qs_calibration_set_free(qs_calibration_set *set)
{
    for (size_t i = 0; set->paths && i < set->count; i++)
        free(set->paths[i]);
    free(set->paths);
    memset(set, 0, sizeof *set);
}

static uint8_t *read_image(const char *path, size_t *size)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_IMAGE_FILE)
        return NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (buf && fread(buf, 1, n, f) != n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = n;
    return buf;
}

uint64_t qs_calibration_set_hash(const qs_calibration_set *set, uint64_t seed)
{
    uint64_t h = qs_hash_bytes(seed, "images", 6);
    for (size_t i = 0; i < set->count; i++) {
        size_t size = 0;
        uint8_t *bytes = read_image(set->paths[i], &size);
        uint64_t n = bytes ? (uint64_t)size : UINT64_MAX;
        h = qs_hash_bytes(h, &n, sizeof n);
        if (bytes)
            h = qs_hash_bytes(h, bytes, size);
        free(bytes);
    }
    return h;
}

/* Progress lines while feeding come at most this often. */
#define LOG_INTERVAL_NS UINT64_C(2000000000)

static void log_progress(const qs_image_feed_options *o, uint64_t now)
{
    qs_progress_view pv;
    if (!o->progress)
        return;
    qs_progress_get(o->progress, now, &pv);
    if (pv.eta_s >= 0.0)
        QS_INFO("%s: %llu/%llu images (%.0f%%), %.1f images/s, ETA %.0f s", o->label,
                (unsigned long long)pv.done, (unsigned long long)pv.total, pv.percent,
                pv.images_per_s, pv.eta_s);
}

bool qs_image_set_feed(const qs_calibration_set *set, const qs_image_feed_options *o,
                       qs_image_feed_fn feed, void *ctx, size_t *used, size_t *skipped,
                       char *message, size_t message_size)
{
    bool ok = false;
    float *tensor = malloc(o->numel * sizeof *tensor);
    uint64_t last_log = qs_clock_ns();
    *used = *skipped = 0;
    if (o->progress)
        qs_progress_begin(o->progress, set->count, last_log);
    if (!tensor) {
        snprintf(message, message_size, "%s: out of memory", o->what);
        goto cleanup;
    }
    for (size_t i = 0; i < set->count; i++) {
        if (o->cancel && atomic_load(o->cancel)) {
            snprintf(message, message_size, "%s cancelled: the server is shutting down",
                     o->what);
            goto cleanup;
        }
        size_t size = 0;
        uint8_t *bytes = read_image(set->paths[i], &size);
        bool readable = bytes != NULL;
        qs_image image;
        qs_image_error ierr;
        memset(&image, 0, sizeof image);
        memset(&ierr, 0, sizeof ierr);
        qs_image_status st = readable ? qs_image_decode(bytes, size, o->limits, o->spec->color,
                                                        &image, &ierr)
                                      : QS_IMAGE_CORRUPT;
        free(bytes);
        if (st == QS_IMAGE_OK)
            st = qs_preprocess_run(o->spec, &image, tensor, o->numel, NULL, 0, &ierr);
        qs_image_free(&image);
        if (st != QS_IMAGE_OK) {
            QS_WARN("%s: skipping %s: %s", o->label, set->paths[i],
                    readable ? ierr.message : "cannot read the file");
            (*skipped)++;
        } else {
            qs_tensor t = *o->input;
            t.data = tensor;
            qs_error err;
            qs_error_clear(&err);
            qs_status qst = feed(ctx, &t, &err);
            if (qst != QS_OK) {
                snprintf(message, message_size, "%s on %s: %s: %s%s%s", o->what, set->paths[i],
                         qs_status_to_string(qst), err.where, err.where[0] ? ": " : "",
                         err.message);
                goto cleanup;
            }
            (*used)++;
        }
        if (o->progress)
            qs_progress_advance(o->progress);
        uint64_t now = qs_clock_ns();
        if (now - last_log >= LOG_INTERVAL_NS && i + 1 < set->count) {
            log_progress(o, now);
            last_log = now;
        }
    }
    if (*used == 0) {
        snprintf(message, message_size, "%s: none of the %zu images could be used", o->what,
                 set->count);
        goto cleanup;
    }
    ok = true;
cleanup:
    free(tensor);
    if (o->progress)
        qs_progress_end(o->progress, qs_clock_ns());
    return ok;
}
