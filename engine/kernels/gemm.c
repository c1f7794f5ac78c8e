/* fp32 GEMM driver: B packing, cache blocking around the micro-kernel, and threading over M/N. */
#include <stdlib.h>
#include <string.h>

#include "kernels/ukernels.h"

/* K block: an mr x KC slice of A stays in L1 while it meets every panel of a column block. */
#define QS_GEMM_KC 256
/* Bytes of packed B (KC x block of panels) that should stay in L2 across the row tiles. */
#define QS_GEMM_B_BLOCK_BYTES (384u * 1024u)

void *qs_kernels_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0)
        bytes = 64;
    /* Round up so that vector tails may read a whole cache line. */
    if (bytes > SIZE_MAX - 64)
        return NULL;
    bytes = (bytes + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, bytes) != 0)
        return NULL;
    return p;
}

void qs_kernels_free(void *p) {
    free(p);
}

qs_status qs_f32_pack_b(qs_isa isa, const float *b, size_t k, size_t n, size_t ldb, bool b_is_nk,
                        qs_f32_packed_b *out) {
    if (!out)
        return QS_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    if (!b || k == 0 || n == 0 || ldb < (b_is_nk ? k : n))
        return QS_ERR_INVALID_ARGUMENT;
    const qs_f32_kernels *kern = qs_f32_kernels_get(isa);
    const size_t nr = kern->nr;
    const size_t panels = n / nr + (n % nr != 0);
    size_t elems, bytes;
    if (!qs_kmul(panels, nr, &elems) || !qs_kmul(elems, k, &elems) ||
        !qs_kmul(elems, sizeof(float), &bytes))
        return QS_ERR_INVALID_ARGUMENT;
    float *data = qs_kernels_alloc(bytes);
    if (!data)
        return QS_ERR_NO_MEMORY;
    for (size_t p = 0; p < panels; p++) {
        float *panel = data + p * k * nr;
        for (size_t kk = 0; kk < k; kk++) {
            for (size_t j = 0; j < nr; j++) {
                const size_t col = p * nr + j;
                float v = 0.0f;
                if (col < n)
                    v = b_is_nk ? b[col * ldb + kk] : b[kk * ldb + col];
                panel[kk * nr + j] = v;
            }
        }
    }
    out->k = k;
    out->n = n;
    out->isa = kern->isa;
    out->nr = nr;
    out->data = data;
    out->bytes = bytes;
    return QS_OK;
}

void qs_f32_packed_b_free(qs_f32_packed_b *p) {
    if (!p)
        return;
    qs_kernels_free(p->data);
    memset(p, 0, sizeof *p);
}

void qs_f32_gemm_block(const qs_f32_kernels *kern, size_t m, const float *a, size_t lda,
                       const qs_f32_packed_b *b, size_t p0, size_t p1, const float *bias,
                       const float *res, size_t ldr, float *c, size_t ldc, const qs_clamp *clamp,
                       const qs_act *post) {
    const size_t mr = kern->mr, nr = b->nr, k = b->k;
    const size_t kc_max = k < QS_GEMM_KC ? k : QS_GEMM_KC;
    /* Panels per column block: the block's kc x nc slice of B stays in L2 while every row tile
     * of A passes over it; each row tile (mr x kc, in L1) meets all panels of the block in turn,
     * so a C row segment is finished while it is in L1. */
    size_t pb = QS_GEMM_B_BLOCK_BYTES / (kc_max * nr * sizeof(float));
    if (pb == 0)
        pb = 1;
    for (size_t j0 = p0; j0 < p1; j0 += pb) {
        const size_t j1 = p1 - j0 < pb ? p1 : j0 + pb;
        for (size_t k0 = 0; k0 < k; k0 += QS_GEMM_KC) {
            const size_t kc = k - k0 < QS_GEMM_KC ? k - k0 : QS_GEMM_KC;
            const bool first = k0 == 0, last = k0 + kc == k;
            for (size_t i = 0; i < m; i += mr) {
                const size_t rows = m - i < mr ? m - i : mr;
                const float *ai = a + i * lda + k0;
                for (size_t p = j0; p < j1; p++) {
                    const size_t col = p * nr;
                    const size_t nc = b->n - col < nr ? b->n - col : nr;
                    float *ct = c + i * ldc + col;
                    kern->gemm(rows, nc, kc, ai, lda, b->data + p * k * nr + k0 * nr, ct, ldc,
                               bias ? bias + col : NULL, res ? res + i * ldr + col : NULL, ldr,
                               first, last, clamp);
                    if (last && post)
                        for (size_t r = 0; r < rows; r++)
                            kern->act(post, ct + r * ldc, nc);
                }
            }
        }
    }
}

