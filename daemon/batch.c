/*
 * A fan-out.  All of its memory hangs off one struct batch: the spec, an
 * array of jobs and an array of results, both indexed like the spec's
 * items and allocated with the batch itself.  Workers write only their own
 * result slot and read the spec and the config; the loop thread reads a slot
 * only after the pool handed that job back, so the pool's mutex orders every
 * access.  The batch is freed on the loop thread after its last job is back
 * (outstanding == 0).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "config.h"
#include "fetch.h"
#include "metrics.h"
#include "clock.h"
#include "pool.h"
#include "summary.h"
#include "request.h"

struct batch_job {
	struct pool_job job; /* first: the pool hands back this pointer */
	struct batch *batch;
	size_t index;
};

struct batch {
	struct pool_group group; /* its jobs in the pool: turns and cap */
	struct pool *pool;       /* the pool its jobs went to */
	struct request_spec *spec;
	struct config *cfg;
	struct batch_hooks hooks;
	struct batch_job *jobs;
	struct fetch_result *results;
	size_t outstanding;
	atomic_bool canceled;
	uint64_t start_ns;
	uint64_t deadline_ns;
	struct summary summary;
};

struct batch *
batch_new(struct request_spec *spec, struct config *cfg,
    const struct batch_hooks *hooks)
{
	struct batch *b;
	size_t n = spec->count;
	size_t slot = sizeof(*b->jobs) + sizeof(*b->results);

	/* One allocation: the batch, then its jobs, then its results. */
	if (n > (SIZE_MAX - sizeof(*b)) / slot ||
	    (b = calloc(1, sizeof(*b) + n * slot)) == NULL)
		return NULL;
	b->jobs = (struct batch_job *)(b + 1);
	b->results = (struct fetch_result *)(b->jobs + n);
	if (summary_reserve(&b->summary, n) == -1) {
		free(b);
		return NULL;
	}
	b->spec = spec;
	b->cfg = config_ref(cfg);
	b->hooks = *hooks;
	atomic_init(&b->canceled, false);
	pool_group_init(&b->group, spec->concurrency);
	b->start_ns = clock_now_ns();
	return b;
}

void
batch_free(struct batch *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->spec->count; i++)
		fetch_result_reset(&b->results[i]);
	summary_reset(&b->summary);
	request_spec_free(b->spec);
	config_unref(b->cfg);
	free(b);
}

/* Worker thread: run one fetch into its own result slot. */
static void
batch_job_run(struct pool_job *job, void *worker)
{
	struct batch_job *bj = (struct batch_job *)job;
	struct batch *b = bj->batch;
	struct fetch_result *r = &b->results[bj->index];

	r->time.queue = (double)(job->started_ns - job->queued_ns) / 1e6;
	if (atomic_load(&b->canceled))
		fetch_result_set_error(r, FETCH_E_CANCELED, "request canceled");
	else if (worker == NULL)
		fetch_result_set_error(
		    r, FETCH_E_OTHER, "worker has no curl handle");
	else
		fetch_perform(worker, &b->spec->items[bj->index].fetch, b->cfg,
		    &b->canceled, b->deadline_ns, r);
}

static void
batch_settle(struct batch *b, size_t index)
{
	summary_add(&b->summary, &b->results[index]);
	metrics_fetch(&b->results[index]);
	if (b->hooks.on_result != NULL)
		b->hooks.on_result(b, index, b->hooks.arg);
	if (--b->outstanding == 0) {
		b->summary.elapsed_ms =
		    (double)(clock_now_ns() - b->start_ns) / 1e6;
		b->hooks.on_done(b, b->hooks.arg);
	}
}

/*
 * Loop thread: a job came back from the pool.  Only pool jobs waited in
 * the queue; items that failed validation settle without one.
 */
static void
batch_job_done(struct pool_job *job)
{
	struct batch_job *bj = (struct batch_job *)job;

	metrics_queue_wait(bj->batch->results[bj->index].time.queue);
	batch_settle(bj->batch, bj->index);
}

int
batch_start(struct batch *b, struct pool *pool, uint64_t deadline_ns)
{
	struct pool_job *first = NULL, **link = &first;
	size_t i, n = 0, count = b->spec->count;

	b->deadline_ns = deadline_ns;
	for (i = 0; i < count; i++) {
		const struct request_item *item = &b->spec->items[i];

		if (item->error != FETCH_OK)
			continue;
		b->jobs[i].batch = b;
		b->jobs[i].index = i;
		b->jobs[i].job.run = batch_job_run;
		b->jobs[i].job.done = batch_job_done;
		/* One reading of the URL serves both pool keys. */
		b->jobs[i].job.cap_key = fetch_host_key(&item->fetch);
		b->jobs[i].job.affinity = fetch_affinity_of(
		    b->jobs[i].job.cap_key, item->fetch.verify_tls);
		*link = &b->jobs[i].job;
		link = &b->jobs[i].job.next;
		n++;
	}
	*link = NULL;
	if (n > 0 && pool_submit(pool, &b->group, first, n) == -1)
		return -1;
	b->pool = n > 0 ? pool : NULL;
	/* Items that failed validation complete now; +1 keeps the batch
	 * open until all of them are counted. */
	b->outstanding = count + 1;
	for (i = 0; i < count; i++) {
		const struct request_item *item = &b->spec->items[i];

		if (item->error == FETCH_OK)
			continue;
		fetch_result_set_error(
		    &b->results[i], item->error, item->error_message);
		batch_settle(b, i);
	}
	b->outstanding--;
	if (b->outstanding == 0) {
		b->summary.elapsed_ms =
		    (double)(clock_now_ns() - b->start_ns) / 1e6;
		b->hooks.on_done(b, b->hooks.arg);
	}
	return 0;
}

void
batch_set_hooks(struct batch *b, const struct batch_hooks *hooks)
{
	b->hooks = *hooks;
}

void
batch_cancel(struct batch *b)
{
	atomic_store(&b->canceled, true);
	/* Its parked jobs need no turn at their host: they end at once. */
	if (b->pool != NULL)
		pool_group_cancel(b->pool, &b->group);
}

size_t
batch_count(const struct batch *b)
{
	return b->spec->count;
}

const struct summary *
batch_summary(const struct batch *b)
{
	return &b->summary;
}

const struct request_item *
batch_item(const struct batch *b, size_t index)
{
	return &b->spec->items[index];
}

const struct fetch_result *
batch_result(const struct batch *b, size_t index)
{
	return &b->results[index];
}

void
batch_release_result(struct batch *b, size_t index)
{
	fetch_result_reset(&b->results[index]);
}

const struct config *
batch_config(const struct batch *b)
{
	return b->cfg;
}
