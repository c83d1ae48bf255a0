/*
 * The worker pool.  One mutex guards everything shared: the ring of
 * groups with their queues, the idle list, the completion list and the
 * counters.  A worker takes it once per job, to hand back the job it ran
 * and take the next one.  Completed jobs go on a list that the loop
 * thread takes whole in pool_drain(); the eventfd is written only when
 * that list goes from empty to non-empty, so a burst of completions costs
 * the loop one wake-up.
 *
 * Fairness: a group is in the ring while it has queued jobs and fewer
 * than its cap running; whoever takes a job takes the head job of the
 * ring's current group and moves the ring on, so groups take turns one
 * job at a time.  A job that becomes runnable while a worker is idle is
 * handed to that worker at once: an idle worker whose last job had the
 * job's affinity key, found through a small hash of idle workers by key
 * (it holds a live connection the job can reuse), else one of the idle
 * workers that waited least (one whose connection is not the only one to
 * its host, when the first few have such), so that surplus workers keep
 * idling and exit after idle_ms.  Each worker sleeps on its own condition
 * variable, so handing out n jobs wakes n workers, not all of them.  A worker
 * that finishes a job takes the ring's next job itself, whatever its key:
 * fairness between groups comes first.
 *
 * Threads are created on demand, one per runnable job that no starting
 * thread will take, up to max_threads.  Creating one costs 100 us or more
 * here, so the loop thread never creates more than one: it counts the
 * rest as owed, and the thread it starts, the spawner, creates them one
 * after another before it takes a job.  Creation stays serial: threads
 * creating threads in parallel contend in the kernel and were slower.
 *
 * A thread leaves the counts at the moment the decision that it exits is
 * made, under the lock, whoever makes it (the thread itself, a resize,
 * pool_free); from then on it is "exiting" until it parks itself on the
 * exited list, where the loop thread joins it.  Counting it any longer
 * once it has decided would let pool_submit() believe a worker is coming
 * that never will.  All signals are blocked in workers: signals are the
 * loop's business.
 */
#include <assert.h>
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

#include "clock.h"
#include "pool.h"

struct pool_worker {
	struct pool_worker *prev, *next;   /* idle list, or the exited list */
	struct pool_worker *kprev, *knext; /* its key's bucket, while idle */
	uint64_t key; /* the affinity of its last job that had one; 0 none */
	pthread_t tid;
	pthread_cond_t wake; /* a job was handed over, or exit */
	struct pool *pool;
	struct pool_job *job; /* handed over while idle */
	bool spawner;         /* creates the owed threads first */
	bool idle;            /* on the idle list */
	bool exiting;         /* decided to exit; no longer counted */
};

/*
 * Invariants, with the lock held (pool_check_locked() asserts them in
 * debug builds):
 *  I1  queued == sum of g->queued and running == sum of g->running over
 *      live groups; inflight == queued + running + jobs on the done list.
 *  I2  a group is in the ring iff it has queued jobs and runs fewer than
 *      its cap; ring points at the group that serves next.
 *  I3  runnable == sum over the ring of min(g->queued, g->cap - g->running).
 *  I4  idle == length of the idle list; an idle worker holds no job.
 *  I5  runnable > 0 implies idle == 0: a runnable job never waits while a
 *      worker sleeps.
 *  I6  threads counts every worker not yet decided to exit: starting
 *      (created or owed, before their first lock; owed <= starting), idle,
 *      and busy (holding a job).  exiting counts those that decided and
 *      have not parked on the exited list yet.
 *  I7  threads <= max_threads, but for busy workers above a lowered
 *      max_threads, which exit after their job.  max_threads >= 1, so a
 *      runnable job always has a thread that will take it.
 *  I8  an idle worker with a non-zero key is in exactly one bucket,
 *      keyed[key % POOL_KEY_BUCKETS], most recently idle first; no other
 *      worker is in any bucket.  A worker's key changes only while it is
 *      not idle.
 *  I9  a key count exists iff running + reserved + parked jobs of its key
 *      > 0, in counts[key % POOL_KEY_BUCKETS].  running counts the jobs
 *      of the key that took a slot (job->counted set, not reserved);
 *      reserved counts parked jobs sent back to their group's queue head
 *      with a slot kept for them.  A key has parked jobs only while
 *      running + reserved >= max_per_key > 0 (with a lowered cap, more
 *      may run until they end).  pool->parked == sum of g->parked ==
 *      jobs on the counts' parked lists; pool->queued counts them too.
 *      A job of a canceled group never parks.
 */
