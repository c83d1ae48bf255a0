/*
 * The HTTP face, on the loop thread: listeners, routes, gates and the
 * replies the route decides itself.  A POST /fetch or a GET /probe that
 * passes the gates and parses becomes a fan-out (fanout.c), which
 * answers it from then on.
 *
 * libevent 2.1's own error replies are fixed HTML pages, so every status
 * we can decide ourselves (400, 404, 405 with Allow, 413 for too many
 * URLs, 415, 503) is answered here with a JSON body; evhttp's body-size
 * limit stays as the backstop that refuses an oversized body while
 * reading it (client.c counts and logs those refusals).
 *
 * Accepting: when accept() fails for want of descriptors (EMFILE,
 * ENFILE), the listening socket stays readable and libevent would call
 * accept() again at once, forever; the listeners pause instead, for
 * 100 ms doubling up to a second, as nginx does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "call.h"
#include "client.h"
#include "config.h"
#include "fanout.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "request.h"
#include "server.h"

#define SERVER_BACKLOG        1024
#define SERVER_DEFER_ACCEPT_S 5
#define SERVER_MAX_HEADERS    (64 * 1024)
#define SERVER_PAUSE_MIN_MS   100
#define SERVER_PAUSE_MAX_MS   1000

struct server {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound[SERVER_MAX_LISTEN];
	size_t nbound;
	struct event *notify; /* the pool's completions */
	struct event *resume; /* accepting again after EMFILE */
	int pause_ms;         /* the current pause; 0: not paused */
	struct pool *pool;
	struct config *cfg;
	struct clients *clients; /* NULL when tracking failed */
	struct fanouts *fanouts;
};

/* The listeners' error callback carries evhttp's pointer, not ours. */
static struct server *server_instance;

static void
server_method_not_allowed(struct call *c, const char *allow)
{
	char msg[96];

	evhttp_add_header(
	    evhttp_request_get_output_headers(c->req), "Allow", allow);
	snprintf(msg, sizeof(msg), "method %s not allowed; use %s", c->method,
	    allow);
	call_reply_error(c, 405, "method_not_allowed", msg);
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
server_authorized(struct server *s, struct call *c)
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
	call_reply_error(
	    c, 401, "unauthorized", "missing or wrong bearer token");
	return false;
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

static void
server_fetch(struct server *s, struct call *c)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	size_t len = evbuffer_get_length(in);
	const char *ctype = evhttp_find_header(
	    evhttp_request_get_input_headers(c->req), "Content-Type");
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	struct request_error err;
	struct request_spec *spec;

	if ((int64_t)len > s->cfg->max_request_bytes) {
		call_reply_error(c, 413, "body_too_large",
		    "request body exceeds limits.max_request_bytes");
		return;
	}
	if ((spec = request_parse(s->cfg, ctype, body, len, &err)) == NULL) {
		call_reply_error(c, err.status, err.code, err.message);
		return;
	}
	/* The spec holds what it needs: the body need not live as long as
	 * the fan-out (a 1000-URL body is megabytes). */
	evbuffer_drain(in, len);
	fanout_start(s->fanouts, c, spec, s->cfg, s->pool,
	    server_wants_stream(c->req) ? FANOUT_NDJSON : FANOUT_JSON);
}

/*
 * The targets and module of GET /probe, borrowed from params into
 * targets (n of them, room given).  -1 with why when the query names a
 * parameter other than these, a second module, or no target.
 */
static int
server_probe_query(struct evkeyvalq *params, const char **targets, size_t *n,
    const char **module, char *why, size_t whylen)
{
	struct evkeyval *p;

	*n = 0;
	*module = NULL;
	TAILQ_FOREACH(p, params, next)
	{
		if (strcmp(p->key, "target") == 0)
			targets[(*n)++] = p->value;
		else if (strcmp(p->key, "module") == 0 && *module == NULL)
			*module = p->value;
		else if (strcmp(p->key, "module") == 0) {
			snprintf(why, whylen, "more than one module given");
			return -1;
		} else {
			snprintf(
			    why, whylen, "unknown parameter \"%.40s\"", p->key);
			return -1;
		}
	}
	if (*n == 0) {
		snprintf(why, whylen, "no target given: use ?target=URL");
		return -1;
	}
	return 0;
}

