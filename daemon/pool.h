/*
 * pool: an elastic set of worker threads behind one bounded queue.
 * Knows nothing of HTTP or curl: a job is opaque, its run step cannot
 * fail (the outcome is written into the job), and finished jobs come back
 * to the submitting (loop) thread through pool_drain(), announced by a
 * readable pool_notify_fd().
 *
 * Threads are started on demand, up to max_threads; the submitting thread
 * starts at most one, which starts the others, so a burst of thousands
 * never stalls the loop.  A thread idle for idle_ms exits.  queue_limit bounds
 * jobs waiting plus running; pool_submit() takes a whole batch or none of it.
 * One mutex guards the queue and the completion list, so a worker takes it once
 * per job: to hand back the last job and take the next.
 */
#ifndef FANOUTD_POOL_H
#define FANOUTD_POOL_H

#include <stddef.h>
#include <stdint.h>

struct pool_job {
	struct pool_job *next;
	/* On a worker thread, with that worker's context. */
	void (*run)(struct pool_job *job, void *worker_ctx);
	/* On the loop thread, from pool_drain(). */
	void (*done)(struct pool_job *job);
	uint64_t queued_ns;  /* set by pool_submit */
	uint64_t started_ns; /* set by the worker */
};

struct pool_params {
	int max_threads;
	int queue_limit;
	int idle_ms;
	size_t stack_size;
	/* Per-thread context, made and freed on the worker's own thread. */
	void *(*worker_new)(void *arg);
	void (*worker_free)(void *ctx, void *arg);
	void *arg;
};

struct pool_stats {
	size_t queued;  /* waiting for a worker */
	size_t running; /* being run */
	size_t threads; /* alive */
	size_t idle;    /* alive and waiting */
};

struct pool *pool_new(
    const struct pool_params *params, char *err, size_t errlen);
/* Wait for every thread to exit; jobs still queued are never run. */
void pool_free(struct pool *pool);
/*
 * Queue n jobs chained through ->next.  Returns 0, or -1 (nothing queued)
 * when fewer than n slots are left under queue_limit.
 */
int pool_submit(struct pool *pool, struct pool_job *first, size_t n);
/* Readable when finished jobs wait for pool_drain(). */
int pool_notify_fd(const struct pool *pool);
/* Call done() for every finished job; returns how many. */
size_t pool_drain(struct pool *pool);
/* New limits; extra idle threads exit, queued work is kept. */
void pool_resize(
    struct pool *pool, int max_threads, int queue_limit, int idle_ms);
void pool_get_stats(struct pool *pool, struct pool_stats *stats);
/* Ask every worker to run fn(ctx, arg) before its next job. */
void pool_broadcast(struct pool *pool, void (*fn)(void *ctx));

/* Monotonic clock in nanoseconds. */
uint64_t pool_now_ns(void);

#endif