#define POOL_KEY_BUCKETS 512

/* The jobs of one cap key: running, and waiting for room (I9). */
struct pool_keycount {
	struct pool_keycount *next; /* its bucket */
	uint64_t key;
	size_t running, reserved;
	struct pool_job *parked_head, *parked_tail; /* oldest first */
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t gone;     /* a thread parked on the exited list */
	struct pool_group *ring; /* groups that may start a job now */
	struct pool_worker *idle_top, *idle_bottom;  /* most recent first */
	struct pool_worker *keyed[POOL_KEY_BUCKETS]; /* idle ones by key */
	struct pool_job *done_head, *done_tail;
	struct pool_keycount *counts[POOL_KEY_BUCKETS]; /* by cap key */
	size_t queued, running, inflight, runnable, parked;
	size_t threads, idle, starting, owed, exiting;
	bool spawning;              /* a spawner is creating owed threads */
	struct pool_worker *exited; /* to be joined by the loop thread */
	struct pool_params params;
	bool stopping;
	int notify_fd;
};

#ifdef FANOUTD_DEBUG
static void
pool_check_locked(const struct pool *pool)
{
	const struct pool_group *g = pool->ring;
	const struct pool_worker *w;
	const struct pool_keycount *c;
	const struct pool_job *j;
	size_t runnable = 0, idle = 0, keyed = 0, parked = 0, i;

	do {
		if (g == NULL)
			break;
		assert(g->in_ring && g->queued > 0 && g->running < g->cap);
		runnable += g->queued < g->cap - g->running
		                ? g->queued
		                : g->cap - g->running;
		g = g->ring_next;
	} while (g != pool->ring);
	for (w = pool->idle_top; w != NULL; w = w->next, idle++) {
		assert(w->idle && w->job == NULL && !w->exiting);
		keyed += w->key != 0;
	}
	for (i = 0; i < POOL_KEY_BUCKETS; i++)
		for (w = pool->keyed[i]; w != NULL; w = w->knext, keyed--)
			assert(w->idle && w->key % POOL_KEY_BUCKETS == i &&
			       (w->kprev == NULL) == (w == pool->keyed[i]));
	assert(keyed == 0);
	for (i = 0; i < POOL_KEY_BUCKETS; i++)
		for (c = pool->counts[i]; c != NULL; c = c->next) {
			assert(c->key % POOL_KEY_BUCKETS == i);
			assert(c->running + c->reserved > 0 ||
			       c->parked_head != NULL);
			for (j = c->parked_head; j != NULL; j = j->next)
				parked++;
		}
	assert(parked == pool->parked && pool->parked <= pool->queued);
	assert(runnable == pool->runnable && idle == pool->idle);
	assert(pool->runnable == 0 || pool->idle == 0);
	assert(pool->owed <= pool->starting);
	assert(pool->starting + pool->idle <= pool->threads);
	assert(pool->inflight >= pool->queued + pool->running);
}
#define POOL_CHECK(pool) pool_check_locked(pool)
#else
#define POOL_CHECK(pool) ((void)0)
#endif

/* How many of a group's queued jobs may start now. */
static size_t
group_runnable(const struct pool_group *g)
{
	size_t room = g->running < g->cap ? g->cap - g->running : 0;

	return g->queued < room ? g->queued : room;
}