/* GET /probe?target=URL[&target=URL...][&module=NAME] */
static void
server_probe(struct server *s, struct call *c)
{
	const char *query =
	    evhttp_uri_get_query(evhttp_request_get_evhttp_uri(c->req));
	const char **targets = NULL, *module;
	struct request_spec *spec = NULL;
	struct request_error err = {400, "invalid_request", ""};
	struct evkeyvalq params;
	struct evkeyval *p;
	size_t n = 0;

	if (evhttp_parse_query_str(query != NULL ? query : "", &params) != 0) {
		call_reply_error(c, 400, "invalid_request",
		    "malformed query string: use ?target=URL&module=NAME");
		return;
	}
	TAILQ_FOREACH(p, &params, next)
	{
		n++; /* room for every parameter, were they all targets */
	}
	if ((targets = calloc(n ? n : 1, sizeof(*targets))) == NULL) {
		evhttp_clear_headers(&params);
		call_reply_error(c, 500, "internal", "out of memory");
		return;
	}
	if (server_probe_query(&params, targets, &n, &module, err.message,
	        sizeof(err.message)) == 0)
		spec = request_from_targets(s->cfg, targets, n, module, &err);
	free(targets);
	evhttp_clear_headers(&params);
	if (spec == NULL)
		call_reply_error(c, err.status, err.code, err.message);
	else
		fanout_start(
		    s->fanouts, c, spec, s->cfg, s->pool, FANOUT_PROBE);
}

static void
server_metrics(struct server *s, struct call *c)
{
	struct pool_stats ps;
	struct metrics_gauges g;
	char *text;

	pool_get_stats(s->pool, &ps);
	g.queued = ps.queued;
	g.parked = ps.parked;
	g.running = ps.running;
	g.threads = ps.threads;
	g.max_threads = ps.max_threads;
	g.inflight_requests = fanouts_count(s->fanouts);
	if ((text = metrics_render(&g)) == NULL) {
		call_reply_error(c, 500, "internal", "out of memory");
		return;
	}
	call_reply_text(c, 200, "text/plain; version=0.0.4", text);
	free(text);
}

static bool
server_client_allowed(struct server *s, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct sockaddr *sa = evhttp_connection_get_addr(evcon);

	return sa != NULL &&
	       policy_match_in(&s->cfg->allow_clients, sa, POLICY_ALLOW_LIST);
}

/*
 * Framing that evhttp 2.1 accepts and a careful server refuses: two
 * Content-Length headers that disagree (it reads the first), one that is
 * not plain digits ("+5", which strtoll takes), both Content-Length and
 * Transfer-Encoding (the classic smuggling pair), and HTTP/1.1 without
 * Host (RFC 9112 3.2).  NULL when the request is fine.
 */
static const char *
server_framing_error(struct evhttp_request *req)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const char *length = NULL;
	bool chunked = false, host = false;
	struct evkeyval *h;

	TAILQ_FOREACH(h, in, next)
	{
		if (strcasecmp(h->key, "Host") == 0)
			host = true;
		else if (strcasecmp(h->key, "Transfer-Encoding") == 0)
			chunked = true;
		else if (strcasecmp(h->key, "Content-Length") != 0)
			continue;
		else if (h->value[0] == '\0' ||
		         strspn(h->value, "0123456789") != strlen(h->value))
			return "Content-Length is not a plain decimal number";
		else if (length != NULL && strcmp(length, h->value) != 0)
			return "two different Content-Length headers";
		else
			length = h->value;
	}
	if (length != NULL && chunked)
		return "both Content-Length and Transfer-Encoding";
	/* evhttp 2.1 has no getter for the version: http_struct.h */
	if (!host && (req->major > 1 || (req->major == 1 && req->minor >= 1)))
		return "an HTTP/1.1 request without Host";
	return NULL;
}

/* 400 for bad framing, and the connection closes: its next bytes are
 * not to be trusted. */
