/* quantserve-run: run an ONNX model on .npy inputs through the engine and write its outputs as .npy. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quantserve/engine.h"

#define RUN_EXIT_FAIL 1  /* engine, I/O or output failure */
#define RUN_EXIT_USAGE 2 /* bad arguments or unusable input files */
#define RUN_MAX_INPUTS 64
#define RUN_MAX_ARGMAX_ROWS 64

static void usage(FILE *f) {
    fputs(
        "usage: quantserve-run MODEL.onnx --input IN.npy [--input2 IN2.npy ...] [--output OUT.npy]\n"
        "                      [--all-outputs] [--threads N] [--optimize all|none]\n"
        "                      [--variant fp32|dynamic|qdq] [--runs N]\n"
        "\n"
        "Runs MODEL on .npy inputs with the quantserve engine, writes outputs as .npy and prints one\n"
        "JSON line on stdout.\n"
        "  --input FILE        binds the next unbound model input (repeatable); NAME=FILE binds by\n"
        "                      input name; --inputK FILE binds the K-th input (1-based)\n"
        "                      .npy versions 1-3, little-endian, C order. Arrays whose dtype differs\n"
        "                      from the model input's are converted (with a note on stderr).\n"
        "  --output OUT.npy    write the first output there\n"
        "  --all-outputs       write every output as OUT_0.npy, OUT_1.npy, ... instead\n"
        "  --threads N         intra-op threads (default 1)\n"
        "  --optimize LEVEL    all (default: fusion, NHWC, packed SIMD kernels) or none (reference\n"
        "                      kernels only, for debugging)\n"
        "  --variant KIND      fp32 (default), dynamic (int8 weights, per-run activation ranges) or\n"
        "                      qdq (a pre-quantized QDQ model run with int8 kernels)\n"
        "  --runs N            run N times (default 1); run_ms is the first (cold) run, median_ms\n"
        "                      and min_ms cover runs 2..N\n"
        "stdout: {\"runtime\":\"quantserve\",\"version\":...,\"model\":...,\"load_ms\":...,\"run_ms\":...,\n"
        "         \"inputs\":[{\"name\",\"file\",\"shape\",\"dtype\"}],\n"
        "         \"outputs\":[{\"name\",\"shape\",\"dtype\",\"file\",\"argmax\":[per row]}]}\n"
        "  (argmax over the last axis, per row, for float outputs with at most 64 rows)\n"
        "exit status: 0 success, 1 load/run/write failure (the engine's error on stderr),\n"
        "             2 bad arguments or unusable input files\n",
        f);
}

