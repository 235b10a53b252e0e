#include "thread_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 64

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_ready = PTHREAD_COND_INITIALIZER;
static pthread_cond_t work_done = PTHREAD_COND_INITIALIZER;

static int wanted_threads = 0; /* 0: not yet decided */
static int started_workers = 0;
static pthread_t workers[MAX_THREADS];

static pool_job_fn current_job;
static void *current_ctx;
static int current_count;       /* threads taking part in the current job */
static unsigned long generation; /* bumps once per job so sleeping workers see new work */
static int pending_workers;
static int stopping; /* set by pool_shutdown: workers return */

static void *worker_main(void *arg) {
  int index = (int)(long)arg;
  unsigned long seen = 0;
  pthread_mutex_lock(&state_lock);
  for (;;) {
    while (generation == seen && !stopping) pthread_cond_wait(&work_ready, &state_lock);
    if (stopping) break;
    seen = generation;
    if (index >= current_count) continue; /* this job uses fewer threads */
    pool_job_fn job = current_job;
    void *ctx = current_ctx;
    int count = current_count;
    pthread_mutex_unlock(&state_lock);
    job(ctx, index, count);
    pthread_mutex_lock(&state_lock);
    if (--pending_workers == 0) pthread_cond_signal(&work_done);
  }
  pthread_mutex_unlock(&state_lock);
  return NULL;
}

static int default_threads(void) {
  const char *env = getenv("FEDSEG_NATIVE_THREADS");
  long n = env ? strtol(env, NULL, 10) : 0;
  if (n <= 0) n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n <= 0) n = 1;
  return n > MAX_THREADS ? MAX_THREADS : (int)n;
}

void pool_set_threads(int threads) {
  if (threads < 1) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  pthread_mutex_lock(&run_lock);
  wanted_threads = threads;
  pthread_mutex_unlock(&run_lock);
}

int pool_get_threads(void) {
  pthread_mutex_lock(&run_lock);
  if (wanted_threads == 0) wanted_threads = default_threads();
  int n = wanted_threads;
  pthread_mutex_unlock(&run_lock);
  return n;
}

void pool_run(pool_job_fn job, void *ctx) {
  pthread_mutex_lock(&run_lock);
  if (wanted_threads == 0) wanted_threads = default_threads();
  int count = wanted_threads;
  /* Workers are never stopped (fewer threads just sit out a job); start any missing ones. */
  while (started_workers < count - 1) {
    if (pthread_create(&workers[started_workers], NULL, worker_main, (void *)(long)(started_workers + 1)) != 0) break;
    started_workers++;
  }
  if (count > started_workers + 1) count = started_workers + 1;
  if (count > 1) {
    pthread_mutex_lock(&state_lock);
    current_job = job;
    current_ctx = ctx;
    current_count = count;
    pending_workers = count - 1;
    generation++;
    pthread_cond_broadcast(&work_ready);
    pthread_mutex_unlock(&state_lock);
  }
  job(ctx, 0, count);
  if (count > 1) {
    pthread_mutex_lock(&state_lock);
    while (pending_workers > 0) pthread_cond_wait(&work_done, &state_lock);
    pthread_mutex_unlock(&state_lock);
  }
  pthread_mutex_unlock(&run_lock);
}

void pool_shutdown(void) {
  pthread_mutex_lock(&run_lock);
  pthread_mutex_lock(&state_lock);
  stopping = 1;
  pthread_cond_broadcast(&work_ready);
  pthread_mutex_unlock(&state_lock);
  for (int i = 0; i < started_workers; i++) pthread_join(workers[i], NULL);
  started_workers = 0;
  stopping = 0;
  pthread_mutex_unlock(&run_lock);
}
