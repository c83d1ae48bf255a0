/*
 * fanout: a fan-out in flight.
 *
 * Who frees what.  The fan-out is freed on the loop thread, once its
 * batch is done (every job is back from the pool) and its answer is
 * handed to evhttp or abandoned, never before: a worker may still write
 * into the batch until then.  evhttp's request is ours until the answer's
 * last byte is queued (evhttp_send_reply, evhttp_send_reply_end), except
 * when evhttp frees the connection first: then the close callback says so
 * (client_gone_fn, freed), and the request is either gone with the
 * connection (still attached to it) or left to us (detached, as evhttp
 * does when a client that was being answered goes away).
 *
 * Writing.  A streamed answer starts with its first result; a buffered
 * one when the batch is done, in one piece when it is small, else as a
 * chunked reply.  Either way the text is made one chunk at a time, and the
 * next chunk only once evhttp has written the last one to the socket
 * (its drain callback), so a client that reads slowly makes the daemon
 * write slowly instead of buffer the whole answer.
 */
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "batch.h"
#include "call.h"
#include "client.h"
#include "clock.h"
#include "config.h"
#include "fanout.h"
#include "fetch.h"
#include "log.h"
#include "pool.h"
#include "probe.h"
#include "render.h"
#include "request.h"

/* Text written per chunk, and the most one chunk may wait to be read. */
#define FANOUT_CHUNK (32 * 1024)
/* A buffered answer bigger than this goes out in chunks. */
#define FANOUT_PIECE_MAX (64 * 1024)

struct fanouts {
	struct event_base *base;
	struct fanout *head;
	size_t count;
};

struct fanout {
	struct fanout *prev, *next;
	struct fanouts *owner;
	struct call call;
	struct config *cfg;
	struct batch *batch;
	size_t *order;  /* streaming: item indices in completion order */
	size_t ready;   /* streaming: entries of order */
	size_t sent;    /* results written */
	bool stream;    /* NDJSON, in completion order */
	bool probe;     /* Prometheus text, once done */
	bool started;   /* the chunked reply has begun */
	bool done;      /* every future is done */
	bool gone;      /* the client went away */
	bool in_flight; /* a chunk is being written; its drain goes on */
	struct event *deadline; /* limits.send_timeout_ms */
	max_align_t space[];    /* the event, then order[] */
};

struct fanouts *
fanouts_new(struct event_base *base)
{
	struct fanouts *fs = calloc(1, sizeof(*fs));

	if (fs != NULL)
		fs->base = base;
	return fs;
}

void
fanouts_free(struct fanouts *fs)
{
	free(fs);
}

size_t
fanouts_count(const struct fanouts *fs)
{
	return fs->count;
}

void
fanouts_cancel_all(struct fanouts *fs)
{
	struct fanout *f;

	for (f = fs->head; f != NULL; f = f->next)
		batch_cancel(f->batch);
}

/*
 * A big fan-out leaves many small blocks free in the workers' malloc
 * arenas; give the pages back, or the daemon stays at its high-water mark.
 */
#define FANOUT_TRIM_AFTER 1000

static void
fanout_free(struct fanout *f)
{
	bool big = batch_count(f->batch) >= FANOUT_TRIM_AFTER;

	if (f->prev != NULL)
		f->prev->next = f->next;
	else
		f->owner->head = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	f->owner->count--;
	event_del(f->deadline);
	if (f->call.client != NULL)
		client_unwatch(f->call.client);
	batch_free(f->batch);
	config_unref(f->cfg);
	free(f);
#ifdef __GLIBC__
	if (big)
		malloc_trim(0);
#endif
}

static void
fanout_counts(const struct fanout *f, struct call_counts *counts)
{
	const struct summary *sum = batch_summary(f->batch);

	counts->urls = batch_count(f->batch);
	counts->ok = sum->ok;
	counts->failed = sum->failed;
}

static void
fanout_ms_tv(struct timeval *tv, int ms)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

/*
 * While evhttp writes a reply it also reads, to notice a close, with the
 * connection's read timeout armed: a client that sends nothing for
 * client_timeout_ms would be cut in the middle of an answer it reads.
 * The fan-out's own deadlines bound the reply instead.
 */
