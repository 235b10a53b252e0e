/* The little the kernels need from the OS and compiler, for POSIX (GCC/Clang) and Windows (MSVC or
 * clang-cl) alike: a mutex, a condition variable and threads; integer atomics for work counters;
 * 64-byte aligned allocation; the number of online CPUs. Everything else is standard C11. */
#ifndef FEDSEG_PLATFORM_H
#define FEDSEG_PLATFORM_H

#include <stdlib.h>

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <malloc.h>
#include <process.h>

typedef SRWLOCK fs_mutex;
typedef CONDITION_VARIABLE fs_cond;
typedef HANDLE fs_thread;
#define FS_MUTEX_INIT SRWLOCK_INIT
#define FS_COND_INIT CONDITION_VARIABLE_INIT
static inline void fs_mutex_lock(fs_mutex *m) { AcquireSRWLockExclusive(m); }
static inline void fs_mutex_unlock(fs_mutex *m) { ReleaseSRWLockExclusive(m); }
static inline void fs_cond_wait(fs_cond *c, fs_mutex *m) { SleepConditionVariableSRW(c, m, INFINITE, 0); }
static inline void fs_cond_signal(fs_cond *c) { WakeConditionVariable(c); }
static inline void fs_cond_broadcast(fs_cond *c) { WakeAllConditionVariable(c); }

typedef struct {
  void (*fn)(void *);
  void *arg;
} fs_thread_start;
static unsigned __stdcall fs_thread_entry(void *p) {
  fs_thread_start start = *(fs_thread_start *)p;
  free(p);
  start.fn(start.arg);
  return 0;
}
/* 0 on success. */
static inline int fs_thread_create(fs_thread *t, void (*fn)(void *), void *arg) {
  fs_thread_start *start = malloc(sizeof *start);
  if (!start) return -1;
  start->fn = fn;
  start->arg = arg;
  *t = (HANDLE)_beginthreadex(NULL, 0, fs_thread_entry, start, 0, NULL);
  if (!*t) {
    free(start);
    return -1;
  }
  return 0;
}
static inline void fs_thread_join(fs_thread t) {
  WaitForSingleObject(t, INFINITE);
  CloseHandle(t);
}
static inline int fs_online_cpus(void) { return (int)GetActiveProcessorCount(ALL_PROCESSOR_GROUPS); }
static inline void *fs_aligned_alloc(size_t bytes) { return _aligned_malloc(bytes ? bytes : 1, 64); }
static inline void fs_aligned_free(void *p) { _aligned_free(p); }

#else
#include <pthread.h>
#include <unistd.h>

typedef pthread_mutex_t fs_mutex;
typedef pthread_cond_t fs_cond;
typedef pthread_t fs_thread;
#define FS_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
#define FS_COND_INIT PTHREAD_COND_INITIALIZER
static inline void fs_mutex_lock(fs_mutex *m) { pthread_mutex_lock(m); }
static inline void fs_mutex_unlock(fs_mutex *m) { pthread_mutex_unlock(m); }
static inline void fs_cond_wait(fs_cond *c, fs_mutex *m) { pthread_cond_wait(c, m); }
static inline void fs_cond_signal(fs_cond *c) { pthread_cond_signal(c); }
static inline void fs_cond_broadcast(fs_cond *c) { pthread_cond_broadcast(c); }

typedef struct {
  void (*fn)(void *);
  void *arg;
} fs_thread_start;
static void *fs_thread_entry(void *p) {
  fs_thread_start start = *(fs_thread_start *)p;
  free(p);
  start.fn(start.arg);
  return NULL;
}
static inline int fs_thread_create(fs_thread *t, void (*fn)(void *), void *arg) {
  fs_thread_start *start = malloc(sizeof *start);
  if (!start) return -1;
  start->fn = fn;
  start->arg = arg;
  if (pthread_create(t, NULL, fs_thread_entry, start) != 0) {
    free(start);
    return -1;
  }
  return 0;
}
static inline void fs_thread_join(fs_thread t) { pthread_join(t, NULL); }
static inline int fs_online_cpus(void) { return (int)sysconf(_SC_NPROCESSORS_ONLN); }
static inline void *fs_aligned_alloc(size_t bytes) {
  void *p = NULL;
  return posix_memalign(&p, 64, bytes ? bytes : 1) ? NULL : p;
}
static inline void fs_aligned_free(void *p) { free(p); }
#endif

/* Work counters shared by a job's threads (sequentially consistent, like C11's defaults). MSVC's C
 * compiler has <stdatomic.h> only behind /experimental:c11atomics, so these wrap the compilers'
 * own primitives instead. */
typedef struct {
  volatile long long v;
} fs_atomic;
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
static inline long long fs_atomic_fetch_add(fs_atomic *a, long long d) { return _InterlockedExchangeAdd64(&a->v, d); }
static inline long long fs_atomic_load(fs_atomic *a) { return _InterlockedCompareExchange64(&a->v, 0, 0); }
static inline void fs_atomic_store(fs_atomic *a, long long x) { _InterlockedExchange64(&a->v, x); }
#else
static inline long long fs_atomic_fetch_add(fs_atomic *a, long long d) { return __atomic_fetch_add(&a->v, d, __ATOMIC_SEQ_CST); }
static inline long long fs_atomic_load(fs_atomic *a) { return __atomic_load_n(&a->v, __ATOMIC_SEQ_CST); }
static inline void fs_atomic_store(fs_atomic *a, long long x) { __atomic_store_n(&a->v, x, __ATOMIC_SEQ_CST); }
#endif

#endif