static void die_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("quantserve-run: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(RUN_EXIT_USAGE);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- .npy ---- */

typedef struct {
    const char *descr; /* without the byte-order character */
    qs_dtype dtype;
} npy_type;

static const npy_type npy_types[] = {
    {"f4", QS_DTYPE_FLOAT32}, {"f8", QS_DTYPE_FLOAT64}, {"f2", QS_DTYPE_FLOAT16},
    {"i1", QS_DTYPE_INT8},    {"u1", QS_DTYPE_UINT8},   {"i2", QS_DTYPE_INT16},
    {"u2", QS_DTYPE_UINT16},  {"i4", QS_DTYPE_INT32},   {"u4", QS_DTYPE_UINT32},
    {"i8", QS_DTYPE_INT64},   {"u8", QS_DTYPE_UINT64},  {"b1", QS_DTYPE_BOOL},
};

static const char *npy_descr_of(qs_dtype dtype) {
    for (size_t i = 0; i < sizeof(npy_types) / sizeof(npy_types[0]); i++)
        if (npy_types[i].dtype == dtype)
            return npy_types[i].descr;
    return NULL;
}

/* An array read from a .npy file; owns data. */
typedef struct {
    qs_dtype dtype;
    int32_t rank;
    int64_t dims[QS_MAX_RANK];
    size_t numel;
    void *data;
} npy_array;

static int set_msg(char *msg, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    return -1;
}

/* The value of 'key' in the header dict, NULL if absent. */
static const char *npy_header_value(const char *header, const char *key) {
    size_t klen = strlen(key);
    for (const char *p = header; (p = strstr(p, key)) != NULL; p += klen) {
        if (p == header || (p[-1] != '\'' && p[-1] != '"') || p[klen] != p[-1])
            continue;
        const char *q = p + klen + 1;
        while (*q == ' ')
            q++;
        if (*q != ':')
            continue;
        q++;
        while (*q == ' ')
            q++;
        return q;
    }
    return NULL;
}

static int npy_parse_header(const char *header, npy_array *a, char *msg, size_t msg_size) {
    const char *v = npy_header_value(header, "descr");
    if (!v || (*v != '\'' && *v != '"'))
        return set_msg(msg, msg_size,
                       "no 'descr' string in the header (structured arrays are not supported)");
    char quote = *v++;
    const char *end = strchr(v, quote);
    if (!end || end - v < 2 || end - v > 8)
        return set_msg(msg, msg_size, "unsupported dtype descr in the header");
    char descr[9];
    memcpy(descr, v, (size_t)(end - v));
    descr[end - v] = '\0';
    char order = descr[0];
    const char *kind = descr + 1;
    if (order != '<' && order != '|' && order != '>' && order != '=')
        return set_msg(msg, msg_size, "unsupported dtype '%s'", descr);
    a->dtype = QS_DTYPE_UNDEFINED;
    for (size_t i = 0; i < sizeof(npy_types) / sizeof(npy_types[0]); i++)
        if (strcmp(kind, npy_types[i].descr) == 0)
            a->dtype = npy_types[i].dtype;
    if (a->dtype == QS_DTYPE_UNDEFINED)
        return set_msg(msg, msg_size,
                       "unsupported dtype '%s' (numeric types only: f2/f4/f8, i1-i8, u1-u8, b1)",
                       descr);
    if (order == '>' && qs_dtype_size(a->dtype) > 1)
        return set_msg(msg, msg_size,
                       "big-endian dtype '%s' is not supported; save it as little-endian "
                       "(numpy: a.astype(a.dtype.newbyteorder('<')))",
                       descr);

    v = npy_header_value(header, "fortran_order");
    if (!v)
        return set_msg(msg, msg_size, "no 'fortran_order' in the header");
    if (strncmp(v, "True", 4) == 0)
        return set_msg(msg, msg_size,
                       "Fortran-ordered arrays are not supported; save a C-ordered array "
                       "(numpy: np.ascontiguousarray(a))");
    if (strncmp(v, "False", 5) != 0)
        return set_msg(msg, msg_size, "bad 'fortran_order' value in the header");

    v = npy_header_value(header, "shape");
    if (!v || *v != '(')
        return set_msg(msg, msg_size, "no 'shape' tuple in the header");
    v++;
    a->rank = 0;
    a->numel = 1;
    size_t limit = SIZE_MAX / qs_dtype_size(a->dtype);
    for (;;) {
        while (*v == ' ' || *v == ',')
            v++;
        if (*v == ')')
            break;
        if (*v < '0' || *v > '9')
            return set_msg(msg, msg_size, "bad 'shape' tuple in the header");
        if (a->rank == QS_MAX_RANK)
            return set_msg(msg, msg_size, "rank above %d is not supported", QS_MAX_RANK);
        char *next;
        errno = 0;
        unsigned long long d = strtoull(v, &next, 10);
        if (errno || d > (unsigned long long)INT64_MAX)
            return set_msg(msg, msg_size, "dimension out of range in the header");
        a->dims[a->rank++] = (int64_t)d;
        if (d != 0 && a->numel > limit / d)
            return set_msg(msg, msg_size, "array too large");
        a->numel *= (size_t)d;
        v = next;
        while (*v == ' ')
            v++;
        if (*v != ',' && *v != ')')
            return set_msg(msg, msg_size, "bad 'shape' tuple in the header");
    }
    return 0;
}

/* Read a whole .npy file. On failure returns -1 with a reason in msg. */
static int npy_read(const char *path, npy_array *a, char *msg, size_t msg_size) {
    int rc = -1;
    char *header = NULL;
    memset(a, 0, sizeof(*a));
    FILE *f = fopen(path, "rb");
    if (!f)
        return set_msg(msg, msg_size, "cannot open: %s", strerror(errno));
    unsigned char pre[12];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        set_msg(msg, msg_size, "not a .npy file (no \\x93NUMPY magic)");
        goto cleanup;
    }
    unsigned major = pre[6];
    size_t hlen;
    if (major == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else if (major == 2 || major == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            set_msg(msg, msg_size, "truncated header");
            goto cleanup;
        }
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        set_msg(msg, msg_size, ".npy format version %u is not supported (1-3 are)", major);
        goto cleanup;
    }
    if (hlen > (1u << 24)) {
        set_msg(msg, msg_size, "header of %zu bytes is implausibly large", hlen);
        goto cleanup;
    }
    header = malloc(hlen + 1);
    if (!header) {
        set_msg(msg, msg_size, "out of memory");
        goto cleanup;
    }
    if (fread(header, 1, hlen, f) != hlen) {
        set_msg(msg, msg_size, "truncated header");
        goto cleanup;
    }
    header[hlen] = '\0';
    if (npy_parse_header(header, a, msg, msg_size) != 0)
        goto cleanup;
    size_t bytes = a->numel * qs_dtype_size(a->dtype);
    a->data = malloc(bytes ? bytes : 1);
    if (!a->data) {
        set_msg(msg, msg_size, "out of memory for %zu bytes", bytes);
        goto cleanup;
    }
    if (fread(a->data, 1, bytes, f) != bytes) {
        set_msg(msg, msg_size, "truncated data: the header promises %zu bytes", bytes);
        goto cleanup;
    }
    if (fgetc(f) != EOF) {
        set_msg(msg, msg_size, "trailing bytes after the %zu bytes of data", bytes);
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (rc != 0) {
        free(a->data);
        a->data = NULL;
    }
    free(header);
    fclose(f);
    return rc;
}

/* Write a tensor as a version 1.0 .npy file (2.0 if the header needs it). */
static int npy_write(const char *path, const qs_tensor *t, char *msg, size_t msg_size) {
    const char *kind = npy_descr_of(t->dtype);
    if (!kind)
        return set_msg(msg, msg_size, "dtype %s has no .npy equivalent", qs_dtype_name(t->dtype));
    char dict[64 + QS_MAX_RANK * 22];
    int n = snprintf(dict, sizeof(dict), "{'descr': '%c%s', 'fortran_order': False, 'shape': (",
                     qs_dtype_size(t->dtype) == 1 ? '|' : '<', kind);
    for (int32_t d = 0; d < t->rank; d++)
        n += snprintf(dict + n, sizeof(dict) - (size_t)n, "%lld%s", (long long)t->dims[d],
                      t->rank == 1 ? "," : d + 1 < t->rank ? ", " : "");
    n += snprintf(dict + n, sizeof(dict) - (size_t)n, "), }");
    /* magic (6) + version (2) + length (2) + dict + padding + '\n' is a multiple of 64 */
    size_t total = ((10 + (size_t)n + 1 + 63) / 64) * 64;
    size_t hlen = total - 10;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                             (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    FILE *f = fopen(path, "wb");
    if (!f)
        return set_msg(msg, msg_size, "cannot create: %s", strerror(errno));
    size_t bytes = qs_tensor_numel(t) * qs_dtype_size(t->dtype);
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)n, f) == (size_t)n;
    for (size_t i = (size_t)n; ok && i + 1 < hlen; i++)
        ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && (bytes == 0 || fwrite(t->data, 1, bytes, f) == bytes);
    if (fclose(f) != 0)
        ok = 0;
    if (!ok)
        return set_msg(msg, msg_size, "write failed: %s", strerror(errno));
    return 0;
}

