/* Worker threads and their bounded ring queue: never an unbounded backlog, jobs run in FIFO order. */
#include "workers.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

typedef struct {
    struct qs_workers *pool;
    size_t index;
    pthread_t thread;
    bool started;
    qs_worker_buffers buffers;
} worker;

struct qs_workers {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    qs_job **ring;
    size_t depth, head, len;
    size_t running;
    bool stopping;
    bool stopped;
    qs_image_limits limits;
    worker *workers;
    size_t count;
};

static void *worker_main(void *arg)
{
    worker *w = arg;
    qs_workers *pool = w->pool;
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        while (pool->len == 0 && !pool->stopping)
            pthread_cond_wait(&pool->wake, &pool->lock);
        if (pool->len == 0) {
            pthread_mutex_unlock(&pool->lock);
            break;
        }
        qs_job *job = pool->ring[pool->head];
        pool->head = (pool->head + 1) % pool->depth;
        pool->len--;
        pool->running++;
        pthread_mutex_unlock(&pool->lock);

        qs_inference_run(&w->buffers, w->index, &pool->limits, job);

        pthread_mutex_lock(&pool->lock);
        pool->running--;
        pthread_mutex_unlock(&pool->lock);
        job->done(job);
    }
    return NULL;
}

qs_workers *qs_workers_create(size_t count, size_t queue_depth, const qs_image_limits *limits)
{
    if (count < 1 || count > 64 || queue_depth < 1 || queue_depth > 65536)
        return NULL;
    qs_workers *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->ring = calloc(queue_depth, sizeof *pool->ring);
    pool->workers = calloc(count, sizeof *pool->workers);
    if (!pool->ring || !pool->workers) {
        free(pool->ring);
        free(pool->workers);
        free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->depth = queue_depth;
    pool->limits = *limits;
    pool->count = count;
    for (size_t i = 0; i < count; i++) {
        worker *w = &pool->workers[i];
        w->pool = pool;
        w->index = i;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            QS_ERROR("cannot start worker thread %zu", i);
            qs_workers_free(pool);
            return NULL;
        }
        w->started = true;
    }
    return pool;
}

bool qs_workers_submit(qs_workers *workers, qs_job *job, void (*on_accept)(void *arg), void *arg)
{
    bool accepted = false;
    pthread_mutex_lock(&workers->lock);
    if (!workers->stopping && workers->len < workers->depth) {
        job->submit_ns = qs_clock_ns();
        if (on_accept)
            on_accept(arg);
        workers->ring[(workers->head + workers->len) % workers->depth] = job;
        workers->len++;
        accepted = true;
        pthread_cond_signal(&workers->wake);
    }
    pthread_mutex_unlock(&workers->lock);
    return accepted;
}

size_t qs_workers_queued(qs_workers *workers)
{
    pthread_mutex_lock(&workers->lock);
    size_t n = workers->len;
    pthread_mutex_unlock(&workers->lock);
    return n;
}

size_t qs_workers_running(qs_workers *workers)
{
    pthread_mutex_lock(&workers->lock);
    size_t n = workers->running;
    pthread_mutex_unlock(&workers->lock);
    return n;
}

size_t qs_workers_count(const qs_workers *workers)
{
    return workers->count;
}

size_t qs_workers_queue_depth(const qs_workers *workers)
{
    return workers->depth;
}

void qs_workers_stop(qs_workers *workers)
{
    if (!workers || workers->stopped)
        return;
    /* Take the queued jobs out first so the workers only finish what they are running. */
    pthread_mutex_lock(&workers->lock);
    workers->stopping = true;
    size_t n = workers->len;
    qs_job **left = n ? malloc(n * sizeof *left) : NULL;
    for (size_t i = 0; left && i < n; i++)
        left[i] = workers->ring[(workers->head + i) % workers->depth];
    if (left) {
        workers->len = 0;
        workers->head = 0;
    }
    pthread_cond_broadcast(&workers->wake);
    pthread_mutex_unlock(&workers->lock);
    for (size_t i = 0; left && i < n; i++) {
        qs_api_fail(&left[i]->error, QS_API_SHUTTING_DOWN, "the server is shutting down");
        left[i]->done(left[i]);
    }
    free(left);
    /* Without memory for the list the workers drain the queue themselves before they exit. */
    for (size_t i = 0; i < workers->count; i++) {
        if (workers->workers[i].started) {
            pthread_join(workers->workers[i].thread, NULL);
            workers->workers[i].started = false;
        }
    }
    workers->stopped = true;
}

void qs_workers_free(qs_workers *workers)
{
    if (!workers)
        return;
    qs_workers_stop(workers);
    for (size_t i = 0; i < workers->count; i++)
        qs_worker_buffers_free(&workers->workers[i].buffers);
    pthread_cond_destroy(&workers->wake);
    pthread_mutex_destroy(&workers->lock);
    free(workers->workers);
    free(workers->ring);
    free(workers);
}
