/*
 * pool: an elastic set of worker threads behind a bounded, fair queue.
 * Knows nothing of HTTP or curl: a job is opaque, its run step cannot
 * fail (the outcome is written into the job), and finished jobs come back
 * to the submitting (loop) thread through pool_drain(), announced by a
 * readable pool_notify_fd().
 *
 * Jobs are submitted in groups (one group per fan-out).  Groups take
 * turns: a free worker takes the next job of the next group in a ring,
 * so a small request is not stuck behind a big one, and a group never has
 * more than its cap of jobs running, so no single request holds every
 * worker.  queue_limit bounds jobs admitted and not yet drained, over all
 * groups; pool_submit() takes a whole group's batch or none of it.
 * Across groups, jobs that share a cap key run at most max_per_key at a
 * time (a per-host cap); a job over it is parked until its key has room,
 * and the rest of its group goes on meanwhile.
 *
 * Threads are started on demand, up to max_threads; the submitting thread
 * starts at most one, which starts the others, so a burst of thousands
 * never stalls the loop.  A job handed to an idle worker goes to one whose
 * last job had the same affinity key, when one is idle (its warm
 * connection can be reused), else to one of those idle the shortest
 * (last-in first-out; see idle_pick_locked), so surplus workers stay idle
 * and exit after idle_ms.
 */
#ifndef FANOUTD_POOL_H
#define FANOUTD_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pool;
struct pool_group;
struct pool_keycount;

struct pool_job {
	struct pool_job *next;
	/* On a worker thread, with that worker's context. */
	void (*run)(struct pool_job *job, void *worker_ctx);
	/* On the loop thread, from pool_drain(). */
	void (*done)(struct pool_job *job);
	/*
	 * Opaque to the pool, set by the submitter: jobs with the same
	 * non-zero key are best run by the same worker (for fanoutd, the
	 * target's scheme://host:port).  0: no preference.
	 */
	uint64_t affinity;
	/*
	 * Set by the submitter: jobs with the same non-zero key run at most
	 * limits.max_per_key at once, over all groups (for fanoutd, the
	 * target's host:port); the others wait, parked, in the queue.
	 */
	uint64_t cap_key;
	struct pool_group *group; /* set by pool_submit */
	uint64_t queued_ns;       /* set by pool_submit */
	uint64_t started_ns;      /* set by the worker */
	/* pool.c's own: the key count this job holds a slot of, if any */
	struct pool_keycount *counted;
	bool reserved; /* unparked: its slot is kept for it */
};

/*
 * The jobs of one submitter, scheduled together.  Embedded in the
 * submitter's own object, which must outlive every job of the group
 * (the pool holds pointers to it while any job is queued or running).
 * Only pool.c touches the fields.
 */
struct pool_group {
	struct pool_job *head, *tail; /* queued, in submission order */
	size_t queued, running;
	size_t parked; /* taken from the queue, waiting for their key */
	size_t cap;    /* most jobs running at once; 0 until submitted */
	size_t cap_asked;
	bool canceled; /* its jobs no longer wait for their key */
	struct pool_group *ring_prev, *ring_next;
	bool in_ring; /* has queued jobs it may start now */
};

/* What a reload may change. */
struct pool_limits {
	int max_threads; /* >= 1 */
	/*
	 * The cap of a group that asks for none, and the most any group may
	 * ask for; 0 means max_threads less an eighth (at least one worker,
	 * at most 32 kept back), so no one group holds every worker.
	 */
	int max_per_group;
	int queue_limit; /* >= 1 */
	int idle_ms;     /* 0: idle workers never exit */
	int max_per_key; /* jobs of one cap_key at once; 0: no cap */
};

struct pool_params {
	struct pool_limits limits;
	size_t stack_size;
	/* Per-thread context, made and freed on the worker's own thread. */
	void *(*worker_new)(void *arg);
	void (*worker_free)(void *ctx, void *arg);
	void *arg;
};

struct pool_stats {
	size_t queued;  /* admitted, waiting for a worker (or their key) */
	size_t parked;  /* of those, waiting for their key's cap */
	size_t running; /* being run */
	size_t threads; /* alive or starting */
	size_t idle;    /* alive and waiting */
	size_t max_threads;
};

struct pool *pool_new(
    const struct pool_params *params, char *err, size_t errlen);
/* Wait for every thread to exit; jobs still queued are never run. */
void pool_free(struct pool *pool);

/*
 * An empty group whose jobs run at most cap at a time: 0 for the pool's
 * max_per_group, and never more than that.
 */
void pool_group_init(struct pool_group *group, size_t cap);
/*
 * Queue n jobs chained through ->next into group.  Returns 0, or -1
 * (nothing queued) when fewer than n slots are left under queue_limit,
 * or when no worker exists and none can be started.
 */
int pool_submit(struct pool *pool, struct pool_group *group,
    struct pool_job *first, size_t n);
/*
 * g's jobs no longer wait for their key's cap (they are being canceled
 * and will finish at once): the parked ones go back to g's queue.
 */
void pool_group_cancel(struct pool *pool, struct pool_group *group);
/* Readable when finished jobs wait for pool_drain(). */
int pool_notify_fd(const struct pool *pool);
/* Call done() for every finished job; returns how many. */
size_t pool_drain(struct pool *pool);
/*
 * New limits.  Threads above max_threads exit: idle ones at once, busy
 * ones after their job.  Queued work is kept, and groups already
 * submitted keep their cap.
 */
void pool_resize(struct pool *pool, const struct pool_limits *limits);
/* The cap a group gets when it asks for cap (0: none). */
size_t pool_group_cap(struct pool *pool, size_t cap);
void pool_get_stats(struct pool *pool, struct pool_stats *stats);

#endif
