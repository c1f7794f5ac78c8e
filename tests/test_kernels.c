/* Kernel tests: every ISA's GEMM, convolution and activation against naive references, the pool.
 * Built a second time with QS_TEST_AVX512_EMU: the AVX-512 sources compiled against SIMDe replace
 * the AVX-512 table, so their logic is checked on CPUs without AVX-512 too. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* First, so that the emulated AVX-512 sources declare their renamed kernels. */
#ifdef QS_TEST_AVX512_EMU
#if __has_include(<simde/x86/avx512.h>)
#define QS_EMULATE_AVX512 1
#include "kernels/avx512/gemm_8x32_avx512.c"
#include "kernels/avx512/vec_avx512.c"
static const qs_f32_kernels tk_emu_table = {
    .isa = QS_ISA_AVX512,
    .gemm_name = "qs_f32_gemm_8x32__avx512emu",
    .mr = 8,
    .nr = 32,
    .gemm = qs_f32_gemm_8x32__avx512emu,
    .dwconv_name = "qs_f32_dwconv__avx512emu",
    .dwconv = qs_f32_dwconv__avx512emu,
    .act = qs_f32_act__avx512emu,
    .dw_block = 16,
};
#else
#define TK_NO_SIMDE 1
#endif
static const qs_isa tk_isas[] = {QS_ISA_AVX512};
#endif

#include "kernels/kernels.h"
#include "kernels/ukernels.h"

#ifndef QS_TEST_AVX512_EMU
static const qs_isa tk_isas[] = {QS_ISA_REF, QS_ISA_AVX2, QS_ISA_AVX512};
#endif

#define TK_N_ISAS ((int)(sizeof tk_isas / sizeof tk_isas[0]))

static uint64_t tk_rng = 0x9e3779b97f4a7c15u;

/* Deterministic uniform floats in [-1, 1). */
static float tk_rand(void) {
    tk_rng ^= tk_rng << 13;
    tk_rng ^= tk_rng >> 7;
    tk_rng ^= tk_rng << 17;
    return (float)((double)(tk_rng >> 40) / (double)(1u << 23) - 1.0);
}

static float *tk_alloc_rand(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = tk_rand();
    return p;
}

/* Skip ISAs the CPU lacks; returns false after logging. */
static bool tk_isa_usable(qs_isa isa) {
#ifdef QS_TEST_AVX512_EMU
    (void)isa;
    return true;
#else
    return isa <= qs_cpu_detect_isa();
#endif
}

static double tk_act_ref(const qs_act *act, double x) {
    switch (act->kind) {
    case QS_ACT_NONE: return x;
    case QS_ACT_RELU: return x > 0 ? x : 0;
    case QS_ACT_CLIP: return fmin(fmax(x, (double)act->min), (double)act->max);
    case QS_ACT_LEAKY_RELU: return x < 0 ? (double)act->alpha * x : x;
    case QS_ACT_HARDSIGMOID: return fmax(0.0, fmin(1.0, (double)act->alpha * x + (double)act->beta));
    case QS_ACT_HARDSWISH: return x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5));
    case QS_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case QS_ACT_SILU: return x / (1.0 + exp(-x));
    }
    return x;
}

static const qs_act tk_acts[] = {
    {.kind = QS_ACT_NONE},
    {.kind = QS_ACT_RELU},
    {.kind = QS_ACT_CLIP, .min = 0.0f, .max = 0.5f},
    {.kind = QS_ACT_LEAKY_RELU, .alpha = 0.1f},
    {.kind = QS_ACT_HARDSIGMOID, .alpha = 0.2f, .beta = 0.5f},
    {.kind = QS_ACT_HARDSWISH},
    {.kind = QS_ACT_SIGMOID},
    {.kind = QS_ACT_SILU},
};
#define TK_N_ACTS (sizeof tk_acts / sizeof tk_acts[0])

/* got vs act(exact) where mag bounds the rounding of the sum (sum of |terms|). */
static void tk_check_close(float got, double exact_pre, double mag, const qs_act *act,
                           const char *what, size_t idx) {
    const double want = tk_act_ref(act, exact_pre);
    const double tol = 2e-6 * (mag + 1.0) * 2.0;
    if (!(fabs((double)got - want) <= tol))
        ck_abort_msg("%s[%zu]: got %.8g want %.8g (pre %.8g, tol %.3g, act %d)", what, idx,
                     (double)got, want, exact_pre, tol, (int)act->kind);
}

