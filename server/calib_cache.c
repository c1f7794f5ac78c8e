/* Calibration cache: keys, file names, the directory, and writing with stale entries removed. */
#include "calib_cache.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

uint64_t qs_cache_hash_preprocess(uint64_t seed, const qs_preprocess_spec *spec)
{
    char text[400];
    /* As text with hex floats: exact, and independent of struct padding. */
    int n = snprintf(text, sizeof text,
                     "color %d order %d resize %d %u %u %u crop %u %u interp %d scale %a "
                     "mean %a %a %a std %a %a %a layout %d",
                     (int)spec->color, (int)spec->order, (int)spec->resize, spec->resize_size,
                     spec->resize_width, spec->resize_height, spec->crop_width,
                     spec->crop_height, (int)spec->interp, (double)spec->scale,
                     (double)spec->mean[0], (double)spec->mean[1], (double)spec->mean[2],
                     (double)spec->std[0], (double)spec->std[1], (double)spec->std[2],
                     (int)spec->layout);
    return qs_hash_bytes(seed, text, n > 0 ? (size_t)n : 0);
}

bool qs_cache_hash_file(const char *path, uint64_t *h)
{
    uint8_t buf[1 << 16];
    size_t n;
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        *h = qs_hash_bytes(*h, buf, n);
    bool ok = !ferror(f);
    fclose(f);
    return ok;
}

static uint64_t build_id;
static pthread_once_t build_id_once = PTHREAD_ONCE_INIT;

static void compute_build_id(void)
{
    uint64_t h = qs_hash_bytes(0, qs_engine_version(), strlen(qs_engine_version()));
    uint64_t exe = h;
    build_id = qs_cache_hash_file("/proc/self/exe", &exe) ? exe : h;
}

uint64_t qs_cache_build_id(void)
{
    pthread_once(&build_id_once, compute_build_id);
    return build_id;
}

uint64_t qs_calib_cache_key(const void *onnx, size_t size, const qs_preprocess_spec *spec,
                            const qs_calibration_set *set, double averaging_constant)
{
    char text[128];
    int n = snprintf(text, sizeof text, "calibration; build %016llx; isa %s; ema %a",
                     (unsigned long long)qs_cache_build_id(), qs_isa_name(qs_engine_isa()),
                     averaging_constant);
    uint64_t h = qs_hash_bytes(0, onnx, size);
    h = qs_hash_bytes(h, text, n > 0 ? (size_t)n : 0);
    h = qs_cache_hash_preprocess(h, spec);
    return qs_calibration_set_hash(set, h);
}

char *qs_calib_cache_dir(const qs_config *config)
{
    char buf[4096];
    const char *base;
    if (!config->cache.enabled)
        return NULL;
    if (config->cache.dir)
        return strdup(config->cache.dir);
    if ((base = getenv("XDG_CACHE_HOME")) && base[0] == '/')
        snprintf(buf, sizeof buf, "%s/quantserve", base);
    else if ((base = getenv("HOME")) && base[0] == '/')
        snprintf(buf, sizeof buf, "%s/.cache/quantserve", base);
    else
        return NULL;
    return strdup(buf);
}

bool qs_calib_cache_path(const char *dir, const char *model, const char *variant, uint64_t key,
                         const char *suffix, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s@%s@%016llx%s", dir, model, variant,
                     (unsigned long long)key, suffix);
    return n > 0 && (size_t)n < size;
}

bool qs_cache_make_dir(const char *dir, char *message, size_t message_size)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path) {
        snprintf(message, message_size, "cache directory name too long");
        return false;
    }
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            snprintf(message, message_size, "cannot create %s: %s", path, strerror(errno));
            return false;
        }
        path[i] = c;
    }
    return true;
}

void qs_cache_remove_stale(const char *dir, const char *model, const char *variant,
                           const char *suffix, const char *keep)
{
    char prefix[160], path[4096];
    snprintf(prefix, sizeof prefix, "%s@%s@", model, variant);
    size_t plen = strlen(prefix), slen = strlen(suffix);
    const char *keep_name = strrchr(keep, '/');
    keep_name = keep_name ? keep_name + 1 : keep;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= plen + slen || strncmp(e->d_name, prefix, plen) != 0 ||
            strcmp(e->d_name + len - slen, suffix) != 0 || strcmp(e->d_name, keep_name) == 0)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            remove(path);
    }
    closedir(d);
}

bool qs_calib_cache_store(const qs_calibrator *cal, const char *dir, const char *model,
                          const char *variant, const char *path, char *message,
                          size_t message_size)
{
    if (!qs_cache_make_dir(dir, message, message_size))
        return false;
    qs_error err;
    qs_error_clear(&err);
    qs_status st = qs_calibrator_save(cal, path, &err);
    if (st != QS_OK) {
        snprintf(message, message_size, "%s: %s", err.where[0] ? err.where : path,
                 err.message[0] ? err.message : qs_status_to_string(st));
        return false;
    }
    qs_cache_remove_stale(dir, model, variant, QS_CACHE_CALIBRATION, path);
    return true;
}
