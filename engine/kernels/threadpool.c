/* A small persistent thread pool: workers spin briefly for the next job, then sleep on a condvar. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/kernels.h"

/* How long a thread spins before sleeping. Layers of a small CNN follow each other within
 * microseconds, so a short spin avoids a futex wake-up per layer; longer would burn shared cores. */
#define QS_POOL_WORKER_SPIN_NS 60000
#define QS_POOL_CALLER_SPIN_NS 200000

struct qs_threadpool {
    int32_t n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    /* The job: written by the caller before `generation` is bumped (release). */
    qs_task_fn fn;
    void *ctx;
    size_t n_tasks;
    atomic_size_t next_task;
    atomic_uint generation;
    atomic_int pending;       /* workers that have not finished the current job */
    atomic_int sleepers;      /* workers blocked on cv_work */
    atomic_bool caller_waits; /* the caller is blocked on cv_done */
    atomic_bool stop;
};

typedef struct {
    qs_threadpool *pool;
    int32_t index;
} qs_worker_arg;

static uint64_t qs_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void qs_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void qs_pool_do_tasks(qs_threadpool *pool, int32_t index) {
    const qs_task_fn fn = pool->fn;
    void *ctx = pool->ctx;
    const size_t n = pool->n_tasks;
    for (;;) {
        size_t t = atomic_fetch_add_explicit(&pool->next_task, 1, memory_order_relaxed);
        if (t >= n)
            break;
        fn(ctx, t, index);
    }
}

/* Spin until pred-like change of an atomic, up to budget_ns; true if it changed. */
static bool qs_spin_generation(qs_threadpool *pool, unsigned seen, uint64_t budget_ns) {
    uint64_t start = qs_now_ns();
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&pool->generation, memory_order_acquire) != seen ||
            atomic_load_explicit(&pool->stop, memory_order_relaxed))
            return true;
        qs_cpu_relax();
        if ((i & 63u) == 0 && qs_now_ns() - start > budget_ns)
            return false;
    }
}

static void *qs_worker_main(void *arg) {
    qs_worker_arg *wa = arg;
    qs_threadpool *pool = wa->pool;
    const int32_t index = wa->index;
    free(wa);
    /* Generation 0 is the pool's state at creation; a job may be published before we get here. */
    unsigned seen = 0;
    for (;;) {
        if (!qs_spin_generation(pool, seen, QS_POOL_WORKER_SPIN_NS)) {
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->sleepers, 1);
            while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->cv_work, &pool->mu);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->stop))
            break;
        seen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        qs_pool_do_tasks(pool, index);
        /* seq_cst pairs with the caller's store to caller_waits (Dekker): one of us sees the other. */
        if (atomic_fetch_sub(&pool->pending, 1) == 1 && atomic_load(&pool->caller_waits)) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_broadcast(&pool->cv_done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
    return NULL;
}

qs_status qs_threadpool_create(int32_t n_threads, qs_threadpool **out) {
    qs_status st = QS_OK;
    qs_threadpool *pool = NULL;
    int32_t started = 0;
    bool sync_ok = false;
    if (!out || n_threads < 1 || n_threads > 1024)
        return QS_ERR_INVALID_ARGUMENT;
    *out = NULL;
    pool = calloc(1, sizeof *pool);
    if (!pool)
        return QS_ERR_NO_MEMORY;
    pool->n_threads = n_threads;
    atomic_init(&pool->next_task, 0);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->caller_waits, false);
    atomic_init(&pool->stop, false);
    if (pthread_mutex_init(&pool->mu, NULL) != 0) {
        free(pool);
        return QS_ERR_NO_MEMORY;
    }
    if (pthread_cond_init(&pool->cv_work, NULL) != 0) {
        pthread_mutex_destroy(&pool->mu);
        free(pool);
        return QS_ERR_NO_MEMORY;
    }
    if (pthread_cond_init(&pool->cv_done, NULL) != 0) {
        pthread_cond_destroy(&pool->cv_work);
        pthread_mutex_destroy(&pool->mu);
        free(pool);
        return QS_ERR_NO_MEMORY;
    }
    sync_ok = true;
    if (n_threads > 1) {
        pool->threads = calloc((size_t)n_threads - 1, sizeof *pool->threads);
        if (!pool->threads) {
            st = QS_ERR_NO_MEMORY;
            goto cleanup;
        }
        for (int32_t i = 1; i < n_threads; i++) {
            qs_worker_arg *wa = malloc(sizeof *wa);
            if (!wa) {
                st = QS_ERR_NO_MEMORY;
                goto cleanup;
            }
            wa->pool = pool;
            wa->index = i;
            if (pthread_create(&pool->threads[i - 1], NULL, qs_worker_main, wa) != 0) {
                free(wa);
                st = QS_ERR_NO_MEMORY;
                goto cleanup;
            }
            started++;
        }
    }
    *out = pool;
    return QS_OK;
cleanup:
    if (sync_ok) {
        pthread_mutex_lock(&pool->mu);
        atomic_store(&pool->stop, true);
        pthread_cond_broadcast(&pool->cv_work);
        pthread_mutex_unlock(&pool->mu);
        for (int32_t i = 0; i < started; i++)
            pthread_join(pool->threads[i], NULL);
        pthread_cond_destroy(&pool->cv_done);
        pthread_cond_destroy(&pool->cv_work);
        pthread_mutex_destroy(&pool->mu);
    }
    free(pool->threads);
    free(pool);
    return st;
}

void qs_threadpool_free(qs_threadpool *pool) {
    if (!pool)
        return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, true);
    pthread_cond_broadcast(&pool->cv_work);
    pthread_mutex_unlock(&pool->mu);
    for (int32_t i = 0; i + 1 < pool->n_threads; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->cv_done);
    pthread_cond_destroy(&pool->cv_work);
    pthread_mutex_destroy(&pool->mu);
    free(pool->threads);
    free(pool);
}

int32_t qs_threadpool_size(const qs_threadpool *pool) {
    return pool ? pool->n_threads : 1;
}

void qs_threadpool_run(qs_threadpool *pool, qs_task_fn fn, void *ctx, size_t n_tasks) {
    if (n_tasks == 0)
        return;
    if (!pool || pool->n_threads == 1 || n_tasks == 1) {
        for (size_t t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n_tasks = n_tasks;
    atomic_store_explicit(&pool->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->pending, pool->n_threads - 1, memory_order_relaxed);
    atomic_fetch_add(&pool->generation, 1); /* seq_cst: publishes the job */
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv_work);
        pthread_mutex_unlock(&pool->mu);
    }
    qs_pool_do_tasks(pool, 0);
    if (atomic_load_explicit(&pool->pending, memory_order_acquire) == 0)
        return;
    uint64_t start = qs_now_ns();
    for (unsigned i = 1; atomic_load_explicit(&pool->pending, memory_order_acquire) != 0; i++) {
        qs_cpu_relax();
        if ((i & 63u) == 0 && qs_now_ns() - start > QS_POOL_CALLER_SPIN_NS) {
            pthread_mutex_lock(&pool->mu);
            atomic_store(&pool->caller_waits, true);
            while (atomic_load(&pool->pending) != 0)
                pthread_cond_wait(&pool->cv_done, &pool->mu);
            atomic_store(&pool->caller_waits, false);
            pthread_mutex_unlock(&pool->mu);
            break;
        }
    }
}
