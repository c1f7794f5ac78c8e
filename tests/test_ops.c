/* Operator tests: Mod, ScatterND and Einsum against loops written out here, on inputs fed at run
 * time (the ONNX backend cases freeze non-float inputs, so their ops run only as load-time
 * folding), Dropout in training mode with ratio 0, and the load errors of malformed nodes. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/onnx_builder.h"
#include "quantserve/engine.h"

/* ---- one-node models ---- */

typedef struct {
    const char *name;
    qs_dtype dtype;
    int32_t rank;
    int64_t dims[QS_MAX_RANK];
    const void *data;
} op_input;

/* A model of one node `op` reading the given graph inputs, output "y". */
static qst_node *one_node(qst_model **m, int64_t opset, const char *op, const op_input *ins,
                          size_t n_in) {
    char names[256] = "";
    *m = qst_model_create(opset);
    for (size_t i = 0; i < n_in; i++) {
        qst_model_input(*m, ins[i].name, ins[i].dtype, ins[i].rank, ins[i].dims);
        if (i)
            strcat(names, ",");
        strcat(names, ins[i].name);
    }
    qst_model_output(*m, "y");
    return qst_model_node(*m, op, names, "y");
}

/* Load m and run it once on ins: QS_OK with a malloc'ed copy of the output in *out (its shape in
 * *shape), or the load/run status with the error in *err. */
static qs_status load_run(qst_model *m, const op_input *ins, size_t n_in, int threads,
                          qs_tensor *shape, void **out, qs_error *err) {
    size_t size;
    uint8_t *buf = qst_model_pack(m, &size);
    qs_model *model = NULL;
    qs_session *s = NULL;
    qs_session_options so;
    qs_tensor t[8];
    qs_error_clear(err);
    *out = NULL;
    qs_status st = qs_model_load_memory(buf, size, NULL, &model, err);
    free(buf);
    if (st != QS_OK)
        return st;
    qs_session_options_init(&so);
    so.threads = threads;
    ck_assert_int_eq(qs_session_create(model, &so, &s, err), QS_OK);
    for (size_t i = 0; i < n_in; i++) {
        memset(&t[i], 0, sizeof(t[i]));
        t[i].dtype = ins[i].dtype;
        t[i].rank = ins[i].rank;
        memcpy(t[i].dims, ins[i].dims, sizeof(int64_t) * (size_t)ins[i].rank);
        t[i].data = (void *)ins[i].data;
    }
    st = qs_session_run(s, t, n_in, err);
    if (st == QS_OK) {
        ck_assert_int_eq(qs_session_output(s, 0, shape), QS_OK);
        size_t bytes = qs_tensor_numel(shape) * qs_dtype_size(shape->dtype);
        *out = malloc(bytes ? bytes : 1);
        memcpy(*out, shape->data, bytes);
        shape->data = NULL;
    }
    qs_session_free(s);
    qs_model_free(model);
    return st;
}

static void assert_close(const float *got, const float *want, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-5f + 1e-5f * fabsf(want[i]),
                      "%s: element %zu is %g, want %g", what, i, (double)got[i],
                      (double)want[i]);
}

/* ---- Mod ---- */

/* Mod(a, b) with the given fmod on ins; the malloc'ed output, its shape in *shape. */
static void *run_mod(const op_input *ins, int64_t fmod, qs_tensor *shape) {
    qst_model *m;
    void *out;
    qs_error err;
    qst_node_int(one_node(&m, 13, "Mod", ins, 2), "fmod", fmod);
    qs_status st = load_run(m, ins, 2, 1, shape, &out, &err);
    ck_assert_msg(st == QS_OK, "%s: %s", err.where, err.message);
    qst_model_free(m);
    return out;
}

