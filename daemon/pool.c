/*
 * The worker pool.  One mutex guards everything shared: the job queue,
 * the completion list and the counters.  A worker takes it once per job,
 * to hand back the job it ran and take the next one.  Completed jobs go
 * on a list that the loop thread takes whole in pool_drain(); the eventfd
 * is written only when that list goes from empty to non-empty, so a burst
 * of completions costs the loop one wake-up.
 *
 * Threads are created on demand, one per job that no idle or starting
 * thread will take, up to max_threads.  Creating one costs 100 us or more
 * here, so the loop thread never creates more than one: it counts the
 * rest as owed, and the thread it starts, the spawner, creates them one
 * after another before it takes a job.  The loop stays free for other
 * clients while 10,000 threads start (it was busy for seconds when it
 * created them itself), and creation stays serial: threads creating
 * threads in parallel contend in the kernel and were slower.  A thread
 * that waits idle_ms for work exits and parks itself on the exited list,
 * where the loop thread joins it later.  All signals are blocked in
 * workers: signals are the loop's business.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"

struct pool_worker {
	struct pool_worker *next;
	pthread_t tid;
	struct pool *pool;
	unsigned int flush_gen;
	bool spawner; /* creates the owed threads first */
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t work; /* jobs queued, a resize, or stop */
	pthread_cond_t gone; /* a thread exited */
	struct pool_job *head, *tail;
	struct pool_job *done_head, *done_tail;
	size_t queued, running, inflight;
	size_t threads, idle, starting;
	size_t owed;                /* counted in threads, not created yet */
	bool spawning;              /* a spawner is creating the owed threads */
	struct pool_worker *exited; /* to be joined by the loop thread */
	struct pool_params params;
	void (*flush_fn)(void *ctx);
	unsigned int flush_gen;
	int stopping;
	int notify_fd;
};

uint64_t
pool_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Put a finished job on the completion list; wake the loop if needed. */
static void
pool_complete_locked(struct pool *pool, struct pool_job *job)
{
	uint64_t one = 1;

	pool->running--;
	job->next = NULL;
	if (pool->done_tail == NULL) {
		pool->done_head = pool->done_tail = job;
		/* A full eventfd counter still reads as readable. */
		if (write(pool->notify_fd, &one, sizeof(one)) < 0)
			(void)0;
		return;
	}
	pool->done_tail->next = job;
	pool->done_tail = job;
}

static void
pool_deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/*
 * Wait for the next job.  NULL means this thread should exit: the pool
 * stops, shrank below the thread count, or the thread idled too long.
 */
static struct pool_job *
pool_next_locked(struct pool *pool)
{
	struct pool_job *job;
	struct timespec deadline;
	int rc = 0;

	for (;;) {
		if (pool->stopping ||
		    pool->threads > (size_t)pool->params.max_threads)
			return NULL;
		if ((job = pool->head) != NULL) {
			pool->head = job->next;
			if (pool->head == NULL)
				pool->tail = NULL;
			pool->queued--;
			pool->running++;
			return job;
		}
		if (rc == ETIMEDOUT)
			return NULL;
		pool->idle++;
		if (pool->params.idle_ms > 0) {
			pool_deadline(&deadline, pool->params.idle_ms);
			rc = pthread_cond_timedwait(
			    &pool->work, &pool->lock, &deadline);
		} else
			rc = pthread_cond_wait(&pool->work, &pool->lock);
		pool->idle--;
	}
}

static void
pool_worker_exit_locked(struct pool *pool, struct pool_worker *w)
{
	pool->threads--;
	w->next = pool->exited;
	pool->exited = w;
	pthread_cond_broadcast(&pool->gone);
}

static int pool_spawn(struct pool *pool, bool spawner);

/* Give up on the threads still owed (and failed ones); lock held. */
static void
pool_forgive_locked(struct pool *pool, size_t failed)
{
	failed += pool->owed;
	pool->threads -= failed;
	pool->starting -= failed;
	pool->owed = 0;
	pool->spawning = false;
	pthread_cond_broadcast(&pool->gone);
}

/*
 * The spawner's first duty: create the owed threads, one at a time, the
 * count taken under the lock so that threads owed meanwhile are created
 * too.  When one cannot be created, the rest are forgiven: the threads
 * already alive run the queue.
 */
