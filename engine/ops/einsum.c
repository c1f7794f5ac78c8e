/* Einsum: Einstein summation over any number of operands, explicit or implicit output, repeated
 * labels (diagonals), ellipsis and size-1 broadcasting. Two operands run as a batched matrix
 * product; other forms run a direct loop over every label. */
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

#define QS_EIN_MAX_IN 16
#define QS_EIN_LETTERS 52                            /* 'A'..'Z' then 'a'..'z', ASCII order */
#define QS_EIN_AXES (QS_EIN_LETTERS + QS_MAX_RANK)   /* letters, then the ellipsis dims */
#define QS_EIN_ELL ((int8_t)-1)                      /* "..." in a term */
#define QS_EIN_TERM_MAX (QS_MAX_RANK + 1)            /* labels and one ellipsis */

/* The parsed equation: labels as axis ids in [0, QS_EIN_LETTERS), QS_EIN_ELL for "...". The
 * output is always explicit here (implicit mode is resolved at init). */
typedef struct {
    int32_t n_in;
    int32_t term_len[QS_EIN_MAX_IN];
    int8_t term[QS_EIN_MAX_IN][QS_EIN_TERM_MAX];
    int32_t out_len;
    int8_t out[QS_EIN_TERM_MAX];
} qs_einsum_params;

/* The equation resolved for input shapes. Axes are ids in [0, QS_EIN_AXES); strides are in
 * elements and 0 where an input lacks the axis or broadcasts it (size 1). */
typedef struct {
    int32_t ell_rank;
    bool used[QS_EIN_AXES];
    bool has[QS_EIN_MAX_IN][QS_EIN_AXES];      /* the axis is in the input's term */
    int64_t size[QS_EIN_AXES];
    int64_t stride[QS_EIN_MAX_IN][QS_EIN_AXES];
    int32_t n_out, out_axes[QS_MAX_RANK];      /* in output order */
    int32_t n_red, red_axes[QS_EIN_AXES];      /* summed */
} qs_ein_plan;

static int qs_ein_label(char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return 26 + (c - 'a');
    return -1;
}

/* Parse one term from *s up to ',', '-' or the end, skipping spaces. */
static qs_status qs_ein_parse_term(const qs_node *n, const char **s, int8_t *term, int32_t *len,
                                   qs_error *err) {
    bool ell = false;
    *len = 0;
    for (const char *c = *s;; c++) {
        if (*c == ' ')
            continue;
        if (*c == '\0' || *c == ',' || *c == '-') {
            *s = c;
            return QS_OK;
        }
        int8_t sym;
        if (*c == '.') {
            if (c[1] != '.' || c[2] != '.' || ell)
                return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n,
                                     "equation: a term has a stray '.' or two ellipses");
            ell = true;
            c += 2;
            sym = QS_EIN_ELL;
        } else {
            int l = qs_ein_label(*c);
            if (l < 0)
                return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n,
                                     "equation: '%c' is not a label", *c);
            sym = (int8_t)l;
        }
        if (*len >= QS_EIN_TERM_MAX)
            return qs_node_error(err, QS_ERR_UNSUPPORTED, n,
                                 "equation: a term has more than %d dims", QS_MAX_RANK);
        term[(*len)++] = sym;
    }
}

