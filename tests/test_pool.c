/*
 * The pool on its own: admission is all or none, every job comes back
 * once through pool_drain(), threads start on demand and idle ones exit.
 * Runs under ThreadSanitizer in scripts/test.
 */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"
#include "check_run.h"

struct test_job {
	struct pool_job job;
	int ran;   /* written by the worker */
	int done;  /* written by drain */
	void *ctx; /* the worker context the job saw */
	int sleep_ms;
	atomic_int *live; /* counts jobs of its group running at once */
	atomic_int *peak;
	atomic_int *gate; /* when set, the job waits for it to open (5 s cap) */
	uint64_t ended_ns;
};

static atomic_int contexts_made, contexts_freed;

/* One group per submission, as batch.c has one per fan-out. */
static struct pool_group groups[64];
static int next_group;

static struct pool_group *
group(size_t cap)
{
	struct pool_group *g = &groups[next_group++ % 64];

	pool_group_init(g, cap);
	return g;
}

static void *
ctx_new(void *arg)
{
	atomic_fetch_add(&contexts_made, 1);
	return malloc(1);
}

static void
ctx_free(void *ctx, void *arg)
{
	atomic_fetch_add(&contexts_freed, 1);
	free(ctx);
}

static uint64_t
pool_test_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void
job_run(struct pool_job *job, void *ctx)
{
	struct test_job *t = (struct test_job *)job;

	int now = 0, peak;

	if (t->live != NULL) {
		now = atomic_fetch_add(t->live, 1) + 1;
		peak = atomic_load(t->peak);
		while (now > peak &&
		       !atomic_compare_exchange_weak(t->peak, &peak, now))
			;
	}
	if (t->sleep_ms > 0)
		usleep((useconds_t)t->sleep_ms * 1000);
	for (int i = 0; t->gate != NULL && !atomic_load(t->gate) && i < 5000;
	     i++)
		usleep(1000);
	if (t->live != NULL)
		atomic_fetch_sub(t->live, 1);
	t->ran++;
	t->ctx = ctx;
	t->ended_ns = pool_test_now_ns();
}

static void
job_done(struct pool_job *job)
{
	((struct test_job *)job)->done++;
}

static struct pool *
make_pool(int threads, int limit, int idle_ms)
{
	struct pool_params p = {.limits = {.max_threads = threads,
	                            .max_per_group = threads,
	                            .queue_limit = limit,
	                            .idle_ms = idle_ms},
	    .stack_size = 128 * 1024,
	    .worker_new = ctx_new,
	    .worker_free = ctx_free};
	char err[128];
	struct pool *pool = pool_new(&p, err, sizeof(err));

	ck_assert_msg(pool != NULL, "pool_new: %s", err);
	return pool;
}

static struct pool_job *
chain(struct test_job *jobs, size_t n, int sleep_ms)
{
	size_t i;

	for (i = 0; i < n; i++) {
		jobs[i].job.run = job_run;
		jobs[i].job.done = job_done;
		jobs[i].job.next = i + 1 < n ? &jobs[i + 1].job : NULL;
		jobs[i].sleep_ms = sleep_ms;
	}
	return &jobs[0].job;
}

/* Drain until want jobs came back, waiting on the notify fd (5 s cap). */
static size_t
drain_until(struct pool *pool, size_t want)
{
	struct pollfd pfd = {.fd = pool_notify_fd(pool), .events = POLLIN};
	size_t got = 0;
	int rounds = 0;

	while (got < want && rounds++ < 500) {
		if (poll(&pfd, 1, 10) > 0)
			got += pool_drain(pool);
	}
	return got;
}

START_TEST(every_job_runs_once_and_comes_back)
{
	struct pool *pool = make_pool(4, 100, 0);
	struct test_job jobs[50] = {0};
	size_t i;

	ck_assert_int_eq(
	    pool_submit(pool, group(0), chain(jobs, 50, 0), 50), 0);
	ck_assert_uint_eq(drain_until(pool, 50), 50);
	for (i = 0; i < 50; i++) {
		ck_assert_int_eq(jobs[i].ran, 1);
		ck_assert_int_eq(jobs[i].done, 1);
		ck_assert_ptr_nonnull(jobs[i].ctx);
		ck_assert_uint_ge(
		    jobs[i].job.started_ns, jobs[i].job.queued_ns);
	}
	pool_free(pool);
}
END_TEST