static void
fanout_timeouts(struct fanout *f, bool replying)
{
	struct evhttp_connection *evcon =
	    evhttp_request_get_connection(f->call.req);
	struct bufferevent *bev =
	    evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	struct timeval rd, wr;

	fanout_ms_tv(&wr, f->cfg->client_timeout_ms);
	if (replying)
		fanout_ms_tv(&rd, f->cfg->request_timeout_ms +
		                      f->cfg->send_timeout_ms + 1000);
	else
		rd = wr;
	if (bev != NULL)
		bufferevent_set_timeouts(bev, &rd, &wr);
}

static int
fanout_emit(const char *text, size_t size, void *data)
{
	return evbuffer_add(data, text, size);
}

/* The headers of a 200 that goes out in chunks. */
static void
fanout_begin_chunked(struct fanout *f, const char *ctype)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(f->call.req);

	f->started = true;
	evhttp_add_header(out, "Content-Type", ctype);
	evhttp_add_header(out, "X-Request-Id", f->call.id);
	evhttp_send_reply_start(f->call.req, 200, "OK");
	fanout_timeouts(f, true);
	/* evhttp reads while it writes, and sees a close itself. */
	if (f->call.client != NULL)
		client_quiet(f->call.client);
}

/* The last chunk is queued: the reply ends, and so does the fan-out. */
static void
fanout_end_reply(struct fanout *f)
{
	struct call_counts counts;

	fanout_counts(f, &counts);
	call_log(&f->call, 200, &counts);
	fanout_timeouts(f, false);
	if (f->call.client != NULL) {
		client_unwatch(f->call.client);
		client_request_done(f->call.client);
	}
	evhttp_send_reply_end(f->call.req);
	f->call.req = NULL;
	fanout_free(f);
}

/* Writing failed (out of memory) after the reply began: cut it. */
static void
fanout_cut(struct fanout *f, const char *why)
{
	log_warnx("request %s: %s; closing the connection", f->call.id, why);
	if (f->call.client != NULL)
		client_abort(f->call.client);
	else
		shutdown(bufferevent_getfd(evhttp_connection_get_bufferevent(
		             evhttp_request_get_connection(f->call.req))),
		    SHUT_RDWR);
}

/*
 * Render what is ready into buf until it holds limit bytes: streamed
 * lines in completion order, or buffered items in index order.  True
 * when buf holds the answer's end.
 */
static bool
fanout_render_chunk(
    struct fanout *f, struct evbuffer *buf, size_t limit, int *rc)
{
	size_t n = batch_count(f->batch), i;
	struct render_out out;

	render_out_init(&out, fanout_emit, buf);
	while (evbuffer_get_length(buf) < limit &&
	       f->sent < (f->stream ? f->ready : n)) {
		i = f->stream ? f->order[f->sent] : f->sent;
		if (f->stream)
			render_line(&out, i, batch_item(f->batch, i),
			    batch_result(f->batch, i));
		else
			render_answer_item(&out, f->sent == 0, i,
			    batch_item(f->batch, i), batch_result(f->batch, i));
		f->sent++;
		*rc |= render_out_flush(&out);
		batch_release_result(f->batch, i);
	}
	if (!f->done || f->sent < n)
		return false;
	if (f->stream)
		render_summary_line(&out, batch_summary(f->batch));
	else
		render_answer_close(&out, batch_summary(f->batch));
	*rc |= render_out_flush(&out);
	return true;
}

static void fanout_on_drained(struct evhttp_connection *, void *);

/*
 * Write what is ready, one chunk at a time: the next chunk is made when
 * the last one has left for the socket (fanout_on_drained).
 */
static void
fanout_pump(struct fanout *f)
{
	struct evbuffer *buf;
	bool last;
	int rc = 0;

	if (f->in_flight || f->gone ||
	    (f->stream && f->sent == f->ready && !f->done))
		return;
	if (!f->started)
		fanout_begin_chunked(
		    f, f->stream ? "application/x-ndjson" : "application/json");
	if ((buf = evbuffer_new()) == NULL) {
		fanout_cut(f, "out of memory writing the answer");
		return;
	}
	last = fanout_render_chunk(f, buf, FANOUT_CHUNK, &rc);
	if (rc != 0)
		fanout_cut(f, "out of memory writing the answer");
	else if (last) {
		evhttp_send_reply_chunk(f->call.req, buf);
		fanout_end_reply(f);
	} else if (evbuffer_get_length(buf) > 0) {
		f->in_flight = true;
		evhttp_send_reply_chunk_with_cb(
		    f->call.req, buf, fanout_on_drained, f);
	}
	evbuffer_free(buf);
}

