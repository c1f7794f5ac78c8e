/* Progress of image steps at load: counters, rate and ETA for the log and /health/ready. */
#include "progress.h"

#include <string.h>

void qs_progress_begin(qs_progress *p, uint64_t total, uint64_t now_ns)
{
    atomic_store(&p->end_ns, 0);
    atomic_store(&p->cached, false);
    atomic_store(&p->done, 0);
    atomic_store(&p->total, total);
    atomic_store(&p->start_ns, now_ns);
    atomic_store(&p->started, true);
}

void qs_progress_advance(qs_progress *p)
{
    atomic_fetch_add(&p->done, 1);
}

void qs_progress_end(qs_progress *p, uint64_t now_ns)
{
    atomic_store(&p->end_ns, now_ns ? now_ns : 1);
}

void qs_progress_cached(qs_progress *p, uint64_t total, uint64_t now_ns)
{
    qs_progress_begin(p, total, now_ns);
    atomic_store(&p->done, total);
    atomic_store(&p->cached, true);
    qs_progress_end(p, now_ns);
}

void qs_progress_get(const qs_progress *p, uint64_t now_ns, qs_progress_view *out)
{
    memset(out, 0, sizeof *out);
    out->started = atomic_load(&p->started);
    out->total = atomic_load(&p->total);
    out->done = atomic_load(&p->done);
    if (out->done > out->total)
        out->done = out->total;
    uint64_t start = atomic_load(&p->start_ns), end = atomic_load(&p->end_ns);
    out->finished = end != 0;
    out->cached = atomic_load(&p->cached);
    uint64_t until = out->finished ? end : now_ns;
    out->elapsed_s = until > start ? (double)(until - start) / 1e9 : 0.0;
    out->percent = out->total ? 100.0 * (double)out->done / (double)out->total : 0.0;
    out->images_per_s = out->elapsed_s > 0.0 ? (double)out->done / out->elapsed_s : 0.0;
    if (out->finished)
        out->eta_s = 0.0;
    else if (out->images_per_s > 0.0)
        out->eta_s = (double)(out->total - out->done) / out->images_per_s;
    else
        out->eta_s = -1.0;
}