START_TEST(admission_is_all_or_none)
{
	struct pool *pool = make_pool(2, 10, 0);
	struct test_job a[8] = {0}, b[3] = {0}, c[2] = {0};

	ck_assert_int_eq(pool_submit(pool, group(0), chain(a, 8, 50), 8), 0);
	/* 8 + 3 > 10: refused whole, nothing of b runs. */
	ck_assert_int_eq(pool_submit(pool, group(0), chain(b, 3, 0), 3), -1);
	ck_assert_int_eq(pool_submit(pool, group(0), chain(c, 2, 0), 2), 0);
	ck_assert_uint_eq(drain_until(pool, 10), 10);
	ck_assert_int_eq(b[0].ran + b[1].ran + b[2].ran, 0);
	/* Room is back once the jobs are drained. */
	ck_assert_int_eq(pool_submit(pool, group(0), chain(b, 3, 0), 3), 0);
	ck_assert_uint_eq(drain_until(pool, 3), 3);
	pool_free(pool);
}
END_TEST

START_TEST(threads_start_on_demand_up_to_the_limit)
{
	struct pool *pool = make_pool(3, 100, 0);
	struct test_job jobs[6] = {0};
	struct pool_stats st;

	pool_get_stats(pool, &st);
	ck_assert_uint_eq(st.threads, 0);
	ck_assert_int_eq(
	    pool_submit(pool, group(0), chain(jobs, 6, 100), 6), 0);
	pool_get_stats(pool, &st);
	ck_assert_uint_eq(st.threads, 3);
	ck_assert_uint_eq(drain_until(pool, 6), 6);
	pool_free(pool);
	ck_assert_int_eq(
	    atomic_load(&contexts_made), atomic_load(&contexts_freed));
}
END_TEST

static void *
exit_at_once(void *arg)
{
	return arg;
}

static uint64_t
ns_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)(t.tv_sec - t0->tv_sec) * 1000000000u +
	       (uint64_t)t.tv_nsec - (uint64_t)t0->tv_nsec;
}

/*
 * A burst that needs 2,000 threads: pool_submit() (the loop thread) starts
 * one, which starts the rest.  Were the submitter to create them all, it
 * would take about as long as creating 2,000 threads here, measured
 * first; the bound is a tenth of that, so only who does the work counts,
 * not how fast this machine is.
 */
START_TEST(a_burst_of_threads_is_started_off_the_submitting_thread)
{
	enum { N = 2000 };
	static struct test_job jobs[N];
	static pthread_t tids[N];
	struct pool *pool = make_pool(N, N, 0);
	pthread_attr_t attr;
	struct timespec t0;
	uint64_t create_ns, submit_ns;
	int i;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 128 * 1024);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < N; i++)
		ck_assert_int_eq(
		    pthread_create(&tids[i], &attr, exit_at_once, NULL), 0);
	create_ns = ns_since(&t0);
	for (i = 0; i < N; i++)
		pthread_join(tids[i], NULL);
	pthread_attr_destroy(&attr);

	memset(jobs, 0, sizeof(jobs));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(pool_submit(pool, group(0), chain(jobs, N, 0), N), 0);
	submit_ns = ns_since(&t0);
	ck_assert_msg(submit_ns * 10 < create_ns,
	    "pool_submit took %llu us; creating %d threads takes %llu us",
	    (unsigned long long)submit_ns / 1000, N,
	    (unsigned long long)create_ns / 1000);
	ck_assert_uint_eq(drain_until(pool, N), N);
	for (i = 0; i < N; i++)
		ck_assert_int_eq(jobs[i].ran, 1);
	pool_free(pool);
}
END_TEST