START_TEST(test_mod_float_sign_and_special_values) {
    const float a[] = {5.5f, -5.5f, 5.5f, -5.5f, 6.0f, -6.0f, 3.0f, -3.0f, 1.0f, INFINITY};
    const float b[] = {2.0f, 2.0f, -2.0f, -2.0f, 3.0f, 3.0f, INFINITY, INFINITY, 0.0f, 2.0f};
    /* Python's %: the sign of the divisor, zero remainders included */
    const float want_mod[] = {1.5f, 0.5f, -0.5f, -1.5f, 0.0f, 0.0f, 3.0f, INFINITY, NAN, NAN};
    const float want_fmod[] = {1.5f, -1.5f, 1.5f, -1.5f, 0.0f, -0.0f, 3.0f, -3.0f, NAN, NAN};
    op_input ins[2] = {{"a", QS_DTYPE_FLOAT32, 1, {10}, a}, {"b", QS_DTYPE_FLOAT32, 1, {10}, b}};
    for (int fm = 0; fm <= 1; fm++) {
        qs_tensor shape;
        void *out = run_mod(ins, fm, &shape);
        const float *want = fm ? want_fmod : want_mod;
        const float *got = out;
        for (int i = 0; i < 10; i++) {
            if (isnan(want[i])) {
                ck_assert_msg(isnan(got[i]), "fmod=%d element %d: %g", fm, i, (double)got[i]);
                continue;
            }
            ck_assert_msg(got[i] == want[i] && signbit(got[i]) == signbit(want[i]),
                          "fmod=%d element %d: %g, want %g", fm, i, (double)got[i],
                          (double)want[i]);
        }
        free(out);
    }
}
END_TEST

START_TEST(test_mod_int_edges_and_broadcast) {
    /* a is 2x3, b broadcasts along rows; INT32_MIN % -1 and division by 0 must not trap */
    const int32_t a[] = {7, -7, INT32_MIN, 7, -7, 12};
    const int32_t b[] = {-3, -1, 0};
    const int32_t want_mod[] = {-2, 0, 0, -2, 0, 0};
    const int32_t want_fmod[] = {1, 0, 0, 1, 0, 0};
    op_input ins[2] = {{"a", QS_DTYPE_INT32, 2, {2, 3}, a}, {"b", QS_DTYPE_INT32, 1, {3}, b}};
    for (int fm = 0; fm <= 1; fm++) {
        qs_tensor shape;
        void *out = run_mod(ins, fm, &shape);
        ck_assert_int_eq(shape.rank, 2);
        ck_assert_int_eq(shape.dims[1], 3);
        ck_assert_mem_eq(out, fm ? want_fmod : want_mod, sizeof(want_mod));
        free(out);
    }
    qst_model *m;
    qst_node_int(one_node(&m, 13, "Mod", ins, 2), "fmod", 2);
    qs_tensor shape;
    void *out;
    qs_error err;
    ck_assert_int_eq(load_run(m, ins, 2, 1, &shape, &out, &err), QS_ERR_MALFORMED_MODEL);
    ck_assert_ptr_nonnull(strstr(err.where, "Mod"));
    qst_model_free(m);
}
END_TEST

/* ---- Dropout in training mode ---- */

/* Dropout(x, ratio, training_mode=true) with ratio and training_mode frozen as constants. */
static qs_status training_dropout(float ratio, const float *x, float *y, qs_error *err) {
    qst_model *b = qst_model_create(13);
    int64_t dims[1] = {5}, none[1] = {0};
    qst_model_input(b, "x", QS_DTYPE_FLOAT32, 1, dims);
    qst_model_input(b, "ratio", QS_DTYPE_FLOAT32, 0, none);
    qst_model_input(b, "training_mode", QS_DTYPE_BOOL, 0, none);
    qst_model_output(b, "y");
    qst_model_output(b, "mask");
    qst_model_node(b, "Dropout", "x,ratio,training_mode", "y,mask");
    size_t size;
    uint8_t *buf = qst_model_pack(b, &size);
    qst_model_free(b);
    uint8_t on = 1;
    const char *const names[2] = {"ratio", "training_mode"};
    qs_tensor frozen[2] = {{.dtype = QS_DTYPE_FLOAT32, .rank = 0, .data = &ratio},
                           {.dtype = QS_DTYPE_BOOL, .rank = 0, .data = &on}};
    qs_model_options o;
    qs_model *m = NULL;
    qs_session *s = NULL;
    qs_model_options_init(&o);
    o.frozen_input_names = names;
    o.frozen_inputs = frozen;
    o.frozen_input_count = 2;
    qs_error_clear(err);
    qs_status st = qs_model_load_memory(buf, size, &o, &m, err);
    free(buf);
    if (st != QS_OK)
        return st;
    ck_assert_int_eq(qs_session_create(m, NULL, &s, err), QS_OK);
    qs_tensor in = {.dtype = QS_DTYPE_FLOAT32, .rank = 1, .dims = {5}, .data = (void *)x};
    st = qs_session_run(s, &in, 1, err);
    qs_tensor out, mask;
    if (st == QS_OK) {
        ck_assert_int_eq(qs_session_output(s, 0, &out), QS_OK);
        ck_assert_int_eq(qs_session_output(s, 1, &mask), QS_OK);
        ck_assert_int_eq(mask.dtype, QS_DTYPE_BOOL);
        for (int i = 0; i < 5; i++)
            ck_assert_int_eq(((const uint8_t *)mask.data)[i], 1);
        memcpy(y, out.data, 5 * sizeof(float));
    }
    qs_session_free(s);
    qs_model_free(m);
    return st;
}

