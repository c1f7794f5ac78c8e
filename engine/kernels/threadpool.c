/* A small persistent thread pool: workers spin briefly for the next job, then sleep on a condvar. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/kernels.h"

/* How long a thread spins before sleeping. Layers of a small CNN follow each other within
 * microseconds, so a short spin avoids a futex wake-up per layer; longer would burn shared cores. */
#define QS_POOL_WORKER_SPIN_NS 50000
#define QS_POOL_CALLER_SPIN_NS 200000
/* Tasks per published job; larger runs are split into several jobs. */
#define QS_POOL_MAX_JOB 0x7fffffffu
/* Task index of a closed generation: never below a job's task count. */
#define QS_POOL_CLOSED 0xffffffffu

/* A job is claimed task by task with a CAS on `word` = generation << 32 | next task index, so a
 * worker that wakes up late (e.g. on an oversubscribed machine) can never take a task of a newer
 * job with an older job's function, and the caller never waits for workers that had no task. */
struct qs_threadpool {
    int32_t n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    _Atomic(qs_task_fn) fn;
    _Atomic(void *) ctx;
    atomic_size_t n_tasks;
    atomic_size_t base;
    atomic_uint_fast64_t word;
    atomic_size_t done;       /* tasks of the current job that have finished */
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

static inline uint32_t qs_word_gen(uint64_t w) {
    return (uint32_t)(w >> 32);
}

/* Run tasks of generation gen until none is left; the finisher of the last task wakes the caller. */
static void qs_pool_do_tasks(qs_threadpool *pool, uint32_t gen, int32_t index) {
    const qs_task_fn fn = atomic_load_explicit(&pool->fn, memory_order_relaxed);
    void *ctx = atomic_load_explicit(&pool->ctx, memory_order_relaxed);
    const size_t n = atomic_load_explicit(&pool->n_tasks, memory_order_relaxed);
    const size_t base = atomic_load_explicit(&pool->base, memory_order_relaxed);
    uint64_t cur = atomic_load_explicit(&pool->word, memory_order_acquire);
    for (;;) {
        if (qs_word_gen(cur) != gen || (cur & 0xffffffffu) >= n)
            return;
        /* Success proves the job is still gen's, so fn/ctx/n read above were gen's too. */
        if (!atomic_compare_exchange_weak_explicit(&pool->word, &cur, cur + 1,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue;
        fn(ctx, base + (size_t)(cur & 0xffffffffu), index);
        if (atomic_fetch_add(&pool->done, 1) + 1 == n && atomic_load(&pool->caller_waits)) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_broadcast(&pool->cv_done);
            pthread_mutex_unlock(&pool->mu);
        }
        cur = atomic_load_explicit(&pool->word, memory_order_acquire);
    }
}

/* Spin until the generation differs from seen (or stop), up to budget_ns; true if it did. */
static bool qs_spin_generation(qs_threadpool *pool, uint32_t seen, uint64_t budget_ns) {
    uint64_t start = qs_now_ns();
    for (unsigned i = 1;; i++) {
        if (qs_word_gen(atomic_load_explicit(&pool->word, memory_order_acquire)) != seen ||
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
    uint32_t seen = 0; /* generation at creation */
    for (;;) {
        if (!qs_spin_generation(pool, seen, QS_POOL_WORKER_SPIN_NS)) {
            pthread_mutex_lock(&pool->mu);
            /* seq_cst pairs with the caller's publish-then-check-sleepers (Dekker). */
            atomic_fetch_add(&pool->sleepers, 1);
            while (qs_word_gen(atomic_load(&pool->word)) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->cv_work, &pool->mu);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->stop))
            break;
        seen = qs_word_gen(atomic_load_explicit(&pool->word, memory_order_acquire));
        qs_pool_do_tasks(pool, seen, index);
    }
    return NULL;
}

static void qs_pool_stop_join(qs_threadpool *pool, int32_t started) {
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, true);
    pthread_cond_broadcast(&pool->cv_work);
    pthread_mutex_unlock(&pool->mu);
    for (int32_t i = 0; i < started; i++)
        pthread_join(pool->threads[i], NULL);
}

qs_status qs_threadpool_create(int32_t n_threads, qs_threadpool **out) {
    qs_status st = QS_OK;
    qs_threadpool *pool = NULL;
    int32_t started = 0;
    int sync = 0; /* how many of mu, cv_work, cv_done exist */
    if (!out || n_threads < 1 || n_threads > 1024)
        return QS_ERR_INVALID_ARGUMENT;
    *out = NULL;
    pool = calloc(1, sizeof *pool);
    if (!pool)
        return QS_ERR_NO_MEMORY;
    pool->n_threads = n_threads;
    atomic_init(&pool->fn, NULL);
    atomic_init(&pool->ctx, NULL);
    atomic_init(&pool->n_tasks, 0);
    atomic_init(&pool->base, 0);
    atomic_init(&pool->word, 0);
    atomic_init(&pool->done, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->caller_waits, false);
    atomic_init(&pool->stop, false);
    if (pthread_mutex_init(&pool->mu, NULL) != 0) {
        st = QS_ERR_NO_MEMORY;
        goto cleanup;
    }
    sync = 1;
    if (pthread_cond_init(&pool->cv_work, NULL) != 0) {
        st = QS_ERR_NO_MEMORY;
        goto cleanup;
    }
    sync = 2;
    if (pthread_cond_init(&pool->cv_done, NULL) != 0) {
        st = QS_ERR_NO_MEMORY;
        goto cleanup;
    }
    sync = 3;
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
    if (sync == 3)
        qs_pool_stop_join(pool, started);
    if (sync >= 3)
        pthread_cond_destroy(&pool->cv_done);
    if (sync >= 2)
        pthread_cond_destroy(&pool->cv_work);
    if (sync >= 1)
        pthread_mutex_destroy(&pool->mu);
    free(pool->threads);
    free(pool);
    return st;
}

void qs_threadpool_free(qs_threadpool *pool) {
    if (!pool)
        return;
    qs_pool_stop_join(pool, pool->n_threads - 1);
    pthread_cond_destroy(&pool->cv_done);
    pthread_cond_destroy(&pool->cv_work);
    pthread_mutex_destroy(&pool->mu);
    free(pool->threads);
    free(pool);
}

int32_t qs_threadpool_size(const qs_threadpool *pool) {
    return pool ? pool->n_threads : 1;
}

/* Publish one job of n <= QS_POOL_MAX_JOB tasks, take part, and wait until all are done. */
static void qs_pool_run_job(qs_threadpool *pool, qs_task_fn fn, void *ctx, size_t base,
                            size_t n) {
    /* Close the previous job first: a worker that read the previous generation could otherwise
     * claim a task of it after n/fn below change (its CAS would still see the old generation),
     * run a task index the old job never had and bump `done` of this job. A closed generation
     * has no claimable index. */
    uint32_t gen = qs_word_gen(atomic_load(&pool->word)) + 1;
    atomic_store(&pool->word, (uint64_t)gen << 32 | QS_POOL_CLOSED);
    atomic_thread_fence(memory_order_seq_cst);
    atomic_store_explicit(&pool->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&pool->n_tasks, n, memory_order_relaxed);
    atomic_store_explicit(&pool->base, base, memory_order_relaxed);
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    gen++;
    atomic_store(&pool->word, (uint64_t)gen << 32); /* seq_cst: publishes the job */
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv_work);
        pthread_mutex_unlock(&pool->mu);
    }
    qs_pool_do_tasks(pool, gen, 0);
    uint64_t start = qs_now_ns();
    for (unsigned i = 1; atomic_load_explicit(&pool->done, memory_order_acquire) != n; i++) {
        qs_cpu_relax();
        if ((i & 63u) == 0 && qs_now_ns() - start > QS_POOL_CALLER_SPIN_NS) {
            pthread_mutex_lock(&pool->mu);
            atomic_store(&pool->caller_waits, true);
            while (atomic_load(&pool->done) != n)
                pthread_cond_wait(&pool->cv_done, &pool->mu);
            atomic_store(&pool->caller_waits, false);
            pthread_mutex_unlock(&pool->mu);
            break;
        }
    }
}

void qs_threadpool_run(qs_threadpool *pool, qs_task_fn fn, void *ctx, size_t n_tasks) {
    if (n_tasks == 0)
        return;
    if (!pool || pool->n_threads == 1 || n_tasks == 1) {
        for (size_t t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    for (size_t base = 0; base < n_tasks; base += QS_POOL_MAX_JOB) {
        const size_t n = n_tasks - base < QS_POOL_MAX_JOB ? n_tasks - base : QS_POOL_MAX_JOB;
        qs_pool_run_job(pool, fn, ctx, base, n);
    }
}