/* ---- thread pool ---- */

typedef struct {
    int *hits;
    int32_t size;
    int bad_index;
} tk_pool_ctx;

static void tk_pool_task(void *ctx, size_t task, int32_t thread_index) {
    tk_pool_ctx *c = ctx;
    if (thread_index < 0 || thread_index >= c->size)
        __atomic_store_n(&c->bad_index, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->hits[task], 1, __ATOMIC_RELAXED);
}

static void tk_pool_slow_task(void *ctx, size_t task, int32_t thread_index) {
    if (task % 7 == 0)
        usleep(200);
    tk_pool_task(ctx, task, thread_index);
}

/* Back-to-back jobs of varying sizes: every task of every job runs exactly once, with its own
 * job's function and context. (A late worker once claimed a task of a finished job with the next
 * job's task count: an out-of-range task ran and the caller waited forever.) */
typedef struct {
    size_t n;
    int *hits;
    int job;
} pool_job;

static void count_task(void *ctx, size_t task, int32_t thread) {
    pool_job *j = ctx;
    (void)thread;
    if (task < j->n)
        __atomic_add_fetch(&j->hits[task], 1, __ATOMIC_RELAXED);
    else
        __atomic_add_fetch(&j->hits[63], 1000, __ATOMIC_RELAXED); /* out of range: flag it */
}

START_TEST(test_threadpool_back_to_back_jobs) {
    for (int32_t threads = 2; threads <= 3; threads++) {
        qs_threadpool *pool = NULL;
        ck_assert_int_eq(qs_threadpool_create(threads, &pool), QS_OK);
        static const size_t sizes[] = {2, 6, 3, 9, 2, 5, 7, 4};
        int hits[64];
        for (int job = 0; job < 20000; job++) {
            pool_job j = {sizes[job % 8], hits, job};
            memset(hits, 0, sizeof(hits));
            qs_threadpool_run(pool, count_task, &j, j.n);
            for (size_t t = 0; t < j.n; t++)
                ck_assert_msg(hits[t] == 1, "job %d task %zu ran %d times", job, t, hits[t]);
            ck_assert_int_eq(hits[63], 0);
        }
        qs_threadpool_free(pool);
    }
}
END_TEST

START_TEST(test_threadpool) {
    for (int32_t threads = 1; threads <= 3; threads++) {
        qs_threadpool *pool = NULL;
        ck_assert_int_eq(qs_threadpool_create(threads, &pool), QS_OK);
        ck_assert_int_eq(qs_threadpool_size(pool), threads);
        int hits[257];
        for (int rep = 0; rep < 300; rep++) {
            size_t n = (size_t)(rep % 257);
            memset(hits, 0, sizeof hits);
            tk_pool_ctx c = {hits, threads, 0};
            qs_threadpool_run(pool, tk_pool_task, &c, n);
            for (size_t i = 0; i < n; i++)
                ck_assert_int_eq(hits[i], 1);
            ck_assert_int_eq(c.bad_index, 0);
            if (rep % 100 == 99)
                usleep(100000); /* let workers fall asleep, then wake them */
        }
        qs_threadpool_free(pool);
    }
    /* Uneven, slow tasks: every thread takes part and each task still runs exactly once. */
    for (int32_t threads = 2; threads <= 3; threads++) {
        qs_threadpool *pool = NULL;
        ck_assert_int_eq(qs_threadpool_create(threads, &pool), QS_OK);
        int hits[64];
        for (int rep = 0; rep < 20; rep++) {
            memset(hits, 0, sizeof hits);
            tk_pool_ctx c = {hits, threads, 0};
            qs_threadpool_run(pool, tk_pool_slow_task, &c, 64);
            for (size_t i = 0; i < 64; i++)
                ck_assert_int_eq(hits[i], 1);
            ck_assert_int_eq(c.bad_index, 0);
        }
        qs_threadpool_free(pool);
    }
    qs_threadpool *pool = NULL;
    ck_assert_int_eq(qs_threadpool_create(0, &pool), QS_ERR_INVALID_ARGUMENT);
    qs_threadpool_free(NULL);
    ck_assert_int_eq(qs_threadpool_size(NULL), 1);
}
END_TEST