START_TEST(idle_threads_exit)
{
	struct pool *pool = make_pool(4, 100, 50);
	struct test_job jobs[4] = {0};
	struct pool_stats st;
	int i;

	ck_assert_int_eq(pool_submit(pool, group(0), chain(jobs, 4, 20), 4), 0);
	ck_assert_uint_eq(drain_until(pool, 4), 4);
	for (i = 0; i < 200; i++) {
		pool_get_stats(pool, &st);
		if (st.threads == 0)
			break;
		usleep(10000);
	}
	ck_assert_uint_eq(st.threads, 0);
	/* And the pool still works afterwards. */
	ck_assert_int_eq(pool_submit(pool, group(0), chain(jobs, 4, 0), 4), 0);
	ck_assert_uint_eq(drain_until(pool, 4), 4);
	pool_free(pool);
}
END_TEST

START_TEST(resize_changes_the_queue_limit)
{
	struct pool *pool = make_pool(2, 2, 0);
	struct test_job jobs[4] = {0};

	ck_assert_int_eq(pool_submit(pool, group(0), chain(jobs, 4, 0), 4), -1);
	pool_resize(pool, &(struct pool_limits){4, 4, 4, 0, 0});
	ck_assert_int_eq(pool_submit(pool, group(0), chain(jobs, 4, 0), 4), 0);
	ck_assert_uint_eq(drain_until(pool, 4), 4);
	pool_free(pool);
}
END_TEST

/*
 * Issue 9, item 4: a group never runs more than its cap at once, and a
 * group submitted behind a big one is served in turn, not after it.
 */
START_TEST(a_group_runs_at_most_its_cap)
{
	struct pool *pool = make_pool(8, 100, 0);
	static struct test_job jobs[24];
	atomic_int live = 0, peak = 0;
	size_t i;

	memset(jobs, 0, sizeof(jobs));
	chain(jobs, 24, 20);
	for (i = 0; i < 24; i++) {
		jobs[i].live = &live;
		jobs[i].peak = &peak;
	}
	ck_assert_int_eq(pool_submit(pool, group(3), &jobs[0].job, 24), 0);
	ck_assert_uint_eq(drain_until(pool, 24), 24);
	ck_assert_int_eq(atomic_load(&peak), 3);
	pool_free(pool);
}
END_TEST

START_TEST(the_default_cap_keeps_workers_back)
{
	struct pool_params p = {
	    .limits = {.max_threads = 16, .queue_limit = 1000},
	    .stack_size = 128 * 1024};
	char err[64];
	struct pool *pool = pool_new(&p, err, sizeof(err));

	/* 16 threads keep 16/8 = 2 back; asking for more gets the share */
	ck_assert_uint_eq(pool_group_cap(pool, 0), 14);
	ck_assert_uint_eq(pool_group_cap(pool, 100), 14);
	ck_assert_uint_eq(pool_group_cap(pool, 5), 5);
	pool_resize(pool, &(struct pool_limits){1, 0, 10, 0, 0});
	ck_assert_uint_eq(pool_group_cap(pool, 0), 1);
	pool_resize(pool, &(struct pool_limits){1000, 0, 10, 0, 0});
	ck_assert_uint_eq(pool_group_cap(pool, 0), 968);
	pool_resize(pool, &(struct pool_limits){1000, 10, 10, 0, 0});
	ck_assert_uint_eq(pool_group_cap(pool, 0), 10);
	pool_free(pool);
}
END_TEST

START_TEST(a_small_group_is_served_in_turn)
{
	struct pool *pool = make_pool(4, 1000, 0);
	static struct test_job big[200], small[1];
	size_t i, big_done = 0;

	memset(big, 0, sizeof(big));
	memset(small, 0, sizeof(small));
	ck_assert_int_eq(
	    pool_submit(pool, group(0), chain(big, 200, 10), 200), 0);
	ck_assert_int_eq(pool_submit(pool, group(0), chain(small, 1, 0), 1), 0);
	ck_assert_uint_eq(drain_until(pool, 201), 201);
	for (i = 0; i < 200; i++)
		big_done += big[i].ended_ns < small[0].ended_ns;
	/* FIFO would finish all 200 first; in turn, within one round */
	ck_assert_msg(
	    big_done <= 8, "%zu big jobs ended before the small one", big_done);
	pool_free(pool);
}
END_TEST