static qs_status qs_einsum_init(const qs_graph *g, qs_node *n, qs_error *err) {
    const qs_attr *a = qs_node_attr(n, "equation");
    qs_einsum_params *p;
    qs_status st = QS_OK;
    (void)g;
    if (a == NULL || a->type != QS_ATTR_STRING || a->s == NULL)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "equation attribute is missing");
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    const char *s = a->s;
    int32_t count[QS_EIN_LETTERS] = {0};
    bool any_ell = false;
    for (;;) {
        if (p->n_in >= QS_EIN_MAX_IN) {
            st = qs_node_error(err, QS_ERR_UNSUPPORTED, n, "equation has over %d operands",
                               QS_EIN_MAX_IN);
            goto done;
        }
        int32_t i = p->n_in++;
        if ((st = qs_ein_parse_term(n, &s, p->term[i], &p->term_len[i], err)) != QS_OK)
            goto done;
        for (int32_t k = 0; k < p->term_len[i]; k++) {
            if (p->term[i][k] == QS_EIN_ELL)
                any_ell = true;
            else
                count[(int)p->term[i][k]]++;
        }
        if (*s != ',')
            break;
        s++;
    }
    if (p->n_in != n->n_inputs) {
        st = qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "equation has %d operands for %d inputs",
                           (int)p->n_in, (int)n->n_inputs);
        goto done;
    }
    if (*s == '-') {
        if (s[1] != '>') {
            st = qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "equation: '-' without '>'");
            goto done;
        }
        s += 2;
        if ((st = qs_ein_parse_term(n, &s, p->out, &p->out_len, err)) != QS_OK)
            goto done;
        if (*s != '\0') {
            st = qs_node_error(err, QS_ERR_MALFORMED_MODEL, n,
                               "equation: unexpected '%c' in the output", *s);
            goto done;
        }
        bool seen[QS_EIN_LETTERS] = {false};
        for (int32_t k = 0; k < p->out_len; k++) {
            int8_t l = p->out[k];
            if (l == QS_EIN_ELL)
                continue;
            if (seen[l] || count[l] == 0) {
                st = qs_node_error(err, QS_ERR_MALFORMED_MODEL, n,
                                   "equation: output label '%c' is repeated or in no input",
                                   l < 26 ? 'A' + l : 'a' + (l - 26));
                goto done;
            }
            seen[l] = true;
        }
    } else {
        /* implicit: the broadcast dims, then every label seen once, in alphabetical order */
        if (any_ell)
            p->out[p->out_len++] = QS_EIN_ELL;
        for (int8_t l = 0; l < QS_EIN_LETTERS; l++) {
            if (count[l] != 1)
                continue;
            if (p->out_len >= QS_EIN_TERM_MAX) {
                st = qs_node_error(err, QS_ERR_UNSUPPORTED, n, "output rank is over %d",
                                   QS_MAX_RANK);
                goto done;
            }
            p->out[p->out_len++] = l;
        }
    }
done:
    if (st != QS_OK) {
        free(p);
        return st;
    }
    n->params = p;
    return QS_OK;
}

/* Bind a dim of size d to axis ax, numpy style: sizes agree or one of them is 1. */
static bool qs_ein_bind(qs_ein_plan *pl, int32_t ax, int64_t d) {
    if (!pl->used[ax] || pl->size[ax] == 1) {
        pl->size[ax] = d;
    } else if (d != 1 && d != pl->size[ax]) {
        return false;
    }
    pl->used[ax] = true;
    return true;
}

/* The axis of each of input i's dims; its ellipsis covers the last of the ell_rank dims. */
static void qs_ein_dim_axes(const qs_einsum_params *p, int32_t i, int32_t rank, int32_t ell_rank,
                            int32_t *axes) {
    int32_t n_lab = 0, d = 0;
    for (int32_t k = 0; k < p->term_len[i]; k++)
        n_lab += p->term[i][k] != QS_EIN_ELL;
    for (int32_t k = 0; k < p->term_len[i]; k++) {
        if (p->term[i][k] != QS_EIN_ELL) {
            axes[d++] = p->term[i][k];
            continue;
        }
        for (int32_t e = 0; e < rank - n_lab; e++)
            axes[d++] = QS_EIN_LETTERS + ell_rank - (rank - n_lab) + e;
    }
}