static void
ring_insert_locked(struct pool *pool, struct pool_group *g)
{
	struct pool_group *head = pool->ring;

	g->in_ring = true;
	if (head == NULL) {
		g->ring_prev = g->ring_next = g;
		pool->ring = g;
		return;
	}
	/* At the tail: it serves after every group already waiting. */
	g->ring_next = head;
	g->ring_prev = head->ring_prev;
	head->ring_prev->ring_next = g;
	head->ring_prev = g;
}

static void
ring_remove_locked(struct pool *pool, struct pool_group *g)
{
	if (g->ring_next == g)
		pool->ring = NULL;
	else {
		g->ring_prev->ring_next = g->ring_next;
		g->ring_next->ring_prev = g->ring_prev;
		if (pool->ring == g)
			pool->ring = g->ring_next;
	}
	g->in_ring = false;
	g->ring_prev = g->ring_next = NULL;
}

/*
 * Bring the ring and the runnable count up to date after g->queued or
 * g->running changed; before is group_runnable(g) as it was.
 */
static void
group_update_locked(struct pool *pool, struct pool_group *g, size_t before)
{
	size_t now = group_runnable(g);

	pool->runnable = pool->runnable - before + now;
	if (now > 0 && !g->in_ring)
		ring_insert_locked(pool, g);
	else if (now == 0 && g->in_ring)
		ring_remove_locked(pool, g);
}

static bool pool_key_admit_locked(struct pool *pool, struct pool_job *job);

/*
 * The next job in turn, or NULL when nothing may start now.  A job whose
 * key is at its cap is parked on the way, and the turn goes on.
 */
static struct pool_job *
pool_take_locked(struct pool *pool)
{
	struct pool_group *g;
	struct pool_job *job;
	size_t before;
	bool admitted;

	do {
		if ((g = pool->ring) == NULL)
			return NULL;
		before = group_runnable(g);
		job = g->head;
		if ((g->head = job->next) == NULL)
			g->tail = NULL;
		g->queued--;
		if ((admitted = pool_key_admit_locked(pool, job))) {
			g->running++;
			pool->queued--;
			pool->running++;
		} else
			g->parked++;
		/* Round robin: the next group serves next, even if g stays. */
		pool->ring = g->ring_next;
		group_update_locked(pool, g, before);
	} while (!admitted);
	return job;
}

static void pool_key_release_locked(struct pool *pool, struct pool_job *job);

