/*
 * The HTTP face, on the loop thread.  A POST /fetch becomes a batch; the
 * batch's hooks answer the request when its last future completes (or,
 * streaming, as each one completes).  A client that goes away first
 * cancels its batch through the connection's close callback; the batch
 * is still freed only when its last job is back from the pool.
 *
 * libevent 2.1's own error replies are fixed HTML pages, so every status
 * we can decide ourselves (404, 405 with Allow, 413 for too many URLs,
 * 415, 503) is answered here with a JSON body; evhttp's body-size limit
 * stays as the backstop that refuses an oversized body while reading it.
 *
 * Every reply goes through server_reply(), which counts it in the metrics
 * and writes the access-log line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/keyvalq_struct.h>

#include "batch.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "render.h"
#include "request.h"
#include "server.h"

#define SERVER_MAX_LISTEN     16
#define REQUEST_ID_MAX        64
#define SERVER_BACKLOG        1024
#define SERVER_DEFER_ACCEPT_S 5
#define SERVER_WATCH_DELAY_MS 20
#define SERVER_MAX_HEADERS    (64 * 1024)

struct server {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound[SERVER_MAX_LISTEN];
	size_t nbound;
	struct event *notify;
	struct pool *pool;
	struct config *cfg;
	size_t inflight;
	uint64_t next_id;
	char id_prefix[16];      /* request ids: pid-counter, unique per run */
	size_t id_prefix_len;    /* "1f2e-" */
	struct server_req *reqs; /* fan-outs in flight, for shutdown */
	/* SERVER_WATCH_DELAY_MS as a libevent common timeout, or NULL */
	const struct timeval *watch_delay;
};

/* The client's address, kept to be written only when a line needs it. */
union server_addr {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

/* What the access log says about one HTTP request. */
struct server_call {
	struct evhttp_request *req;
	const char *method;
	const char *path;
	union server_addr client;
	char id[REQUEST_ID_MAX + 1];
	uint64_t start_ns;
};

/* One POST /fetch in flight. */
struct server_req {
	struct server_req *prev, *next;
	struct server *server;
	struct server_call call;
	struct evhttp_connection *evcon; /* NULL once the client is gone */
	struct batch *batch;
	struct event *watch; /* readable client socket: gone or pipelining */
	bool stream;         /* NDJSON lines in completion order */
	bool started;        /* the chunked reply has begun */
	/* watch lives here: event_get_struct_event_size() bytes */
	max_align_t watch_space[];
};

static const char *
server_status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

/* The client's address as text ("" when unknown), for log lines. */
static const char *
server_client_name(const struct server_call *c, char *buf, size_t len)
{
	buf[0] = '\0';
	if (c->client.sa.sa_family == AF_INET)
		inet_ntop(AF_INET, &c->client.sin.sin_addr, buf, len);
	else if (c->client.sa.sa_family == AF_INET6)
		inet_ntop(AF_INET6, &c->client.sin6.sin6_addr, buf, len);
	return buf;
}

static void
server_log_call(struct server *s, const struct server_call *c, int status,
    const struct batch *b)
{
	const struct summary *sum = b != NULL ? batch_summary(b) : NULL;
	char client[INET6_ADDRSTRLEN];

	metrics_request(status);
	if (!s->cfg->access_log)
		return;
	log_info("access client=%s method=%s path=%s status=%d urls=%zu ok=%zu "
	         "failed=%zu elapsed_ms=%.1f id=%s",
	    server_client_name(c, client, sizeof(client)), c->method, c->path,
	    status, b ? batch_count(b) : 0, sum ? sum->ok : 0,
	    sum ? sum->failed : 0, (double)(clock_now_ns() - c->start_ns) / 1e6,
	    c->id);
}

/*
 * Send a complete reply of type ctype.  The body is what was written
 * into the request's output buffer, which evhttp sends as it is.
 */
static void
server_reply(struct server *s, const struct server_call *c, int status,
    const char *ctype, const struct batch *b)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(c->req);

	evhttp_add_header(out, "Content-Type", ctype);
	evhttp_add_header(out, "X-Request-Id", c->id);
	server_log_call(s, c, status, b);
	evhttp_send_reply(c->req, status, server_status_text(status), NULL);
}