/* Resolve the equation for these inputs; every check infer reports is here. */
static qs_status qs_ein_plan_make(const qs_node *n, const qs_view *in, qs_ein_plan *pl,
                                  qs_error *err) {
    const qs_einsum_params *p = n->params;
    memset(pl, 0, sizeof(*pl));
    for (int32_t i = 0; i < p->n_in; i++) {
        int32_t n_lab = 0;
        bool ell = false;
        for (int32_t k = 0; k < p->term_len[i]; k++) {
            ell |= p->term[i][k] == QS_EIN_ELL;
            n_lab += p->term[i][k] != QS_EIN_ELL;
        }
        if (in[i].rank < n_lab || (!ell && in[i].rank != n_lab))
            return qs_node_error(err, QS_ERR_SHAPE, n, "input %d has rank %d for %d labels%s",
                                 (int)i, (int)in[i].rank, (int)n_lab, ell ? " and ..." : "");
        if (ell && in[i].rank - n_lab > pl->ell_rank)
            pl->ell_rank = in[i].rank - n_lab;
    }
    int32_t axes[QS_EIN_MAX_IN][QS_MAX_RANK];
    for (int32_t i = 0; i < p->n_in; i++) {
        qs_ein_dim_axes(p, i, in[i].rank, pl->ell_rank, axes[i]);
        for (int32_t d = 0; d < in[i].rank; d++)
            if (!qs_ein_bind(pl, axes[i][d], in[i].dims[d]))
                return qs_node_error(err, QS_ERR_SHAPE, n,
                                     "input %d: dim %d disagrees with another use of its label",
                                     (int)i, (int)d);
    }
    for (int32_t i = 0; i < p->n_in; i++) {
        int64_t stride = 1;
        /* a repeated label walks the diagonal: its strides add up; a broadcast dim stays put */
        for (int32_t d = in[i].rank - 1; d >= 0; d--) {
            int32_t ax = axes[i][d];
            pl->has[i][ax] = true;
            if (in[i].dims[d] == pl->size[ax])
                pl->stride[i][ax] += stride;
            stride *= in[i].dims[d];
        }
    }
    bool in_out[QS_EIN_AXES] = {false};
    for (int32_t k = 0; k < p->out_len; k++) {
        int32_t first = p->out[k] == QS_EIN_ELL ? QS_EIN_LETTERS : p->out[k];
        int32_t cnt = p->out[k] == QS_EIN_ELL ? pl->ell_rank : 1;
        for (int32_t ax = first; ax < first + cnt; ax++) {
            if (pl->n_out >= QS_MAX_RANK)
                return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "output rank is over %d",
                                     QS_MAX_RANK);
            pl->out_axes[pl->n_out++] = ax;
            in_out[ax] = true;
        }
    }
    /* the direct loop visits every combination of labels once: that count must fit */
    size_t work = 1;
    for (int32_t ax = 0; ax < QS_EIN_AXES; ax++) {
        if (!pl->used[ax])
            continue;
        if (!in_out[ax])
            pl->red_axes[pl->n_red++] = ax;
        if (!qs_mul_size(work, (size_t)pl->size[ax], &work) || work > ((size_t)1 << 48))
            return qs_node_error(err, QS_ERR_UNSUPPORTED, n,
                                 "the product of all label sizes is over 2^48");
    }
    return QS_OK;
}

/* ---- batched matrix product (two operands) ---- */

/* Axis groups of a two-operand einsum: out[batch, m, n] = sum_k a[batch, m, k] * b[batch, k, n]. */
typedef struct {
    int32_t n_batch, n_m, n_n, n_k;
    int32_t batch[QS_MAX_RANK], m[QS_MAX_RANK], nn[QS_MAX_RANK], k[QS_EIN_AXES];
    size_t nb, mm, nsz, kk;
    bool a_dense, b_dense, out_direct;   /* no copy needed: already in that layout */
    size_t a_bytes, b_bytes, c_bytes;    /* scratch for the copies (0 when dense or direct) */
} qs_ein_mm;

static size_t qs_ein_prod(const qs_ein_plan *pl, const int32_t *axes, int32_t count) {
    size_t p = 1;
    for (int32_t i = 0; i < count; i++)
        p *= (size_t)pl->size[axes[i]];
    return p;
}

/* Whether reading operand i at the groups' axes, in order, is reading it contiguously. */
static bool qs_ein_dense(const qs_ein_plan *pl, int32_t i, const int32_t *const *groups,
                         const int32_t *counts, int32_t n_groups) {
    int64_t expect = 1;
    for (int32_t g = n_groups - 1; g >= 0; g--) {
        for (int32_t a = counts[g] - 1; a >= 0; a--) {
            int32_t ax = groups[g][a];
            if (pl->size[ax] == 1)
                continue;
            if (pl->stride[i][ax] != expect)
                return false;
            expect *= pl->size[ax];
        }
    }
    return true;
}

static size_t qs_ein_round64(size_t x) { return (x + 63) & ~(size_t)63; }

/* The matrix-product form, when every summed axis is in both operands (else the copies could be
 * far larger than the inputs and the direct loop is used). */