/* ---- CPU detection and the QUANTSERVE_ISA cap ---- */

static int tk_isa_in_child(const char *cap) {
    pid_t pid = fork();
    if (pid == 0) {
        if (cap)
            setenv("QUANTSERVE_ISA", cap, 1);
        else
            unsetenv("QUANTSERVE_ISA");
        _exit((int)qs_engine_isa());
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

START_TEST(test_isa_cap) {
    const qs_isa cpu = qs_cpu_detect_isa();
    ck_assert_int_eq(tk_isa_in_child(NULL), (int)cpu);
    ck_assert_int_eq(tk_isa_in_child("ref"), QS_ISA_REF);
    ck_assert_int_eq(tk_isa_in_child("avx2"), (int)(cpu < QS_ISA_AVX2 ? cpu : QS_ISA_AVX2));
    ck_assert_int_eq(tk_isa_in_child("avx512"), (int)(cpu < QS_ISA_AVX512 ? cpu : QS_ISA_AVX512));
    ck_assert_int_eq(tk_isa_in_child("avx512vnni"), (int)cpu);
    ck_assert_int_eq(tk_isa_in_child("bogus"), (int)cpu);
    ck_assert_str_eq(qs_isa_name(QS_ISA_REF), "ref");
    ck_assert_str_eq(qs_isa_name(QS_ISA_AVX2), "avx2");
    ck_assert_str_eq(qs_isa_name(QS_ISA_AVX512), "avx512");
    ck_assert_str_eq(qs_isa_name(QS_ISA_AVX512VNNI), "avx512vnni");
    ck_assert_int_eq(qs_engine_isa(), qs_engine_isa());
    for (int i = 0; i < TK_N_ISAS; i++)
        ck_assert_int_eq(qs_f32_kernels_get(tk_isas[i])->isa, tk_isas[i]);
}
END_TEST

/* ---- activations ---- */

START_TEST(test_activations) {
    const qs_isa isa = tk_isas[_i];
    if (!tk_isa_usable(isa))
        return;
    const qs_f32_kernels *k = qs_f32_kernels_get(isa);
    const size_t n = 203;
    float *x = tk_alloc_rand(n), *y = malloc(n * sizeof *y), *z = malloc(n * sizeof *z);
    for (size_t i = 0; i < n; i++)
        x[i] *= 12.0f; /* cover the saturated ends too */
    x[0] = -100.0f;
    x[1] = 100.0f;
    x[2] = 0.0f;
    x[3] = -88.5f; /* sigmoid would be subnormal here: every later read of it is slow */
    x[4] = -95.0f;
    for (size_t a = 0; a < TK_N_ACTS; a++) {
        for (size_t len = 0; len <= n; len += (len < 40 ? 1 : 37)) {
            memcpy(y, x, n * sizeof *y);
            memcpy(z, x, n * sizeof *z);
            k->act(&tk_acts[a], y, len);
            qs_f32_act__ref(&tk_acts[a], z, len);
            for (size_t i = 0; i < n; i++) {
                if (i >= len) {
                    ck_assert(y[i] == x[i]);
                    continue;
                }
                ck_assert_msg(fpclassify(y[i]) != FP_SUBNORMAL && fpclassify(z[i]) != FP_SUBNORMAL,
                              "act %zu: subnormal output for x = %g", a, (double)x[i]);
                tk_check_close(y[i], x[i], 0.0, &tk_acts[a], k->gemm_name, i);
                tk_check_close(z[i], x[i], 0.0, &tk_acts[a], "ref", i);
            }
        }
    }
    free(x);
    free(y);
    free(z);
}
END_TEST

/* ---- GEMM ---- */

static void tk_gemm_case(qs_isa isa, qs_threadpool *pool, size_t m, size_t n, size_t k,
                         bool nk, bool with_bias, bool with_res, const qs_act *act) {
    const size_t lda = k + 3, ldb = (nk ? k : n) + 2, ldc = n + 5, ldr = n + 1;
    float *a = tk_alloc_rand(m * lda);
    float *b = tk_alloc_rand((nk ? n : k) * ldb);
    float *bias = with_bias ? tk_alloc_rand(n) : NULL;
    float *res = with_res ? tk_alloc_rand(m * ldr) : NULL;
    float *c = tk_alloc_rand(m * ldc);
    float *c0 = malloc(m * ldc * sizeof *c0);
    memcpy(c0, c, m * ldc * sizeof *c0);
    qs_f32_packed_b pb;
    ck_assert_int_eq(qs_f32_pack_b(isa, b, k, n, ldb, nk, &pb), QS_OK);
    ck_assert_int_eq(pb.isa, qs_f32_kernels_get(isa)->isa);
    qs_f32_gemm(pool, m, a, lda, &pb, bias, res, ldr, c, ldc, act);
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < ldc; j++) {
            if (j >= n) {
                ck_assert_msg(c[i * ldc + j] == c0[i * ldc + j], "wrote past N at %zu,%zu", i, j);
                continue;
            }
            double s = 0, mag = 0;
            for (size_t kk = 0; kk < k; kk++) {
                double t = (double)a[i * lda + kk] * (double)(nk ? b[j * ldb + kk] : b[kk * ldb + j]);
                s += t;
                mag += fabs(t);
            }
            if (bias) {
                s += (double)bias[j];
                mag += fabs((double)bias[j]);
            }
            if (res) {
                s += (double)res[i * ldr + j];
                mag += fabs((double)res[i * ldr + j]);
            }
            char what[96];
            snprintf(what, sizeof what, "%s m%zu n%zu k%zu", qs_f32_kernels_get(isa)->gemm_name,
                     m, n, k);
            tk_check_close(c[i * ldc + j], s, mag, act, what, i * n + j);
        }
    }
    qs_f32_packed_b_free(&pb);
    free(a);
    free(b);
    free(bias);
    free(res);
    free(c);
    free(c0);
}