typedef struct {
    const qs_f32_kernels *kern;
    size_t m, lda, ldr, ldc;
    const float *a, *bias, *res;
    float *c;
    const qs_f32_packed_b *b;
    qs_clamp clamp;
    const qs_act *post;
    size_t rows_per_task, panels_per_task, n_tasks_n, panels;
} qs_gemm_job;

static void qs_gemm_task(void *ctx, size_t task, int32_t thread_index) {
    (void)thread_index;
    const qs_gemm_job *j = ctx;
    const size_t mi = task / j->n_tasks_n, ni = task % j->n_tasks_n;
    const size_t m0 = mi * j->rows_per_task;
    const size_t m1 = j->m - m0 < j->rows_per_task ? j->m : m0 + j->rows_per_task;
    const size_t p0 = ni * j->panels_per_task;
    const size_t p1 = j->panels - p0 < j->panels_per_task ? j->panels : p0 + j->panels_per_task;
    if (m0 >= m1 || p0 >= p1)
        return;
    qs_f32_gemm_block(j->kern, m1 - m0, j->a + m0 * j->lda, j->lda, j->b, p0, p1, j->bias,
                      j->res ? j->res + m0 * j->ldr : NULL, j->ldr, j->c + m0 * j->ldc, j->ldc,
                      &j->clamp, j->post);
}

void qs_f32_gemm_split(size_t m, size_t mr, size_t panels, int32_t n_threads, size_t *rows_per_task,
                       size_t *panels_per_task) {
    const size_t t = n_threads > 0 ? (size_t)n_threads : 1;
    const size_t tiles = m / mr + (m % mr != 0);
    if (t == 1) {
        *rows_per_task = tiles * mr;
        *panels_per_task = panels;
        return;
    }
    /* About three tasks per thread balance uneven progress without shrinking tiles too much. */
    size_t want = 3 * t;
    size_t tiles_per_task = tiles / want + (tiles % want != 0);
    if (tiles_per_task == 0)
        tiles_per_task = 1;
    const size_t m_tasks = tiles / tiles_per_task + (tiles % tiles_per_task != 0);
    *rows_per_task = tiles_per_task * mr;
    *panels_per_task = panels;
    if (m_tasks < 2 * t) {
        /* Few rows (e.g. a classifier at batch 1): split the columns as well. */
        size_t n_split = (2 * t + m_tasks - 1) / m_tasks;
        if (n_split > panels)
            n_split = panels;
        *panels_per_task = (panels + n_split - 1) / n_split;
    }
}

void qs_f32_gemm(qs_threadpool *pool, size_t m, const float *a, size_t lda,
                 const qs_f32_packed_b *b, const float *bias, const float *residual, size_t ldr,
                 float *c, size_t ldc, const qs_act *act) {
    if (m == 0 || !b || !b->data)
        return;
    qs_gemm_job j;
    j.kern = qs_f32_kernels_get(b->isa);
    j.m = m;
    j.a = a;
    j.lda = lda;
    j.b = b;
    j.bias = bias;
    j.res = residual;
    j.ldr = ldr;
    j.c = c;
    j.ldc = ldc;
    j.post = qs_act_to_clamp(act, &j.clamp) ? act : NULL;
    j.panels = b->n / b->nr + (b->n % b->nr != 0);
    qs_f32_gemm_split(m, j.kern->mr, j.panels, qs_threadpool_size(pool), &j.rows_per_task,
                      &j.panels_per_task);
    const size_t m_tasks = m / j.rows_per_task + (m % j.rows_per_task != 0);
    j.n_tasks_n = j.panels / j.panels_per_task + (j.panels % j.panels_per_task != 0);
    qs_threadpool_run(pool, qs_gemm_task, &j, m_tasks * j.n_tasks_n);
}