static void
fanout_on_drained(struct evhttp_connection *evcon, void *arg)
{
	struct fanout *f = arg;

	f->in_flight = false;
	fanout_pump(f);
}

/*
 * A buffered answer: in one piece (with a Content-Length) when it is
 * small, which is nearly always; else its first chunk, and the rest as
 * the client reads.
 */
static void
fanout_answer(struct fanout *f)
{
	struct evbuffer *piece = evbuffer_new();
	struct call_counts counts;
	struct render_out out;
	bool last = false;
	int rc = piece == NULL ? -1 : 0;

	if (rc == 0) {
		render_out_init(&out, fanout_emit, piece);
		render_answer_open(&out);
		rc = render_out_flush(&out);
		last = fanout_render_chunk(f, piece, FANOUT_PIECE_MAX, &rc);
	}
	if (rc != 0) {
		call_reply_error(&f->call, 500, "internal",
		    "out of memory writing the answer");
		fanout_free(f);
	} else if (last) {
		evbuffer_add_buffer(
		    evhttp_request_get_output_buffer(f->call.req), piece);
		fanout_counts(f, &counts);
		call_reply(&f->call, 200, "application/json", &counts);
		fanout_free(f);
	} else {
		fanout_begin_chunked(f, "application/json");
		f->in_flight = true;
		evhttp_send_reply_chunk_with_cb(
		    f->call.req, piece, fanout_on_drained, f);
	}
	if (piece != NULL)
		evbuffer_free(piece);
}

/*
 * GET /probe: every result as metrics, in one piece.  A scrape is read
 * at once, and a probe's text is some 2 KiB per target.
 */
static void
fanout_answer_probe(struct fanout *f)
{
	size_t n = batch_count(f->batch), i;
	struct probe_target *targets = calloc(n ? n : 1, sizeof(*targets));
	struct evbuffer *body = evhttp_request_get_output_buffer(f->call.req);
	struct call_counts counts;
	struct render_out out;
	int rc = -1;

	if (targets != NULL) {
		for (i = 0; i < n; i++) {
			targets[i].item = batch_item(f->batch, i);
			targets[i].result = batch_result(f->batch, i);
		}
		render_out_init(&out, fanout_emit, body);
		probe_render(&out, targets, n);
		rc = render_out_flush(&out);
		free(targets);
	}
	if (rc != 0)
		call_reply_error(&f->call, 500, "internal",
		    "out of memory writing the answer");
	else {
		fanout_counts(f, &counts);
		call_reply(&f->call, 200, PROBE_CONTENT_TYPE, &counts);
	}
	fanout_free(f);
}

/*
 * log.level = "debug": one line per fetch, with what someone chasing a
 * failed check needs (the request's id, the item, its outcome, phases).
 */
static void
fanout_log_result(const struct fanout *f, size_t index)
{
	const struct request_item *item = batch_item(f->batch, index);
	const struct fetch_result *r = batch_result(f->batch, index);
	const struct fetch_timing *t = &r->time;
	char url[512], message[512];

	log_debug(
	    "fetch id=%s index=%zu url=%s status=%ld error=%s "
	    "message=%s attempts=%u bytes=%lld remote_ip=%s queue_ms=%.3f "
	    "dns_ms=%.3f connect_ms=%.3f tls_ms=%.3f ttfb_ms=%.3f "
	    "transfer_ms=%.3f total_ms=%.3f",
	    f->call.id, index,
	    log_escape(item->url != NULL ? item->url : "-", url, sizeof(url)),
	    r->status, r->error != FETCH_OK ? fetch_error_code(r->error) : "-",
	    log_escape(r->message != NULL ? r->message : "-", message,
	        sizeof(message)),
	    r->attempts > 0 ? r->attempts : 1u, (long long)r->bytes,
	    r->remote_ip[0] != '\0' ? r->remote_ip : "-", t->queue, t->dns,
	    t->connect, t->tls, t->ttfb, t->transfer, t->total);
}

/* A result is in: logged at debug level; streamed when streaming. */
static void
fanout_on_result(struct batch *batch, size_t index, void *arg)
{
	struct fanout *f = arg;

	if (log_get_level() >= LOG_LVL_DEBUG)
		fanout_log_result(f, index);
	if (!f->stream)
		return;
	f->order[f->ready++] = index;
	fanout_pump(f);
}

/*
 * The client went away and every future is done: no answer.  The
 * request is ours to free when evhttp detached it; when the connection
 * is still open (we saw the close, evhttp did not), freeing it frees the
 * request too.
 */