START_TEST(test_gemm_shapes) {
    const qs_isa isa = tk_isas[_i];
    if (!tk_isa_usable(isa))
        return;
    static const size_t ms[] = {1, 3, 7, 13, 15, 17, 33, 63, 100};
    static const size_t ns[] = {1, 3, 7, 15, 16, 17, 32, 33, 48, 63, 100};
    static const size_t ks[] = {1, 3, 7, 15, 17, 33, 63, 100};
    const qs_act none = {.kind = QS_ACT_NONE};
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
                tk_gemm_case(isa, NULL, ms[mi], ns[ni], ks[ki], (mi + ki) % 2 == 0,
                             (ni + ki) % 2 == 0, (mi + ni) % 3 == 0, &none);
}
END_TEST

START_TEST(test_gemm_epilogue) {
    const qs_isa isa = tk_isas[_i];
    if (!tk_isa_usable(isa))
        return;
    for (size_t a = 0; a < TK_N_ACTS; a++)
        for (int v = 0; v < 4; v++)
            tk_gemm_case(isa, NULL, 19, 37, 29, v == 1, v & 1, (v >> 1) & 1, &tk_acts[a]);
    /* K blocking (K > the kernel's K block) with every epilogue piece. */
    tk_gemm_case(isa, NULL, 14, 40, 1100, true, true, true, &tk_acts[2]);
    tk_gemm_case(isa, NULL, 7, 9, 1025, false, true, false, &tk_acts[6]);
}
END_TEST

START_TEST(test_gemm_threads) {
    const qs_isa isa = tk_isas[_i];
    if (!tk_isa_usable(isa))
        return;
    for (int32_t t = 1; t <= 3; t++) {
        qs_threadpool *pool = NULL;
        ck_assert_int_eq(qs_threadpool_create(t, &pool), QS_OK);
        tk_gemm_case(isa, pool, 1, 1000, 64, true, true, false, &tk_acts[1]);  /* classifier */
        tk_gemm_case(isa, pool, 3, 100, 33, false, true, true, &tk_acts[0]);
        tk_gemm_case(isa, pool, 250, 70, 40, true, true, true, &tk_acts[2]);
        tk_gemm_case(isa, pool, 1000, 24, 16, true, false, true, &tk_acts[5]);
        qs_threadpool_free(pool);
    }
}
END_TEST