static void
pool_create_owed(struct pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	while (pool->owed > 0 && !pool->stopping) {
		pool->owed--;
		pthread_mutex_unlock(&pool->lock);
		if (pool_spawn(pool, false) == -1) {
			pthread_mutex_lock(&pool->lock);
			pool_forgive_locked(pool, 1);
			pthread_mutex_unlock(&pool->lock);
			return;
		}
		pthread_mutex_lock(&pool->lock);
	}
	pool_forgive_locked(pool, 0);
	pthread_mutex_unlock(&pool->lock);
}

static void *
pool_worker_main(void *arg)
{
	struct pool_worker *w = arg;
	struct pool *pool = w->pool;
	struct pool_job *job = NULL;
	void *ctx = NULL;

	if (w->spawner)
		pool_create_owed(pool);
	if (pool->params.worker_new != NULL)
		ctx = pool->params.worker_new(pool->params.arg);
	pthread_mutex_lock(&pool->lock);
	pool->starting--;
	w->flush_gen = pool->flush_gen;
	for (;;) {
		if (job != NULL)
			pool_complete_locked(pool, job);
		if ((job = pool_next_locked(pool)) == NULL)
			break;
		void (*flush)(void *) =
		    w->flush_gen != pool->flush_gen ? pool->flush_fn : NULL;
		w->flush_gen = pool->flush_gen;
		pthread_mutex_unlock(&pool->lock);
		if (flush != NULL && ctx != NULL)
			flush(ctx);
		job->started_ns = pool_now_ns();
		job->run(job, ctx);
		pthread_mutex_lock(&pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	if (pool->params.worker_free != NULL)
		pool->params.worker_free(ctx, pool->params.arg);
	pthread_mutex_lock(&pool->lock);
	pool_worker_exit_locked(pool, w);
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/*
 * Start one worker, counted in threads and starting by the caller.  The
 * new thread inherits a mask blocking all signals.  Called without the
 * lock: creating thousands of threads must not stall the workers.
 */
static int
pool_spawn(struct pool *pool, bool spawner)
{
	struct pool_worker *w;
	pthread_attr_t attr;
	sigset_t all, old;
	size_t stack = pool->params.stack_size;
	int rc;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	w->pool = pool;
	w->spawner = spawner;
	pthread_attr_init(&attr);
	if (stack != 0)
		pthread_attr_setstacksize(
		    &attr, stack < (size_t)PTHREAD_STACK_MIN ? PTHREAD_STACK_MIN
		                                             : stack);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->tid, &attr, pool_worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		free(w);
		errno = rc;
		return -1;
	}
	return 0;
}

/* Join the threads that have exited; called on the loop thread. */
static void
pool_reap(struct pool *pool)
{
	struct pool_worker *w, *next;

	pthread_mutex_lock(&pool->lock);
	w = pool->exited;
	pool->exited = NULL;
	pthread_mutex_unlock(&pool->lock);
	for (; w != NULL; w = next) {
		next = w->next;
		pthread_join(w->tid, NULL);
		free(w);
	}
}

struct pool *
pool_new(const struct pool_params *params, char *err, size_t errlen)
{
	struct pool *pool;

	if ((pool = calloc(1, sizeof(*pool))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pool->params = *params;
	pool->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool->notify_fd == -1) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		free(pool);
		return NULL;
	}
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->gone, NULL);
	{
		pthread_condattr_t ca;

		/* Idle deadlines are monotonic: wall clock jumps don't matter.
		 */
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&pool->work, &ca);
		pthread_condattr_destroy(&ca);
	}
	return pool;
}