static bool qs_ein_mm_make(const qs_ein_plan *pl, int32_t n_in, size_t esize, qs_ein_mm *mm) {
    memset(mm, 0, sizeof(*mm));
    if (n_in != 2)
        return false;
    for (int32_t o = 0; o < pl->n_out; o++) {
        int32_t ax = pl->out_axes[o];
        if (pl->has[0][ax] && pl->has[1][ax])
            mm->batch[mm->n_batch++] = ax;
        else if (pl->has[0][ax])
            mm->m[mm->n_m++] = ax;
        else
            mm->nn[mm->n_n++] = ax;
    }
    for (int32_t r = 0; r < pl->n_red; r++) {
        int32_t ax = pl->red_axes[r];
        if (!pl->has[0][ax] || !pl->has[1][ax])
            return false;
        mm->k[mm->n_k++] = ax;
    }
    mm->nb = qs_ein_prod(pl, mm->batch, mm->n_batch);
    mm->mm = qs_ein_prod(pl, mm->m, mm->n_m);
    mm->nsz = qs_ein_prod(pl, mm->nn, mm->n_n);
    mm->kk = qs_ein_prod(pl, mm->k, mm->n_k);
    const int32_t *ga[3] = {mm->batch, mm->m, mm->k}, *gb[3] = {mm->batch, mm->k, mm->nn};
    int32_t ca[3] = {mm->n_batch, mm->n_m, mm->n_k}, cb[3] = {mm->n_batch, mm->n_k, mm->n_n};
    mm->a_dense = qs_ein_dense(pl, 0, ga, ca, 3);
    mm->b_dense = qs_ein_dense(pl, 1, gb, cb, 3);
    /* the output is written in batch, m, n order: direct when that is the output's own order */
    mm->out_direct = true;
    for (int32_t o = 0; o < pl->n_out; o++) {
        int32_t want = o < mm->n_batch               ? mm->batch[o]
                       : o < mm->n_batch + mm->n_m ? mm->m[o - mm->n_batch]
                                                     : mm->nn[o - mm->n_batch - mm->n_m];
        mm->out_direct = mm->out_direct && want == pl->out_axes[o];
    }
    size_t a = 0, b = 0, c = 0;
    bool ok = qs_mul_size(mm->nb, mm->mm, &a) && qs_mul_size(a, mm->kk, &a) &&
              qs_mul_size(a, esize, &a) && qs_mul_size(mm->nb, mm->kk, &b) &&
              qs_mul_size(b, mm->nsz, &b) && qs_mul_size(b, esize, &b) &&
              qs_mul_size(mm->nb, mm->mm, &c) && qs_mul_size(c, mm->nsz, &c) &&
              qs_mul_size(c, esize, &c) && a < SIZE_MAX / 4 && b < SIZE_MAX / 4 &&
              c < SIZE_MAX / 4;
    if (!ok)
        return false;
    mm->a_bytes = mm->a_dense ? 0 : qs_ein_round64(a);
    mm->b_bytes = mm->b_dense ? 0 : qs_ein_round64(b);
    mm->c_bytes = mm->out_direct ? 0 : qs_ein_round64(c);
    return true;
}

/* One row of n elements between two strides, as typed loads and stores. */
#define QS_EIN_ROW(T)                                                                            \
    for (size_t i = 0; i < n; i++)                                                               \
        ((T *)(void *)dst)[od + i * dst_step] = ((const T *)(const void *)src)[os + i * src_step];

/* Copy prod(sizes) elements between two strided layouts: rows along the last dim, the others
 * walked like an odometer. */
