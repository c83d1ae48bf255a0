/*
 * fanout: one POST /fetch or GET /probe in flight, from admission to the last
 * byte of its answer.  Loop thread only.
 *
 * A fan-out owns its batch (the future of every item), a copy of its
 * call, and a reference to the config it was admitted under.  It answers
 * once every future is done (as JSON, or as GET /probe's Prometheus
 * text), or line by line as they complete when the client asked for a
 * stream.  A big answer is written as the client reads
 * it, never all at once: at most one chunk waits in the connection's
 * buffer, and each result's text is written and then freed.  Once every
 * result is in, the client has limits.send_timeout_ms to read the rest; a
 * client that goes away (closes, half-closes, resets) cancels its
 * fetches and gets no answer (logged as 499, as nginx does).
 */
#ifndef FANOUTD_FANOUT_H
#define FANOUTD_FANOUT_H

#include <stdbool.h>
#include <stddef.h>

struct call;
struct config;
struct fanouts;
struct pool;
struct request_spec;

struct event_base;

/* The fan-outs in flight, for the gauge and for shutdown. */
struct fanouts *fanouts_new(struct event_base *base);
/* Only when none is in flight (after the loop has ended them). */
void fanouts_free(struct fanouts *fanouts);
size_t fanouts_count(const struct fanouts *fanouts);
/* Cancel every fan-out in flight (shutdown deadline). */
void fanouts_cancel_all(struct fanouts *fanouts);

/* How a fan-out answers. */
enum fanout_format {
	FANOUT_JSON,   /* one JSON document once every result is in */
	FANOUT_NDJSON, /* a line per result as it comes, then the summary */
	FANOUT_PROBE,  /* Prometheus text (probe.c) once every result is in */
};

/*
 * Start the fan-out of spec (taken) for the call c (copied), under cfg
 * (referenced).  The call is answered from here on: 503 when the pool has
 * no room for all of its fetches, 500 when memory runs out, else 200.
 */
void fanout_start(struct fanouts *fanouts, const struct call *c,
    struct request_spec *spec, struct config *cfg, struct pool *pool,
    enum fanout_format format);

#endif