START_TEST(test_dropout_training_ratio_zero_is_identity) {
    const float x[5] = {1.5f, -2.0f, 0.0f, 3.25f, -0.5f};
    float y[5];
    qs_error err;
    ck_assert_int_eq(training_dropout(0.0f, x, y, &err), QS_OK);
    ck_assert_mem_eq(y, x, sizeof(x));
    /* any other ratio drops at random: refused at load, naming the node */
    ck_assert_int_eq(training_dropout(0.1f, x, y, &err), QS_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.where, "Dropout"));
}
END_TEST

/* ---- Conv -> Sigmoid -> Mul fused into a SiLU activation ---- */

/* x [1, 3, 9, 7] -> Conv 3x3 pad 1 (4 channels, bias) -> c; then y = c * Sigmoid(c) (shape 0:
 * Mul(c, s), 1: Mul(s, c), 2: Mul(c, s) + c, where c has a third reader and must stay unfused,
 * 3: the Conv alone). */
static uint8_t *build_silu(int shape, size_t *size) {
    qst_model *m = qst_model_create(13);
    int64_t xd[4] = {1, 3, 9, 7}, wd[4] = {4, 3, 3, 3}, bd[1] = {4}, pads[4] = {1, 1, 1, 1};
    float w[4 * 3 * 9], b[4];
    qst_fill_random(w, 4 * 3 * 9, 11, -0.6f, 0.6f);
    qst_fill_random(b, 4, 12, -0.5f, 0.5f);
    qst_model_input(m, "x", QS_DTYPE_FLOAT32, 4, xd);
    qst_model_init_f32(m, "w", 4, wd, w);
    qst_model_init_f32(m, "b", 1, bd, b);
    qst_model_output(m, "y");
    qst_node_ints(qst_model_node(m, "Conv", "x,w,b", shape == 3 ? "y" : "c"), "pads", 4, pads);
    if (shape != 3)
        qst_model_node(m, "Sigmoid", "c", "s");
    if (shape == 0 || shape == 1)
        qst_model_node(m, "Mul", shape == 0 ? "c,s" : "s,c", "y");
    if (shape == 2) {
        qst_model_node(m, "Mul", "c,s", "p");
        qst_model_node(m, "Add", "p,c", "y");
    }
    uint8_t *buf = qst_model_pack(m, size);
    qst_model_free(m);
    return buf;
}

/* Output of build_silu(shape) on x, at an optimization level; node count in *nodes. */
static float *run_silu(int shape, qs_optimize_level level, const float *x, uint64_t *nodes) {
    size_t size;
    uint8_t *buf = build_silu(shape, &size);
    qs_model_options o;
    qs_model *m = NULL;
    qs_session *s = NULL;
    qs_error err;
    qs_model_options_init(&o);
    o.optimize = level;
    qs_error_clear(&err);
    ck_assert_msg(qs_model_load_memory(buf, size, &o, &m, &err) == QS_OK, "%s: %s", err.where,
                  err.message);
    free(buf);
    qs_model_info info;
    qs_model_get_info(m, &info);
    *nodes = info.node_count;
    ck_assert_int_eq(qs_session_create(m, NULL, &s, &err), QS_OK);
    qs_tensor in = {.dtype = QS_DTYPE_FLOAT32, .rank = 4, .dims = {1, 3, 9, 7}, .data = (void *)x};
    ck_assert_int_eq(qs_session_run(s, &in, 1, &err), QS_OK);
    qs_tensor out;
    ck_assert_int_eq(qs_session_output(s, 0, &out), QS_OK);
    ck_assert_uint_eq(qs_tensor_numel(&out), 4 * 9 * 7);
    float *y = malloc(4 * 9 * 7 * sizeof(float));
    memcpy(y, out.data, 4 * 9 * 7 * sizeof(float));
    qs_session_free(s);
    qs_model_free(m);
    return y;
}

