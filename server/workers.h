/* The inference workers: a fixed pool of threads fed by one bounded queue of jobs. */
#ifndef QS_SERVER_WORKERS_H
#define QS_SERVER_WORKERS_H

#include <stdbool.h>
#include <stddef.h>

#include "image.h"
#include "inference.h"

typedef struct qs_workers qs_workers;

/* Start `count` workers (1..64) sharing a queue of `queue_depth` waiting jobs (1..65536); a job
 * being run does not take a queue slot. limits: decoder limits (copied). Returns NULL when out of
 * memory or when a thread cannot start. */
qs_workers *qs_workers_create(size_t count, size_t queue_depth, const qs_image_limits *limits);

/* Queue a job. When accepted, on_accept(arg) runs first, under the queue lock and before any
 * worker can see the job (the HTTP layer suspends the connection there, so the worker's resume
 * always comes after it); on_accept must not call back into the pool. Returns false, without
 * calling on_accept, when the queue is full or the pool is stopping. */
bool qs_workers_submit(qs_workers *workers, qs_job *job, void (*on_accept)(void *arg), void *arg);

/* Jobs waiting and jobs running right now. */
size_t qs_workers_queued(qs_workers *workers);
size_t qs_workers_running(qs_workers *workers);
size_t qs_workers_count(const qs_workers *workers);
size_t qs_workers_queue_depth(const qs_workers *workers);

/* Stop: refuse new jobs, let the workers finish the running ones, complete the jobs still queued
 * with SHUTTING_DOWN (their done callbacks run), join the threads. Idempotent. */
void qs_workers_stop(qs_workers *workers);
/* Stops if needed and frees the pool and the workers' buffers. NULL-safe. */
void qs_workers_free(qs_workers *workers);

#endif /* QS_SERVER_WORKERS_H */
