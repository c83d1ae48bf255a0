/*
 * upstream: the target server of the integration tests.
 *
 * One libevent loop on one thread, and nothing blocks: /delay answers from
 * a timer, /hang keeps its request until the client goes away, /bytes sends
 * references to one static block instead of holding the body.  It binds
 * port 0 when asked and publishes the port it got through --portfile,
 * written to FILE.tmp and renamed, so a reader never sees half a number
 * (curl's test servers do the same).  SIGTERM and SIGINT are loop events
 * and end it with status 0.
 *
 * Every request except those under /hits is logged (path, method, headers)
 * in a ring of the last HITS_MAX requests, so that a test can ask how often
 * a path was fetched and what the last fetch of it sent:
 *
 *   /status/N        status N, small body
 *   /delay/MS        200 after MS milliseconds
 *   /bytes/N         200 with an N byte body
 *   /redirect?to=U   302 to U
 *   /redirects/N     302 to /redirects/N-1, ..., /redirects/0 is 200
 *   /hang            never answers
 *   /reset           closes the connection unanswered (SO_LINGER 0: RST)
 *   /headers         200 with the request's headers as a JSON object
 *   /respond/NAME?.. an answer made of query parameters (any NAME, so
 *                    that each test has paths of its own):
 *                      status=N      its status (default 200)
 *                      seq=A,B,C     the status of the first, second, ...
 *                                    request of this exact path; the last
 *                                    one repeats (for retries)
 *                      header=N:V    a response header; repeatable, also
 *                                    with one name
 *                      body=TEXT     the body, or body_hex=HEX for any bytes
 *                      pad=N         N bytes 'x' before the body (to put
 *                                    text across the reader's chunks)
 *   /hits[?path=P]   {"hits": n}: requests logged, or those whose path
 *                    starts with P
 *   /hits/last?path=P  {"method", "uri", "headers", "body_hex"} of the last
 *                    such request (body_hex: its body, two hex digits a byte)
 *   /hits/reset      empties the log
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
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

#define HITS_MAX   65536
#define BLOCK_SIZE 65536
#define DELAY_MAX  600000L
#define BYTES_MAX  (1L << 32)
#define REDIRS_MAX 1000L
#define SEQ_MAX    32

struct hit {
	char *path;
	char *method;
	char *uri;
	char *headers; /* JSON object text */
	char *body;    /* the request body in hex */
};

/* A request answered later (/delay) or never (/hang). */
struct pending {
	TAILQ_ENTRY(pending) entry;
	struct upstream *up;
	struct evhttp_request *req;
	struct event *timer; /* NULL for /hang */
};

struct upstream {
	struct event_base *base;
	struct evhttp *http;
	TAILQ_HEAD(, pending) pending;
	struct hit hits[HITS_MAX]; /* ring */
	size_t hits_next;
	size_t hits_len;
};

static char block[BLOCK_SIZE];

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("upstream: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* Parse all of s as a decimal in [min, max]; 0 or -1. */
static int
parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static const char *
method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
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
	}
	return "OTHER";
}

/* Append s as a JSON string; bytes >= 0x80 pass through unchanged. */
static void
json_string(struct evbuffer *out, const char *s)
{
	const unsigned char *p;

	evbuffer_add(out, "\"", 1);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			evbuffer_add_printf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			evbuffer_add_printf(out, "\\u%04x", *p);
		else
			evbuffer_add(out, p, 1);
	}
	evbuffer_add(out, "\"", 1);
}

static void
json_headers(struct evbuffer *out, struct evhttp_request *req)
{
	struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
	struct evkeyval *h;
	int first = 1;

	evbuffer_add(out, "{", 1);
	TAILQ_FOREACH(h, headers, next)
	{
		if (!first)
			evbuffer_add(out, ", ", 2);
		first = 0;
		json_string(out, h->key);
		evbuffer_add(out, ": ", 2);
		json_string(out, h->value);
	}
	evbuffer_add(out, "}", 1);
}