static void
server_reply_text(struct server *s, const struct server_call *c, int status,
    const char *ctype, const char *text)
{
	struct evbuffer *body = evhttp_request_get_output_buffer(c->req);

	if (text != NULL)
		evbuffer_add(body, text, strlen(text));
	server_reply(s, c, status, ctype, NULL);
}

static void
server_reply_error(struct server *s, const struct server_call *c, int status,
    const char *code, const char *message)
{
	char *json = render_error(code, message);
	size_t len = json != NULL ? strlen(json) : 0;

	/* A newline after the document keeps shells and jq happy. */
	if (json != NULL && (json = realloc(json, len + 2)) != NULL) {
		json[len] = '\n';
		json[len + 1] = '\0';
	}
	server_reply_text(s, c, status, "application/json", json);
	free(json);
}

static int
server_emit(const char *buf, size_t size, void *data)
{
	return evbuffer_add(data, buf, size);
}

static void
server_req_unlink(struct server_req *sr)
{
	struct server *s = sr->server;

	if (sr->prev != NULL)
		sr->prev->next = sr->next;
	else
		s->reqs = sr->next;
	if (sr->next != NULL)
		sr->next->prev = sr->prev;
	s->inflight--;
}

static void
server_req_free(struct server_req *sr)
{
	event_del(sr->watch);
	server_req_unlink(sr);
	batch_free(sr->batch);
	free(sr);
}

static void
server_ms_tv(struct timeval *tv, int ms)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

/*
 * While a reply streams, libevent keeps the client's read timeout armed,
 * so a pause between lines longer than client_timeout_ms would cut the
 * stream.  The fan-out's own deadline bounds a stream instead.
 */
static void
server_stream_timeouts(struct server_req *sr, bool streaming)
{
	const struct config *cfg = sr->server->cfg;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(sr->evcon);
	struct timeval rd, wr;

	server_ms_tv(&wr, cfg->client_timeout_ms);
	if (streaming)
		server_ms_tv(&rd, cfg->request_timeout_ms + 5000);
	else
		rd = wr;
	if (bev != NULL)
		bufferevent_set_timeouts(bev, &rd, &wr);
}

/* Streaming: begin the chunked 200 reply on the first line. */
static void
server_stream_start(struct server_req *sr)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(sr->call.req);

	sr->started = true;
	evhttp_add_header(out, "Content-Type", "application/x-ndjson");
	evhttp_add_header(out, "X-Request-Id", sr->call.id);
	evhttp_send_reply_start(sr->call.req, 200, "OK");
	server_stream_timeouts(sr, true);
}

/* Batch hook, streaming only: one result line, in completion order. */
static void
server_on_batch_result(struct batch *batch, size_t index, void *arg)
{
	struct server_req *sr = arg;
	struct evbuffer *buf;

	if (sr->evcon == NULL)
		return;
	if (!sr->started)
		server_stream_start(sr);
	if ((buf = evbuffer_new()) == NULL)
		return;
	if (batch_write_line(batch, index, server_emit, buf) == 0)
		evhttp_send_reply_chunk(sr->call.req, buf);
	evbuffer_free(buf);
}

static void
server_finish_stream(struct server_req *sr)
{
	struct evbuffer *buf;

	server_log_call(sr->server, &sr->call, 200, sr->batch);
	if (!sr->started) {
		/* Gone before the first line: send_reply frees the request. */
		evhttp_send_reply(sr->call.req, 200, "OK", NULL);
		return;
	}
	if (sr->evcon != NULL && (buf = evbuffer_new()) != NULL) {
		if (batch_write_summary_line(sr->batch, server_emit, buf) == 0)
			evhttp_send_reply_chunk(sr->call.req, buf);
		evbuffer_free(buf);
	}
	if (sr->evcon != NULL)
		server_stream_timeouts(sr, false);
	evhttp_send_reply_end(sr->call.req);
}