START_TEST(test_conv_silu_fusion) {
    float x[3 * 9 * 7];
    uint64_t plain_nodes, nodes, ref_nodes;
    qst_fill_random(x, 3 * 9 * 7, 13, -4.0f, 4.0f);
    free(run_silu(3, QS_OPTIMIZE_ALL, x, &plain_nodes));
    for (int shape = 0; shape < 3; shape++) {
        float *ref = run_silu(shape, QS_OPTIMIZE_NONE, x, &ref_nodes);
        float *got = run_silu(shape, QS_OPTIMIZE_ALL, x, &nodes);
        assert_close(got, ref, 4 * 9 * 7, shape == 2 ? "silu, third reader" : "silu");
        /* fused: as many nodes as the Conv alone; with a third reader Sigmoid and Mul stay */
        if (shape < 2)
            ck_assert_uint_eq(nodes, plain_nodes);
        else
            ck_assert_uint_eq(nodes, plain_nodes + 3);
        free(ref);
        free(got);
    }
}
END_TEST

/* ---- ScatterND ---- */

static qs_status scatter(const char *reduction, const float *data, const int64_t *idx,
                         int64_t n_idx, const float *upd, float *got, qs_error *err) {
    /* data 4x3, indices n_idx x 1 (rows), updates n_idx x 3 */
    op_input ins[3] = {{"data", QS_DTYPE_FLOAT32, 2, {4, 3}, data},
                       {"indices", QS_DTYPE_INT64, 2, {n_idx, 1}, idx},
                       {"updates", QS_DTYPE_FLOAT32, 2, {n_idx, 3}, upd}};
    qst_model *m;
    qst_node *n = one_node(&m, 18, "ScatterND", ins, 3);
    if (reduction)
        qst_node_string(n, "reduction", reduction);
    qs_tensor shape;
    void *out;
    qs_status st = load_run(m, ins, 3, 1, &shape, &out, err);
    if (st == QS_OK) {
        memcpy(got, out, 12 * sizeof(float));
        free(out);
    }
    qst_model_free(m);
    return st;
}