/* A NUL-terminated copy of buf's contents; buf is drained. */
static char *
buffer_take_string(struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf);
	char *s;

	if ((s = malloc(len + 1)) == NULL)
		die("out of memory");
	evbuffer_remove(buf, s, len);
	s[len] = '\0';
	return s;
}

static char *
xstrdup(const char *s)
{
	char *d;

	if ((d = strdup(s)) == NULL)
		die("out of memory");
	return d;
}

static void
hit_clear(struct hit *hit)
{
	free(hit->path);
	free(hit->method);
	free(hit->uri);
	free(hit->headers);
	free(hit->body);
	memset(hit, 0, sizeof(*hit));
}

static void
hits_reset(struct upstream *up)
{
	size_t i;

	for (i = 0; i < HITS_MAX; i++)
		hit_clear(&up->hits[i]);
	up->hits_next = 0;
	up->hits_len = 0;
}

/* The request body as hex digits (bodies here are small). */
static char *
body_hex(struct evhttp_request *req)
{
	static const char digits[] = "0123456789abcdef";
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t i, len = evbuffer_get_length(in);
	unsigned char *raw = evbuffer_pullup(in, -1);
	char *hex;

	if ((hex = malloc(2 * len + 1)) == NULL)
		die("out of memory");
	for (i = 0; i < len; i++) {
		hex[2 * i] = digits[raw[i] >> 4];
		hex[2 * i + 1] = digits[raw[i] & 15];
	}
	hex[2 * len] = '\0';
	return hex;
}

static void
hits_add(struct upstream *up, struct evhttp_request *req, const char *path)
{
	struct hit *hit = &up->hits[up->hits_next];
	struct evbuffer *buf;

	if ((buf = evbuffer_new()) == NULL)
		die("out of memory");
	json_headers(buf, req);
	hit_clear(hit);
	hit->path = xstrdup(path);
	hit->method = xstrdup(method_name(evhttp_request_get_command(req)));
	hit->uri = xstrdup(evhttp_request_get_uri(req));
	hit->headers = buffer_take_string(buf);
	hit->body = body_hex(req);
	evbuffer_free(buf);
	up->hits_next = (up->hits_next + 1) % HITS_MAX;
	if (up->hits_len < HITS_MAX)
		up->hits_len++;
}

/* The i-th newest hit, 0 being the last one. */
static struct hit *
hits_nth_newest(struct upstream *up, size_t i)
{
	return &up->hits[(up->hits_next + HITS_MAX - 1 - i) % HITS_MAX];
}