/* Batch hook: every future has completed. */
static void
server_on_batch_done(struct batch *batch, void *arg)
{
	struct server_req *sr = arg;
	struct evbuffer *body = evhttp_request_get_output_buffer(sr->call.req);

	if (sr->evcon != NULL)
		evhttp_connection_set_closecb(sr->evcon, NULL, NULL);
	if (sr->stream) {
		if (sr->evcon != NULL && !sr->started)
			server_stream_start(sr);
		server_finish_stream(sr);
	} else if (batch_write(batch, server_emit, body) == 0) {
		/* Even for a client that is gone: send_reply frees req. */
		server_reply(
		    sr->server, &sr->call, 200, "application/json", batch);
	} else {
		evbuffer_drain(body, evbuffer_get_length(body));
		server_reply_error(sr->server, &sr->call, 500, "internal",
		    "out of memory writing the answer");
	}
	server_req_free(sr);
}

/* The client went away: stop its fetches; the answer goes nowhere. */
static void
server_on_close(struct evhttp_connection *evcon, void *arg)
{
	struct server_req *sr = arg;

	sr->evcon = NULL;
	batch_cancel(sr->batch);
}

/*
 * libevent 2.1 does not read from a connection while its request waits
 * for an answer, so it never sees the client leave.  Watch the socket
 * ourselves: EOF or an error means the client is gone.  Data means a
 * pipelined request, which is libevent's to read: stop watching.
 */
static void
server_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct server_req *sr = arg;
	char byte, client[INET6_ADDRSTRLEN];
	ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		log_debug("client %s went away; canceling request %s",
		    server_client_name(&sr->call, client, sizeof(client)),
		    sr->call.id);
		batch_cancel(sr->batch);
	} else if (n < 0)
		event_add(sr->watch, NULL);
}

/* The watch timer fired: the fan-out is slow enough to watch the socket. */
static void
server_on_watch_timer(evutil_socket_t unused, short what, void *arg)
{
	struct server_req *sr = arg;
	struct bufferevent *bev =
	    sr->evcon != NULL ? evhttp_connection_get_bufferevent(sr->evcon)
	                      : NULL;
	evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;

	if (fd < 0)
		return;
	event_assign(
	    sr->watch, sr->server->base, fd, EV_READ, server_on_readable, sr);
	event_add(sr->watch, NULL);
}

/*
 * Most fan-outs finish in a few milliseconds: watching their socket would
 * cost two epoll_ctl calls each.  A timer (no system call) arms the
 * watch only for fan-outs still running after SERVER_WATCH_DELAY_MS.
 * The event lives inside sr, and every request's timer has the same
 * duration, so libevent keeps them in one common-timeout queue rather
 * than its heap.
 */
static void
server_watch_client(struct server *s, struct server_req *sr)
{
	struct timeval delay = {0, SERVER_WATCH_DELAY_MS * 1000};

	sr->watch = (struct event *)sr->watch_space;
	evtimer_assign(sr->watch, s->base, server_on_watch_timer, sr);
	evtimer_add(
	    sr->watch, s->watch_delay != NULL ? s->watch_delay : &delay);
}

static bool
server_wants_stream(struct evhttp_request *req)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *query = evhttp_uri_get_query(uri);
	const char *accept =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Accept");
	struct evkeyvalq params;
	const char *v;
	bool stream = false;

	if (accept != NULL && strstr(accept, "application/x-ndjson") != NULL)
		return true;
	if (query == NULL || evhttp_parse_query_str(query, &params) != 0)
		return false;
	v = evhttp_find_header(&params, "stream");
	stream = v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
	evhttp_clear_headers(&params);
	return stream;
}

static struct request_spec *
server_parse(struct server *s, struct server_call *c)
{
	struct evhttp_request *req = c->req;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *ctype = evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Content-Type");
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	struct request_error err;
	struct request_spec *spec;

	if ((int64_t)len > s->cfg->max_request_bytes) {
		server_reply_error(s, c, 413, "body_too_large",
		    "request body exceeds limits.max_request_bytes");
		return NULL;
	}
	if ((spec = request_parse(s->cfg, ctype, body, len, &err)) == NULL)
		server_reply_error(s, c, err.status, err.code, err.message);
	return spec;
}