static void
server_bad_framing(struct call *c, const char *why)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "bad request framing: %s", why);
	evhttp_add_header(
	    evhttp_request_get_output_headers(c->req), "Connection", "close");
	call_reply_error(c, 400, "invalid_request", msg);
}

static void
server_too_many_connections(struct call *c)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(c->req);

	evhttp_add_header(out, "Retry-After", "1");
	evhttp_add_header(out, "Connection", "close");
	call_reply_error(c, 503, "too_many_connections",
	    "this address has limits.max_client_connections open already");
}

/* The paths, once the gates are passed. */
static void
server_dispatch(struct server *s, struct call *c, enum evhttp_cmd_type method)
{
	bool get = method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD;

	if (strcmp(c->path, "/healthz") == 0) {
		if (!get)
			server_method_not_allowed(c, "GET, HEAD");
		else
			call_reply_text(c, 200, "application/json",
			    "{\"status\":\"ok\"}\n");
	} else if (strcmp(c->path, "/metrics") == 0) {
		if (!get)
			server_method_not_allowed(c, "GET, HEAD");
		else if (server_authorized(s, c))
			server_metrics(s, c);
	} else if (strcmp(c->path, "/probe") == 0) {
		if (!get)
			server_method_not_allowed(c, "GET, HEAD");
		else if (server_authorized(s, c))
			server_probe(s, c);
	} else if (strcmp(c->path, "/fetch") == 0) {
		if (method != EVHTTP_REQ_POST)
			server_method_not_allowed(c, "POST");
		else if (server_authorized(s, c))
			server_fetch(s, c);
	} else
		call_reply_error(c, 404, "not_found", "no such path");
}

static void
server_route(struct evhttp_request *req, void *arg)
{
	struct server *s = arg;
	struct client *client =
	    s->clients != NULL ? client_of(s->clients, req) : NULL;
	const char *why;
	struct call c;

	call_init(&c, req, client, s->cfg->access_log);
	if (!server_client_allowed(s, req))
		call_reply_error(&c, 403, "forbidden",
		    "client address not in security.allow_clients");
	else if (client != NULL && client_over_limit(client))
		server_too_many_connections(&c);
	else if ((why = server_framing_error(req)) != NULL)
		server_bad_framing(&c, why);
	else
		server_dispatch(s, &c, evhttp_request_get_command(req));
}

/* evhttp answered a request itself (413, 400) or a request timed out. */
static void
server_on_refused(const struct sockaddr *addr, int status, void *arg)
{
	struct server *s = arg;

	call_log_refused(addr, status, s->cfg->access_log);
}

/* The pool's eventfd is readable: hand finished jobs to their batches. */
static void
server_on_notify(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	pool_drain(s->pool);
}

static void
server_set_accepting(struct server *s, bool on)
{
	struct evconnlistener *l;
	size_t i;

	for (i = 0; i < s->nbound; i++) {
		l = evhttp_bound_socket_get_listener(s->bound[i]);
		if (on)
			evconnlistener_enable(l);
		else
			evconnlistener_disable(l);
	}
}

static void
server_on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	server_set_accepting(s, true);
}

/*
 * accept() failed.  Out of descriptors: pause every listener, longer
 * each time it happens again soon, and say so once per pause.
 */
static void
server_on_accept_error(struct evconnlistener *l, void *unused)
{
	struct server *s = server_instance;
	int error = EVUTIL_SOCKET_ERROR();
	struct timeval tv;

	if (s == NULL || (error != EMFILE && error != ENFILE))
		return; /* ECONNABORTED and the like: the next one will do */
	s->pause_ms = evtimer_pending(s->resume, NULL) || s->pause_ms == 0
	                  ? SERVER_PAUSE_MIN_MS
	                  : s->pause_ms * 2;
	if (s->pause_ms > SERVER_PAUSE_MAX_MS)
		s->pause_ms = SERVER_PAUSE_MAX_MS;
	log_warnx("accept: %s; not accepting for %d ms", strerror(error),
	    s->pause_ms);
	server_set_accepting(s, false);
	tv.tv_sec = s->pause_ms / 1000;
	tv.tv_usec = (s->pause_ms % 1000) * 1000;
	evtimer_add(s->resume, &tv);
}

