/* Int8 GEMM driver: weight packing (panels, column sums), cache blocking, threading over M/N. */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "kernels/q8_ukernels.h"

/* Rows of A per block: MC x K bytes of A stay in L2 while the weight panels of a task go by. */
#define QS_Q8_A_BLOCK_BYTES (96u * 1024u)
#define QS_Q8_C_BLOCK_BYTES (64u * 1024u)

size_t qs_q8_panel_bytes(const qs_q8_kernels *kern, size_t k_padded) {
    return kern->pack ? kern->pack_bytes(k_padded, 1) : k_padded * QS_Q8_NR;
}

static qs_status qs_q8_pack_b_for(qs_isa isa, bool u7, const int8_t *w_nk, size_t k, size_t n,
                                  const int32_t *offset, qs_q8_packed_b *out) {
    if (!out)
        return QS_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    if (!w_nk || k == 0 || n == 0 || k > ((size_t)1 << 30) || n > ((size_t)1 << 30))
        return QS_ERR_INVALID_ARGUMENT;
    const qs_q8_kernels *kern = u7 ? qs_q8_kernels_get_u7(isa) : qs_q8_kernels_get(isa);
    const size_t k_padded = (k + QS_Q8_KGROUP - 1) / QS_Q8_KGROUP * QS_Q8_KGROUP;
    const size_t panels = n / QS_Q8_NR + (n % QS_Q8_NR != 0);
    size_t bytes, twice, sum_bytes;
    /* Own layouts take at most twice the default's bytes. */
    if (!qs_kmul(panels, QS_Q8_NR, &bytes) || !qs_kmul(bytes, k_padded, &bytes) ||
        !qs_kmul(bytes, 2, &twice) || !qs_kmul(n, sizeof(int32_t), &sum_bytes))
        return QS_ERR_INVALID_ARGUMENT;
    bytes = qs_q8_panel_bytes(kern, k_padded) * panels;
    const bool any_offset = qs_q8_any_offset(offset, n);
    int8_t *data = qs_kernels_alloc(bytes);
    int32_t *colsum = qs_kernels_alloc(sum_bytes);
    int32_t *off = any_offset ? qs_kernels_alloc(sum_bytes) : NULL;
    if (!data || !colsum || (any_offset && !off)) {
        qs_kernels_free(data);
        qs_kernels_free(colsum);
        qs_kernels_free(off);
        return QS_ERR_NO_MEMORY;
    }
    memset(data, 0, bytes);
    for (size_t col = 0; col < n; col++) {
        const int8_t *src = w_nk + col * k;
        uint32_t sum = 0;
        for (size_t kk = 0; kk < k; kk++)
            sum += (uint32_t)(int32_t)src[kk];
        /* The offset is part of every weight of the column, so of its sum. */
        if (off) {
            off[col] = offset[col];
            sum += (uint32_t)k * (uint32_t)offset[col];
        }
        colsum[col] = (int32_t)sum;
    }
    if (kern->pack) {
        kern->pack(w_nk, k, n, data);
    } else {
        for (size_t col = 0; col < n; col++) {
            int8_t *panel = data + (col / QS_Q8_NR) * k_padded * QS_Q8_NR;
            for (size_t kk = 0; kk < k; kk++)
                panel[(kk / QS_Q8_KGROUP) * QS_Q8_NR * QS_Q8_KGROUP +
                      (col % QS_Q8_NR) * QS_Q8_KGROUP + kk % QS_Q8_KGROUP] = w_nk[col * k + kk];
        }
    }
    out->k = k;
    out->n = n;
    out->k_padded = k_padded;
    out->nr = QS_Q8_NR;
    out->isa = kern->isa;
    out->data = data;
    out->colsum = colsum;
    out->offset = off;
    out->bytes = bytes + (off ? 2 : 1) * sum_bytes;
    out->u7 = u7 && kern != qs_q8_kernels_get(isa);
    return QS_OK;
}

qs_status qs_q8_pack_b(qs_isa isa, const int8_t *w_nk, size_t k, size_t n, qs_q8_packed_b *out) {
    return qs_q8_pack_b_for(isa, false, w_nk, k, n, NULL, out);
}

qs_status qs_q8_pack_b_offset(qs_isa isa, const int8_t *w_nk, size_t k, size_t n,
                              const int32_t *offset, qs_q8_packed_b *out) {
    return qs_q8_pack_b_for(isa, false, w_nk, k, n, offset, out);
}

qs_status qs_q8_pack_b_u7(qs_isa isa, const int8_t *w_nk, size_t k, size_t n,
                          qs_q8_packed_b *out) {
    return qs_q8_pack_b_for(isa, true, w_nk, k, n, NULL, out);
}