static void
server_overloaded(struct server *s, struct server_call *c)
{
	evhttp_add_header(
	    evhttp_request_get_output_headers(c->req), "Retry-After", "1");
	server_reply_error(s, c, 503, "overloaded",
	    "the worker queue has no room for this request; retry later");
}

static void
server_fetch(struct server *s, struct server_call *c)
{
	struct batch_hooks hooks = {.on_done = server_on_batch_done};
	struct request_spec *spec;
	struct server_req *sr;

	if ((spec = server_parse(s, c)) == NULL)
		return;
	if ((sr = calloc(1, sizeof(*sr) + event_get_struct_event_size())) ==
	        NULL ||
	    (sr->batch = batch_new(spec, s->cfg, &hooks)) == NULL) {
		free(sr);
		request_spec_free(spec);
		server_reply_error(s, c, 500, "internal", "out of memory");
		return;
	}
	sr->server = s;
	sr->call = *c;
	sr->evcon = evhttp_request_get_connection(c->req);
	sr->stream = server_wants_stream(c->req);
	hooks.arg = sr;
	hooks.on_result = sr->stream ? server_on_batch_result : NULL;
	batch_set_hooks(sr->batch, &hooks);
	server_watch_client(s, sr);
	sr->next = s->reqs;
	if (s->reqs != NULL)
		s->reqs->prev = sr;
	s->reqs = sr;
	s->inflight++;
	evhttp_connection_set_closecb(sr->evcon, server_on_close, sr);
	if (batch_start(sr->batch, s->pool,
	        c->start_ns +
	            (uint64_t)s->cfg->request_timeout_ms * 1000000u) == -1) {
		evhttp_connection_set_closecb(sr->evcon, NULL, NULL);
		server_req_free(sr);
		server_overloaded(s, c);
	}
}

static void
server_method_not_allowed(
    struct server *s, struct server_call *c, const char *allow)
{
	char msg[96];

	evhttp_add_header(
	    evhttp_request_get_output_headers(c->req), "Allow", allow);
	snprintf(msg, sizeof(msg), "method %s not allowed; use %s", c->method,
	    allow);
	server_reply_error(s, c, 405, "method_not_allowed", msg);
}

/* Constant time in the token's content: a wrong guess learns nothing. */
static bool
server_token_ok(const char *want, const char *header)
{
	size_t i, wlen = strlen(want), hlen;
	unsigned char diff;

	if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
		return false;
	header += 7;
	hlen = strlen(header);
	diff = hlen != wlen;
	for (i = 0; i < hlen; i++)
		diff |= (unsigned char)header[i] ^
		        (unsigned char)want[wlen ? i % wlen : 0];
	return diff == 0;
}

static bool
server_authorized(struct server *s, struct server_call *c)
{
	const char *auth;

	if (s->cfg->auth_token == NULL || s->cfg->auth_token[0] == '\0')
		return true;
	auth = evhttp_find_header(
	    evhttp_request_get_input_headers(c->req), "Authorization");
	if (server_token_ok(s->cfg->auth_token, auth))
		return true;
	evhttp_add_header(evhttp_request_get_output_headers(c->req),
	    "WWW-Authenticate", "Bearer");
	server_reply_error(
	    s, c, 401, "unauthorized", "missing or wrong bearer token");
	return false;
}

static void
server_metrics(struct server *s, struct server_call *c)
{
	struct pool_stats ps;
	struct metrics_gauges g;
	char *text;

	pool_get_stats(s->pool, &ps);
	g.queued = ps.queued;
	g.running = ps.running;
	g.threads = ps.threads;
	g.max_threads = (size_t)s->cfg->threads;
	g.inflight_requests = s->inflight;
	if ((text = metrics_render(&g)) == NULL) {
		server_reply_error(s, c, 500, "internal", "out of memory");
		return;
	}
	server_reply_text(s, c, 200, "text/plain; version=0.0.4", text);
	free(text);
}

static const char *
server_method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	default:
		return "OTHER";
	}
}

