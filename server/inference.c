/* The worker's side of a prediction: decode, preprocess into a reused buffer, run, rank the classes. */
#include "inference.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

void qs_worker_buffers_free(qs_worker_buffers *buffers)
{
    if (!buffers)
        return;
    free(buffers->input);
    free(buffers->scratch);
    memset(buffers, 0, sizeof *buffers);
}

static float rank_value(float x)
{
    return isnan(x) ? -INFINITY : x;
}

int32_t qs_topk(const float *scores, size_t n, int32_t k, bool softmax, qs_prediction *out)
{
    if (k <= 0 || n == 0)
        return 0;
    if ((size_t)k > n)
        k = (int32_t)n;
    /* Insertion into a best-first list; a later index never beats an equal score. */
    int32_t count = 0;
    for (size_t i = 0; i < n; i++) {
        float s = rank_value(scores[i]);
        if (count == k && !(s > rank_value(out[k - 1].score)))
            continue;
        int32_t pos = count < k ? count : k - 1;
        while (pos > 0 && s > rank_value(out[pos - 1].score)) {
            out[pos] = out[pos - 1];
            pos--;
        }
        out[pos].index = (int32_t)i;
        out[pos].score = scores[i];
        if (count < k)
            count++;
    }
    if (!softmax)
        return count;
    double max = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (isfinite(scores[i]) && (double)scores[i] > max)
            max = scores[i];
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(scores[i]))
            sum += exp((double)scores[i] - max);
    for (int32_t j = 0; j < count; j++) {
        float s = out[j].score;
        out[j].score = (isfinite(s) && sum > 0.0) ? (float)(exp((double)s - max) / sum) : 0.0f;
    }
    return count;
}

static qs_api_status decode_status(qs_image_status st)
{
    switch (st) {
    case QS_IMAGE_OK: return QS_API_OK;
    case QS_IMAGE_CORRUPT: return QS_API_CORRUPT_IMAGE;
    case QS_IMAGE_UNSUPPORTED_FORMAT: return QS_API_UNSUPPORTED_IMAGE_FORMAT;
    case QS_IMAGE_TOO_LARGE: return QS_API_IMAGE_TOO_LARGE;
    case QS_IMAGE_NO_MEMORY: return QS_API_OUT_OF_MEMORY;
    case QS_IMAGE_INVALID_ARGUMENT:
    case QS_IMAGE_STATUS_COUNT: break;
    }
    return QS_API_INTERNAL;
}

/* The image decoded; a failure now means the model's pipeline cannot take it. */
static qs_api_status preprocess_status(qs_image_status st)
{
    switch (st) {
    case QS_IMAGE_OK: return QS_API_OK;
    case QS_IMAGE_NO_MEMORY: return QS_API_OUT_OF_MEMORY;
    case QS_IMAGE_TOO_LARGE:
    case QS_IMAGE_CORRUPT:
    case QS_IMAGE_UNSUPPORTED_FORMAT: return QS_API_UNPROCESSABLE_IMAGE;
    case QS_IMAGE_INVALID_ARGUMENT:
    case QS_IMAGE_STATUS_COUNT: break;
    }
    return QS_API_INTERNAL;
}

static bool grow(void **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return true;
    void *p = realloc(*buf, need);
    if (!p)
        return false;
    *buf = p;
    *cap = need;
    return true;
}

