/* quantserve-eval: top-1/top-5 of every variant of a configured model on a labelled image set,
 * through the server's own config, registry (so int8 variants are made exactly as when serving)
 * and image pipeline; plus how often the variants agree. */
#include <ctype.h>
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "image.h"
#include "preprocess.h"
#include "qs_config.h"
#include "registry.h"

typedef struct {
    char *path;       /* image file, or NULL for an in-memory idx image */
    uint8_t *pixels;  /* idx: 8-bit gray pixels (owned) */
    uint32_t width, height;
    int32_t label;
} sample;

typedef struct {
    sample *items;
    size_t count, cap;
} sample_set;

static int push(sample_set *s, sample x) {
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        sample *items = realloc(s->items, cap * sizeof(*items));
        if (!items)
            return -1;
        s->items = items;
        s->cap = cap;
    }
    s->items[s->count++] = x;
    return 0;
}

static void set_free(sample_set *s) {
    for (size_t i = 0; i < s->count; i++) {
        free(s->items[i].path);
        free(s->items[i].pixels);
    }
    free(s->items);
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* labels.tsv: filename<TAB>class_index[<TAB>name]; '#' lines are comments. */
static int load_tsv(const char *dir, const char *tsv, sample_set *out) {
    FILE *f = fopen(tsv, "r");
    char line[4096];
    if (!f) {
        fprintf(stderr, "quantserve-eval: cannot open %s\n", tsv);
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        sample s = {join(dir, line), NULL, 0, 0, (int32_t)strtol(tab + 1, NULL, 10)};
        if (!s.path || push(out, s) != 0) {
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One folder per class: the folder name is a label of the model (case-insensitive) or an index. */
static int load_folders(const char *dir, const qs_model_entry *model, sample_set *out) {
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d) {
        fprintf(stderr, "quantserve-eval: cannot open %s\n", dir);
        return -1;
    }
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int32_t label = -1;
        char *end;
        long idx = strtol(e->d_name, &end, 10);
        if (*end == '\0')
            label = (int32_t)idx;
        for (size_t i = 0; label < 0 && i < model->labels.count; i++)
            if (strcasecmp(model->labels.names[i], e->d_name) == 0)
                label = (int32_t)i;
        if (label < 0) {
            fprintf(stderr, "quantserve-eval: folder %s is not a class of the model\n", e->d_name);
            continue;
        }
        char *sub = join(dir, e->d_name);
        DIR *sd = sub ? opendir(sub) : NULL;
        struct dirent *f;
        char **names = NULL;
        size_t n = 0;
        while (sd && (f = readdir(sd))) {
            if (f->d_name[0] == '.')
                continue;
            char **grown = realloc(names, (n + 1) * sizeof(*names));
            if (!grown)
                break;
            names = grown;
            names[n++] = strdup(f->d_name);
        }
        if (sd)
            closedir(sd);
        qsort(names, n, sizeof(*names), cmp_str);
        for (size_t i = 0; i < n; i++) {
            sample s = {join(sub, names[i]), NULL, 0, 0, label};
            free(names[i]);
            if (s.path)
                push(out, s);
        }
        free(names);
        free(sub);
    }
    closedir(d);
    return 0;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* MNIST-style idx files (gzip or plain): images idx3 (magic 2051) and labels idx1 (2049). */
static int load_idx(const char *images, const char *labels, sample_set *out) {
    gzFile fi = gzopen(images, "rb"), fl = gzopen(labels, "rb");
    uint8_t hi[16], hl[8];
    int rc = -1;
    if (!fi || !fl || gzread(fi, hi, 16) != 16 || gzread(fl, hl, 8) != 8 || be32(hi) != 2051 ||
        be32(hl) != 2049 || be32(hi + 4) != be32(hl + 4)) {
        fprintf(stderr, "quantserve-eval: %s / %s are not matching idx image/label files\n",
                images, labels);
        goto done;
    }
    uint32_t n = be32(hi + 4), rows = be32(hi + 8), cols = be32(hi + 12);
    if (rows == 0 || cols == 0 || rows > 4096 || cols > 4096)
        goto done;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t lab;
        sample s = {NULL, malloc((size_t)rows * cols), cols, rows, 0};
        if (!s.pixels || gzread(fi, s.pixels, rows * cols) != (int)(rows * cols) ||
            gzread(fl, &lab, 1) != 1) {
            free(s.pixels);
            goto done;
        }
        s.label = lab;
        if (push(out, s) != 0) {
            free(s.pixels);
            goto done;
        }
    }
    rc = 0;
done:
    if (fi)
        gzclose(fi);
    if (fl)
        gzclose(fl);
    return rc;
}

/* The labelled set: idx files, a labels file, DIR/labels.tsv, or one folder per class. */
static int load_samples(const char *images, const char *labels, const char *idx_images,
                        const char *idx_labels, const qs_model_entry *model, sample_set *set) {
    if (idx_images)
        return load_idx(idx_images, idx_labels, set);
    if (labels)
        return load_tsv(images, labels, set);
    char *tsv = join(images, "labels.tsv");
    int rc = tsv && access(tsv, R_OK) == 0 ? load_tsv(images, tsv, set)
                                           : load_folders(images, model, set);
    free(tsv);
    return rc;
}

static int read_file(const char *path, uint8_t **data, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc(n > 0 ? (size_t)n : 1);
    int ok = *data && n >= 0 && fread(*data, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    *size = (size_t)n;
    return ok ? 0 : -1;
}

/* The 5 best classes of scores, best first. */
static void top5(const float *x, size_t n, size_t *idx, size_t *k) {
    *k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pos = *k < 5 ? (*k)++ : 5;
        while (pos > 0 && x[i] > x[idx[pos - 1]]) {
            if (pos < 5)
                idx[pos] = idx[pos - 1];
            pos--;
        }
        if (pos < 5)
            idx[pos] = i;
    }
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: quantserve-eval --config FILE [--model NAME] DATA [options]\n"
            "DATA is one of:\n"
            "  --images DIR [--labels FILE]  labelled images: FILE (default DIR/labels.tsv) lists\n"
            "                                'filename<TAB>class_index'; without it, one folder\n"
            "                                per class named by label or index\n"
            "  --idx IMAGES LABELS           MNIST-style idx files (.gz or plain)\n"
            "options:\n"
            "  --offset N --limit N          evaluate samples [N, N+limit)\n"
            "  --json                        one JSON object instead of text\n"
            "Every variant of the model is scored (int8 variants are made as the server makes\n"
            "them, calibration included), then how often variants agree on the top-1 class.\n");
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"model", required_argument, 0, 'm'},
        {"images", required_argument, 0, 'i'}, {"labels", required_argument, 0, 'l'},
        {"idx", required_argument, 0, 'x'},    {"offset", required_argument, 0, 'o'},
        {"limit", required_argument, 0, 'n'},  {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *config_path = NULL, *model_name = NULL, *images = NULL, *labels = NULL;
    const char *idx_images = NULL, *idx_labels = NULL;
    long offset = 0, limit = -1;
    int json = 0, c, rc = 1;
    while ((c = getopt_long(argc, argv, "c:m:i:l:x:o:n:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'm': model_name = optarg; break;
        case 'i': images = optarg; break;
        case 'l': labels = optarg; break;
        case 'x':
            idx_images = optarg;
            if (optind >= argc) {
                usage(stderr);
                return 2;
            }
            idx_labels = argv[optind++];
            break;
        case 'o': offset = atol(optarg); break;
        case 'n': limit = atol(optarg); break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!config_path || (!images == !idx_images) || optind != argc || offset < 0) {
        usage(stderr);
        return 2;
    }
    qs_config *config = NULL;
    qs_config_error cerr;
    if (qs_config_load_file(config_path, &config, &cerr) != QS_CONFIG_OK) {
        fprintf(stderr, "quantserve-eval: config %s: %s: %s\n", config_path, cerr.key, cerr.message);
        return 1;
    }
    qs_registry *reg = qs_registry_create(config, 1, qs_config_intra_op_threads(config),
                                          (int64_t)time(NULL));
    sample_set set = {0};
    if (!reg || !qs_registry_start(reg))
        goto done;
    while (!qs_registry_settled(reg))
        usleep(20000);
    qs_model_entry *model = model_name ? qs_registry_find_model(reg, model_name)
                                       : qs_registry_model(reg, 0);
    if (!model) {
        fprintf(stderr, "quantserve-eval: no model %s in %s\n", model_name ? model_name : "",
                config_path);
        goto done;
    }
    if (load_samples(images, labels, idx_images, idx_labels, model, &set) != 0)
        goto done;
    size_t first = (size_t)offset < set.count ? (size_t)offset : set.count;
    size_t last = limit >= 0 && first + (size_t)limit < set.count ? first + (size_t)limit : set.count;
    size_t nv = model->variant_count;
    size_t *top1 = calloc(nv, sizeof(size_t)), *top5n = calloc(nv, sizeof(size_t));
    size_t *agree = calloc(nv * nv, sizeof(size_t)), *pred = calloc(nv, sizeof(size_t));
    float *input = NULL;
    size_t errors = 0, scored = 0;
    if (!top1 || !top5n || !agree || !pred)
        goto done;
    for (size_t i = first; i < last; i++) {
        sample *s = &set.items[i];
        qs_image img = {0};
        qs_image_error ierr;
        uint8_t *data = NULL;
        size_t size;
        if (s->path) {
            if (read_file(s->path, &data, &size) != 0 ||
                qs_image_decode(data, size, NULL, model->spec.color, &img, &ierr) != QS_IMAGE_OK) {
                fprintf(stderr, "quantserve-eval: %s: cannot decode\n", s->path);
                free(data);
                errors++;
                continue;
            }
            free(data);
        } else {
            img.width = s->width;
            img.height = s->height;
            img.channels = 1;
            img.pixels = s->pixels; /* borrowed: not freed below */
        }
        bool any = false;
        for (size_t v = 0; v < nv; v++) {
            qs_variant *var = &model->variants[v];
            if (qs_variant_state(var) != QS_LOAD_READY)
                continue;
            if (!input && !(input = malloc(var->input_numel * sizeof(float))))
                goto done;
            if (qs_preprocess_run(&model->spec, &img, input, var->input_numel, NULL, 0, &ierr) !=
                QS_IMAGE_OK) {
                errors++;
                break;
            }
            qs_tensor in = var->input;
            in.data = input;
            qs_error err;
            qs_error_clear(&err);
            if (qs_session_run(var->sessions[0], &in, 1, &err) != QS_OK) {
                fprintf(stderr, "quantserve-eval: %s: %s\n", var->cfg->name, err.message);
                errors++;
                continue;
            }
            qs_tensor out;
            qs_session_output(var->sessions[0], var->output_index, &out);
            size_t t[5], k;
            top5(out.data, qs_tensor_numel(&out), t, &k);
            pred[v] = k ? t[0] : (size_t)-1;
            top1[v] += k && (int32_t)t[0] == s->label;
            for (size_t j = 0; j < k; j++)
                top5n[v] += (int32_t)t[j] == s->label;
            any = true;
        }
        if (s->path)
            qs_image_free(&img);
        if (!any)
            continue;
        scored++;
        for (size_t a = 0; a < nv; a++)
            for (size_t b = 0; b < nv; b++)
                agree[a * nv + b] += pred[a] == pred[b];
    }
    double n = scored ? (double)scored : 1.0;
    if (json)
        printf("{\"model\":\"%s\",\"samples\":%zu,\"errors\":%zu,\"variants\":[", model->cfg->name,
               scored, errors);
    else
        printf("model %s: %zu samples (%zu errors)\n", model->cfg->name, scored, errors);
    for (size_t v = 0; v < nv; v++) {
        qs_variant *var = &model->variants[v];
        bool ready = qs_variant_state(var) == QS_LOAD_READY;
        if (json)
            printf("%s{\"name\":\"%s\",\"mode\":\"%s\",\"state\":\"%s\",\"top1\":%.4f,\"top5\":%.4f}",
                   v ? "," : "", var->cfg->name, qs_variant_mode_to_string(var->cfg->mode),
                   qs_load_state_to_string(qs_variant_state(var)), (double)top1[v] / n, (double)top5n[v] / n);
        else if (ready)
            printf("  %-12s %-8s top-1 %6.2f%%  top-5 %6.2f%%\n", var->cfg->name,
                   qs_variant_mode_to_string(var->cfg->mode), 100.0 * (double)top1[v] / n,
                   100.0 * (double)top5n[v] / n);
        else
            printf("  %-12s %-8s %s: %s\n", var->cfg->name,
                   qs_variant_mode_to_string(var->cfg->mode),
                   qs_load_state_to_string(qs_variant_state(var)), var->reason);
    }
    if (json)
        printf("],\"agreement\":[");
    else
        printf("top-1 agreement:\n");
    bool first_pair = true;
    for (size_t a = 0; a < nv; a++)
        for (size_t b = a + 1; b < nv; b++) {
            if (qs_variant_state(&model->variants[a]) != QS_LOAD_READY ||
                qs_variant_state(&model->variants[b]) != QS_LOAD_READY)
                continue;
            if (json)
                printf("%s{\"a\":\"%s\",\"b\":\"%s\",\"top1\":%.4f}", first_pair ? "" : ",",
                       model->variants[a].cfg->name, model->variants[b].cfg->name,
                       (double)agree[a * nv + b] / n);
            else
                printf("  %s vs %s: %.2f%%\n", model->variants[a].cfg->name,
                       model->variants[b].cfg->name, 100.0 * (double)agree[a * nv + b] / n);
            first_pair = false;
        }
    if (json)
        printf("]}\n");
    rc = scored ? 0 : 1;
    free(top1);
    free(top5n);
    free(agree);
    free(pred);
    free(input);
done:
    set_free(&set);
    qs_registry_free(reg);
    qs_config_free(config);
    return rc;
}