static void
reply(struct evhttp_request *req, int code, const char *type,
    struct evbuffer *body)
{
	if (type != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", type);
	evhttp_send_reply(req, code, NULL, body);
}

static void reply_text(struct evhttp_request *req, int code, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static void
reply_text(struct evhttp_request *req, int code, const char *fmt, ...)
{
	struct evbuffer *body;
	va_list ap;

	if ((body = evbuffer_new()) == NULL)
		die("out of memory");
	va_start(ap, fmt);
	evbuffer_add_vprintf(body, fmt, ap);
	va_end(ap);
	reply(req, code, "text/plain", body);
	evbuffer_free(body);
}

static void
pending_free(struct pending *p)
{
	struct evhttp_connection *evcon;

	TAILQ_REMOVE(&p->up->pending, p, entry);
	if (p->timer != NULL)
		event_free(p->timer);
	evcon = evhttp_request_get_connection(p->req);
	if (evcon != NULL)
		evhttp_connection_set_closecb(evcon, NULL, NULL);
	free(p);
}

/*
 * The client went away before its answer.  libevent has detached the
 * request from the connection and left it to us, so free it here.
 */
static void
pending_closed(struct evhttp_connection *evcon, void *arg)
{
	struct pending *p = arg;
	struct evhttp_request *req = p->req;

	pending_free(p);
	if (evhttp_request_get_connection(req) == NULL)
		evhttp_request_free(req);
}

static struct pending *
pending_new(struct upstream *up, struct evhttp_request *req)
{
	struct evhttp_connection *evcon;
	struct pending *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		die("out of memory");
	p->up = up;
	p->req = req;
	TAILQ_INSERT_TAIL(&up->pending, p, entry);
	evcon = evhttp_request_get_connection(req);
	evhttp_connection_set_closecb(evcon, pending_closed, p);
	/*
	 * libevent 2.1 stops reading once a request is in, so it would not
	 * see the client leave (libevent issue #78); read again to see it.
	 */
	bufferevent_enable(evhttp_connection_get_bufferevent(evcon), EV_READ);
	return p;
}

static void
delay_done(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	struct evhttp_request *req = p->req;

	pending_free(p);
	reply_text(req, 200, "delayed\n");
}

static void
serve_delay(struct upstream *up, struct evhttp_request *req, const char *arg)
{
	struct pending *p;
	struct timeval tv;
	long ms;

	if (parse_long(arg, 0, DELAY_MAX, &ms) == -1) {
		reply_text(req, 400, "bad delay\n");
		return;
	}
	p = pending_new(up, req);
	if ((p->timer = evtimer_new(up->base, delay_done, p)) == NULL)
		die("evtimer_new failed");
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(p->timer, &tv);
}

static void
serve_status(struct evhttp_request *req, const char *arg)
{
	long code;

	if (parse_long(arg, 200, 599, &code) == -1) {
		reply_text(req, 400, "bad status\n");
		return;
	}
	if (code == 204 || code == 304)
		reply(req, (int)code, NULL, NULL);
	else
		reply_text(req, (int)code, "status %ld\n", code);
}

/* The body refers to one static block again and again: nothing is copied. */
static void
serve_bytes(struct evhttp_request *req, const char *arg)
{
	struct evbuffer *body;
	size_t len;
	long n;

	if (parse_long(arg, 0, BYTES_MAX, &n) == -1) {
		reply_text(req, 400, "bad size\n");
		return;
	}
	if ((body = evbuffer_new()) == NULL)
		die("out of memory");
	for (; n > 0; n -= (long)len) {
		len = n < BLOCK_SIZE ? (size_t)n : BLOCK_SIZE;
		if (evbuffer_add_reference(body, block, len, NULL, NULL) == -1)
			die("evbuffer_add_reference failed");
	}
	reply(req, 200, "application/octet-stream", body);
	evbuffer_free(body);
}

static void
redirect(struct evhttp_request *req, const char *location)
{
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Location", location);
	reply_text(req, 302, "see %s\n", location);
}

/* The query parameter name of the request, decoded, or NULL. */
static char *
query_param(struct evhttp_request *req, const char *name)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *query = evhttp_uri_get_query(uri);
	struct evkeyvalq params;
	const char *value;
	char *copy = NULL;

	if (query == NULL || evhttp_parse_query_str(query, &params) == -1)
		return NULL;
	if ((value = evhttp_find_header(&params, name)) != NULL)
		copy = xstrdup(value);
	evhttp_clear_headers(&params);
	return copy;
}

static void
serve_redirect(struct evhttp_request *req)
{
	char *to;

	if ((to = query_param(req, "to")) == NULL) {
		reply_text(req, 400, "missing to=\n");
		return;
	}
	redirect(req, to);
	free(to);
}

static void
serve_redirects(struct evhttp_request *req, const char *arg)
{
	char location[64];
	long n;

	if (parse_long(arg, 0, REDIRS_MAX, &n) == -1) {
		reply_text(req, 400, "bad count\n");
		return;
	}
	if (n == 0) {
		reply_text(req, 200, "arrived\n");
		return;
	}
	snprintf(location, sizeof(location), "/redirects/%ld", n - 1);
	redirect(req, location);
}

/* Close with SO_LINGER 0, so the client sees a reset, not an EOF. */
static void
serve_reset(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	evutil_socket_t fd;

	fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
	if (fd != -1)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	evhttp_connection_free(evcon);
}

static void
serve_headers(struct evhttp_request *req)
{
	struct evbuffer *body;

	if ((body = evbuffer_new()) == NULL)
		die("out of memory");
	json_headers(body, req);
	evbuffer_add(body, "\n", 1);
	reply(req, 200, "application/json", body);
	evbuffer_free(body);
}

/* How many logged requests had exactly this path (this one included). */
static size_t
hits_exact(struct upstream *up, const char *path)
{
	size_t i, n = 0;

	for (i = 0; i < up->hits_len; i++)
		n += strcmp(hits_nth_newest(up, i)->path, path) == 0;
	return n;
}

/* The nth (1-based) status of "A,B,C"; the last repeats.  -1: bad. */
static long
seq_status(const char *seq, size_t nth)
{
	char copy[SEQ_MAX * 4], *p, *comma;
	size_t i;
	long code = -1;

	if (strlen(seq) >= sizeof(copy))
		return -1;
	snprintf(copy, sizeof(copy), "%s", seq);
	for (p = copy, i = 1;; p = comma + 1, i++) {
		if ((comma = strchr(p, ',')) != NULL)
			*comma = '\0';
		if (parse_long(p, 200, 599, &code) == -1)
			return -1;
		if (i == nth || comma == NULL)
			return code;
	}
}

/* Hex digits into bytes appended to out; -1 when not hex. */
static int
hex_append(struct evbuffer *out, const char *hex)
{
	unsigned int byte;
	size_t i, len = strlen(hex);

	if (len % 2 != 0)
		return -1;
	for (i = 0; i < len; i += 2) {
		unsigned char b;

		if (sscanf(hex + i, "%2x", &byte) != 1 ||
		    strspn(hex + i, "0123456789abcdefABCDEF") < 2)
			return -1;
		b = (unsigned char)byte;
		evbuffer_add(out, &b, 1);
	}
	return 0;
}

/* N bytes of the static block before what body holds; -1 when bad. */
static int
pad_prepend(struct evbuffer *body, const char *arg)
{
	struct evbuffer *pad;
	size_t len;
	long n;

	if (parse_long(arg, 0, BYTES_MAX, &n) == -1 ||
	    (pad = evbuffer_new()) == NULL)
		return -1;
	for (; n > 0; n -= (long)len) {
		len = n < BLOCK_SIZE ? (size_t)n : BLOCK_SIZE;
		evbuffer_add_reference(pad, block, len, NULL, NULL);
	}
	evbuffer_prepend_buffer(body, pad);
	evbuffer_free(pad);
	return 0;
}

/* One query parameter of /respond; -1 when it is bad. */
static int
respond_param(struct evhttp_request *req, const struct evkeyval *kv,
    long *status, size_t nth, struct evbuffer *body, int *typed)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	const char *colon;
	char name[128];