static void
server_apply_limits(struct server *s)
{
	struct timeval tv = {s->cfg->client_timeout_ms / 1000,
	    (s->cfg->client_timeout_ms % 1000) * 1000};
	struct client_limits cl = {
	    .read_timeout_ms = s->cfg->read_timeout_ms,
	    .max_per_address = s->cfg->max_client_connections,
	    .input_max =
	        (size_t)s->cfg->max_request_bytes + SERVER_MAX_HEADERS + 4096,
	};

	/* Backstop only: refuses an oversized body while it is read. */
	evhttp_set_max_body_size(
	    s->http, (ev_ssize_t)s->cfg->max_request_bytes);
	evhttp_set_max_headers_size(s->http, SERVER_MAX_HEADERS);
	/* A client that sends or reads nothing for this long is cut. */
	evhttp_set_timeout_tv(s->http, &tv);
	if (s->clients != NULL)
		clients_set_limits(s->clients, &cl);
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
	for (i = 0; i < s->nbound; i++) {
		/* Connections that send nothing never wake us up (slowloris).
		 */
		setsockopt(evhttp_bound_socket_get_fd(s->bound[i]), IPPROTO_TCP,
		    TCP_DEFER_ACCEPT, &secs, sizeof(secs));
		evconnlistener_set_error_cb(
		    evhttp_bound_socket_get_listener(s->bound[i]),
		    server_on_accept_error);
	}
	return 0;
}

int
server_port(const struct server *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (s->nbound == 0 ||
	    getsockname(evhttp_bound_socket_get_fd(s->bound[0]),
	        (struct sockaddr *)&ss, &len) == -1)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

/* The events and helpers of s; -1 when memory runs out. */
static int
server_setup(struct server *s, struct pool *pool, char *err, size_t errlen)
{
	if ((s->http = evhttp_new(s->base)) == NULL ||
	    (s->fanouts = fanouts_new(s->base)) == NULL ||
	    (s->resume = evtimer_new(s->base, server_on_resume, s)) == NULL)
		return -1;
	/* Without tracking, clients still get served, without its caps. */
	s->clients =
	    clients_new(s->base, s->http, server_on_refused, s, err, errlen);
	if (s->clients == NULL)
		log_warnx("client connections are not tracked: %s", err);
	/* Every method reaches server_route, which answers 405 itself. */
	evhttp_set_allowed_methods(s->http, 0xffff);
	evhttp_set_gencb(s->http, server_route, s);
	server_apply_limits(s);
	s->notify = event_new(s->base, pool_notify_fd(pool),
	    EV_READ | EV_PERSIST, server_on_notify, s);
	if (s->notify == NULL || event_add(s->notify, NULL) == -1)
		return -1;
	return 0;
}

struct server *
server_new(struct event_base *base, struct config *cfg, struct pool *pool,
    const int *fds, size_t nfds, char *err, size_t errlen)
{
	struct server *s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory setting up the server");
		return NULL;
	}
	s->base = base;
	s->pool = pool;
	s->cfg = config_ref(cfg);
	if (server_setup(s, pool, err, errlen) == -1) {
		snprintf(err, errlen, "out of memory setting up the server");
		goto fail;
	}
	if (server_listen(s, fds, nfds, err, errlen) == -1)
		goto fail;
	server_instance = s;
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
	if (s->resume != NULL)
		evtimer_del(s->resume);
}

void
server_cancel_all(struct server *s)
{
	fanouts_cancel_all(s->fanouts);
}

size_t
server_inflight(const struct server *s)
{
	return fanouts_count(s->fanouts);
}

void
server_free(struct server *s)
{
	if (s == NULL)
		return;
	if (server_instance == s)
		server_instance = NULL;
	if (s->notify != NULL)
		event_free(s->notify);
	if (s->resume != NULL)
		event_free(s->resume);
	clients_free(s->clients);
	if (s->http != NULL)
		evhttp_free(s->http);
	fanouts_free(s->fanouts);
	config_unref(s->cfg);
	free(s);
}