/*
 * Issue 9, item 5: lowering max_threads while jobs are queued must never
 * leave them without a worker.  Each round queues work, shrinks the pool
 * (and sometimes grows it back) while it runs, and needs every job back
 * within drain_until's 5 s; a lost worker shows as a short count.
 */
START_TEST(shrinking_never_strands_queued_jobs)
{
	static struct test_job jobs[40];
	struct pool *pool = make_pool(8, 1000, 5);
	struct pool_stats st;
	int round;

	for (round = 0; round < 300; round++) {
		int max = 1 + round % 3;

		memset(jobs, 0, sizeof(jobs));
		ck_assert_int_eq(
		    pool_submit(pool, group(0), chain(jobs, 40, round % 2), 40),
		    0);
		pool_resize(pool, &(struct pool_limits){max, 0, 1000, 5, 0});
		if (round % 5 == 0)
			pool_resize(
			    pool, &(struct pool_limits){8, 0, 1000, 5, 0});
		ck_assert_msg(drain_until(pool, 40) == 40,
		    "round %d: jobs stranded", round);
		pool_resize(pool, &(struct pool_limits){8, 0, 1000, 5, 0});
	}
	pool_resize(pool, &(struct pool_limits){2, 0, 1000, 5, 0});
	for (round = 0; round < 200; round++) {
		pool_get_stats(pool, &st);
		if (st.threads <= 2)
			break;
		usleep(5000);
	}
	ck_assert_uint_le(st.threads, 2);
	pool_free(pool);
}
END_TEST

START_TEST(idle_workers_are_reused_last_in_first_out)
{
	struct pool *pool = make_pool(4, 100, 0);
	struct test_job jobs[4] = {0}, one[3] = {0};
	void *last;
	int i;

	ck_assert_int_eq(pool_submit(pool, group(4), chain(jobs, 4, 30), 4), 0);
	ck_assert_uint_eq(drain_until(pool, 4), 4);
	/* one after another, every job goes to the same, latest-idle one */
	ck_assert_int_eq(pool_submit(pool, group(0), chain(one, 1, 0), 1), 0);
	ck_assert_uint_eq(drain_until(pool, 1), 1);
	last = one[0].ctx;
	for (i = 1; i < 3; i++) {
		ck_assert_int_eq(
		    pool_submit(pool, group(0), chain(one + i, 1, 0), 1), 0);
		ck_assert_uint_eq(drain_until(pool, 1), 1);
		ck_assert_ptr_eq(one[i].ctx, last);
	}
	pool_free(pool);
}
END_TEST

/*
 * Issue 10, item 3: a job goes to the idle worker whose last job had the
 * same affinity key (its connection is warm), whichever idled last; a job
 * with a key no idle worker holds, or none, goes to the latest idle one.
 */
