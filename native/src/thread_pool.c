#include "thread_pool.h"

#include "platform.h"

static fs_mutex run_lock = FS_MUTEX_INIT; /* one job at a time */
static fs_mutex state_lock = FS_MUTEX_INIT;
static fs_cond work_ready = FS_COND_INIT;
static fs_cond work_done = FS_COND_INIT;

static int wanted_threads = 0; /* 0: not yet decided */
static int started_workers = 0;
static fs_thread workers[POOL_MAX_THREADS];
/* A worker's index and the job generation it was started at (it must wait for the next job, not run
 * the last one again, e.g. after pool_shutdown). */
typedef struct {
  int index;
  unsigned long long seen;
} worker_start;
static worker_start worker_starts[POOL_MAX_THREADS];

static pool_job_fn current_job;
static void *current_ctx;
static int current_count;         /* threads taking part in the current job */
static unsigned long long generation; /* bumps once per job so sleeping workers see new work */
static int pending_workers;
static int stopping; /* set by pool_shutdown: workers return */

static void worker_main(void *arg) {
  const int index = ((worker_start *)arg)->index;
  unsigned long long seen = ((worker_start *)arg)->seen;
  fs_mutex_lock(&state_lock);
  for (;;) {
    while (generation == seen && !stopping) fs_cond_wait(&work_ready, &state_lock);
    if (stopping) break;
    seen = generation;
    if (index >= current_count) continue; /* this job uses fewer threads */
    pool_job_fn job = current_job;
    void *ctx = current_ctx;
    int count = current_count;
    fs_mutex_unlock(&state_lock);
    job(ctx, index, count);
    fs_mutex_lock(&state_lock);
    if (--pending_workers == 0) fs_cond_signal(&work_done);
  }
  fs_mutex_unlock(&state_lock);
}

static int clamp_threads(int n) { return n < 1 ? 1 : n > POOL_MAX_THREADS ? POOL_MAX_THREADS : n; }

void pool_set_threads(int threads) {
  fs_mutex_lock(&run_lock);
  wanted_threads = clamp_threads(threads);
  fs_mutex_unlock(&run_lock);
}

int pool_get_threads(void) {
  fs_mutex_lock(&run_lock);
  if (wanted_threads == 0) wanted_threads = clamp_threads(fs_online_cpus());
  int n = wanted_threads;
  fs_mutex_unlock(&run_lock);
  return n;
}

void pool_run(pool_job_fn job, void *ctx) {
  fs_mutex_lock(&run_lock);
  if (wanted_threads == 0) wanted_threads = clamp_threads(fs_online_cpus());
  int count = wanted_threads;
  /* Workers are only stopped by pool_shutdown (fewer threads just sit out a job); start missing ones. */
  while (started_workers < count - 1) {
    /* generation only changes under run_lock, which this thread holds */
    worker_starts[started_workers] = (worker_start){started_workers + 1, generation};
    if (fs_thread_create(&workers[started_workers], worker_main, &worker_starts[started_workers]) != 0) break;
    started_workers++;
  }
  if (count > started_workers + 1) count = started_workers + 1;
  if (count > 1) {
    fs_mutex_lock(&state_lock);
    current_job = job;
    current_ctx = ctx;
    current_count = count;
    pending_workers = count - 1;
    generation++;
    fs_cond_broadcast(&work_ready);
    fs_mutex_unlock(&state_lock);
  }
  job(ctx, 0, count);
  if (count > 1) {
    fs_mutex_lock(&state_lock);
    while (pending_workers > 0) fs_cond_wait(&work_done, &state_lock);
    fs_mutex_unlock(&state_lock);
  }
  fs_mutex_unlock(&run_lock);
}

void pool_shutdown(void) {
  fs_mutex_lock(&run_lock);
  fs_mutex_lock(&state_lock);
  stopping = 1;
  fs_cond_broadcast(&work_ready);
  fs_mutex_unlock(&state_lock);
  for (int i = 0; i < started_workers; i++) fs_thread_join(workers[i]);
  started_workers = 0;
  stopping = 0;
  fs_mutex_unlock(&run_lock);
}