/* ---- dtype conversion (through double; int64 values beyond 2^53 lose precision) ---- */

static int convertible(qs_dtype d) {
    return npy_descr_of(d) != NULL && d != QS_DTYPE_FLOAT16;
}

static double elem_get(qs_dtype d, const void *p, size_t i) {
    switch (d) {
    case QS_DTYPE_FLOAT32: return (double)((const float *)p)[i];
    case QS_DTYPE_FLOAT64: return ((const double *)p)[i];
    case QS_DTYPE_INT8: return ((const int8_t *)p)[i];
    case QS_DTYPE_UINT8: return ((const uint8_t *)p)[i];
    case QS_DTYPE_BOOL: return ((const uint8_t *)p)[i] != 0;
    case QS_DTYPE_INT16: return ((const int16_t *)p)[i];
    case QS_DTYPE_UINT16: return ((const uint16_t *)p)[i];
    case QS_DTYPE_INT32: return ((const int32_t *)p)[i];
    case QS_DTYPE_UINT32: return ((const uint32_t *)p)[i];
    case QS_DTYPE_INT64: return (double)((const int64_t *)p)[i];
    case QS_DTYPE_UINT64: return (double)((const uint64_t *)p)[i];
    default: return 0.0;
    }
}

/* Clamp v into [lo, hi] (NaN -> 0) so the integer conversions below are defined. */
static double clamp(double v, double lo, double hi) {
    return v != v ? 0.0 : v < lo ? lo : v > hi ? hi : v;
}