START_TEST(a_job_goes_to_the_worker_whose_last_key_matches)
{
	struct pool *pool = make_pool(4, 100, 0);
	struct test_job first[4] = {0}, one[12] = {0};
	void *by_key[4];
	size_t i, j;

	chain(first, 4, 50);
	for (i = 0; i < 4; i++)
		first[i].job.affinity = 100 + i;
	ck_assert_int_eq(pool_submit(pool, group(4), &first[0].job, 4), 0);
	ck_assert_uint_eq(drain_until(pool, 4), 4);
	for (i = 0; i < 4; i++) {
		by_key[i] = first[i].ctx;
		for (j = 0; j < i; j++)
			ck_assert_ptr_ne(by_key[i], by_key[j]);
	}
	/* keys in an order unlike the idle order, one fan-out at a time */
	for (i = 0; i < 8; i++) {
		size_t k = (i * 3 + 1) % 4;

		chain(&one[i], 1, 0);
		one[i].job.affinity = 100 + k;
		ck_assert_int_eq(
		    pool_submit(pool, group(0), &one[i].job, 1), 0);
		ck_assert_uint_eq(drain_until(pool, 1), 1);
		ck_assert_ptr_eq(one[i].ctx, by_key[k]);
	}
	/* a key no one holds, then none: the latest idle, LIFO */
	chain(&one[8], 1, 0);
	one[8].job.affinity = 999;
	ck_assert_int_eq(pool_submit(pool, group(0), &one[8].job, 1), 0);
	ck_assert_uint_eq(drain_until(pool, 1), 1);
	ck_assert_ptr_eq(one[8].ctx, one[7].ctx);
	chain(&one[9], 1, 0);
	ck_assert_int_eq(pool_submit(pool, group(0), &one[9].job, 1), 0);
	ck_assert_uint_eq(drain_until(pool, 1), 1);
	ck_assert_ptr_eq(one[9].ctx, one[8].ctx);
	/* that worker's key is now 999; a job without a key left it so */
	chain(&one[10], 1, 0);
	one[10].job.affinity = 100 + 2;
	ck_assert_int_eq(pool_submit(pool, group(0), &one[10].job, 1), 0);
	ck_assert_uint_eq(drain_until(pool, 1), 1);
	ck_assert_ptr_eq(one[10].ctx, by_key[2]);
	chain(&one[11], 1, 0);
	one[11].job.affinity = 999;
	ck_assert_int_eq(pool_submit(pool, group(0), &one[11].job, 1), 0);
	ck_assert_uint_eq(drain_until(pool, 1), 1);
	ck_assert_ptr_eq(one[11].ctx, one[9].ctx);
	pool_free(pool);
}
END_TEST

/*
 * Many workers on few keys, and keys that share a bucket: each batch of
 * jobs finds a worker of its own key while one is idle.
 */
START_TEST(keys_sharing_a_bucket_still_match_exactly)
{
	enum { N = 6 };
	struct pool *pool = make_pool(N, 100, 0);
	struct test_job first[N] = {0}, again[N] = {0};
	size_t i;

	chain(first, N, 50);
	for (i = 0; i < N; i++) /* 512 buckets: all six in bucket 7 */
		first[i].job.affinity = 7 + 512 * (uint64_t)(i + 1);
	ck_assert_int_eq(pool_submit(pool, group(N), &first[0].job, N), 0);
	ck_assert_uint_eq(drain_until(pool, N), N);
	for (i = 0; i < N; i++) {
		size_t k = N - 1 - i;

		chain(&again[i], 1, 0);
		again[i].job.affinity = first[k].job.affinity;
		ck_assert_int_eq(
		    pool_submit(pool, group(0), &again[i].job, 1), 0);
		ck_assert_uint_eq(drain_until(pool, 1), 1);
		ck_assert_ptr_eq(again[i].ctx, first[k].ctx);
	}
	pool_free(pool);
}
END_TEST

/*
 * A miss does not take the only worker warm for another host when a
 * spare one (a key another idle worker shares) idled almost as late:
 * two hosts fetched in turn keep a worker each.
 */
START_TEST(a_miss_spares_the_only_worker_of_a_key)
{
	struct pool *pool = make_pool(3, 100, 0);
	struct test_job first[3] = {0}, one[8] = {0};
	void *only_b;
	size_t i;

	chain(first, 3, 50);
	first[0].job.affinity = 10; /* A */
	first[1].job.affinity = 10; /* A */
	first[2].job.affinity = 20; /* B */
	ck_assert_int_eq(pool_submit(pool, group(3), &first[0].job, 3), 0);
	ck_assert_uint_eq(drain_until(pool, 3), 3);
	/* B's worker idles last: B again goes to it, and so it is the top */
	chain(&one[0], 1, 0);
	one[0].job.affinity = 20;
	ck_assert_int_eq(pool_submit(pool, group(0), &one[0].job, 1), 0);
	ck_assert_uint_eq(drain_until(pool, 1), 1);
	only_b = one[0].ctx;
	/* C and B in turn: C takes a spare A worker, never B's */
	for (i = 1; i < 7; i++) {
		chain(&one[i], 1, 0);
		one[i].job.affinity = i % 2 ? 30 : 20;
		ck_assert_int_eq(
		    pool_submit(pool, group(0), &one[i].job, 1), 0);
		ck_assert_uint_eq(drain_until(pool, 1), 1);
		if (i % 2)
			ck_assert_ptr_ne(one[i].ctx, only_b);
		else
			ck_assert_ptr_eq(one[i].ctx, only_b);
	}
	/* C is warm on its own worker now */
	ck_assert_ptr_eq(one[3].ctx, one[1].ctx);
	ck_assert_ptr_eq(one[5].ctx, one[1].ctx);
	pool_free(pool);
}
END_TEST