static void qs_ein_copy(size_t esize, int32_t nd, const int64_t *sizes, char *dst,
                        const int64_t *dst_strides, const char *src, const int64_t *src_strides) {
    if (nd == 0) {
        memcpy(dst, src, esize);
        return;
    }
    int64_t idx[QS_EIN_AXES] = {0};
    size_t rows = 1, n = (size_t)sizes[nd - 1];
    size_t dst_step = (size_t)dst_strides[nd - 1], src_step = (size_t)src_strides[nd - 1];
    for (int32_t d = 0; d < nd - 1; d++)
        rows *= (size_t)sizes[d];
    size_t od = 0, os = 0;
    for (size_t r = 0; r < rows; r++) {
        switch (esize) {
        case 1: QS_EIN_ROW(uint8_t) break;
        case 2: QS_EIN_ROW(uint16_t) break;
        case 4: QS_EIN_ROW(uint32_t) break;
        case 8: QS_EIN_ROW(uint64_t) break;
        default:
            for (size_t i = 0; i < n; i++)
                memcpy(dst + (od + i * dst_step) * esize, src + (os + i * src_step) * esize,
                       esize);
            break;
        }
        for (int32_t d = nd - 2; d >= 0; d--) {
            od += (size_t)dst_strides[d];
            os += (size_t)src_strides[d];
            if (++idx[d] < sizes[d])
                break;
            od -= (size_t)(dst_strides[d] * sizes[d]);
            os -= (size_t)(src_strides[d] * sizes[d]);
            idx[d] = 0;
        }
    }
}
#undef QS_EIN_ROW

/* Gather operand i (or scatter the output when i < 0) between its own layout and the contiguous
 * order of the groups' axes. */
static void qs_ein_pack(const qs_ein_plan *pl, int32_t i, const int32_t *const *groups,
                        const int32_t *counts, int32_t n_groups, size_t esize, char *dst,
                        const char *src, const int64_t *out_strides) {
    int64_t sizes[QS_EIN_AXES], packed[QS_EIN_AXES], own[QS_EIN_AXES];
    int32_t nd = 0;
    for (int32_t g = 0; g < n_groups; g++) {
        for (int32_t a = 0; a < counts[g]; a++) {
            int32_t ax = groups[g][a];
            sizes[nd] = pl->size[ax];
            own[nd] = i >= 0 ? pl->stride[i][ax] : out_strides[ax];
            nd++;
        }
    }
    int64_t stride = 1;
    for (int32_t d = nd - 1; d >= 0; d--) {
        packed[d] = stride;
        stride *= sizes[d];
    }
    if (i >= 0)
        qs_ein_copy(esize, nd, sizes, dst, packed, src, own);
    else
        qs_ein_copy(esize, nd, sizes, dst, own, src, packed);
}

typedef struct {
    const void *a, *b;
    void *c;
    size_t m, k, n;
} qs_ein_mm_job;

/* Rows [begin, end) of the batch * m rows: c[row, :] = sum_t a[row, t] * b[batch, t, :].
 * Integers wrap around in uint64_t. */
#define QS_EIN_MM(E, T, S, MAC)                                                                  \
    static void qs_ein_mm_##S(void *ctx, size_t begin, size_t end) {                             \
        const qs_ein_mm_job *j = ctx;                                                            \
        for (size_t r = begin; r < end; r++) {                                                   \
            const T *a = (const T *)j->a + r * j->k;                                             \
            const T *b = (const T *)j->b + (r / j->m) * j->k * j->n;                             \
            T *c = (T *)j->c + r * j->n;                                                         \
            for (size_t x = 0; x < j->n; x++)                                                    \
                c[x] = 0;                                                                        \
            for (size_t t = 0; t < j->k; t++) {                                                  \
                T av = a[t];                                                                     \
                const T *br = b + t * j->n;                                                      \
                for (size_t x = 0; x < j->n; x++)                                                \
                    c[x] = (T)(MAC(c[x], av, br[x]));                                            \
            }                                                                                    \
        }                                                                                        \
    }

/* ---- direct loop (any operand count) ---- */

typedef struct {
    const qs_ein_plan *pl;
    int32_t n_in;
    const void *const *ins;
    void *out;
    size_t red_total;
} qs_ein_loop_job;