	if (strcmp(kv->key, "status") == 0)
		return parse_long(kv->value, 200, 599, status);
	if (strcmp(kv->key, "seq") == 0)
		return (*status = seq_status(kv->value, nth)) == -1 ? -1 : 0;
	if (strcmp(kv->key, "body") == 0)
		return evbuffer_add(body, kv->value, strlen(kv->value));
	if (strcmp(kv->key, "body_hex") == 0)
		return hex_append(body, kv->value);
	if (strcmp(kv->key, "pad") == 0)
		return pad_prepend(body, kv->value);
	if (strcmp(kv->key, "header") != 0 ||
	    (colon = strchr(kv->value, ':')) == NULL ||
	    (size_t)(colon - kv->value) >= sizeof(name))
		return -1;
	snprintf(
	    name, sizeof(name), "%.*s", (int)(colon - kv->value), kv->value);
	if (strcasecmp(name, "Content-Type") == 0)
		*typed = 1;
	return evhttp_add_header(out, name, colon + 1 + strspn(colon + 1, " "));
}

/* /respond/NAME?status=..&seq=..&header=..&body=.. (see the top). */
static void
serve_respond(struct upstream *up, struct evhttp_request *req, const char *path)
{
	const char *query =
	    evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq params;
	struct evkeyval *kv;
	struct evbuffer *body;
	long status = 200;
	int typed = 0, bad = 0;

	TAILQ_INIT(&params);
	if (query != NULL && evhttp_parse_query_str(query, &params) == -1) {
		reply_text(req, 400, "bad query\n");
		return;
	}
	if ((body = evbuffer_new()) == NULL)
		die("out of memory");
	TAILQ_FOREACH(kv, &params, next)
	{
		if (respond_param(req, kv, &status, hits_exact(up, path), body,
		        &typed) == -1)
			bad = 1;
	}
	evhttp_clear_headers(&params);
	if (bad) {
		evhttp_clear_headers(evhttp_request_get_output_headers(req));
		reply_text(req, 400, "bad parameter\n");
	} else
		reply(req, (int)status, typed ? NULL : "text/plain", body);
	evbuffer_free(body);
}