/* Poll the stats until running and parked are as wanted (5 s cap). */
static bool
stats_reach(struct pool *pool, size_t running, size_t parked)
{
	struct pool_stats st;
	int i;

	for (i = 0; i < 5000; i++) {
		pool_get_stats(pool, &st);
		if (st.running == running && st.parked == parked)
			return true;
		usleep(1000);
	}
	return false;
}

/* jobs[0..n) of key, gated by gate (NULL: not gated), counted in live. */
static struct pool_job *
keyed_chain(struct test_job *jobs, size_t n, uint64_t key, atomic_int *gate,
    atomic_int *live, atomic_int *peak)
{
	size_t i;

	chain(jobs, n, 0);
	for (i = 0; i < n; i++) {
		jobs[i].job.cap_key = key;
		jobs[i].gate = gate;
		jobs[i].live = live;
		jobs[i].peak = peak;
	}
	return &jobs[0].job;
}

/* threads workers, one group may use all, max_per_key of a key at once. */
static void
cap_keys(struct pool *pool, int threads, int max_per_key)
{
	pool_resize(pool, &(struct pool_limits){.max_threads = threads,
	                      .max_per_group = threads,
	                      .queue_limit = 1000,
	                      .max_per_key = max_per_key});
}

static struct pool *
make_capped_pool(int threads, int max_per_key)
{
	struct pool *pool = make_pool(threads, 1000, 0);

	cap_keys(pool, threads, max_per_key);
	return pool;
}

START_TEST(a_key_runs_at_most_its_cap_across_groups)
{
	struct pool *pool = make_capped_pool(8, 2);
	static struct test_job a[6], b[6], other[4];
	atomic_int gate = 0, live = 0, peak = 0, olive = 0, opeak = 0;

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	memset(other, 0, sizeof(other));
	ck_assert_int_eq(pool_submit(pool, group(0),
	                     keyed_chain(a, 6, 7, &gate, &live, &peak), 6),
	    0);
	ck_assert_int_eq(pool_submit(pool, group(0),
	                     keyed_chain(b, 6, 7, &gate, &live, &peak), 6),
	    0);
	/* two of key 7 run, ten wait; another key is not held up by them */
	ck_assert(stats_reach(pool, 2, 10));
	ck_assert_int_eq(pool_submit(pool, group(0),
	                     keyed_chain(other, 4, 9, NULL, &olive, &opeak), 4),
	    0);
	ck_assert_uint_eq(drain_until(pool, 4), 4);
	ck_assert(stats_reach(pool, 2, 10));
	atomic_store(&gate, 1);
	ck_assert_uint_eq(drain_until(pool, 12), 12);
	ck_assert_int_eq(atomic_load(&peak), 2);
	ck_assert(stats_reach(pool, 0, 0));
	pool_free(pool);
}
END_TEST

