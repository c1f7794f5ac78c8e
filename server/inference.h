/* One prediction job as a worker runs it: decode, preprocess, run the session, softmax, top-k. */
#ifndef QS_SERVER_INFERENCE_H
#define QS_SERVER_INFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "api_status.h"
#include "image.h"
#include "registry.h"

typedef struct {
    int32_t index;
    float score; /* softmax probability, or the raw output when the model's softmax is off */
} qs_prediction;

/*
 * A job lives inside its request (no allocation per job). The submitter fills the inputs; the
 * worker fills the outputs, then calls done(job) exactly once from the worker thread. After done
 * returns the worker never touches the job again.
 */
typedef struct qs_job {
    /* inputs */
    const uint8_t *data;          /* encoded image: a view into the request body */
    size_t size;
    qs_variant *variant;          /* READY when submitted */
    int32_t topk;                 /* 1..class_count */
    qs_prediction *predictions;   /* room for topk entries, owned by the submitter */
    uint64_t submit_ns;           /* set by qs_workers_submit */
    uint64_t deadline_ns;         /* give up (TIMEOUT) when a worker picks it up later than this */
    void (*done)(struct qs_job *job);
    void *user;
    /* outputs */
    int32_t prediction_count;
    uint64_t queue_ns, decode_ns, preprocess_ns, inference_ns;
    uint32_t image_width, image_height;
    qs_api_error error;           /* status OK on success */
} qs_job;

/* What a worker keeps between jobs so the hot path reuses memory instead of allocating it. */
typedef struct {
    float *input;          /* the model input tensor */
    size_t input_cap;      /* floats */
    void *scratch;         /* preprocessing scratch, kept up to QS_SCRATCH_KEEP_BYTES */
    size_t scratch_cap;
} qs_worker_buffers;

/* Scratch larger than this (a huge photo) is allocated for the job and freed after it, so one odd
 * request does not pin memory for the life of the worker. */
#define QS_SCRATCH_KEEP_BYTES ((size_t)16 << 20)

void qs_worker_buffers_free(qs_worker_buffers *buffers);

/* Run a job on session `worker_index` of its variant, with the decoder limits. Sets the job's
 * outputs (never calls done). Errors: CORRUPT_IMAGE, UNSUPPORTED_IMAGE_FORMAT, IMAGE_TOO_LARGE,
 * UNPROCESSABLE_IMAGE (decoded, but the preprocessing or the model cannot take it),
 * OUT_OF_MEMORY, INTERNAL. */
void qs_inference_run(qs_worker_buffers *buffers, size_t worker_index,
                      const qs_image_limits *limits, qs_job *job);

/* Top-k of n scores, best first, ties toward the lower index; softmax turns logits into
 * probabilities (computed in double, stable for any finite logits). Non-finite values rank last.
 * k is clamped to n. Returns the number written. Exposed for tests. */
int32_t qs_topk(const float *scores, size_t n, int32_t k, bool softmax, qs_prediction *out);

#endif /* QS_SERVER_INFERENCE_H */