/* Put a finished job on the completion list; wake the loop if needed. */
static void
pool_finish_locked(struct pool *pool, struct pool_job *job)
{
	struct pool_group *g = job->group;
	size_t before = group_runnable(g);
	uint64_t one = 1;

	g->running--;
	pool->running--;
	group_update_locked(pool, g, before);
	pool_key_release_locked(pool, job);
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

/* ------------------------------------------------------ per-key caps */

/* The count of key, made when make is set; NULL when absent or no memory. */
static struct pool_keycount *
pool_key_count_locked(struct pool *pool, uint64_t key, bool make)
{
	struct pool_keycount **bucket = &pool->counts[key % POOL_KEY_BUCKETS];
	struct pool_keycount *c;

	for (c = *bucket; c != NULL; c = c->next)
		if (c->key == key)
			return c;
	if (!make || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->key = key;
	c->next = *bucket;
	*bucket = c;
	return c;
}

/* Free c once nothing of its key is running, reserved or parked (I9). */
static void
pool_key_drop_locked(struct pool *pool, struct pool_keycount *c)
{
	struct pool_keycount **link = &pool->counts[c->key % POOL_KEY_BUCKETS];

	if (c->running > 0 || c->reserved > 0 || c->parked_head != NULL)
		return;
	while (*link != c)
		link = &(*link)->next;
	*link = c->next;
	free(c);
}

/*
 * May job, just taken from its group's queue, run now?  Yes when it has
 * no key, when there is no cap (nothing is counted then: a fetch without
 * the cap pays nothing for it; a cap raised from 0 counts only the jobs
 * that start after), when its group is canceled, when a slot was kept for
 * it, or when its key has room.  Else it is parked on its key.  Out of
 * memory for a new count, the job runs uncounted.
 */
static bool
pool_key_admit_locked(struct pool *pool, struct pool_job *job)
{
	size_t cap = (size_t)pool->params.limits.max_per_key;
	struct pool_keycount *c = job->counted;

	if (job->reserved) {
		job->reserved = false;
		c->reserved--;
		c->running++;
		return true;
	}
	if (job->cap_key == 0 || cap == 0 || job->group->canceled ||
	    (c = pool_key_count_locked(pool, job->cap_key, true)) == NULL)
		return true;
	job->counted = c;
	if (c->running + c->reserved < cap) {
		c->running++;
		return true;
	}
	job->next = NULL;
	if (c->parked_tail != NULL)
		c->parked_tail->next = job;
	else
		c->parked_head = job;
	c->parked_tail = job;
	pool->parked++;
	return false;
}

/* Put a parked job back at its group's queue head; reserve keeps a slot. */
static void
pool_key_unpark_locked(struct pool *pool, struct pool_job *job, bool reserve)
{
	struct pool_group *g = job->group;
	size_t before = group_runnable(g);

	if (reserve) {
		job->reserved = true;
		job->counted->reserved++;
	} else
		job->counted = NULL;
	if ((job->next = g->head) == NULL)
		g->tail = job;
	g->head = job;
	g->parked--;
	g->queued++;
	pool->parked--;
	group_update_locked(pool, g, before);
}

/* Unpark c's oldest jobs while its key has room; drop c when unused. */
static void
pool_key_wake_locked(struct pool *pool, struct pool_keycount *c)
{
	size_t cap = (size_t)pool->params.limits.max_per_key;
	struct pool_job *job;

	while ((job = c->parked_head) != NULL &&
	       (cap == 0 || c->running + c->reserved < cap)) {
		if ((c->parked_head = job->next) == NULL)
			c->parked_tail = NULL;
		pool_key_unpark_locked(pool, job, true);
	}
	pool_key_drop_locked(pool, c);
}

/* A finished job gives its slot back; a parked job of its key may go. */
static void
pool_key_release_locked(struct pool *pool, struct pool_job *job)
{
	struct pool_keycount *c = job->counted;

	if (c == NULL)
		return;
	job->counted = NULL;
	c->running--;
	pool_key_wake_locked(pool, c);
}

/* Every key's parked jobs that now have room go (a raised or lifted cap). */
static void
pool_key_wake_all_locked(struct pool *pool)
{
	struct pool_keycount *c, *next;
	size_t i;

	for (i = 0; i < POOL_KEY_BUCKETS; i++)
		for (c = pool->counts[i]; c != NULL; c = next) {
			next = c->next;
			pool_key_wake_locked(pool, c);
		}
}

/* Take g's jobs off c's parked list, back to g's queue, uncounted. */
static void
pool_key_release_group_locked(
    struct pool *pool, struct pool_keycount *c, struct pool_group *g)
{
	struct pool_job **link = &c->parked_head, *job;

	c->parked_tail = NULL;
	while ((job = *link) != NULL) {
		if (job->group != g) {
			c->parked_tail = job;
			link = &job->next;
			continue;
		}
		*link = job->next;
		pool_key_unpark_locked(pool, job, false);
	}
	pool_key_drop_locked(pool, c);
}

/* Keys' counts left at pool_free (their parked jobs never run). */
static void
pool_key_free_all(struct pool *pool)
{
	struct pool_keycount *c, *next;
	size_t i;

	for (i = 0; i < POOL_KEY_BUCKETS; i++)
		for (c = pool->counts[i]; c != NULL; c = next) {
			next = c->next;
			free(c);
		}
}

/* -------------------------------------------------------- idle workers */

static struct pool_worker **
pool_bucket(struct pool *pool, uint64_t key)
{
	return &pool->keyed[key % POOL_KEY_BUCKETS];
}

static void
idle_push_locked(struct pool *pool, struct pool_worker *w)
{
	struct pool_worker **bucket;

	w->idle = true;
	w->prev = NULL;
	w->next = pool->idle_top;
	if (pool->idle_top != NULL)
		pool->idle_top->prev = w;
	else
		pool->idle_bottom = w;
	pool->idle_top = w;
	pool->idle++;
	if (w->key == 0)
		return;
	bucket = pool_bucket(pool, w->key); /* I8 */
	w->kprev = NULL;
	w->knext = *bucket;
	if (*bucket != NULL)
		(*bucket)->kprev = w;
	*bucket = w;
}

static void
idle_remove_locked(struct pool *pool, struct pool_worker *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		pool->idle_top = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	else
		pool->idle_bottom = w->prev;
	w->prev = w->next = NULL;
	w->idle = false;
	pool->idle--;
	if (w->key == 0)
		return;
	if (w->kprev != NULL)
		w->kprev->knext = w->knext;
	else
		*pool_bucket(pool, w->key) = w->knext;
	if (w->knext != NULL)
		w->knext->kprev = w->kprev;
	w->kprev = w->knext = NULL;
}

/* Whether w holds no key, or one that another idle worker holds too. */
static bool
idle_spare_locked(struct pool *pool, const struct pool_worker *w)
{
	const struct pool_worker *o;

	if (w->key == 0)
		return true;
	for (o = *pool_bucket(pool, w->key); o != NULL; o = o->knext)
		if (o != w && o->key == w->key)
			return true;
	return false;
}

/* How far down the idle list a miss looks for a spare worker. */
#define POOL_MISS_SCAN 8

/*
 * The idle worker for a job of this key: the most recently idle one
 * whose last job had the key (its connection is warm).  On a miss, the
 * most recently idle one that is spare, among the first few: taking the
 * only holder of another key would throw away the one warm connection
 * to that host, and two hosts fetched in turn would each take the
 * other's.  Else the most recently idle one.  Keys that share a bucket
 * are few, so the scans are short.
 */
static struct pool_worker *
idle_pick_locked(struct pool *pool, uint64_t key)
{
	struct pool_worker *w;
	int i;

	if (key != 0)
		for (w = *pool_bucket(pool, key); w != NULL; w = w->knext)
			if (w->key == key)
				return w;
	for (w = pool->idle_top, i = 0; w != NULL && i < POOL_MISS_SCAN;
	     w = w->next, i++)
		if (idle_spare_locked(pool, w))
			return w;
	return pool->idle_top;
}

/*
 * Workers the loop thread signals once the lock is free: a worker woken
 * under the lock would only block on it.  Only the loop thread may defer
 * a signal: it alone frees exited workers (pool_reap), so a worker it
 * handed a job to cannot vanish before it signals; a worker thread that
 * dispatches signals under the lock.
 */
#define POOL_WAKE_BATCH 64

struct pool_wakeups {
	size_t n;
	struct pool_worker *w[POOL_WAKE_BATCH];
};

/*
 * Hand runnable jobs to idle workers (I5), each to the worker
 * idle_pick_locked() chooses.  later, when not NULL, collects workers to
 * signal after unlocking.
 */
static void
pool_dispatch_locked(struct pool *pool, struct pool_wakeups *later)
{
	struct pool_worker *w;
	struct pool_job *job;

	while (
	    pool->idle_top != NULL && (job = pool_take_locked(pool)) != NULL) {
		w = idle_pick_locked(pool, job->affinity);
		idle_remove_locked(pool, w);
		w->job = job;
		if (later != NULL && later->n < POOL_WAKE_BATCH)
			later->w[later->n++] = w;
		else
			pthread_cond_signal(&w->wake);
	}
}

static void
pool_wake(const struct pool_wakeups *later)
{
	size_t i;

	for (i = 0; i < later->n; i++)
		pthread_cond_signal(&later->w[i]->wake);
}

/* The decision that w exits (I6): it leaves the counts now. */
static void
pool_decide_exit_locked(struct pool *pool, struct pool_worker *w)
{
	if (w->idle)
		idle_remove_locked(pool, w);
	w->exiting = true;
	pool->threads--;
	pool->exiting++;
}

/*
 * The next job for w, waiting idle for one; NULL when w is to exit (the
 * decision is then taken and counted).  idle_ms bounds one idle spell.
 */
static struct pool_job *
pool_next_locked(struct pool *pool, struct pool_worker *w)
{
	struct pool_job *job;
	struct timespec deadline;
	bool waited = false;
	int rc = 0;

	for (;;) {
		if ((job = w->job) != NULL) {
			w->job = NULL;
			return job;
		}
		if (w->exiting)
			return NULL; /* decided by a resize or pool_free */
		if (pool->stopping ||
		    pool->threads > (size_t)pool->params.limits.max_threads ||
		    rc == ETIMEDOUT) {
			pool_decide_exit_locked(pool, w);
			return NULL;
		}
		if ((job = pool_take_locked(pool)) != NULL)
			return job;
		if (!waited && pool->params.limits.idle_ms > 0)
			clock_deadline_ts(
			    &deadline, pool->params.limits.idle_ms);
		if (!w->idle)
			idle_push_locked(pool, w);
		waited = true;
		POOL_CHECK(pool);
		if (pool->params.limits.idle_ms > 0)
			rc = pthread_cond_timedwait(
			    &w->wake, &pool->lock, &deadline);
		else
			rc = pthread_cond_wait(&w->wake, &pool->lock);
	}
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

/*
 * Run jobs until told or allowed to exit; the lock is held throughout
 * but for the runs themselves.
 */
static void
pool_work_locked(struct pool *pool, struct pool_worker *w, void *ctx)
{
	struct pool_job *job;

	while ((job = pool_next_locked(pool, w)) != NULL) {
		/* Not idle now, so its bucket may change (I8).  A job without
		 * a key leaves the last one: its connection is still there. */
		if (job->affinity != 0)
			w->key = job->affinity;
		pthread_mutex_unlock(&pool->lock);
		job->started_ns = clock_now_ns();
		job->run(job, ctx);
		pthread_mutex_lock(&pool->lock);
		pool_finish_locked(pool, job);
		/* The slot just freed may let another group's job start. */
		pool_dispatch_locked(pool, NULL);
		POOL_CHECK(pool);
	}
}

static void *
pool_worker_main(void *arg)
{
	struct pool_worker *w = arg;
	struct pool *pool = w->pool;
	void *ctx = NULL;

	if (w->spawner)
		pool_create_owed(pool);
	if (pool->params.worker_new != NULL)
		ctx = pool->params.worker_new(pool->params.arg);
	pthread_mutex_lock(&pool->lock);
	pool->starting--;
	pool_work_locked(pool, w, ctx);
	pthread_mutex_unlock(&pool->lock);
	if (pool->params.worker_free != NULL)
		pool->params.worker_free(ctx, pool->params.arg);
	pthread_mutex_lock(&pool->lock);
	pool->exiting--;
	w->next = pool->exited;
	pool->exited = w;
	pthread_cond_broadcast(&pool->gone);
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

static void
pool_worker_free(struct pool_worker *w)
{
	pthread_cond_destroy(&w->wake);
	free(w);
}

/* A worker whose condition variable waits on the monotonic clock. */
static struct pool_worker *
pool_worker_new(struct pool *pool, bool spawner)
{
	struct pool_worker *w;
	pthread_condattr_t ca;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->pool = pool;
	w->spawner = spawner;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &ca);
	pthread_condattr_destroy(&ca);
	return w;
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

	if ((w = pool_worker_new(pool, spawner)) == NULL)
		return -1;
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
		pool_worker_free(w);
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
		pool_worker_free(w);
	}
}

struct pool *
pool_new(const struct pool_params *params, char *err, size_t errlen)
{
	struct pool *pool;

	if (params->limits.max_threads < 1 || params->limits.queue_limit < 1) {
		snprintf(err, errlen, "a pool needs a thread and a queue slot");
		return NULL;
	}
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
	return pool;
}

/* Tell every idle worker to exit (pool_free, or a lower max_threads). */
static void
pool_retire_idle_locked(struct pool *pool, size_t keep)
{
	struct pool_worker *w;

	while (pool->idle_bottom != NULL && pool->threads > keep) {
		w = pool->idle_bottom; /* the one idle longest */
		pool_decide_exit_locked(pool, w);
		pthread_cond_signal(&w->wake);
	}
}

void
pool_free(struct pool *pool)
{
	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pool_forgive_locked(pool, 0);
	pool_retire_idle_locked(pool, 0);
	while (pool->threads > 0 || pool->exiting > 0)
		pthread_cond_wait(&pool->gone, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
	pool_reap(pool);
	pool_key_free_all(pool);
	pthread_cond_destroy(&pool->gone);
	pthread_mutex_destroy(&pool->lock);
	close(pool->notify_fd);
	free(pool);
}

/*
 * Plan threads so that every runnable job has one: counted as alive and
 * starting at once, so that concurrent decisions agree, and owed until
 * created.  Returns 1 when the caller must start a spawner (none is at
 * work), else 0.
 */
static int
pool_plan_growth_locked(struct pool *pool)
{
	size_t max = (size_t)pool->params.limits.max_threads, n = 0;
	size_t room = max > pool->threads ? max - pool->threads : 0;

	if (pool->stopping)
		return 0;
	if (pool->runnable > pool->starting)
		n = pool->runnable - pool->starting;
	if (n > room)
		n = room;
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
pool_kick_spawner(struct pool *pool, int planned)
{
	if (planned == 0 || pool_spawn(pool, true) == 0)
		return 0;
	pthread_mutex_lock(&pool->lock);
	pool_forgive_locked(pool, 1);
	pthread_mutex_unlock(&pool->lock);
	return -1;
}

void
pool_group_init(struct pool_group *g, size_t cap)
{
	memset(g, 0, sizeof(*g));
	g->cap_asked = cap;
}

/* max_per_group as it applies now; lock held or loop thread. */
static size_t
pool_share_locked(const struct pool *pool)
{
	size_t max = (size_t)pool->params.limits.max_threads, keep;

	if (pool->params.limits.max_per_group > 0)
		return (size_t)pool->params.limits.max_per_group < max
		           ? (size_t)pool->params.limits.max_per_group
		           : max;
	keep = max / 8 < 1 ? 1 : max / 8 > 32 ? 32 : max / 8;
	return max > keep ? max - keep : 1;
}

size_t
pool_group_cap(struct pool *pool, size_t cap)
{
	size_t share;

	pthread_mutex_lock(&pool->lock);
	share = pool_share_locked(pool);
	pthread_mutex_unlock(&pool->lock);
	return cap == 0 || cap > share ? share : cap;
}

/* Chain the n jobs onto g's queue; the counts follow. */
static void
pool_enqueue_locked(struct pool *pool, struct pool_group *g,
    struct pool_job *first, size_t n, uint64_t now)
{
	size_t i, before = group_runnable(g);
	struct pool_job *job, *last = NULL;

	for (job = first, i = 0; i < n; i++, job = job->next) {
		job->group = g;
		job->queued_ns = now;
		last = job;
	}
	last->next = NULL;
	if (g->tail != NULL)
		g->tail->next = first;
	else
		g->head = first;
	g->tail = last;
	g->queued += n;
	pool->queued += n;
	pool->inflight += n;
	group_update_locked(pool, g, before);
}

/*
 * No thread could start and none is alive: nothing would ever run g's
 * jobs, so take back what is still queued of them.  True when all n
 * were still there to take.
 */
static bool
pool_take_back(struct pool *pool, struct pool_group *g, size_t n)
{
	size_t before;
	bool all;

	pthread_mutex_lock(&pool->lock);
	all = pool->threads == 0 && g->queued == n && g->running == 0;
	if (all) {
		before = group_runnable(g);
		g->head = g->tail = NULL;
		g->queued = 0;
		pool->queued -= n;
		pool->inflight -= n;
		group_update_locked(pool, g, before);
	}
	pthread_mutex_unlock(&pool->lock);
	return all;
}

int
pool_submit(
    struct pool *pool, struct pool_group *g, struct pool_job *first, size_t n)
{
	struct pool_wakeups wake = {0};
	uint64_t now = clock_now_ns();
	int planned;

	if (n == 0)
		return 0;
	pool_reap(pool);
	pthread_mutex_lock(&pool->lock);
	if (pool->stopping ||
	    pool->inflight + n > (size_t)pool->params.limits.queue_limit) {
		pthread_mutex_unlock(&pool->lock);
		return -1;
	}
	g->cap = g->cap_asked == 0 || g->cap_asked > pool_share_locked(pool)
	             ? pool_share_locked(pool)
	             : g->cap_asked;
	pool_enqueue_locked(pool, g, first, n, now);
	pool_dispatch_locked(pool, &wake);
	planned = pool_plan_growth_locked(pool);
	POOL_CHECK(pool);
	pthread_mutex_unlock(&pool->lock);
	pool_wake(&wake);
	if (pool_kick_spawner(pool, planned) == 0)
		return 0;
	return pool_take_back(pool, g, n) ? -1 : 0;
}

void
pool_group_cancel(struct pool *pool, struct pool_group *g)
{
	struct pool_wakeups wake = {0};
	struct pool_keycount *c, *next;
	size_t i;
	int planned;

	pthread_mutex_lock(&pool->lock);
	g->canceled = true;
	for (i = 0; i < POOL_KEY_BUCKETS && g->parked > 0; i++)
		for (c = pool->counts[i]; c != NULL; c = next) {
			next = c->next;
			pool_key_release_group_locked(pool, c, g);
		}
	pool_dispatch_locked(pool, &wake);
	planned = pool_plan_growth_locked(pool);
	POOL_CHECK(pool);
	pthread_mutex_unlock(&pool->lock);
	pool_wake(&wake);
	pool_kick_spawner(pool, planned);
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
pool_resize(struct pool *pool, const struct pool_limits *limits)
{
	int planned;

	if (limits->max_threads < 1 || limits->queue_limit < 1)
		return;
	pool_reap(pool);
	pthread_mutex_lock(&pool->lock);
	pool->params.limits = *limits;
	/* A raised or lifted per-key cap lets parked jobs go (I5, I9). */
	pool_key_wake_all_locked(pool);
	pool_dispatch_locked(pool, NULL);
	/* Idle ones above the limit exit now, busy ones after their job. */
	pool_retire_idle_locked(pool, (size_t)limits->max_threads);
	planned = pool_plan_growth_locked(pool);
	POOL_CHECK(pool);
	pthread_mutex_unlock(&pool->lock);
	pool_kick_spawner(pool, planned);
}

void
pool_get_stats(struct pool *pool, struct pool_stats *stats)
{
	pthread_mutex_lock(&pool->lock);
	stats->queued = pool->queued;
	stats->parked = pool->parked;
	stats->running = pool->running;
	stats->threads = pool->threads;
	stats->idle = pool->idle;
	stats->max_threads = (size_t)pool->params.limits.max_threads;
	pthread_mutex_unlock(&pool->lock);
}