START_TEST(test_gemm_errors) {
    qs_f32_packed_b pb;
    float b[4] = {0};
    ck_assert_int_eq(qs_f32_pack_b(QS_ISA_REF, NULL, 2, 2, 2, false, &pb), QS_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(qs_f32_pack_b(QS_ISA_REF, b, 0, 2, 2, false, &pb), QS_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(qs_f32_pack_b(QS_ISA_REF, b, 2, 2, 1, false, &pb), QS_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(qs_f32_pack_b(QS_ISA_REF, b, SIZE_MAX / 2, 2, SIZE_MAX / 2, true, &pb),
                     QS_ERR_INVALID_ARGUMENT);
    qs_f32_packed_b_free(&pb);
    qs_f32_packed_b_free(NULL);
}
END_TEST

/* ---- convolution ---- */

typedef struct {
    size_t n, h, w, cin, cout, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups;
} tk_conv;

static void tk_conv_case(qs_isa isa, qs_threadpool *pool, const tk_conv *t, bool with_bias,
                         bool with_res, const qs_act *act, int expect_algo) {
    qs_conv2d_shape s = {
        .n = t->n, .in_h = t->h, .in_w = t->w, .in_c = t->cin,
        .out_c = t->cout, .kernel_h = t->kh, .kernel_w = t->kw,
        .stride_h = t->sh, .stride_w = t->sw, .dilation_h = t->dh, .dilation_w = t->dw,
        .pad_top = t->pt, .pad_left = t->pl, .groups = t->groups,
    };
    s.out_h = (t->h + t->pt + t->pb - t->dh * (t->kh - 1) - 1) / t->sh + 1;
    s.out_w = (t->w + t->pl + t->pr - t->dw * (t->kw - 1) - 1) / t->sw + 1;
    const size_t cin_g = t->cin / t->groups, cout_g = t->cout / t->groups;
    const size_t in_n = t->n * t->h * t->w * t->cin;
    const size_t out_n = t->n * s.out_h * s.out_w * t->cout;
    float *x = tk_alloc_rand(in_n);
    float *w = tk_alloc_rand(t->cout * cin_g * t->kh * t->kw);
    float *bias = with_bias ? tk_alloc_rand(t->cout) : NULL;
    float *res = with_res ? tk_alloc_rand(out_n) : NULL;
    float *y = tk_alloc_rand(out_n + 16);
    float guard[16];
    memcpy(guard, y + out_n, sizeof guard);
    qs_f32_conv2d conv;
    ck_assert_int_eq(qs_f32_conv2d_create(isa, &s, w, bias, &conv), QS_OK);
    if (expect_algo >= 0)
        ck_assert_int_eq(conv.algo, expect_algo);
    ck_assert_uint_gt(conv.bytes, 0);
    const size_t per = qs_f32_conv2d_scratch_bytes(&conv, &s);
    const size_t threads = (size_t)qs_threadpool_size(pool);
    void *scratch = NULL;
    if (per)
        ck_assert_int_eq(posix_memalign(&scratch, 64, per * threads), 0);
    qs_f32_conv2d_run(pool, &conv, &s, x, res, y, act, scratch);
    ck_assert_msg(memcmp(guard, y + out_n, sizeof guard) == 0, "wrote past the output");
    for (size_t b = 0; b < t->n; b++)
        for (size_t oh = 0; oh < s.out_h; oh++)
            for (size_t ow = 0; ow < s.out_w; ow++)
                for (size_t o = 0; o < t->cout; o++) {
                    const size_t g = o / cout_g;
                    double sum = bias ? (double)bias[o] : 0.0, mag = fabs(sum);
                    for (size_t kh = 0; kh < t->kh; kh++)
                        for (size_t kw = 0; kw < t->kw; kw++) {
                            long ih = (long)(oh * t->sh + kh * t->dh) - (long)t->pt;
                            long iw = (long)(ow * t->sw + kw * t->dw) - (long)t->pl;
                            if (ih < 0 || iw < 0 || ih >= (long)t->h || iw >= (long)t->w)
                                continue;
                            for (size_t ci = 0; ci < cin_g; ci++) {
                                double v = (double)x[((b * t->h + (size_t)ih) * t->w +
                                                      (size_t)iw) * t->cin + g * cin_g + ci] *
                                           (double)w[((o * cin_g + ci) * t->kh + kh) * t->kw + kw];
                                sum += v;
                                mag += fabs(v);
                            }
                        }
                    const size_t idx = ((b * s.out_h + oh) * s.out_w + ow) * t->cout + o;
                    if (res) {
                        sum += (double)res[idx];
                        mag += fabs((double)res[idx]);
                    }
                    char what[160];
                    snprintf(what, sizeof what,
                             "%s conv n%zu %zux%zux%zu->%zu k%zux%zu s%zux%zu d%zux%zu "
                             "p%zu,%zu,%zu,%zu g%zu",
                             qs_isa_name(isa), t->n, t->h, t->w, t->cin, t->cout, t->kh, t->kw,
                             t->sh, t->sw, t->dh, t->dw, t->pt, t->pl, t->pb, t->pr, t->groups);
                    tk_check_close(y[idx], sum, mag, act, what, idx);
                }
    free(scratch);
    qs_f32_conv2d_free(&conv);
    free(x);
    free(w);
    free(bias);
    free(res);
    free(y);
}

START_TEST(test_conv_cases) {
    const qs_isa isa = tk_isas[_i];
    if (!tk_isa_usable(isa))
        return;
    static const tk_conv cases[] = {
        /* n  h   w  cin cout kh kw sh sw dh dw pt pl pb pr g */
        {1, 9, 9, 3, 32, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 1},     /* MobileNetV2 stem (TF-style pad) */
        {1, 10, 10, 3, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},
        {1, 17, 15, 3, 7, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 1},    /* ResNet stem */
        {3, 6, 5, 17, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 7, 8, 5, 1, 5, 5, 1, 2, 1, 1, 2, 1, 0, 3, 1},
        {1, 9, 9, 5, 7, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1},      /* dilation 2 */
        {1, 8, 8, 17, 33, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1},    /* strided 1x1 */
        {2, 5, 5, 16, 24, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1},    /* 1x1 with bottom/right pad */
        {1, 6, 7, 4, 6, 3, 3, 1, 1, 1, 1, 1, 0, 1, 2, 2},      /* groups 2 */
        {3, 4, 4, 6, 10, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2},     /* pointwise groups 2 */
        {1, 5, 6, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4},      /* groups 4, 2 channels each */
        {1, 3, 3, 2, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 1},      /* pad larger than the image */
        {1, 2, 9, 3, 5, 1, 7, 1, 3, 1, 1, 0, 3, 0, 1, 1},      /* 1x7 */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int v = 0; v < 2; v++)
            tk_conv_case(isa, NULL, &cases[c], v == 0, v == 1, &tk_acts[(c + (size_t)v) % TK_N_ACTS],
                         -1);
}
END_TEST

START_TEST(test_conv_pointwise) {
    const qs_isa isa = tk_isas[_i];
    if (!tk_isa_usable(isa))
        return;
    static const size_t cins[] = {1, 3, 16, 17, 96};
    static const size_t couts[] = {1, 7, 24, 33, 64};
    for (size_t a = 0; a < sizeof cins / sizeof cins[0]; a++)
        for (size_t b = 0; b < sizeof couts / sizeof couts[0]; b++) {
            tk_conv t = {1 + a % 3, 5, 3 + b, cins[a], couts[b], 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1};
            tk_conv_case(isa, NULL, &t, (a + b) % 2 == 0, b % 2 == 1,
                         &tk_acts[(a + b) % TK_N_ACTS], QS_CONV_GEMM_1X1);
        }
}
END_TEST

START_TEST(test_conv_depthwise) {
    const qs_isa isa = tk_isas[_i];
    if (!tk_isa_usable(isa))
        return;
    static const size_t chans[] = {2, 5, 8, 16, 17, 33, 40, 64};
    for (size_t ci = 0; ci < sizeof chans / sizeof chans[0]; ci++) {
        const size_t c = chans[ci];
        const tk_conv ts[] = {
            {1, 9, 11, c, c, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, c},  /* 3x3 s1 */
            {1, 10, 9, c, c, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, c},  /* 3x3 s2, TF-style pad */
            {2, 9, 8, c, c, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, c},   /* 3x3 s2 */
            {1, 8, 9, c, c, 5, 5, 1, 2, 1, 1, 2, 1, 2, 3, c},   /* 5x5 */
            {1, 9, 9, c, c, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, c},   /* dilated */
            {1, 4, 3, c, c, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, c},   /* no pad */
            {1, 1, 1, c, c, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, c},   /* 1x1 image */
            {1, 6, 7, c, c, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, c},   /* 1x1 kernel */
            {1, 6, 7, c, c, 7, 1, 1, 1, 1, 1, 3, 0, 3, 0, c},   /* 7x1 */
            {1, 3, 37, c, c, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, c},  /* wide rows: column groups */
            {1, 4, 41, c, c, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, c},
        };
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
            tk_conv_case(isa, NULL, &ts[i], (i + ci) % 3 != 0, (i + ci) % 2 == 0,
                         &tk_acts[(i + ci) % TK_N_ACTS], c > 1 ? QS_CONV_DEPTHWISE : -1);
    }
}
END_TEST

START_TEST(test_conv_threads) {
    const qs_isa isa = tk_isas[_i];
    if (!tk_isa_usable(isa))
        return;
    for (int32_t n = 1; n <= 3; n++) {
        qs_threadpool *pool = NULL;
        ck_assert_int_eq(qs_threadpool_create(n, &pool), QS_OK);
        const tk_conv ts[] = {
            {3, 12, 12, 3, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},
            {1, 3, 3, 64, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},   /* few pixels: split N */
            {2, 14, 14, 24, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 24},
            {1, 20, 20, 16, 40, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},
            {1, 9, 9, 8, 12, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 4},
        };
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
            tk_conv_case(isa, pool, &ts[i], true, i % 2 == 0, &tk_acts[(i + 2) % TK_N_ACTS], -1);
        qs_threadpool_free(pool);
    }
}
END_TEST

START_TEST(test_conv_errors) {
    qs_conv2d_shape s = {.in_c = 4, .out_c = 6, .kernel_h = 3, .kernel_w = 3, .stride_h = 1,
                         .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .groups = 4};
    float w[256] = {0};
    qs_f32_conv2d conv;
    ck_assert_int_eq(qs_f32_conv2d_create(QS_ISA_REF, &s, w, NULL, &conv), QS_ERR_INVALID_ARGUMENT);
    s.groups = 1;
    s.stride_h = 0;
    ck_assert_int_eq(qs_f32_conv2d_create(QS_ISA_REF, &s, w, NULL, &conv), QS_ERR_INVALID_ARGUMENT);
    s.stride_h = 1;
    ck_assert_int_eq(qs_f32_conv2d_create(QS_ISA_REF, &s, NULL, NULL, &conv),
                     QS_ERR_INVALID_ARGUMENT);
    s.kernel_h = SIZE_MAX / 2;
    ck_assert_int_eq(qs_f32_conv2d_create(QS_ISA_REF, &s, w, NULL, &conv), QS_ERR_INVALID_ARGUMENT);
    qs_f32_conv2d_free(&conv);
    qs_f32_conv2d_free(NULL);
}
END_TEST

static Suite *tk_suite(void) {
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_threadpool);
    tcase_add_test(tc, test_threadpool_back_to_back_jobs);
    tcase_add_test(tc, test_isa_cap);
    tcase_add_test(tc, test_gemm_errors);
    tcase_add_test(tc, test_conv_errors);
    tcase_add_loop_test(tc, test_activations, 0, TK_N_ISAS);
    tcase_add_loop_test(tc, test_gemm_shapes, 0, TK_N_ISAS);
    tcase_add_loop_test(tc, test_gemm_epilogue, 0, TK_N_ISAS);
    tcase_add_loop_test(tc, test_gemm_threads, 0, TK_N_ISAS);
    tcase_add_loop_test(tc, test_conv_cases, 0, TK_N_ISAS);
    tcase_add_loop_test(tc, test_conv_pointwise, 0, TK_N_ISAS);
    tcase_add_loop_test(tc, test_conv_depthwise, 0, TK_N_ISAS);
    tcase_add_loop_test(tc, test_conv_threads, 0, TK_N_ISAS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
#ifdef QS_TEST_AVX512_EMU
#ifdef TK_NO_SIMDE
    printf("# SIMDe (libsimde-dev) not installed: AVX-512 emulation tests skipped\n");
    return 77;
#else
    qs_f32_kernels_test_replace_avx512(&tk_emu_table);
#endif
#endif
    for (int i = 0; i < TK_N_ISAS; i++)
        if (!tk_isa_usable(tk_isas[i]))
            printf("# skipping %s kernels: not supported by this CPU/OS\n", qs_isa_name(tk_isas[i]));
    SRunner *sr = srunner_create(tk_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