static void
fanout_abandon(struct fanout *f)
{
	struct call_counts counts;
	struct evhttp_connection *evcon;

	fanout_counts(f, &counts);
	call_log(&f->call, f->started ? 200 : 499, &counts);
	if (f->call.req != NULL) {
		evcon = evhttp_request_get_connection(f->call.req);
		if (f->call.client != NULL)
			client_unwatch(f->call.client);
		f->call.client = NULL;
		if (evcon != NULL)
			evhttp_connection_free(evcon);
		else
			evhttp_request_free(f->call.req);
		f->call.req = NULL;
	}
	fanout_free(f);
}

static void
fanout_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct fanout *f = arg;

	fanout_cut(f, "the answer was not read within limits.send_timeout_ms");
}

/* Every future is done: answer, or abandon. */
static void
fanout_on_done(struct batch *batch, void *arg)
{
	struct fanout *f = arg;
	struct timeval tv;

	f->done = true;
	if (f->gone) {
		fanout_abandon(f);
		return;
	}
	fanout_ms_tv(&tv, f->cfg->send_timeout_ms);
	evtimer_add(f->deadline, &tv);
	if (f->stream)
		fanout_pump(f);
	else if (f->probe)
		fanout_answer_probe(f);
	else
		fanout_answer(f);
}

/*
 * The client is gone: stop the fetches.  freed: evhttp is freeing the
 * connection, and with it the request unless it detached it first.
 */
static void
fanout_on_gone(void *arg, bool freed)
{
	struct fanout *f = arg;

	if (f->gone)
		return;
	f->gone = true;
	log_debug("request %s: the client went away", f->call.id);
	if (freed) {
		f->call.client = NULL;
		if (f->call.req != NULL &&
		    evhttp_request_get_connection(f->call.req) != NULL)
			f->call.req = NULL;
	}
	if (!f->done)
		batch_cancel(f->batch);
	else
		fanout_abandon(f);
}

static struct fanout *
fanout_new(struct fanouts *fs, const struct call *c, size_t n,
    enum fanout_format format)
{
	bool stream = format == FANOUT_NDJSON;
	size_t evsize = event_get_struct_event_size();
	size_t extra = evsize + (stream ? n * sizeof(size_t) : 0);
	struct fanout *f;

	if (stream && n > (SIZE_MAX - sizeof(*f) - evsize) / sizeof(size_t))
		return NULL;
	if ((f = calloc(1, sizeof(*f) + extra)) == NULL)
		return NULL;
	f->owner = fs;
	f->call = *c;
	f->stream = stream;
	f->probe = format == FANOUT_PROBE;
	f->deadline = (struct event *)f->space;
	f->order = stream ? (size_t *)((char *)f->space + evsize) : NULL;
	return f;
}

void
fanout_start(struct fanouts *fs, const struct call *c,
    struct request_spec *spec, struct config *cfg, struct pool *pool,
    enum fanout_format format)
{
	struct batch_hooks hooks = {.on_done = fanout_on_done};
	struct call failed = *c;
	struct fanout *f;
	uint64_t deadline =
	    c->start_ns + (uint64_t)cfg->request_timeout_ms * CLOCK_NS_PER_MS;

	if ((f = fanout_new(fs, c, spec->count, format)) == NULL) {
		request_spec_free(spec);
		call_reply_error(&failed, 500, "internal", "out of memory");
		return;
	}
	hooks.arg = f;
	hooks.on_result = fanout_on_result;
	if ((f->batch = batch_new(spec, cfg, &hooks)) == NULL) {
		free(f);
		request_spec_free(spec);
		call_reply_error(&failed, 500, "internal", "out of memory");
		return;
	}
	f->cfg = config_ref(cfg);
	evtimer_assign(f->deadline, fs->base, fanout_on_deadline, f);
	if ((f->next = fs->head) != NULL)
		fs->head->prev = f;
	fs->head = f;
	fs->count++;
	if (f->call.client != NULL)
		client_watch(f->call.client, fanout_on_gone, f);
	/* From here on f may be freed by on_done inside batch_start. */
	if (batch_start(f->batch, pool, deadline) == -1) {
		evhttp_add_header(evhttp_request_get_output_headers(c->req),
		    "Retry-After", "1");
		call_reply_error(&f->call, 503, "overloaded",
		    "the worker queue has no room for this request; retry "
		    "later");
		fanout_free(f);
	}
}
