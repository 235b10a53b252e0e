/* A small persistent thread pool. One job runs at a time: the caller plus (threads - 1) workers
 * each call job(ctx, thread_index, thread_count); work inside a job is shared out by the job itself.
 * Jobs must not let their results depend on thread_count or on which thread took which piece: every
 * kernel here hands out fixed-size pieces (rows, lines, chunks) from an atomic counter, each written by
 * one thread, and reductions add fixed chunks' partials in chunk order (tested bit-for-bit at 1, 2 and
 * 3 threads). */
#ifndef FEDSEG_THREAD_POOL_H
#define FEDSEG_THREAD_POOL_H

#define POOL_MAX_THREADS 256

typedef void (*pool_job_fn)(void *ctx, int thread_index, int thread_count);

/* Threads used by the next pool_run (caller included); 1..POOL_MAX_THREADS. The default is the number
 * of online CPUs; the JavaScript side sets FEDSEG_THREADS or the cores this process may use. Workers
 * start lazily. */
void pool_set_threads(int threads);
int pool_get_threads(void);
/* Runs job on every pool thread and returns when all have finished. Calls are serialised. */
void pool_run(pool_job_fn job, void *ctx);
/* Stops and joins every worker (the next pool_run starts them again). Must run before this code is
 * unloaded: a worker left blocked on the pool's condition variable breaks it when the library is
 * mapped again, and the next job's broadcast then never returns. */
void pool_shutdown(void);

#endif