/* Output elements [begin, end): each sums the product of the operands over the summed axes. */
#define QS_EIN_LOOP(E, T, S, MAC, MUL)                                                                \
    static void qs_ein_loop_##S(void *ctx, size_t begin, size_t end) {                           \
        const qs_ein_loop_job *j = ctx;                                                          \
        const qs_ein_plan *pl = j->pl;                                                           \
        for (size_t o = begin; o < end; o++) {                                                   \
            size_t base[QS_EIN_MAX_IN] = {0}, rem = o;                                           \
            for (int32_t d = pl->n_out - 1; d >= 0; d--) {                                       \
                int32_t ax = pl->out_axes[d];                                                    \
                size_t id = rem % (size_t)pl->size[ax];                                          \
                rem /= (size_t)pl->size[ax];                                                     \
                for (int32_t i = 0; i < j->n_in; i++)                                            \
                    base[i] += id * (size_t)pl->stride[i][ax];                                   \
            }                                                                                    \
            int64_t idx[QS_EIN_AXES] = {0};                                                      \
            T acc = 0;                                                                           \
            for (size_t e = 0; e < j->red_total; e++) {                                          \
                T prod = ((const T *)j->ins[0])[base[0]];                                        \
                for (int32_t i = 1; i < j->n_in; i++)                                            \
                    prod = (T)(MUL(prod, ((const T *)j->ins[i])[base[i]]));                      \
                acc = (T)(MAC(acc, prod, 1));                                                    \
                for (int32_t d = pl->n_red - 1; d >= 0; d--) {                                   \
                    int32_t ax = pl->red_axes[d];                                                \
                    for (int32_t i = 0; i < j->n_in; i++)                                        \
                        base[i] += (size_t)pl->stride[i][ax];                                    \
                    if (++idx[d] < pl->size[ax])                                                 \
                        break;                                                                   \
                    for (int32_t i = 0; i < j->n_in; i++)                                        \
                        base[i] -= (size_t)(pl->stride[i][ax] * pl->size[ax]);                   \
                    idx[d] = 0;                                                                  \
                }                                                                                \
            }                                                                                    \
            ((T *)j->out)[o] = acc;                                                              \
        }                                                                                        \
    }

#define QS_EIN_MAC_FLOAT(ACC, X, Y) (ACC) + (X) * (Y)
#define QS_EIN_MUL_FLOAT(X, Y) (X) * (Y)
#define QS_EIN_MAC_INT(ACC, X, Y) (uint64_t)(ACC) + (uint64_t)(X) * (uint64_t)(Y)
#define QS_EIN_MUL_INT(X, Y) (uint64_t)(X) * (uint64_t)(Y)
#define QS_EIN_FLOAT(E, T, S)                                                                    \
    QS_EIN_MM(E, T, S, QS_EIN_MAC_FLOAT)                                                         \
    QS_EIN_LOOP(E, T, S, QS_EIN_MAC_FLOAT, QS_EIN_MUL_FLOAT)
#define QS_EIN_INT(E, T, S)                                                                      \
    QS_EIN_MM(E, T, S, QS_EIN_MAC_INT)                                                           \
    QS_EIN_LOOP(E, T, S, QS_EIN_MAC_INT, QS_EIN_MUL_INT)
QS_FOREACH_FLOAT_DTYPE(QS_EIN_FLOAT)
QS_FOREACH_INT_DTYPE(QS_EIN_INT)

static bool qs_ein_kernels(qs_dtype dtype, qs_range_fn *mm, qs_range_fn *loop) {
#define QS_EIN_CASE(E, T, S)                                                                     \
    case E:                                                                                      \
        *mm = qs_ein_mm_##S;                                                                     \
        *loop = qs_ein_loop_##S;                                                                 \
        return true;
    switch (dtype) {
        QS_FOREACH_NUMERIC_DTYPE(QS_EIN_CASE)
    default: return false;
    }
#undef QS_EIN_CASE
}

static qs_status qs_einsum_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                 qs_error *err) {
    qs_ein_plan pl;
    qs_range_fn mm, loop;
    for (int32_t i = 0; i < n->n_inputs; i++) {
        qs_status st = qs_op_need_plain(n, in, i, err);
        if (st != QS_OK)
            return st;
        if (in[i].dtype != in[0].dtype)
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "input %d is %s, input 0 is %s",
                                 (int)i, qs_dtype_name(in[i].dtype), qs_dtype_name(in[0].dtype));
    }
    if (!qs_ein_kernels(in[0].dtype, &mm, &loop))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    qs_status st = qs_ein_plan_make(n, in, &pl, err);
    if (st != QS_OK)
        return st;
    memset(&out[0], 0, sizeof(out[0]));
    out[0].dtype = in[0].dtype;
    out[0].rank = pl.n_out;
    for (int32_t d = 0; d < pl.n_out; d++)
        out[0].dims[d] = pl.size[pl.out_axes[d]];
    return qs_op_check_output(n, &out[0], err);
}

