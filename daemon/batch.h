/*
 * batch: one fan-out, the future of a whole request.  It owns the request
 * spec, one job and one result per item, a reference to the config it
 * was admitted under, the outstanding count and the cancel flag.  Lives
 * on the loop thread: jobs come back through pool_drain(), the last one
 * calls on_done, and only then may the batch be freed, so no worker ever
 * holds a part of a freed batch.
 */
#ifndef FANOUTD_BATCH_H
#define FANOUTD_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "fetch.h"
#include "request.h"
#include "summary.h"

struct batch;
struct config;
struct pool;
struct request_spec;

struct batch_hooks {
	/* Optional: item index has completed (completion order). */
	void (*on_result)(struct batch *batch, size_t index, void *arg);
	/* Every item has completed. */
	void (*on_done)(struct batch *batch, void *arg);
	void *arg;
};

/* Takes spec; takes a reference to cfg. */
struct batch *batch_new(struct request_spec *spec, struct config *cfg,
    const struct batch_hooks *hooks);
/* Replace the hooks (before batch_start). */
void batch_set_hooks(struct batch *batch, const struct batch_hooks *hooks);
/*
 * Admit every valid item to the pool at once.  Returns -1, having started
 * nothing, when the pool lacks room; else 0, and on_done will be called
 * (from within batch_start when no item needs a fetch).
 */
int batch_start(struct batch *batch, struct pool *pool, uint64_t deadline_ns);
/* Queued items end as canceled; running ones are aborted. */
void batch_cancel(struct batch *batch);
/* Only once on_done has run, or batch_start failed. */
void batch_free(struct batch *batch);

size_t batch_count(const struct batch *batch);
const struct summary *batch_summary(const struct batch *batch);
/* Item index as the request gave it, and its result once settled. */
const struct request_item *batch_item(const struct batch *batch, size_t index);
const struct fetch_result *batch_result(
    const struct batch *batch, size_t index);
/*
 * Free a settled result's strings once its text is written: a big answer
 * read slowly then holds less and less.  Its counts stay in the summary.
 */
void batch_release_result(struct batch *batch, size_t index);
/* The config the fan-out was admitted under. */
const struct config *batch_config(const struct batch *batch);

#endif