/* The client's X-Request-Id when it is short and plain, else our own. */
static void
server_request_id(struct server *s, struct server_call *c)
{
	const char *given = evhttp_find_header(
	    evhttp_request_get_input_headers(c->req), "X-Request-Id");
	size_t len = given != NULL ? strlen(given) : 0;
	char digits[24];
	size_t i = sizeof(digits);
	uint64_t n;

	if (len > 0 && len <= REQUEST_ID_MAX &&
	    strspn(given, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                  "0123456789._-") == len) {
		memcpy(c->id, given, len + 1);
		return;
	}
	/* id_prefix then the counter: snprintf's cost on every request */
	n = ++s->next_id;
	do
		digits[--i] = (char)('0' + n % 10);
	while ((n /= 10) != 0);
	memcpy(c->id, s->id_prefix, s->id_prefix_len);
	memcpy(c->id + s->id_prefix_len, digits + i, sizeof(digits) - i);
	c->id[s->id_prefix_len + sizeof(digits) - i] = '\0';
}

static void
server_call_init(
    struct server *s, struct server_call *c, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct sockaddr *sa = evhttp_connection_get_addr(evcon);
	const char *path =
	    evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));

	memset(c, 0, sizeof(*c));
	c->req = req;
	c->start_ns = clock_now_ns();
	c->method = server_method_name(evhttp_request_get_command(req));
	c->path = path != NULL && path[0] != '\0' ? path : "/";
	if (sa != NULL && sa->sa_family == AF_INET)
		c->client.sin = *(const struct sockaddr_in *)sa;
	else if (sa != NULL && sa->sa_family == AF_INET6)
		c->client.sin6 = *(const struct sockaddr_in6 *)sa;
	server_request_id(s, c);
}

static bool
server_client_allowed(struct server *s, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct sockaddr *sa = evhttp_connection_get_addr(evcon);

	return sa != NULL &&
	       policy_match_in(&s->cfg->allow_clients, sa, POLICY_ALLOW_LIST);
}

static void
server_route(struct evhttp_request *req, void *arg)
{
	struct server *s = arg;
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	bool get = method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD;
	struct server_call c;

	server_call_init(s, &c, req);
	if (!server_client_allowed(s, req))
		server_reply_error(s, &c, 403, "forbidden",
		    "client address not in security.allow_clients");
	else if (strcmp(c.path, "/healthz") == 0) {
		if (!get)
			server_method_not_allowed(s, &c, "GET, HEAD");
		else
			server_reply_text(s, &c, 200, "application/json",
			    "{\"status\":\"ok\"}\n");
	} else if (strcmp(c.path, "/metrics") == 0) {
		if (!get)
			server_method_not_allowed(s, &c, "GET, HEAD");
		else if (server_authorized(s, &c))
			server_metrics(s, &c);
	} else if (strcmp(c.path, "/fetch") == 0) {
		if (method != EVHTTP_REQ_POST)
			server_method_not_allowed(s, &c, "POST");
		else if (server_authorized(s, &c))
			server_fetch(s, &c);
	} else
		server_reply_error(s, &c, 404, "not_found", "no such path");
}

/* The pool's eventfd is readable: hand finished jobs to their batches. */
static void
server_on_notify(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	pool_drain(s->pool);
}

static void
server_apply_limits(struct server *s)
{
	/* Backstop only: refuses an oversized body while it is read. */
	evhttp_set_max_body_size(
	    s->http, (ev_ssize_t)s->cfg->max_request_bytes);
	evhttp_set_max_headers_size(s->http, SERVER_MAX_HEADERS);
	{
		struct timeval tv = {s->cfg->client_timeout_ms / 1000,
		    (s->cfg->client_timeout_ms % 1000) * 1000};

		/* A client that sends or reads nothing for this long is cut. */
		evhttp_set_timeout_tv(s->http, &tv);
	}
}

