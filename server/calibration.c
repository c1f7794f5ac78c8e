/* Calibration images: listing a folder or list file, decoding, preprocessing, observing. */
#include "calibration.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

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

bool qs_calibration_run(qs_calibrator *cal, const qs_calibration_set *set,
                        const qs_preprocess_spec *spec, const qs_tensor *input, size_t numel,
                        const qs_image_limits *limits, const _Atomic bool *cancel, size_t *used,
                        size_t *skipped, char *message, size_t message_size)
{
    bool ok = false;
    float *tensor = malloc(numel * sizeof *tensor);
    *used = *skipped = 0;
    if (!tensor) {
        snprintf(message, message_size, "calibration: out of memory");
        return false;
    }
    for (size_t i = 0; i < set->count; i++) {
        if (cancel && atomic_load(cancel)) {
            snprintf(message, message_size, "calibration cancelled: the server is shutting down");
            goto cleanup;
        }
        size_t size = 0;
        uint8_t *bytes = read_image(set->paths[i], &size);
        bool readable = bytes != NULL;
        qs_image image;
        qs_image_error ierr;
        memset(&image, 0, sizeof image);
        memset(&ierr, 0, sizeof ierr);
        qs_image_status st = readable
                                 ? qs_image_decode(bytes, size, limits, spec->color, &image, &ierr)
                                 : QS_IMAGE_CORRUPT;
        free(bytes);
        if (st == QS_IMAGE_OK)
            st = qs_preprocess_run(spec, &image, tensor, numel, NULL, 0, &ierr);
        qs_image_free(&image);
        if (st != QS_IMAGE_OK) {
            QS_WARN("calibration: skipping %s: %s", set->paths[i],
                    readable ? ierr.message : "cannot read the file");
            (*skipped)++;
            continue;
        }
        qs_tensor t = *input;
        t.data = tensor;
        qs_error err;
        qs_error_clear(&err);
        qs_status qst = qs_calibrator_observe(cal, &t, 1, &err);
        if (qst != QS_OK) {
            snprintf(message, message_size, "calibration on %s: %s: %s%s%s", set->paths[i],
                     qs_status_to_string(qst), err.where, err.where[0] ? ": " : "", err.message);
            goto cleanup;
        }
        (*used)++;
    }
    if (*used == 0) {
        snprintf(message, message_size, "calibration: none of the %zu images could be used",
                 set->count);
        goto cleanup;
    }
    ok = true;
cleanup:
    free(tensor);
    return ok;
}