static void run_session(qs_job *job, size_t worker_index, const float *input)
{
    qs_variant *v = job->variant;
    qs_session *session = v->sessions[worker_index];
    qs_tensor in = v->input;
    in.data = (void *)(uintptr_t)input;
    qs_error err;
    qs_error_clear(&err);
    qs_status st = qs_session_run(session, &in, 1, &err);
    if (st != QS_OK) {
        qs_api_status api = st == QS_ERR_NO_MEMORY ? QS_API_OUT_OF_MEMORY
                            : st == QS_ERR_SHAPE   ? QS_API_UNPROCESSABLE_IMAGE
                                                   : QS_API_INTERNAL;
        qs_api_fail(&job->error, api, "inference: %s: %s%s%s", qs_status_to_string(st), err.where,
                    err.where[0] ? ": " : "", err.message);
        return;
    }
    qs_tensor out;
    if (qs_session_output(session, v->output_index, &out) != QS_OK ||
        out.dtype != QS_DTYPE_FLOAT32 || qs_tensor_numel(&out) != v->class_count) {
        qs_api_fail(&job->error, QS_API_INTERNAL, "inference: the output changed shape");
        return;
    }
    job->prediction_count = qs_topk(out.data, v->class_count, job->topk, v->model->cfg->softmax,
                                     job->predictions);
}

void qs_inference_run(qs_worker_buffers *buffers, size_t worker_index,
                      const qs_image_limits *limits, qs_job *job)
{
    qs_variant *v = job->variant;
    const qs_preprocess_spec *spec = &v->model->spec;
    qs_image image;
    qs_image_error ierr;
    void *own_scratch = NULL;
    memset(&image, 0, sizeof image);
    uint64_t t0 = qs_clock_ns();
    job->queue_ns = t0 - job->submit_ns;
    if (job->deadline_ns && t0 > job->deadline_ns) {
        qs_api_fail(&job->error, QS_API_TIMEOUT,
                    "waited %.0f ms in the queue, longer than limits.request_timeout_ms",
                    qs_ns_to_ms(job->queue_ns));
        goto cleanup;
    }

    qs_image_status st = qs_image_decode(job->data, job->size, limits, spec->color, &image, &ierr);
    uint64_t t1 = qs_clock_ns();
    job->decode_ns = t1 - t0;
    if (st != QS_IMAGE_OK) {
        qs_api_fail(&job->error, decode_status(st), "%s%s%s", ierr.where, ierr.where[0] ? ": " : "",
                    ierr.message);
        goto cleanup;
    }
    job->image_width = image.width;
    job->image_height = image.height;

    size_t need_floats = v->input_numel, scratch_bytes = 0;
    if (need_floats > SIZE_MAX / sizeof(float) ||
        !grow((void **)&buffers->input, &buffers->input_cap, need_floats * sizeof(float))) {
        qs_api_fail(&job->error, QS_API_OUT_OF_MEMORY, "preprocess: no memory for the input tensor");
        goto cleanup;
    }
    st = qs_preprocess_scratch_size(spec, image.width, image.height, &scratch_bytes, &ierr);
    void *scratch = NULL;
    if (st == QS_IMAGE_OK && scratch_bytes > 0) {
        if (scratch_bytes <= QS_SCRATCH_KEEP_BYTES) {
            if (grow(&buffers->scratch, &buffers->scratch_cap, scratch_bytes))
                scratch = buffers->scratch;
        } else {
            scratch = own_scratch = malloc(scratch_bytes);
        }
        if (!scratch)
            st = QS_IMAGE_NO_MEMORY;
    }
    if (st == QS_IMAGE_OK)
        st = qs_preprocess_run(spec, &image, buffers->input, need_floats, scratch, scratch_bytes,
                               &ierr);
    uint64_t t2 = qs_clock_ns();
    job->preprocess_ns = t2 - t1;
    if (st != QS_IMAGE_OK) {
        if (st == QS_IMAGE_NO_MEMORY && !ierr.message[0])
            snprintf(ierr.message, sizeof ierr.message, "no memory for the preprocessing scratch");
        qs_api_fail(&job->error, preprocess_status(st), "preprocess (%ux%u image): %s",
                    image.width, image.height, ierr.message);
        goto cleanup;
    }
    qs_image_free(&image);
    free(own_scratch);
    own_scratch = NULL;

    run_session(job, worker_index, buffers->input);
    job->inference_ns = qs_clock_ns() - t2;
cleanup:
    qs_image_free(&image);
    free(own_scratch);
}