/* Bind the configured address; SO_REUSEPORT when asked. */
static struct evhttp_bound_socket *
server_bind(struct server *s, char *err, size_t errlen)
{
	struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_STREAM,
	    .ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICHOST};
	struct evutil_addrinfo *ai = NULL;
	struct evconnlistener *l = NULL;
	unsigned flags =
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
	char port[8];
	int rc;

	if (s->cfg->reuse_port)
		flags |= LEV_OPT_REUSEABLE_PORT;
	snprintf(port, sizeof(port), "%d", s->cfg->listen_port);
	rc = evutil_getaddrinfo(s->cfg->listen_address, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "listen.address %s: %s",
		    s->cfg->listen_address, evutil_gai_strerror(rc));
		return NULL;
	}
	l = evconnlistener_new_bind(s->base, NULL, NULL, flags, SERVER_BACKLOG,
	    ai->ai_addr, (int)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	if (l == NULL) {
		snprintf(err, errlen, "cannot listen on %s port %d: %s",
		    s->cfg->listen_address, s->cfg->listen_port,
		    strerror(errno));
		return NULL;
	}
	return evhttp_bind_listener(s->http, l);
}

static int
server_listen(
    struct server *s, const int *fds, size_t nfds, char *err, size_t errlen)
{
	struct evhttp_bound_socket *b;
	size_t i;
	int secs = SERVER_DEFER_ACCEPT_S;

	if (nfds == 0) {
		if ((b = server_bind(s, err, errlen)) == NULL)
			return -1;
		s->bound[s->nbound++] = b;
	}
	for (i = 0; i < nfds && i < SERVER_MAX_LISTEN; i++) {
		evutil_make_socket_nonblocking(fds[i]);
		if ((b = evhttp_accept_socket_with_handle(s->http, fds[i])) ==
		    NULL) {
			snprintf(err, errlen, "cannot serve passed socket %d",
			    fds[i]);
			return -1;
		}
		s->bound[s->nbound++] = b;
	}
	/* Connections that send nothing never wake us up (slowloris). */
	for (i = 0; i < s->nbound; i++)
		setsockopt(evhttp_bound_socket_get_fd(s->bound[i]), IPPROTO_TCP,
		    TCP_DEFER_ACCEPT, &secs, sizeof(secs));
	return 0;
}

struct server *
server_new(struct event_base *base, struct config *cfg, struct pool *pool,
    const int *fds, size_t nfds, char *err, size_t errlen)
{
	struct server *s;

	snprintf(err, errlen, "out of memory setting up the server");
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->base = base;
	s->pool = pool;
	s->id_prefix_len = (size_t)snprintf(
	    s->id_prefix, sizeof(s->id_prefix), "%x-", (unsigned)getpid());
	s->cfg = config_ref(cfg);
	{
		struct timeval delay = {0, SERVER_WATCH_DELAY_MS * 1000};

		/* NULL (out of memory) just means the heap. */
		s->watch_delay = event_base_init_common_timeout(base, &delay);
	}
	if ((s->http = evhttp_new(base)) == NULL)
		goto fail;
	/* Every method reaches server_route, which answers 405 itself. */
	evhttp_set_allowed_methods(s->http, 0xffff);
	evhttp_set_gencb(s->http, server_route, s);
	server_apply_limits(s);
	s->notify = event_new(base, pool_notify_fd(pool), EV_READ | EV_PERSIST,
	    server_on_notify, s);
	if (s->notify == NULL || event_add(s->notify, NULL) == -1)
		goto fail;
	if (server_listen(s, fds, nfds, err, errlen) == -1)
		goto fail;
	return s;
fail:
	server_free(s);
	return NULL;
}

void
server_set_config(struct server *s, struct config *cfg)
{
	config_ref(cfg);
	config_unref(s->cfg);
	s->cfg = cfg;
	server_apply_limits(s);
}

void
server_stop_accepting(struct server *s)
{
	size_t i;

	for (i = 0; i < s->nbound; i++)
		evhttp_del_accept_socket(s->http, s->bound[i]);
	s->nbound = 0;
}

void
server_cancel_all(struct server *s)
{
	struct server_req *sr;

	for (sr = s->reqs; sr != NULL; sr = sr->next)
		batch_cancel(sr->batch);
}

size_t
server_inflight(const struct server *s)
{
	return s->inflight;
}

void
server_free(struct server *s)
{
	if (s == NULL)
		return;
	if (s->notify != NULL)
		event_free(s->notify);
	if (s->http != NULL)
		evhttp_free(s->http);
	config_unref(s->cfg);
	free(s);
}