void
pool_free(struct pool *pool)
{
	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = 1;
	pool_forgive_locked(pool, 0);
	pthread_cond_broadcast(&pool->work);
	while (pool->threads > 0)
		pthread_cond_wait(&pool->gone, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
	pool_reap(pool);
	pthread_cond_destroy(&pool->work);
	pthread_cond_destroy(&pool->gone);
	pthread_mutex_destroy(&pool->lock);
	close(pool->notify_fd);
	free(pool);
}

/*
 * Plan threads so that every queued job has one: counted as alive and
 * starting at once, so that concurrent decisions agree, and owed until
 * created.  Returns 1 when the caller must start a spawner (none is at
 * work), else 0.
 */
static int
pool_plan_growth_locked(struct pool *pool)
{
	size_t ready = pool->idle + pool->starting, n = 0;
	size_t room = (size_t)pool->params.max_threads > pool->threads
	                  ? (size_t)pool->params.max_threads - pool->threads
	                  : 0;

	if (pool->queued > ready)
		n = pool->queued - ready < room ? pool->queued - ready : room;
	pool->threads += n;
	pool->starting += n;
	pool->owed += n;
	if (pool->spawning || pool->owed == 0)
		return 0;
	pool->owed--;
	pool->spawning = true;
	return 1;
}

/* Start the spawner planned above; -1 when it could not start. */
static int
pool_kick(struct pool *pool, int kick)
{
	if (kick == 0 || pool_spawn(pool, true) == 0)
		return 0;
	pthread_mutex_lock(&pool->lock);
	pool_forgive_locked(pool, 1);
	pthread_mutex_unlock(&pool->lock);
	return -1;
}

int
pool_submit(struct pool *pool, struct pool_job *first, size_t n)
{
	struct pool_job *job, *last = NULL, *prev_tail;
	uint64_t now = pool_now_ns();
	size_t i, idle, wake;
	int kick;

	if (n == 0)
		return 0;
	pool_reap(pool);
	pthread_mutex_lock(&pool->lock);
	if (pool->inflight + n > (size_t)pool->params.queue_limit) {
		pthread_mutex_unlock(&pool->lock);
		return -1;
	}
	for (job = first, i = 0; i < n; i++, job = job->next) {
		job->queued_ns = now;
		last = job;
	}
	last->next = NULL;
	prev_tail = pool->tail;
	if (prev_tail != NULL)
		prev_tail->next = first;
	else
		pool->head = first;
	pool->tail = last;
	pool->queued += n;
	pool->inflight += n;
	idle = pool->idle;
	wake = idle < n ? idle : n;
	kick = pool_plan_growth_locked(pool);
	pthread_mutex_unlock(&pool->lock);
	/* Signal after unlocking: a woken worker takes the lock at once
	 * instead of waking only to sleep on it.  When every idle worker
	 * gets a job, one broadcast costs one system call instead of one
	 * per worker. */
	if (wake > 1 && wake == idle)
		pthread_cond_broadcast(&pool->work);
	else
		for (i = 0; i < wake; i++)
			pthread_cond_signal(&pool->work);
	if (pool_kick(pool, kick) == 0)
		return 0;
	/* No thread could start: if none is alive, nothing would ever run
	 * these jobs, so take them back and refuse. */
	pthread_mutex_lock(&pool->lock);
	if (pool->threads > 0) {
		pthread_mutex_unlock(&pool->lock);
		return 0;
	}
	pool->tail = prev_tail;
	if (prev_tail != NULL)
		prev_tail->next = NULL;
	else
		pool->head = NULL;
	pool->queued -= n;
	pool->inflight -= n;
	pthread_mutex_unlock(&pool->lock);
	return -1;
}

int
pool_notify_fd(const struct pool *pool)
{
	return pool->notify_fd;
}

size_t
pool_drain(struct pool *pool)
{
	struct pool_job *job, *next;
	uint64_t count;
	size_t n = 0;

	/* Read first: a completion after the take below re-arms the fd. */
	if (read(pool->notify_fd, &count, sizeof(count)) < 0)
		(void)0;
	pthread_mutex_lock(&pool->lock);
	job = pool->done_head;
	pool->done_head = pool->done_tail = NULL;
	for (next = job; next != NULL; next = next->next)
		n++;
	pool->inflight -= n;
	pthread_mutex_unlock(&pool->lock);
	for (; job != NULL; job = next) {
		next = job->next;
		job->done(job);
	}
	pool_reap(pool);
	return n;
}

void
pool_resize(struct pool *pool, int max_threads, int queue_limit, int idle_ms)
{
	int kick;

	pthread_mutex_lock(&pool->lock);
	pool->params.max_threads = max_threads;
	pool->params.queue_limit = queue_limit;
	pool->params.idle_ms = idle_ms;
	/* Idle threads re-check the limits; extra ones exit. */
	pthread_cond_broadcast(&pool->work);
	kick = pool_plan_growth_locked(pool);
	pthread_mutex_unlock(&pool->lock);
	pool_kick(pool, kick);
}

void
pool_get_stats(struct pool *pool, struct pool_stats *stats)
{
	pthread_mutex_lock(&pool->lock);
	stats->queued = pool->queued;
	stats->running = pool->running;
	stats->threads = pool->threads;
	stats->idle = pool->idle;
	pthread_mutex_unlock(&pool->lock);
}

void
pool_broadcast(struct pool *pool, void (*fn)(void *ctx))
{
	pthread_mutex_lock(&pool->lock);
	pool->flush_fn = fn;
	pool->flush_gen++;
	pthread_mutex_unlock(&pool->lock);
}
