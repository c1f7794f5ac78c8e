/* quantserve-bench: load time, latency percentiles, throughput, page faults and peak RSS of a model. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "quantserve/engine.h"

typedef struct {
    const char *model;
    int threads, batch, runs, warmup;
    int json;
    qs_optimize_level optimize;
    qs_variant_kind variant;
    int calib_samples;
    unsigned seed;
    int reduce_range; /* qs_quant_options.reduce_range: 0 default, 1 on, -1 off */
} bench_args;

/* CPU time of the whole process (every thread): unlike wall time, it does not grow while
 * other processes hold the cores, so a single-thread run on a shared machine stays comparable. */
static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, int n, double p) {
    double pos = p * (n - 1);
    int lo = (int)floor(pos), hi = (int)ceil(pos);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

static const char *variant_name(qs_variant_kind v) {
    switch (v) {
    case QS_VARIANT_INT8_QDQ: return "qdq";
    case QS_VARIANT_INT8_DYNAMIC: return "dynamic";
    case QS_VARIANT_INT8_STATIC: return "static";
    default: return "fp32";
    }
}

/* Random-input calibration for --variant static (speed measurements only). */
static qs_calibrator *calibrate(const char *path, const bench_args *a, qs_error *err) {
    qs_calibrator *cal = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size ||
        qs_calibrator_create(buf, (size_t)size, NULL, &cal, err) != QS_OK) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    free(buf);
    qs_model *m = NULL;
    if (qs_model_load_file(path, NULL, &m, err) != QS_OK) {
        qs_calibrator_free(cal);
        return NULL;
    }
    qs_tensor in;
    const char *name;
    qs_model_input(m, 0, &name, &in);
    for (int32_t d = 0; d < in.rank; d++)
        if (in.dims[d] < 0)
            in.dims[d] = 1;
    size_t n = qs_tensor_numel(&in);
    float *x = malloc(n * sizeof(float));
    for (int s = 0; x && s < a->calib_samples; s++) {
        for (size_t k = 0; k < n; k++)
            x[k] = (float)rand() / ((float)RAND_MAX + 1.0f) * 2.0f - 1.0f;
        in.data = x;
        if (qs_calibrator_observe(cal, &in, 1, err) != QS_OK) {
            qs_calibrator_free(cal);
            cal = NULL;
            break;
        }
    }
    free(x);
    qs_model_free(m);
    return cal;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: quantserve-bench MODEL.onnx [options]\n"
            "  --threads N     intra-op threads (default 1)\n"
            "  --batch B       value for a dynamic leading dimension (default 1)\n"
            "  --runs R        timed runs (default 50)\n"
            "  --warmup W      untimed runs first (default 10)\n"
            "  --optimize all|none  graph optimization (default all)\n"
            "  --variant V     fp32 (default); qdq: a pre-quantized model in int8; dynamic: int8\n"
            "                  weights, per-run activation ranges; static: int8 calibrated on\n"
            "                  --calib-samples random inputs (for speed only: random ranges)\n"
            "  --calib-samples N  calibration samples for --variant static (default 8)\n"
            "  --reduce-range on|off  static, dynamic: 7-bit activations (default: the engine's,\n"
            "                  on)\n"
            "  --seed S        input seed (default 1)\n"
            "  --json          one JSON line instead of text\n"
            "Inputs are uniform random in [-1, 1) (float) or zeros (other types).\n");
}