START_TEST(test_scatternd_reductions) {
    const float data[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    /* rows 1, -1 (= 3) and 1 again: duplicates combine in order */
    const int64_t idx[3] = {1, -1, 1};
    const float upd[9] = {10, 0, 5, -1, 20, 3, 2, 7, 1};
    static const struct {
        const char *reduction;
        float row1[3], row3[3];
    } cases[] = {
        {NULL, {2, 7, 1}, {-1, 20, 3}},
        {"add", {16, 12, 12}, {9, 31, 15}},
        {"mul", {80, 0, 30}, {-10, 220, 36}},
        {"max", {10, 7, 6}, {10, 20, 12}},
        {"min", {2, 0, 1}, {-1, 11, 3}},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        float got[12], want[12];
        qs_error err;
        memcpy(want, data, sizeof(want));
        memcpy(want + 3, cases[c].row1, sizeof(cases[c].row1));
        memcpy(want + 9, cases[c].row3, sizeof(cases[c].row3));
        ck_assert_int_eq(scatter(cases[c].reduction, data, idx, 3, upd, got, &err), QS_OK);
        assert_close(got, want, 12, cases[c].reduction ? cases[c].reduction : "none");
    }
}
END_TEST

START_TEST(test_scatternd_bad_indices_and_shapes) {
    const float data[12] = {0}, upd[9] = {0};
    float got[12];
    qs_error err;
    const int64_t too_big[3] = {0, 4, 1}, too_small[3] = {-5, 0, 0};
    ck_assert_int_eq(scatter(NULL, data, too_big, 3, upd, got, &err), QS_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(scatter("add", data, too_small, 3, upd, got, &err),
                     QS_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(scatter("avg", data, too_big, 3, upd, got, &err), QS_ERR_MALFORMED_MODEL);
    ck_assert_ptr_nonnull(strstr(err.where, "ScatterND"));
    /* updates that do not match indices.shape[:-1] + data.shape[k:] */
    op_input ins[3] = {{"data", QS_DTYPE_FLOAT32, 2, {4, 3}, data},
                       {"indices", QS_DTYPE_INT64, 2, {3, 1}, too_big},
                       {"updates", QS_DTYPE_FLOAT32, 2, {3, 2}, upd}};
    qst_model *m;
    one_node(&m, 13, "ScatterND", ins, 3);
    qs_tensor shape;
    void *out;
    ck_assert_int_eq(load_run(m, ins, 3, 1, &shape, &out, &err), QS_ERR_SHAPE);
    qst_model_free(m);
}
END_TEST

/* ---- Einsum ---- */

/* Split a reference equation "ab,bc->ac" into its input terms (NUL-terminated, at most
 * max_terms of up to 15 letters); returns how many and points *outs at the output term. */
static int split_terms(const char *eq, char terms[][16], int max_terms, const char **outs) {
    int n = 0, len = 0;
    memset(terms, 0, sizeof(terms[0]) * (size_t)max_terms);
    for (; *eq != '-'; eq++) {
        if (*eq == ',') {
            n++;
            len = 0;
        } else {
            ck_assert(n < max_terms && len < 15);
            terms[n][len++] = *eq;
        }
    }
    *outs = eq + 2;
    return n + 1;
}

/* Reference: out[o] = sum over every assignment of the labels of prod in_k[...], by brute
 * force over all labels. eq is letters only with an explicit output; sizes per letter. */
static void einsum_ref(const char *eq, const int64_t *size, const float *const *ins, float *out) {
    char terms[4][16];
    const char *outs;
    const int n_in = split_terms(eq, terms, 4, &outs);
    char labels[32];
    int nl = 0;
    for (const char *p = eq; *p; p++)
        if (*p >= 'a' && *p <= 'z' && !memchr(labels, *p, (size_t)nl))
            labels[nl++] = *p;
    int64_t idx[32] = {0}, total = 1, out_n = 1;
    for (int l = 0; l < nl; l++)
        total *= size[labels[l] - 'a'];
    for (const char *p = outs; *p; p++)
        out_n *= size[*p - 'a'];
    for (int64_t o = 0; o < out_n; o++)
        out[o] = 0;
    for (int64_t e = 0; e < total; e++) {
        int64_t rem = e, val[26];
        for (int l = nl - 1; l >= 0; l--) {
            idx[l] = rem % size[labels[l] - 'a'];
            rem /= size[labels[l] - 'a'];
            val[labels[l] - 'a'] = idx[l];
        }
        double prod = 1;
        for (int k = 0; k < n_in; k++) {
            int64_t off = 0;
            for (const char *p = terms[k]; *p; p++)
                off = off * size[*p - 'a'] + val[*p - 'a'];
            prod *= (double)ins[k][off];
        }
        int64_t off = 0;
        for (const char *p = outs; *p; p++)
            off = off * size[*p - 'a'] + val[*p - 'a'];
        out[off] += (float)prod;
    }
}

typedef struct {
    const char *eq;          /* given to the engine */
    const char *ref_eq;      /* for einsum_ref: letters only, explicit (the same after broadcast) */
    int n_in;
    int32_t rank[3];
    int64_t dims[3][QS_MAX_RANK];
    int64_t size[26];        /* ref sizes by letter */
    int32_t out_rank;
    int64_t out_dims[QS_MAX_RANK];
} ein_case;

/* Broadcast src (rank r, dims) into dst of the reference's dims for operand k (same rank here:
 * size-1 dims repeat). */
static void broadcast_to(const float *src, int32_t r, const int64_t *dims, const int64_t *to,
                         float *dst) {
    int64_t total = 1;
    for (int32_t d = 0; d < r; d++)
        total *= to[d];
    for (int64_t e = 0; e < total; e++) {
        int64_t rem = e, off = 0, stride = 1;
        for (int32_t d = r - 1; d >= 0; d--) {
            int64_t i = rem % to[d];
            rem /= to[d];
            off += (dims[d] == 1 ? 0 : i) * stride;
            stride *= dims[d];
        }
        dst[e] = src[off];
    }
}

static void run_einsum_case(const ein_case *tc, int threads) {
    float *data[3], *bcast[3];
    op_input ins[3];
    static const char *names[3] = {"a", "b", "c"};
    char tmp[3][16];
    const char *ref_out;
    ck_assert_int_eq(split_terms(tc->ref_eq, tmp, 3, &ref_out), tc->n_in);
    for (int k = 0; k < tc->n_in; k++) {
        size_t n = 1;
        for (int32_t d = 0; d < tc->rank[k]; d++)
            n *= (size_t)tc->dims[k][d];
        data[k] = malloc(n * sizeof(float) + 1);
        qst_fill_random(data[k], n, 7u + (uint32_t)k, -1.0f, 1.0f);
        ins[k] = (op_input){names[k], QS_DTYPE_FLOAT32, tc->rank[k], {0}, data[k]};
        memcpy(ins[k].dims, tc->dims[k], sizeof(int64_t) * (size_t)tc->rank[k]);
        /* the reference's operand: size-1 dims repeated to the label's size */
        int64_t to[QS_MAX_RANK], total = 1;
        int32_t r = (int32_t)strlen(tmp[k]);
        ck_assert_int_eq(r, tc->rank[k]);
        for (int32_t d = 0; d < r; d++) {
            to[d] = tc->size[tmp[k][d] - 'a'];
            total *= to[d];
        }
        bcast[k] = malloc((size_t)total * sizeof(float) + 1);
        broadcast_to(data[k], r, tc->dims[k], to, bcast[k]);
    }
    size_t out_n = 1;
    for (int32_t d = 0; d < tc->out_rank; d++)
        out_n *= (size_t)tc->out_dims[d];
    float *want = malloc(out_n * sizeof(float) + 1);
    einsum_ref(tc->ref_eq, tc->size, (const float *const *)bcast, want);

    qst_model *m;
    qst_node_string(one_node(&m, 13, "Einsum", ins, (size_t)tc->n_in), "equation", tc->eq);
    qs_tensor shape;
    void *out;
    qs_error err;
    qs_status st = load_run(m, ins, (size_t)tc->n_in, threads, &shape, &out, &err);
    ck_assert_msg(st == QS_OK, "%s: %s: %s", tc->eq, err.where, err.message);
    ck_assert_int_eq(shape.rank, tc->out_rank);
    for (int32_t d = 0; d < tc->out_rank; d++)
        ck_assert_int_eq(shape.dims[d], tc->out_dims[d]);
    assert_close(out, want, out_n, tc->eq);
    free(out);
    free(want);
    qst_model_free(m);
    for (int k = 0; k < tc->n_in; k++) {
        free(data[k]);
        free(bcast[k]);
    }
}

static const ein_case ein_cases[] = {
    /* MaxViT's attention: batched product over shared leading labels, spaces, capitals */
    {"B G H I D, B G H J D -> B G H I J", "bghid,bghjd->bghij", 2, {5, 5},
     {{2, 3, 2, 5, 4}, {2, 3, 2, 6, 4}}, {['b' - 'a'] = 2, ['g' - 'a'] = 3, ['h' - 'a'] = 2,
                                          ['i' - 'a'] = 5, ['j' - 'a'] = 6, ['d' - 'a'] = 4},
     5, {2, 3, 2, 5, 6}},
    {"B G H I J, B G H J D -> B G H I D", "bghij,bghjd->bghid", 2, {5, 5},
     {{2, 3, 2, 5, 6}, {2, 3, 2, 6, 4}}, {['b' - 'a'] = 2, ['g' - 'a'] = 3, ['h' - 'a'] = 2,
                                          ['i' - 'a'] = 5, ['j' - 'a'] = 6, ['d' - 'a'] = 4},
     5, {2, 3, 2, 5, 4}},
    /* output in an order the product does not produce: copied out */
    {"ij,jk->ki", "ij,jk->ki", 2, {2, 2}, {{3, 4}, {4, 5}},
     {['i' - 'a'] = 3, ['j' - 'a'] = 4, ['k' - 'a'] = 5}, 2, {5, 3}},
    /* a size-1 batch dim broadcasts */
    {"bij,bjk->bik", "bij,bjk->bik", 2, {3, 3}, {{1, 3, 4}, {2, 4, 5}},
     {['b' - 'a'] = 2, ['i' - 'a'] = 3, ['j' - 'a'] = 4, ['k' - 'a'] = 5}, 3, {2, 3, 5}},
    /* ellipsis with broadcasting between operands of different ellipsis ranks */
    {"...ij,...jk->...ik", "xij,yxjk->yxik", 2, {3, 4}, {{2, 3, 4}, {5, 1, 4, 2}},
     {['y' - 'a'] = 5, ['x' - 'a'] = 2, ['i' - 'a'] = 3, ['j' - 'a'] = 4, ['k' - 'a'] = 2}, 4,
     {5, 2, 3, 2}},
    /* implicit output: labels seen once, sorted; the ellipsis first */
    {"ba,ac", "ba,ac->bc", 2, {2, 2}, {{3, 4}, {4, 2}},
     {['b' - 'a'] = 3, ['a' - 'a'] = 4, ['c' - 'a'] = 2}, 2, {3, 2}},
    {"...a,a", "xa,a->x", 2, {2, 1}, {{3, 4}, {4}}, {['x' - 'a'] = 3, ['a' - 'a'] = 4}, 1,
     {3}},
    /* diagonal, trace, sum, transpose on one operand */
    {"ii->i", "ii->i", 1, {2}, {{4, 4}}, {['i' - 'a'] = 4}, 1, {4}},
    {"ii", "ii->", 1, {2}, {{4, 4}}, {['i' - 'a'] = 4}, 0, {0}},
    {"ij->", "ij->", 1, {2}, {{3, 5}}, {['i' - 'a'] = 3, ['j' - 'a'] = 5}, 0, {0}},
    {"ijk->kij", "ijk->kij", 1, {3}, {{2, 3, 4}},
     {['i' - 'a'] = 2, ['j' - 'a'] = 3, ['k' - 'a'] = 4}, 3, {4, 2, 3}},
    /* repeated label inside a two-operand product: batch diagonal times a matrix */
    {"bii,bij->bj", "bii,bij->bj", 2, {3, 3}, {{2, 3, 3}, {2, 3, 4}},
     {['b' - 'a'] = 2, ['i' - 'a'] = 3, ['j' - 'a'] = 4}, 2, {2, 4}},
    /* a label summed in one operand only, and an outer product: the direct loop */
    {"ab,cd->", "ab,cd->", 2, {2, 2}, {{2, 3}, {4, 2}},
     {['a' - 'a'] = 2, ['b' - 'a'] = 3, ['c' - 'a'] = 4, ['d' - 'a'] = 2}, 0, {0}},
    {"i,j->ij", "i,j->ij", 2, {1, 1}, {{3}, {4}}, {['i' - 'a'] = 3, ['j' - 'a'] = 4}, 2,
     {3, 4}},
    /* three operands */
    {"ij,jk,kl->il", "ij,jk,kl->il", 3, {2, 2, 2}, {{2, 3}, {3, 4}, {4, 5}},
     {['i' - 'a'] = 2, ['j' - 'a'] = 3, ['k' - 'a'] = 4, ['l' - 'a'] = 5}, 2, {2, 5}},
};

/* NCHW -> NHWC of images (the input transposes): batch 1 (a 2-D transpose once unit dims go)
 * and 2, 1 to 5 channels, uint8 and float, one and three threads (row ranges that start inside
 * the data), against the index formula. */
START_TEST(test_transpose_nchw_to_nhwc) {
    static const int64_t chans[] = {1, 3, 4, 5};
    for (size_t ci = 0; ci < sizeof chans / sizeof chans[0]; ci++)
        for (int f = 0; f < 4; f++)
            for (int threads = 1; threads <= 3; threads += 2) {
                const int64_t n = 1 + f / 2, c = chans[ci], h = 37, w = 41;
                const size_t total = (size_t)(n * c * h * w), es = f % 2 ? 4 : 1;
                unsigned char *x = malloc(total * es);
                for (size_t i = 0; i < total; i++) {
                    if (f % 2)
                        ((float *)(void *)x)[i] = (float)i * 0.5f;
                    else
                        x[i] = (unsigned char)(i * 7 + 3);
                }
                op_input in = {"x", f % 2 ? QS_DTYPE_FLOAT32 : QS_DTYPE_UINT8, 4, {n, c, h, w}, x};
                qst_model *m;
                const int64_t perm[] = {0, 2, 3, 1};
                qst_node_ints(one_node(&m, 13, "Transpose", &in, 1), "perm", 4, perm);
                qs_tensor shape;
                void *out;
                qs_error err;
                ck_assert_int_eq(load_run(m, &in, 1, threads, &shape, &out, &err), QS_OK);
                ck_assert_int_eq(shape.dims[3], c);
                for (int64_t b = 0; b < n; b++)
                    for (int64_t y = 0; y < h; y++)
                        for (int64_t xx = 0; xx < w; xx++)
                            for (int64_t k = 0; k < c; k++) {
                                const size_t o = (size_t)(((b * h + y) * w + xx) * c + k);
                                const size_t i = (size_t)(((b * c + k) * h + y) * w + xx);
                                ck_assert_msg(memcmp((unsigned char *)out + o * es, x + i * es,
                                                     es) == 0,
                                              "n %d c %d %s threads %d: element %zu", (int)n,
                                              (int)c, f % 2 ? "float" : "uint8", threads, o);
                            }
                free(out);
                free(x);
                qst_model_free(m);
            }
}
END_TEST

START_TEST(test_einsum_matches_reference) {
    const ein_case *tc = &ein_cases[_i];
    run_einsum_case(tc, 1);
    run_einsum_case(tc, 3);
}
END_TEST

START_TEST(test_einsum_bad_equations) {
    static const struct {
        const char *eq;
        int n_in;
        qs_status st;
    } bad[] = {
        {"ij,jk->ik", 1, QS_ERR_MALFORMED_MODEL},   /* two terms, one input */
        {"ij->k", 1, QS_ERR_MALFORMED_MODEL},       /* output label in no input */
        {"ij->ii", 1, QS_ERR_MALFORMED_MODEL},      /* repeated output label */
        {"i.j->i", 1, QS_ERR_MALFORMED_MODEL},      /* stray dot */
        {"i1->i", 1, QS_ERR_MALFORMED_MODEL},       /* not a label */
        {"ij-i", 1, QS_ERR_MALFORMED_MODEL},        /* '-' without '>' */
        {"ijk->ijk", 1, QS_ERR_SHAPE},              /* rank 2 input for three labels */
        {"ij,jk->ik", 2, QS_ERR_SHAPE},             /* j is 3 in one operand, 4 in the other */
        {"abcdefghij->a", 1, QS_ERR_UNSUPPORTED},   /* over QS_MAX_RANK labels */
    };
    const float x[16] = {0};
    for (size_t c = 0; c < sizeof(bad) / sizeof(bad[0]); c++) {
        op_input ins[2] = {{"a", QS_DTYPE_FLOAT32, 2, {2, 3}, x},
                           {"b", QS_DTYPE_FLOAT32, 2, {4, 2}, x}};
        qst_model *m;
        qst_node_string(one_node(&m, 13, "Einsum", ins, (size_t)bad[c].n_in), "equation",
                        bad[c].eq);
        qs_tensor shape;
        void *out;
        qs_error err;
        qs_status st = load_run(m, ins, (size_t)bad[c].n_in, 1, &shape, &out, &err);
        ck_assert_msg(st == bad[c].st, "\"%s\": status %d (%s: %s), want %d", bad[c].eq,
                      (int)st, err.where, err.message, (int)bad[c].st);
        ck_assert_ptr_nonnull(strstr(err.where, "Einsum"));
        qst_model_free(m);
    }
    /* an outer product of two 10^15-element inputs would loop 10^30 times: refused at load */
    op_input huge[2] = {{"a", QS_DTYPE_FLOAT32, 3, {100000, 100000, 100000}, x},
                        {"b", QS_DTYPE_FLOAT32, 3, {100000, 100000, 100000}, x}};
    qst_model *m;
    qst_node_string(one_node(&m, 13, "Einsum", huge, 2), "equation", "abc,def->");
    qs_tensor shape;
    void *out;
    qs_error err;
    ck_assert_int_eq(load_run(m, huge, 2, 1, &shape, &out, &err), QS_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.message, "2^48"));
    qst_model_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_mod_float_sign_and_special_values);
    tcase_add_test(tc, test_mod_int_edges_and_broadcast);
    tcase_add_test(tc, test_dropout_training_ratio_zero_is_identity);
    tcase_add_test(tc, test_conv_silu_fusion);
    tcase_add_test(tc, test_scatternd_reductions);
    tcase_add_test(tc, test_scatternd_bad_indices_and_shapes);
    tcase_add_loop_test(tc, test_einsum_matches_reference, 0,
                        (int)(sizeof(ein_cases) / sizeof(ein_cases[0])));
    tcase_add_test(tc, test_einsum_bad_equations);
    tcase_add_test(tc, test_transpose_nchw_to_nhwc);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