/*
 * Walk the log from the newest hit whose path starts with prefix (NULL:
 * every hit).  Returns how many match; *newest is the newest match.
 */
static size_t
hits_match(struct upstream *up, const char *prefix, struct hit **newest)
{
	struct hit *hit;
	size_t i, n = 0, plen = prefix != NULL ? strlen(prefix) : 0;

	*newest = NULL;
	for (i = 0; i < up->hits_len; i++) {
		hit = hits_nth_newest(up, i);
		if (strncmp(hit->path, prefix != NULL ? prefix : "", plen) != 0)
			continue;
		if (n++ == 0)
			*newest = hit;
	}
	return n;
}

static void
serve_hits(struct upstream *up, struct evhttp_request *req, int last)
{
	struct evbuffer *body;
	struct hit *hit;
	char *prefix;
	size_t n;

	prefix = query_param(req, "path");
	n = hits_match(up, prefix, &hit);
	free(prefix);
	if (last && hit == NULL) {
		reply_text(req, 404, "no such hit\n");
		return;
	}
	if ((body = evbuffer_new()) == NULL)
		die("out of memory");
	if (!last) {
		evbuffer_add_printf(body, "{\"hits\": %zu}\n", n);
	} else {
		evbuffer_add_printf(
		    body, "{\"method\": \"%s\", \"uri\": ", hit->method);
		json_string(body, hit->uri);
		evbuffer_add_printf(body,
		    ", \"headers\": %s, \"body_hex\": \"%s\"}\n", hit->headers,
		    hit->body);
	}
	reply(req, 200, "application/json", body);
	evbuffer_free(body);
}

/* If path is prefix followed by more, the rest; else NULL. */
static const char *
after(const char *path, const char *prefix)
{
	size_t len = strlen(prefix);

	if (strncmp(path, prefix, len) != 0 || path[len] == '\0')
		return NULL;
	return path + len;
}

static void
route(struct evhttp_request *req, void *arg)
{
	struct upstream *up = arg;
	const char *path, *rest;

	path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	if (path == NULL)
		path = "/";
	if (strcmp(path, "/hits") == 0)
		serve_hits(up, req, 0);
	else if (strcmp(path, "/hits/last") == 0)
		serve_hits(up, req, 1);
	else if (strcmp(path, "/hits/reset") == 0) {
		hits_reset(up);
		reply_text(req, 200, "reset\n");
	} else {
		hits_add(up, req, path);
		if ((rest = after(path, "/status/")) != NULL)
			serve_status(req, rest);
		else if ((rest = after(path, "/delay/")) != NULL)
			serve_delay(up, req, rest);
		else if ((rest = after(path, "/bytes/")) != NULL)
			serve_bytes(req, rest);
		else if ((rest = after(path, "/redirects/")) != NULL)
			serve_redirects(req, rest);
		else if (strcmp(path, "/redirect") == 0)
			serve_redirect(req);
		else if (strcmp(path, "/hang") == 0)
			pending_new(up, req);
		else if (strcmp(path, "/reset") == 0)
			serve_reset(req);
		else if (strcmp(path, "/headers") == 0)
			serve_headers(req);
		else if (after(path, "/respond/") != NULL)
			serve_respond(up, req, path);
		else
			reply_text(req, 404, "not found\n");
	}
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopbreak(arg);
}