static void elem_set(qs_dtype d, void *p, size_t i, double v) {
    switch (d) {
    case QS_DTYPE_FLOAT32: ((float *)p)[i] = (float)v; break;
    case QS_DTYPE_FLOAT64: ((double *)p)[i] = v; break;
    case QS_DTYPE_INT8: ((int8_t *)p)[i] = (int8_t)clamp(v, -128.0, 127.0); break;
    case QS_DTYPE_UINT8: ((uint8_t *)p)[i] = (uint8_t)clamp(v, 0.0, 255.0); break;
    case QS_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0.0; break;
    case QS_DTYPE_INT16: ((int16_t *)p)[i] = (int16_t)clamp(v, -32768.0, 32767.0); break;
    case QS_DTYPE_UINT16: ((uint16_t *)p)[i] = (uint16_t)clamp(v, 0.0, 65535.0); break;
    case QS_DTYPE_INT32: ((int32_t *)p)[i] = (int32_t)clamp(v, -2147483648.0, 2147483647.0); break;
    case QS_DTYPE_UINT32: ((uint32_t *)p)[i] = (uint32_t)clamp(v, 0.0, 4294967295.0); break;
    /* the bounds are the largest doubles that still fit */
    case QS_DTYPE_INT64: ((int64_t *)p)[i] = (int64_t)clamp(v, -0x1p63, 0x1p63 - 1024.0); break;
    case QS_DTYPE_UINT64: ((uint64_t *)p)[i] = (uint64_t)clamp(v, 0.0, 0x1p64 - 2048.0); break;
    default: break;
    }
}

/* Convert a in place to dtype `to`. Returns -1 if either type cannot be converted. */
static int npy_convert(npy_array *a, qs_dtype to) {
    if (!convertible(a->dtype) || !convertible(to))
        return -1;
    void *out = malloc(a->numel ? a->numel * qs_dtype_size(to) : 1);
    if (!out)
        return -1;
    for (size_t i = 0; i < a->numel; i++)
        elem_set(to, out, i, elem_get(a->dtype, a->data, i));
    free(a->data);
    a->data = out;
    a->dtype = to;
    return 0;
}

