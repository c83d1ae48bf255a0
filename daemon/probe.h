/*
 * probe: the answer of GET /probe, the results of a fan-out as
 * Prometheus text (exposition format 0.0.4) under blackbox_exporter's
 * metric names, so that its dashboards and alerts work unchanged.  Pure:
 * no I/O, no logging.
 */
#ifndef FANOUTD_PROBE_H
#define FANOUTD_PROBE_H

#include <stddef.h>

#include "fetch.h"
#include "render.h"
#include "request.h"

#define PROBE_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* One probed target: its item (item->url is the target as given) and
 * its settled result. */
struct probe_target {
	const struct request_item *item;
	const struct fetch_result *result;
};

/*
 * Every metric family of n targets into out, each family's HELP and TYPE
 * once with all of its samples.  One target's samples carry no target
 * label, as blackbox_exporter's do; with several, each carries
 * target="URL".  Failures (memory) are out's to report (render_out_flush).
 */
void probe_render(
    struct render_out *out, const struct probe_target *targets, size_t n);

#endif