void qs_q8_packed_b_free(qs_q8_packed_b *p) {
    if (!p)
        return;
    qs_kernels_free(p->data);
    qs_kernels_free(p->colsum);
    qs_kernels_free(p->offset);
    memset(p, 0, sizeof *p);
}

void qs_q8_row_sums(const uint8_t *a, size_t lda, size_t rows, size_t k, int32_t *out) {
    for (size_t i = 0; i < rows; i++) {
        const uint8_t *row = a + i * lda;
        uint32_t sum = 0;
        size_t kk = 0;
#ifdef __SSE2__
        /* psadbw: 16 bytes into two 64-bit sums at a time (SSE2 is baseline on x86-64). */
        __m128i vs = _mm_setzero_si128();
        for (; kk + 16 <= k; kk += 16) {
            const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(row + kk));
            vs = _mm_add_epi64(vs, _mm_sad_epu8(v, _mm_setzero_si128()));
        }
        sum = (uint32_t)_mm_cvtsi128_si32(vs) + (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(vs, 8));
#endif
        for (; kk < k; kk++)
            sum += row[kk];
        out[i] = (int32_t)sum;
    }
}

/* Rows per block when weights have offsets: their row sums live on the stack. */
#define QS_Q8_ROWSUM_ROWS 256u

void qs_q8_gemm_block(const qs_q8_gemm_op *op, size_t m, const uint8_t *a, size_t lda, size_t p0,
                      size_t p1, void *c, size_t ldc) {
    const qs_q8_kernels *kern = op->kern;
    const qs_q8_packed_b *b = op->b;
    const size_t mr = kern->mr, nb = kern->nb, k = b->k;
    const size_t panel_bytes = qs_q8_panel_bytes(kern, b->k_padded);
    const qs_q8_gemm_ukernel_fn fn = op->f32_out ? kern->gemm_f32 : kern->gemm_u8;
    const size_t esize = op->f32_out ? sizeof(float) : sizeof(uint8_t);
    size_t mc = QS_Q8_A_BLOCK_BYTES / k;
    /* The block's output rows stay in L2 too while the panels go by (small K, wide N). */
    const size_t c_rows = QS_Q8_C_BLOCK_BYTES / ((p1 - p0) * QS_Q8_NR * esize);
    if (mc > c_rows)
        mc = c_rows;
    int32_t rowsum[QS_Q8_ROWSUM_ROWS];
    if (b->offset && mc > QS_Q8_ROWSUM_ROWS)
        mc = QS_Q8_ROWSUM_ROWS;
    mc = mc < mr ? mr : mc - mc % mr;
    for (size_t m0 = 0; m0 < m; m0 += mc) {
        const size_t m1 = m - m0 < mc ? m : m0 + mc;
        if (b->offset)
            qs_q8_row_sums(a + m0 * lda, lda, m1 - m0, k, rowsum);
        for (size_t p = p0; p < p1; p += nb) {
            const size_t np = p1 - p < nb ? p1 - p : nb;
            const size_t col = p * QS_Q8_NR;
            const size_t nc = b->n - col < np * QS_Q8_NR ? b->n - col : np * QS_Q8_NR;
            qs_q8_gemm_params prm = {
                .bias = op->bias ? op->bias + col : NULL,
                .scale = op->scale + col,
                .colsum = b->colsum + col,
                .offset = b->offset ? b->offset + col : NULL,
                .a_zero = op->a_zero,
                .out_zero = op->out_zero,
                .lo = op->lo,
                .hi = op->hi,
            };
            const int8_t *w = b->data + p * panel_bytes;
            for (size_t i = m0; i < m1; i += mr) {
                const size_t rows = m1 - i < mr ? m1 - i : mr;
                unsigned char *ct = (unsigned char *)c + (i * ldc + col) * esize;
                if (b->offset)
                    prm.rowsum = rowsum + (i - m0);
                fn(rows, nc, k, a + i * lda, lda, w, ct, ldc, &prm);
                if (op->post)
                    for (size_t r = 0; r < rows; r++)
                        qs_act_apply_f32(op->post, (float *)(void *)ct + r * ldc, nc);
            }
        }
    }
}

typedef struct {
    const qs_q8_gemm_op *op;
    size_t m, lda, ldc;
    const uint8_t *a;
    void *c;
    size_t rows_per_task, panels_per_task, n_tasks_n, panels;
} qs_q8_gemm_job;