/* ---- JSON output ---- */

static void json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void json_shape(int32_t rank, const int64_t *dims) {
    putchar('[');
    for (int32_t d = 0; d < rank; d++)
        printf("%s%lld", d ? "," : "", (long long)dims[d]);
    putchar(']');
}

/* Per-row argmax over the last axis of a float output with few rows. */
static void json_argmax(const qs_tensor *t) {
    if ((t->dtype != QS_DTYPE_FLOAT32 && t->dtype != QS_DTYPE_FLOAT64) || t->rank < 1)
        return;
    size_t numel = qs_tensor_numel(t);
    size_t cols = (size_t)t->dims[t->rank - 1];
    if (numel == 0 || cols == 0 || numel / cols > RUN_MAX_ARGMAX_ROWS)
        return;
    printf(",\"argmax\":[");
    for (size_t r = 0; r < numel / cols; r++) {
        size_t best = 0;
        double best_v = elem_get(t->dtype, t->data, r * cols);
        for (size_t c = 1; c < cols; c++) {
            double v = elem_get(t->dtype, t->data, r * cols + c);
            if (v > best_v) {
                best_v = v;
                best = c;
            }
        }
        printf("%s%zu", r ? "," : "", best);
    }
    putchar(']');
}

/* ---- arguments ---- */

typedef struct {
    int slot; /* 0-based model input, -1: next unbound, -2: by name (resolved after load) */
    const char *value;
} input_arg;

typedef struct {
    const char *model;
    input_arg inputs[RUN_MAX_INPUTS];
    int n_inputs;
    const char *output;
    int all_outputs;
    int threads;
    int runs;
    qs_optimize_level optimize;
    qs_variant_kind variant;
} run_args;

static int parse_int(const char *opt, const char *s, int lo, int hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        die_usage("%s expects an integer in %d..%d, got '%s'", opt, lo, hi, s);
    return (int)v;
}

static void parse_args(int argc, char **argv, run_args *a) {
    memset(a, 0, sizeof(*a));
    a->threads = 1;
    a->runs = 1;
    a->optimize = QS_OPTIMIZE_ALL;
    a->variant = QS_VARIANT_FP32;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strncmp(arg, "--", 2) != 0) {
            if (a->model)
                die_usage("unexpected argument '%s' (the model is '%s')", arg, a->model);
            a->model = arg;
            continue;
        }
        char name[64];
        const char *val = strchr(arg, '=');
        size_t nlen = val ? (size_t)(val - arg) : strlen(arg);
        if (nlen >= sizeof(name))
            die_usage("unknown option '%s'", arg);
        memcpy(name, arg, nlen);
        name[nlen] = '\0';
        if (val)
            val++;
        if (strcmp(name, "--all-outputs") == 0) {
            if (val)
                die_usage("--all-outputs takes no value");
            a->all_outputs = 1;
            continue;
        }
        int is_input = strncmp(name, "--input", 7) == 0;
        if (!is_input && strcmp(name, "--output") != 0 && strcmp(name, "--threads") != 0 &&
            strcmp(name, "--optimize") != 0 && strcmp(name, "--variant") != 0 &&
            strcmp(name, "--runs") != 0)
            die_usage("unknown option '%s' (see --help)", name);
        if (!val) {
            if (i + 1 >= argc)
                die_usage("%s needs a value", name);
            val = argv[++i];
        }
        if (is_input) {
            if (a->n_inputs == RUN_MAX_INPUTS)
                die_usage("more than %d --input options", RUN_MAX_INPUTS);
            input_arg *in = &a->inputs[a->n_inputs++];
            in->value = val;
            in->slot = -1;
            if (name[7] != '\0')
                in->slot = parse_int(name, name + 7, 1, RUN_MAX_INPUTS) - 1;
        } else if (strcmp(name, "--output") == 0) {
            a->output = val;
        } else if (strcmp(name, "--threads") == 0) {
            a->threads = parse_int(name, val, 1, 1024);
        } else if (strcmp(name, "--runs") == 0) {
            a->runs = parse_int(name, val, 1, 1000000);
        } else if (strcmp(name, "--optimize") == 0) {
            if (strcmp(val, "all") == 0)
                a->optimize = QS_OPTIMIZE_ALL;
            else if (strcmp(val, "none") == 0)
                a->optimize = QS_OPTIMIZE_NONE;
            else
                die_usage("--optimize expects all or none, got '%s'", val);
        } else {
            if (strcmp(val, "fp32") == 0)
                a->variant = QS_VARIANT_FP32;
            else if (strcmp(val, "dynamic") == 0)
                a->variant = QS_VARIANT_INT8_DYNAMIC;
            else if (strcmp(val, "qdq") == 0)
                a->variant = QS_VARIANT_INT8_QDQ;
            else
                die_usage("--variant expects fp32, dynamic or qdq, got '%s' (static needs a "
                          "calibration set: use the server or quantserve-bench)",
                          val);
        }
    }
    if (!a->model)
        die_usage("no model given (usage: quantserve-run MODEL.onnx --input IN.npy ...; see --help)");
    if (a->n_inputs == 0)
        die_usage("give at least one --input FILE.npy");
    if (a->all_outputs && !a->output)
        die_usage("--all-outputs needs --output OUT.npy (written as OUT_0.npy, OUT_1.npy, ...)");
}