static int parse_args(int argc, char **argv, bench_args *a) {
    static const struct option opts[] = {
        {"threads", required_argument, 0, 't'}, {"batch", required_argument, 0, 'b'},
        {"runs", required_argument, 0, 'r'},    {"warmup", required_argument, 0, 'w'},
        {"optimize", required_argument, 0, 'o'}, {"seed", required_argument, 0, 's'},
        {"json", no_argument, 0, 'j'},          {"help", no_argument, 0, 'h'},
        {"variant", required_argument, 0, 'v'}, {"calib-samples", required_argument, 0, 'c'},
        {"reduce-range", required_argument, 0, 'R'}, {0, 0, 0, 0}};
    *a = (bench_args){NULL, 1, 1, 50, 10, 0, QS_OPTIMIZE_ALL, QS_VARIANT_FP32, 8, 1, 0};
    int c;
    while ((c = getopt_long(argc, argv, "t:b:r:w:o:s:jh", opts, NULL)) != -1) {
        switch (c) {
        case 't': a->threads = atoi(optarg); break;
        case 'b': a->batch = atoi(optarg); break;
        case 'r': a->runs = atoi(optarg); break;
        case 'w': a->warmup = atoi(optarg); break;
        case 's': a->seed = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'j': a->json = 1; break;
        case 'o':
            if (strcmp(optarg, "all") == 0)
                a->optimize = QS_OPTIMIZE_ALL;
            else if (strcmp(optarg, "none") == 0)
                a->optimize = QS_OPTIMIZE_NONE;
            else
                return 2;
            break;
        case 'v':
            if (strcmp(optarg, "fp32") == 0)
                a->variant = QS_VARIANT_FP32;
            else if (strcmp(optarg, "qdq") == 0)
                a->variant = QS_VARIANT_INT8_QDQ;
            else if (strcmp(optarg, "dynamic") == 0)
                a->variant = QS_VARIANT_INT8_DYNAMIC;
            else if (strcmp(optarg, "static") == 0)
                a->variant = QS_VARIANT_INT8_STATIC;
            else
                return 2;
            break;
        case 'c': a->calib_samples = atoi(optarg); break;
        case 'R':
            if (strcmp(optarg, "on") == 0)
                a->reduce_range = 1;
            else if (strcmp(optarg, "off") == 0)
                a->reduce_range = -1;
            else
                return 2;
            break;
        case 'h': usage(stdout); exit(0);
        default: return 2;
        }
    }
    if (optind != argc - 1 || a->threads < 1 || a->batch < 1 || a->runs < 1 || a->warmup < 0)
        return 2;
    a->model = argv[optind];
    return 0;
}