static size_t qs_einsum_scratch(const qs_node *n, const qs_view *in, const qs_view *out,
                                int32_t n_threads) {
    qs_ein_plan pl;
    qs_ein_mm mm;
    (void)out;
    (void)n_threads;
    if (qs_ein_plan_make(n, in, &pl, NULL) != QS_OK ||
        !qs_ein_mm_make(&pl, n->n_inputs, qs_dtype_size(in[0].dtype), &mm))
        return 0;
    return mm.a_bytes + mm.b_bytes + mm.c_bytes;
}

static qs_status qs_einsum_run(const qs_node *n, const qs_view *in, qs_view *out,
                               qs_exec_ctx *ctx) {
    qs_ein_plan pl;
    qs_ein_mm mm;
    qs_range_fn mm_fn, loop_fn;
    size_t es = qs_dtype_size(in[0].dtype);
    if (qs_ein_plan_make(n, in, &pl, NULL) != QS_OK || !qs_ein_kernels(in[0].dtype, &mm_fn, &loop_fn))
        return QS_ERR_INTERNAL;
    size_t out_numel = qs_view_numel(&out[0]);
    if (out_numel == 0)
        return QS_OK;
    if (qs_ein_mm_make(&pl, n->n_inputs, es, &mm) &&
        ctx->scratch_bytes >= mm.a_bytes + mm.b_bytes + mm.c_bytes) {
        char *scratch = ctx->scratch;
        const int32_t *ga[3] = {mm.batch, mm.m, mm.k}, *gb[3] = {mm.batch, mm.k, mm.nn};
        const int32_t *gc[3] = {mm.batch, mm.m, mm.nn};
        int32_t ca[3] = {mm.n_batch, mm.n_m, mm.n_k}, cb[3] = {mm.n_batch, mm.n_k, mm.n_n};
        int32_t cc[3] = {mm.n_batch, mm.n_m, mm.n_n};
        qs_ein_mm_job j = {in[0].data, in[1].data, out[0].data, mm.mm, mm.kk, mm.nsz};
        if (!mm.a_dense) {
            qs_ein_pack(&pl, 0, ga, ca, 3, es, scratch, in[0].data, NULL);
            j.a = scratch;
        }
        if (!mm.b_dense) {
            qs_ein_pack(&pl, 1, gb, cb, 3, es, scratch + mm.a_bytes, in[1].data, NULL);
            j.b = scratch + mm.a_bytes;
        }
        if (!mm.out_direct)
            j.c = scratch + mm.a_bytes + mm.b_bytes;
        qs_op_parallel(ctx->pool, ctx->n_threads, mm.nb * mm.mm, qs_op_grain(mm.kk * mm.nsz + 1),
                       mm_fn, &j);
        if (!mm.out_direct) {
            int64_t ostr[QS_EIN_AXES] = {0}, stride = 1;
            for (int32_t d = pl.n_out - 1; d >= 0; d--) {
                ostr[pl.out_axes[d]] = stride;
                stride *= pl.size[pl.out_axes[d]];
            }
            qs_ein_pack(&pl, -1, gc, cc, 3, es, out[0].data, j.c, ostr);
        }
        return QS_OK;
    }
    qs_ein_loop_job lj = {&pl, n->n_inputs, NULL, out[0].data, 1};
    const void *ins[QS_EIN_MAX_IN];
    for (int32_t i = 0; i < n->n_inputs; i++)
        ins[i] = in[i].data;
    lj.ins = ins;
    for (int32_t r = 0; r < pl.n_red; r++)
        lj.red_total *= (size_t)pl.size[pl.red_axes[r]];
    qs_op_parallel(ctx->pool, ctx->n_threads, out_numel,
                   qs_op_grain(lj.red_total * (size_t)n->n_inputs + 1), loop_fn, &lj);
    return QS_OK;
}

const qs_op qs_op_einsum = {
    .type = "Einsum",
    .domain = "",
    .min_inputs = 1,
    .max_inputs = QS_EIN_MAX_IN,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_einsum_init,
    .infer = qs_einsum_infer,
    .scratch_bytes = qs_einsum_scratch,
    .run = qs_einsum_run,
};