/* OUT.npy -> OUT_i.npy (OUT -> OUT_i.npy). Caller frees. */
static char *indexed_path(const char *path, size_t i) {
    size_t len = strlen(path);
    if (len >= 4 && strcmp(path + len - 4, ".npy") == 0)
        len -= 4;
    size_t size = len + 32;
    char *s = malloc(size);
    if (s)
        snprintf(s, size, "%.*s_%zu.npy", (int)len, path, i);
    return s;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static void report_engine_error(const char *what, const char *model, const qs_error *err) {
    fprintf(stderr, "quantserve-run: error: %s %s: %s%s%s: %s\n", what, model,
            qs_status_to_string(err->status), err->where[0] ? ": " : "", err->where, err->message);
}

int main(int argc, char **argv) {
    run_args a;
    parse_args(argc, argv, &a);

    int rc = RUN_EXIT_FAIL;
    qs_error err;
    qs_model *model = NULL;
    qs_session *session = NULL;
    npy_array arrays[RUN_MAX_INPUTS];
    qs_tensor tensors[RUN_MAX_INPUTS];
    const char *files[RUN_MAX_INPUTS] = {0};
    const char *names[RUN_MAX_INPUTS] = {0};
    double *times = NULL;
    memset(arrays, 0, sizeof(arrays));
    qs_error_clear(&err);

    qs_model_options mo;
    qs_model_options_init(&mo);
    mo.optimize = a.optimize;
    mo.variant = a.variant;
    double t0 = now_ms();
    if (qs_model_load_file(a.model, &mo, &model, &err) != QS_OK) {
        report_engine_error("loading", a.model, &err);
        return RUN_EXIT_FAIL;
    }
    double load_ms = now_ms() - t0;

    size_t n_in = qs_model_input_count(model);
    if (n_in > RUN_MAX_INPUTS) {
        fprintf(stderr, "quantserve-run: error: the model has %zu inputs; at most %d are supported\n",
                n_in, RUN_MAX_INPUTS);
        goto cleanup;
    }
    for (size_t i = 0; i < n_in; i++)
        qs_model_input(model, i, &names[i], &tensors[i]);

    /* Bind files to inputs: explicit slots and names first, then the rest in order. */
    rc = RUN_EXIT_USAGE;
    for (int pass = 0; pass < 2; pass++) {
        size_t next = 0;
        for (int k = 0; k < a.n_inputs; k++) {
            input_arg *in = &a.inputs[k];
            const char *file = in->value;
            long slot = in->slot;
            if (pass == 0 && slot == -1) {
                const char *eq = strchr(in->value, '=');
                for (size_t i = 0; eq && i < n_in; i++) {
                    if (strlen(names[i]) == (size_t)(eq - in->value) &&
                        strncmp(names[i], in->value, (size_t)(eq - in->value)) == 0) {
                        slot = (long)i;
                        file = eq + 1;
                    }
                }
                if (slot == -1)
                    continue;
                in->slot = -2; /* bound by name in this pass */
            } else if (pass == 0) {
                if (slot < 0)
                    continue;
            } else {
                if (slot != -1)
                    continue;
                while (next < n_in && files[next])
                    next++;
                slot = (long)next;
            }
            if (slot >= (long)n_in) {
                fprintf(stderr, "quantserve-run: error: the model has %zu input(s); %s\n", n_in,
                        in->slot >= 0 ? "--inputK is out of range" : "too many --input files");
                goto cleanup;
            }
            if (files[slot]) {
                fprintf(stderr, "quantserve-run: error: input \"%s\" given twice\n", names[slot]);
                goto cleanup;
            }
            files[slot] = file;
        }
    }
    for (size_t i = 0; i < n_in; i++) {
        if (!files[i]) {
            fprintf(stderr, "quantserve-run: error: no .npy file for model input \"%s\"\n",
                    names[i]);
            goto cleanup;
        }
    }

    /* Read, check against the signature, convert. */
    for (size_t i = 0; i < n_in; i++) {
        char msg[256];
        npy_array *arr = &arrays[i];
        if (npy_read(files[i], arr, msg, sizeof(msg)) != 0) {
            fprintf(stderr, "quantserve-run: error: %s: %s\n", files[i], msg);
            goto cleanup;
        }
        qs_tensor *t = &tensors[i];
        int match = arr->rank == t->rank;
        for (int32_t d = 0; match && d < t->rank; d++)
            match = t->dims[d] < 0 ? arr->dims[d] > 0 : arr->dims[d] == t->dims[d];
        if (!match) {
            fprintf(stderr, "quantserve-run: error: input \"%s\" expects shape ", names[i]);
            for (int32_t d = 0; d < t->rank; d++) {
                fputs(d ? "," : "[", stderr);
                if (t->dims[d] < 0)
                    fputc('?', stderr);
                else
                    fprintf(stderr, "%lld", (long long)t->dims[d]);
            }
            fprintf(stderr, "%s (? = any positive size), %s has ", t->rank ? "]" : "[]", files[i]);
            for (int32_t d = 0; d < arr->rank; d++)
                fprintf(stderr, "%s%lld", d ? "," : "[", (long long)arr->dims[d]);
            fprintf(stderr, "%s\n", arr->rank ? "]" : "[]");
            goto cleanup;
        }
        if (arr->dtype != t->dtype) {
            if (npy_convert(arr, t->dtype) != 0) {
                fprintf(stderr, "quantserve-run: error: %s: cannot convert %s to the model's %s "
                        "for input \"%s\"\n", files[i], qs_dtype_name(arr->dtype),
                        qs_dtype_name(t->dtype), names[i]);
                goto cleanup;
            }
            fprintf(stderr, "quantserve-run: note: %s: converted to the model's %s for input \"%s\"\n",
                    files[i], qs_dtype_name(t->dtype), names[i]);
        }
        memcpy(t->dims, arr->dims, sizeof(t->dims));
        t->data = arr->data;
    }

    rc = RUN_EXIT_FAIL;
    qs_session_options so;
    qs_session_options_init(&so);
    so.threads = a.threads;
    if (qs_session_create(model, &so, &session, &err) != QS_OK) {
        report_engine_error("creating a session for", a.model, &err);
        goto cleanup;
    }
    times = malloc((size_t)a.runs * sizeof(*times));
    if (!times) {
        fprintf(stderr, "quantserve-run: error: out of memory\n");
        goto cleanup;
    }
    for (int r = 0; r < a.runs; r++) {
        double s = now_ms();
        if (qs_session_run(session, tensors, n_in, &err) != QS_OK) {
            report_engine_error("running", a.model, &err);
            goto cleanup;
        }
        times[r] = now_ms() - s;
    }

    /* Write the outputs, then the JSON line (only after everything succeeded). */
    size_t n_out = qs_model_output_count(model);
    for (size_t i = 0; i < n_out && a.output; i++) {
        if (!a.all_outputs && i > 0)
            break;
        qs_tensor out;
        char msg[256];
        char *path = a.all_outputs ? indexed_path(a.output, i) : NULL;
        const char *target = a.all_outputs ? path : a.output;
        if (!target || qs_session_output(session, i, &out) != QS_OK ||
            npy_write(target, &out, msg, sizeof(msg)) != 0) {
            fprintf(stderr, "quantserve-run: error: writing output %zu to %s: %s\n", i,
                    target ? target : "?", target ? msg : "out of memory");
            free(path);
            goto cleanup;
        }
        free(path);
    }

    printf("{\"runtime\":\"quantserve\",\"version\":");
    json_string(qs_engine_version());
    printf(",\"model\":");
    json_string(a.model);
    printf(",\"isa\":\"%s\",\"threads\":%d,\"optimize\":\"%s\",\"variant\":\"%s\",\"load_ms\":%.3f,"
           "\"run_ms\":%.3f",
           qs_isa_name(qs_engine_isa()), a.threads, a.optimize == QS_OPTIMIZE_ALL ? "all" : "none",
           a.variant == QS_VARIANT_INT8_DYNAMIC ? "dynamic"
           : a.variant == QS_VARIANT_INT8_QDQ   ? "qdq"
                                                : "fp32",
           load_ms, times[0]);
    if (a.runs > 1) {
        qsort(times + 1, (size_t)a.runs - 1, sizeof(*times), cmp_double);
        size_t m = (size_t)a.runs - 1;
        double med = m % 2 ? times[1 + m / 2] : (times[m / 2] + times[1 + m / 2]) / 2;
        printf(",\"median_ms\":%.3f,\"min_ms\":%.3f,\"runs\":%d", med, times[1], a.runs);
    }
    printf(",\"inputs\":[");
    for (size_t i = 0; i < n_in; i++) {
        printf("%s{\"name\":", i ? "," : "");
        json_string(names[i]);
        printf(",\"file\":");
        json_string(files[i]);
        printf(",\"shape\":");
        json_shape(tensors[i].rank, tensors[i].dims);
        printf(",\"dtype\":\"%s\"}", qs_dtype_name(tensors[i].dtype));
    }
    printf("],\"outputs\":[");
    for (size_t i = 0; i < n_out; i++) {
        const char *oname;
        qs_tensor desc, out;
        qs_model_output(model, i, &oname, &desc);
        qs_session_output(session, i, &out);
        printf("%s{\"name\":", i ? "," : "");
        json_string(oname);
        printf(",\"shape\":");
        json_shape(out.rank, out.dims);
        printf(",\"dtype\":\"%s\"", qs_dtype_name(out.dtype));
        if (a.output && (a.all_outputs || i == 0)) {
            char *path = a.all_outputs ? indexed_path(a.output, i) : NULL;
            printf(",\"file\":");
            json_string(a.all_outputs ? (path ? path : "?") : a.output);
            free(path);
        }
        json_argmax(&out);
        putchar('}');
    }
    printf("]}\n");
    rc = fflush(stdout) == 0 ? 0 : RUN_EXIT_FAIL;
cleanup:
    free(times);
    for (size_t i = 0; i < RUN_MAX_INPUTS; i++)
        free(arrays[i].data);
    qs_session_free(session);
    qs_model_free(model);
    return rc;
}