int main(int argc, char **argv) {
    bench_args a;
    qs_error err;
    qs_model *model = NULL;
    qs_session *session = NULL;
    qs_tensor *inputs = NULL;
    double *lat = NULL, *cpu = NULL;
    int rc = 1;

    if (parse_args(argc, argv, &a) != 0) {
        usage(stderr);
        return 2;
    }
    qs_error_clear(&err);
    qs_model_options mo;
    qs_model_options_init(&mo);
    mo.optimize = a.optimize;
    mo.variant = a.variant;
    qs_quant_options qo;
    qs_quant_options_init(&qo);
    qo.reduce_range = a.reduce_range;
    mo.quant = &qo;
    qs_calibrator *cal = NULL;
    if (a.variant == QS_VARIANT_INT8_STATIC) {
        cal = calibrate(a.model, &a, &err);
        if (!cal) {
            fprintf(stderr, "quantserve-bench: calibration failed: %s: %s\n", err.where,
                    err.message);
            return 1;
        }
        mo.calibration = cal;
    }
    double t0 = now_ms();
    if (qs_model_load_file(a.model, &mo, &model, &err) != QS_OK) {
        fprintf(stderr, "quantserve-bench: %s: %s: %s\n", a.model, err.where, err.message);
        qs_calibrator_free(cal);
        return 1;
    }
    double load_ms = now_ms() - t0;
    qs_calibrator_free(cal);
    qs_session_options so;
    qs_session_options_init(&so);
    so.threads = a.threads;
    if (qs_session_create(model, &so, &session, &err) != QS_OK) {
        fprintf(stderr, "quantserve-bench: %s\n", err.message);
        goto cleanup;
    }
    size_t n_in = qs_model_input_count(model);
    inputs = calloc(n_in ? n_in : 1, sizeof(*inputs));
    lat = calloc((size_t)a.runs, sizeof(double));
    cpu = calloc((size_t)a.runs, sizeof(double));
    if (!inputs || !lat || !cpu)
        goto cleanup;
    srand(a.seed);
    for (size_t i = 0; i < n_in; i++) {
        const char *name;
        qs_model_input(model, i, &name, &inputs[i]);
        for (int32_t d = 0; d < inputs[i].rank; d++) {
            if (inputs[i].dims[d] < 0) {
                if (d > 0) {
                    fprintf(stderr, "quantserve-bench: input %s has a dynamic dim %d\n", name, d);
                    goto cleanup;
                }
                inputs[i].dims[d] = a.batch;
            }
        }
        size_t n = qs_tensor_numel(&inputs[i]);
        inputs[i].data = calloc(n ? n : 1, qs_dtype_size(inputs[i].dtype));
        if (!inputs[i].data)
            goto cleanup;
        if (inputs[i].dtype == QS_DTYPE_FLOAT32)
            for (size_t k = 0; k < n; k++)
                ((float *)inputs[i].data)[k] = (float)rand() / ((float)RAND_MAX + 1.0f) * 2.0f - 1.0f;
    }
    double first_ms = 0;
    for (int r = 0; r < a.warmup + a.runs; r++) {
        struct rusage ru0, ru1;
        if (r == a.warmup)
            getrusage(RUSAGE_SELF, &ru0);
        double s = now_ms(), cs = cpu_ms();
        if (qs_session_run(session, inputs, n_in, &err) != QS_OK) {
            fprintf(stderr, "quantserve-bench: run failed: %s: %s\n", err.where, err.message);
            goto cleanup;
        }
        double e = now_ms() - s, ce = cpu_ms() - cs;
        if (r == 0)
            first_ms = e;
        if (r >= a.warmup) {
            lat[r - a.warmup] = e;
            cpu[r - a.warmup] = ce;
        }
        if (r == a.warmup + a.runs - 1) {
            getrusage(RUSAGE_SELF, &ru1);
            ru0.ru_minflt = ru1.ru_minflt - ru0.ru_minflt;
            qsort(lat, (size_t)a.runs, sizeof(double), cmp_double);
            qsort(cpu, (size_t)a.runs, sizeof(double), cmp_double);
            double med = percentile(lat, a.runs, 0.5), p90 = percentile(lat, a.runs, 0.9);
            double cpu_med = percentile(cpu, a.runs, 0.5);
            double faults = (double)ru0.ru_minflt / a.runs;
            qs_model_info info;
            qs_model_get_info(model, &info);
            long rss_kb = ru1.ru_maxrss;
            if (a.json) {
                printf("{\"runtime\":\"quantserve\",\"version\":\"%s\",\"model\":\"%s\",\"isa\":\"%s\","
                       "\"variant\":\"%s\",\"optimize\":\"%s\",\"threads\":%d,\"batch\":%d,\"median_ms\":%.3f,"
                       "\"p90_ms\":%.3f,\"min_ms\":%.3f,\"cpu_ms\":%.3f,\"runs\":%d,\"warmup\":%d,\"load_ms\":%.1f,"
                       "\"first_run_ms\":%.3f,\"items_per_s\":%.2f,\"minor_faults_per_run\":%.2f,"
                       "\"peak_rss_mb\":%.1f,\"arena_mb\":%.3f,\"weight_mb\":%.3f,\"packed_mb\":%.3f,"
                       "\"nodes\":%llu,\"onnx_nodes\":%llu}\n",
                       qs_engine_version(), a.model, qs_isa_name(qs_engine_isa()),
                       variant_name(a.variant),
                       a.optimize == QS_OPTIMIZE_ALL ? "all" : "none", a.threads, a.batch, med,
                       p90, lat[0], cpu_med, a.runs, a.warmup, load_ms, first_ms,
                       a.batch * 1000.0 / med, faults, (double)rss_kb / 1024.0,
                       (double)qs_session_arena_bytes(session) / 1e6, (double)info.weight_bytes / 1e6,
                       (double)info.packed_bytes / 1e6, (unsigned long long)info.node_count,
                       (unsigned long long)info.onnx_node_count);
            } else {
                printf("model        %s\n", a.model);
                printf("isa          %s, %d thread(s), batch %d, variant %s\n",
                       qs_isa_name(qs_engine_isa()), a.threads, a.batch, variant_name(a.variant));
                printf("load         %.1f ms (%llu ONNX nodes -> %llu)\n", load_ms,
                       (unsigned long long)info.onnx_node_count,
                       (unsigned long long)info.node_count);
                printf("latency      median %.3f ms, p90 %.3f ms, min %.3f ms (%d runs)\n", med,
                       p90, lat[0], a.runs);
                printf("cpu time     median %.3f ms per run (all threads)\n", cpu_med);
                printf("throughput   %.1f items/s\n", a.batch * 1000.0 / med);
                printf("memory       peak RSS %.1f MB, arena %.2f MB, weights %.2f MB\n",
                       (double)rss_kb / 1024.0, (double)qs_session_arena_bytes(session) / 1e6,
                       (double)info.weight_bytes / 1e6);
                printf("page faults  %.2f per run\n", faults);
            }
        }
    }
    rc = 0;
cleanup:
    for (size_t i = 0; inputs && i < qs_model_input_count(model); i++)
        free(inputs[i].data);
    free(inputs);
    free(lat);
    free(cpu);
    qs_session_free(session);
    qs_model_free(model);
    return rc;
}