START_TEST(a_canceled_group_stops_waiting_for_its_key)
{
	struct pool *pool = make_capped_pool(8, 2);
	static struct test_job a[5], b[3];
	struct pool_group *gb;
	atomic_int gate = 0, live = 0, peak = 0;

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	ck_assert_int_eq(pool_submit(pool, group(0),
	                     keyed_chain(a, 5, 7, &gate, &live, &peak), 5),
	    0);
	ck_assert(stats_reach(pool, 2, 3));
	gb = group(0);
	ck_assert_int_eq(
	    pool_submit(pool, gb, keyed_chain(b, 3, 7, NULL, NULL, NULL), 3),
	    0);
	ck_assert(stats_reach(pool, 2, 6));
	/* b's jobs end at once, though key 7 is still at its cap */
	pool_group_cancel(pool, gb);
	ck_assert_uint_eq(drain_until(pool, 3), 3);
	ck_assert(b[0].ran && b[1].ran && b[2].ran);
	ck_assert(stats_reach(pool, 2, 3));
	atomic_store(&gate, 1);
	ck_assert_uint_eq(drain_until(pool, 5), 5);
	ck_assert_int_eq(atomic_load(&peak), 2);
	pool_free(pool);
}
END_TEST

START_TEST(lifting_the_cap_lets_parked_jobs_go)
{
	struct pool *pool = make_capped_pool(8, 1);
	static struct test_job a[5];
	atomic_int gate = 0, live = 0, peak = 0;

	memset(a, 0, sizeof(a));
	ck_assert_int_eq(pool_submit(pool, group(0),
	                     keyed_chain(a, 5, 7, &gate, &live, &peak), 5),
	    0);
	ck_assert(stats_reach(pool, 1, 4));
	cap_keys(pool, 8, 3);
	ck_assert(stats_reach(pool, 3, 2));
	cap_keys(pool, 8, 0);
	ck_assert(stats_reach(pool, 5, 0));
	/* all five inside their run at once (5 s cap) */
	for (int i = 0; i < 5000 && atomic_load(&live) < 5; i++)
		usleep(1000);
	ck_assert_int_eq(atomic_load(&peak), 5);
	atomic_store(&gate, 1);
	ck_assert_uint_eq(drain_until(pool, 5), 5);
	pool_free(pool);
}
END_TEST

START_TEST(jobs_without_a_key_are_never_capped)
{
	struct pool *pool = make_capped_pool(8, 1);
	static struct test_job a[6];
	atomic_int gate = 0, live = 0, peak = 0;

	memset(a, 0, sizeof(a));
	ck_assert_int_eq(pool_submit(pool, group(0),
	                     keyed_chain(a, 6, 0, &gate, &live, &peak), 6),
	    0);
	ck_assert(stats_reach(pool, 6, 0));
	atomic_store(&gate, 1);
	ck_assert_uint_eq(drain_until(pool, 6), 6);
	pool_free(pool);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, every_job_runs_once_and_comes_back);
	tcase_add_test(tc, admission_is_all_or_none);
	tcase_add_test(tc, threads_start_on_demand_up_to_the_limit);
	tcase_add_test(
	    tc, a_burst_of_threads_is_started_off_the_submitting_thread);
	tcase_add_test(tc, idle_threads_exit);
	tcase_add_test(tc, resize_changes_the_queue_limit);
	tcase_add_test(tc, a_group_runs_at_most_its_cap);
	tcase_add_test(tc, the_default_cap_keeps_workers_back);
	tcase_add_test(tc, a_small_group_is_served_in_turn);
	tcase_add_test(tc, shrinking_never_strands_queued_jobs);
	tcase_add_test(tc, idle_workers_are_reused_last_in_first_out);
	tcase_add_test(tc, a_job_goes_to_the_worker_whose_last_key_matches);
	tcase_add_test(tc, keys_sharing_a_bucket_still_match_exactly);
	tcase_add_test(tc, a_miss_spares_the_only_worker_of_a_key);
	tcase_add_test(tc, a_key_runs_at_most_its_cap_across_groups);
	tcase_add_test(tc, a_canceled_group_stops_waiting_for_its_key);
	tcase_add_test(tc, lifting_the_cap_lets_parked_jobs_go);
	tcase_add_test(tc, jobs_without_a_key_are_never_capped);
	suite_add_tcase(s, tc);
	return check_run(s);
}