/* Write the port to path.tmp, then rename it to path. */
static void
write_portfile(const char *path, int port)
{
	char tmp[PATH_MAX];
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		die("portfile path too long");
	if ((f = fopen(tmp, "w")) == NULL)
		die("%s: %s", tmp, strerror(errno));
	fprintf(f, "%d\n", port);
	if (fclose(f) == EOF)
		die("%s: %s", tmp, strerror(errno));
	if (rename(tmp, path) == -1)
		die("rename %s: %s", tmp, strerror(errno));
}

static int
bound_port(struct evhttp_bound_socket *handle)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	evutil_socket_t fd = evhttp_bound_socket_get_fd(handle);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		die("getsockname: %s", strerror(errno));
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void
usage(void)
{
	fprintf(stderr, "usage: upstream --port PORT --portfile FILE "
	                "[--address ADDR]\n");
	exit(2);
}

/*
 * A precise timer: libevent's default monotonic clock on Linux is the
 * coarse one, which would let /delay/MS answer a few ms before MS.
 */
static struct event_base *
base_new(void)
{
	struct event_config *cfg;
	struct event_base *base;

	if ((cfg = event_config_new()) == NULL ||
	    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) == -1 ||
	    (base = event_base_new_with_config(cfg)) == NULL)
		die("libevent set-up failed");
	event_config_free(cfg);
	return base;
}

static void
shutdown_pending(struct upstream *up)
{
	struct pending *p;
	struct evhttp_request *req;

	while ((p = TAILQ_FIRST(&up->pending)) != NULL) {
		req = p->req;
		pending_free(p);
		reply_text(req, 503, "shutting down\n");
	}
}

/*
 * Listen with a deep backlog: evhttp_bind_socket's 128 overflows when a
 * benchmark opens 10,000 connections at once, and the SYN retries then
 * look like a slow daemon.
 */
static struct evhttp_bound_socket *
bind_listener(struct upstream *up, const char *address, long port)
{
	struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_STREAM,
	    .ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICHOST};
	struct evutil_addrinfo *ai = NULL;
	struct evconnlistener *l;
	char service[16];

	snprintf(service, sizeof(service), "%ld", port);
	if (evutil_getaddrinfo(address, service, &hints, &ai) != 0)
		return NULL;
	l = evconnlistener_new_bind(up->base, NULL, NULL,
	    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
	    65535, ai->ai_addr, (int)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	return l != NULL ? evhttp_bind_listener(up->http, l) : NULL;
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"port", required_argument, NULL, 'p'},
	    {"portfile", required_argument, NULL, 'f'},
	    {"address", required_argument, NULL, 'a'},
	    {NULL, 0, NULL, 0},
	};
	static struct upstream up;
	const char *address = "127.0.0.1", *portfile = NULL;
	struct evhttp_bound_socket *handle;
	struct event *sigterm, *sigint;
	long port = -1;
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			if (parse_long(optarg, 0, 65535, &port) == -1)
				usage();
			break;
		case 'f':
			portfile = optarg;
			break;
		case 'a':
			address = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || port == -1 || portfile == NULL)
		usage();

	memset(block, 'x', sizeof(block));
	signal(SIGPIPE, SIG_IGN);
	TAILQ_INIT(&up.pending);
	up.base = base_new();
	if ((up.http = evhttp_new(up.base)) == NULL)
		die("evhttp_new failed");
	evhttp_set_allowed_methods(
	    up.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                 EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                 EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(up.http, route, &up);
	handle = bind_listener(&up, address, port);
	if (handle == NULL)
		die("cannot bind %s port %ld", address, port);
	sigterm = evsignal_new(up.base, SIGTERM, on_signal, up.base);
	sigint = evsignal_new(up.base, SIGINT, on_signal, up.base);
	if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm, NULL) ||
	    evsignal_add(sigint, NULL))
		die("cannot watch signals");
	write_portfile(portfile, bound_port(handle));

	event_base_dispatch(up.base);

	shutdown_pending(&up);
	hits_reset(&up);
	event_free(sigterm);
	event_free(sigint);
	evhttp_free(up.http);
	event_base_free(up.base);
	return 0;
}
