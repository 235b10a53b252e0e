/* A small persistent pthread pool. One job runs at a time: the caller plus (threads - 1) workers
 * each call job(ctx, thread_index, thread_count); work inside a job is shared out by the job itself
 * (atomic block counters for balance, or static ranges where determinism matters). */
#ifndef FEDSEG_THREAD_POOL_H
#define FEDSEG_THREAD_POOL_H

typedef void (*pool_job_fn)(void *ctx, int thread_index, int thread_count);

/* Threads used by the next pool_run (caller included); 1..64. Starts/stops workers lazily. */
void pool_set_threads(int threads);
int pool_get_threads(void);
/* Runs job on every pool thread and returns when all have finished. Calls are serialised. */
void pool_run(pool_job_fn job, void *ctx);
/* Stops and joins every worker (the next pool_run starts them again). Must run before this code is
 * unloaded: a worker left blocked on the pool's condition variable breaks it when the library is
 * mapped again, and the next job's broadcast then never returns. */
void pool_shutdown(void);

#endif