static void qs_q8_gemm_task(void *ctx, size_t task, int32_t thread_index) {
    (void)thread_index;
    const qs_q8_gemm_job *j = ctx;
    const size_t mi = task / j->n_tasks_n, ni = task % j->n_tasks_n;
    const size_t m0 = mi * j->rows_per_task;
    const size_t m1 = j->m - m0 < j->rows_per_task ? j->m : m0 + j->rows_per_task;
    const size_t p0 = ni * j->panels_per_task;
    const size_t p1 = j->panels - p0 < j->panels_per_task ? j->panels : p0 + j->panels_per_task;
    if (m0 >= m1 || p0 >= p1)
        return;
    const size_t esize = j->op->f32_out ? sizeof(float) : sizeof(uint8_t);
    qs_q8_gemm_block(j->op, m1 - m0, j->a + m0 * j->lda, j->lda, p0, p1,
                     (unsigned char *)j->c + m0 * j->ldc * esize, j->ldc);
}

/* About three tasks per thread over row tiles; with few rows the panels are split as well. */
void qs_q8_gemm_split(size_t m, size_t mr, size_t nb, size_t panels, int32_t n_threads,
                             size_t *rows_per_task, size_t *panels_per_task) {
    const size_t t = n_threads > 0 ? (size_t)n_threads : 1;
    const size_t tiles = m / mr + (m % mr != 0);
    *rows_per_task = tiles * mr;
    *panels_per_task = panels;
    if (t == 1)
        return;
    const size_t want = 3 * t;
    const size_t tiles_per_task = tiles / want + (tiles % want != 0);
    const size_t m_tasks = tiles / tiles_per_task + (tiles % tiles_per_task != 0);
    *rows_per_task = tiles_per_task * mr;
    if (m_tasks < 2 * t) {
        const size_t n_split = (2 * t + m_tasks - 1) / m_tasks;
        size_t ppt = panels / n_split + (panels % n_split != 0);
        ppt = (ppt + nb - 1) / nb * nb;
        *panels_per_task = ppt < panels ? ppt : panels;
    }
}

void qs_q8_gemm_run(qs_threadpool *pool, const qs_q8_gemm_op *op, size_t m, const uint8_t *a,
                    size_t lda, void *c, size_t ldc) {
    if (m == 0)
        return;
    qs_q8_gemm_job j = {.op = op, .m = m, .lda = lda, .ldc = ldc, .a = a, .c = c};
    j.panels = op->b->n / QS_Q8_NR + (op->b->n % QS_Q8_NR != 0);
    qs_q8_gemm_split(m, op->kern->mr, op->kern->nb, j.panels, qs_threadpool_size(pool),
                     &j.rows_per_task, &j.panels_per_task);
    j.n_tasks_n = j.panels / j.panels_per_task + (j.panels % j.panels_per_task != 0);
    const size_t m_tasks = m / j.rows_per_task + (m % j.rows_per_task != 0);
    qs_threadpool_run(pool, qs_q8_gemm_task, &j, m_tasks * j.n_tasks_n);
}

void qs_q8_gemm_u8(qs_threadpool *pool, size_t m, const uint8_t *a, size_t lda, int32_t a_zero,
                   const qs_q8_packed_b *b, const qs_q8_requant *rq, uint8_t *c, size_t ldc) {
    if (!b || !rq || !b->data)
        return;
    const int32_t zero = qs_q8_clamp_u8(rq->out_zero);
    const qs_q8_gemm_op op = {
        .kern = qs_q8_kernels_packed(b),
        .b = b,
        .bias = rq->bias,
        .scale = rq->scale,
        .a_zero = a_zero,
        .out_zero = zero,
        .lo = (float)(qs_q8_clamp_u8(rq->qmin) - zero),
        .hi = (float)(qs_q8_clamp_u8(rq->qmax) - zero),
    };
    qs_q8_gemm_run(pool, &op, m, a, lda, c, ldc);
}

void qs_q8_gemm_f32(qs_threadpool *pool, size_t m, const uint8_t *a, size_t lda, int32_t a_zero,
                    const qs_q8_packed_b *b, const qs_q8_requant *rq, const qs_act *act, float *c,
                    size_t ldc) {
    if (!b || !rq || !b->data)
        return;
    qs_clamp clamp;
    const bool post = qs_act_to_clamp(act, &clamp);
    const qs_q8_gemm_op op = {
        .kern = qs_q8_kernels_packed(b),
        .b = b,
        .bias = rq->bias,
        .scale = rq->scale,
        .a_zero = a_zero,
        .lo = clamp.min,
        .hi = clamp.max,
        .f32_out = true,
        .post = post ? act : NULL,
    };
    qs_q8_gemm_run(pool, &op, m, a, lda, c, ldc);
}
