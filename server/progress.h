/* Progress of a load step that goes over images (calibration, the fp32-vs-int8 report). */
#ifndef QS_SERVER_PROGRESS_H
#define QS_SERVER_PROGRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Written by one thread (the loader), read by any: every field is atomic, so a reader sees a
 * consistent-enough snapshot (done never exceeds total once total is set). Zero-initialized
 * memory is a valid "no step yet" state.
 */
typedef struct {
    _Atomic bool started;
    _Atomic uint64_t total;     /* images the step goes over */
    _Atomic uint64_t done;      /* images handled so far (used or skipped) */
    _Atomic uint64_t start_ns;  /* qs_clock_ns() at the start */
    _Atomic uint64_t end_ns;    /* 0 while running */
    _Atomic bool cached;        /* the step's result came from a cache: nothing was run */
} qs_progress;

/* Start a step over `total` images at `now_ns` (resets done and end). */
void qs_progress_begin(qs_progress *p, uint64_t total, uint64_t now_ns);
void qs_progress_advance(qs_progress *p);
void qs_progress_end(qs_progress *p, uint64_t now_ns);
/* The step was answered from a cache: begin and end at once, with done = total and cached set. */
void qs_progress_cached(qs_progress *p, uint64_t total, uint64_t now_ns);

/* A reader's view at `now_ns`: rate over the elapsed time, ETA from the rate (negative when not
 * known yet: nothing done), percent of total (0 when total is 0). */
typedef struct {
    bool started;
    uint64_t done, total;
    bool finished;
    bool cached;
    double percent;
    double elapsed_s;
    double images_per_s;
    double eta_s;
} qs_progress_view;

void qs_progress_get(const qs_progress *p, uint64_t now_ns, qs_progress_view *out);

#endif /* QS_SERVER_PROGRESS_H */
