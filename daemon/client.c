/*
 * client: one struct client per connection that has sent a byte.
 *
 * evhttp makes each connection's bufferevent through our hook
 * (evhttp_set_bevcb).  We give it an ordinary socket bufferevent with a
 * read high-water mark (what one connection may buffer unread) and one
 * callback on its input buffer.  When the first byte arrives, the
 * bufferevent knows its evhttp connection: we make the struct client,
 * count it against its address, set the connection's close callback (the
 * one moment evhttp tells us a connection ends) and replace the first-
 * byte callback with the connection's own input and output callbacks:
 *  - input: bytes of a new request start its read deadline;
 *  - output: bytes written while a request has arrived only partly, and
 *    we are not answering one, can only be evhttp's own error reply (413,
 *    400): its status line is read and reported.
 * libevent's own bufferevents add callbacks to these buffers the same way
 * (evbuffer_add_cb); evbuffer_setcb, which would replace them, is never
 * used.  Connections that close before their first byte never get a
 * struct client, so nothing can leak for them.
 *
 * Ownership: a struct client is freed only by the close callback, which
 * evhttp calls before it frees the connection and its bufferevent, so the
 * buffers never call back into freed memory.  Loop thread only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "client.h"

/* The most bytes the watch reads ahead of evhttp (a pipelined request). */
#define CLIENT_READ_AHEAD_MAX (256 * 1024)
/* A fan-out ended sooner than this needs no socket watch. */
#define CLIENT_WATCH_DELAY_MS 20
/* After client_abort(), the longest wait for evhttp to notice. */
#define CLIENT_ABORT_GRACE_MS 1000

/* Connections from one address (IPv4-mapped addresses count as IPv4). */
struct client_count {
	struct client_count *next; /* hash chain */
	int family;
	uint8_t addr[16];
	size_t count;
};

struct client {
	struct client *next; /* hash chain, keyed by evcon */
	struct clients *owner;
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	struct client_count *counted; /* NULL: over the cap, not counted */
	client_gone_fn gone;
	void *gone_arg;
	bool reading;  /* bytes of a request arrived; not routed yet */
	bool busy;     /* routed; its answer is not queued whole yet */
	bool aborting; /* client_abort() ran; the fallback timer is set */
	struct event *deadline; /* read deadline, or the abort fallback */
	struct event *watch;    /* the delay timer, then the socket */
	max_align_t events[];   /* room for both */
};

/* Chained hash tables whose bucket counts are powers of two. */
struct client_table {
	void **buckets;
	size_t nbuckets, count;
};

struct clients {
	struct event_base *base;
	struct evhttp *http;
	client_refused_fn refused;
	void *refused_arg;
	struct client_limits limits;
	struct client_table conns;         /* struct client, by evcon */
	struct client_table counts;        /* struct client_count, by address */
	const struct timeval *watch_delay; /* a common timeout, or NULL */
};

/* The one instance: evhttp's bufferevent hook passes no argument on. */
static struct clients *client_registry;

static size_t
client_hash_bytes(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	while (len-- > 0)
		h = (h ^ *b++) * 1099511628211ull;
	return (size_t)h;
}

static size_t
client_hash_ptr(const void *p)
{
	return client_hash_bytes(&p, sizeof(p));
}

/* Room for one more entry; rehashing needs each entry's hash and link. */
static int
client_table_grow(
    struct client_table *t, size_t (*hash)(void *), void **(*link)(void *))
{
	size_t n = t->nbuckets == 0 ? 64 : t->nbuckets * 2, i;
	void **b, *e, *next;

	if (t->count < t->nbuckets)
		return 0;
	if ((b = calloc(n, sizeof(*b))) == NULL)
		return -1;
	for (i = 0; i < t->nbuckets; i++)
		for (e = t->buckets[i]; e != NULL; e = next) {
			next = *link(e);
			*link(e) = b[hash(e) & (n - 1)];
			b[hash(e) & (n - 1)] = e;
		}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
	return 0;
}

static size_t
client_conn_hash(void *e)
{
	return client_hash_ptr(((struct client *)e)->evcon);
}

static void **
client_conn_link(void *e)
{
	return (void **)&((struct client *)e)->next;
}

static size_t
client_count_hash(void *e)
{
	struct client_count *cc = e;

	return client_hash_bytes(cc->addr, 16) ^ (size_t)cc->family;
}

static void **
client_count_link(void *e)
{
	return (void **)&((struct client_count *)e)->next;
}

/* Unlink e from its chain; it must be there. */
static void
client_table_remove(
    struct client_table *t, void *e, size_t h, void **(*link)(void *))
{
	void **pp = &t->buckets[h & (t->nbuckets - 1)];

	while (*pp != e)
		pp = link(*pp);
	*pp = *link(e);
	t->count--;
}

static struct client *
client_find(struct clients *cs, const struct evhttp_connection *evcon)
{
	struct client *c;

	if (cs->conns.nbuckets == 0)
		return NULL;
	c = cs->conns
	        .buckets[client_hash_ptr(evcon) & (cs->conns.nbuckets - 1)];
	while (c != NULL && c->evcon != evcon)
		c = c->next;
	return c;
}

/* The address as a key: family and 16 bytes, mapped IPv6 as IPv4. */
static void
client_key(const struct sockaddr *sa, struct client_count *key)
{
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
	const uint8_t *a6;

	memset(key, 0, sizeof(*key));
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		key->family = AF_INET;
		memcpy(
		    key->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		key->family = memcmp(a6, mapped, 12) == 0 ? AF_INET : AF_INET6;
		memcpy(key->addr, key->family == AF_INET ? a6 + 12 : a6,
		    key->family == AF_INET ? 4 : 16);
	}
}

/*
 * Count one more connection from sa.  NULL when the address is at its
 * cap (the connection is then not counted) or out of memory.
 */
static struct client_count *
client_count_add(struct clients *cs, const struct sockaddr *sa, bool *over)
{
	struct client_count key, *cc = NULL;
	size_t h;

	client_key(sa, &key);
	h = client_count_hash(&key);
	if (cs->counts.nbuckets > 0)
		cc = cs->counts.buckets[h & (cs->counts.nbuckets - 1)];
	while (cc != NULL && (cc->family != key.family ||
	                         memcmp(cc->addr, key.addr, 16) != 0))
		cc = cc->next;
	*over = cc != NULL && cs->limits.max_per_address > 0 &&
	        cc->count >= (size_t)cs->limits.max_per_address;
	if (*over)
		return NULL;
	if (cc == NULL) {
		if (client_table_grow(&cs->counts, client_count_hash,
		        client_count_link) == -1 ||
		    (cc = malloc(sizeof(*cc))) == NULL)
			return NULL;
		*cc = key;
		cc->next = cs->counts.buckets[h & (cs->counts.nbuckets - 1)];
		cs->counts.buckets[h & (cs->counts.nbuckets - 1)] = cc;
		cs->counts.count++;
	}
	cc->count++;
	return cc;
}

static void
client_count_drop(struct clients *cs, struct client_count *cc)
{
	if (cc == NULL || --cc->count > 0)
		return;
	client_table_remove(
	    &cs->counts, cc, client_count_hash(cc), client_count_link);
	free(cc);
}

static void
client_begin_request(struct client *c)
{
	struct timeval tv;
	int ms = c->owner->limits.read_timeout_ms;

	c->reading = true;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (!c->aborting)
		evtimer_add(c->deadline, &tv);
}

static void
client_end_reading(struct client *c)
{
	c->reading = false;
	if (!c->aborting)
		evtimer_del(c->deadline);
}

/* Bytes came in: the start of a request, unless one is being answered. */
static void
client_on_input(
    struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct client *c = arg;

	if (info->n_added > 0 && !c->reading && !c->busy)
		client_begin_request(c);
}

/* "HTTP/1.1 413 ..." at the start of what was just added; 0 if not. */
static int
client_status_written(struct evbuffer *buf, const struct evbuffer_cb_info *info)
{
	struct evbuffer_ptr at;
	char line[13] = "";
	int status = 0, i;

	if (evbuffer_ptr_set(buf, &at, info->orig_size, EVBUFFER_PTR_SET) !=
	        0 ||
	    evbuffer_copyout_from(buf, &at, line, 12) != 12 ||
	    memcmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ')
		return 0;
	for (i = 9; i < 12; i++) {
		if (line[i] < '0' || line[i] > '9')
			return 0;
		status = status * 10 + (line[i] - '0');
	}
	return status;
}

/*
 * Bytes go out while a request arrived only partly and we answer none:
 * evhttp is refusing it itself.  (100 Continue is not a refusal.)
 */
static void
client_on_output(
    struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct client *c = arg;
	int status;

	if (info->n_added == 0 || c->busy || !c->reading)
		return;
	if ((status = client_status_written(buf, info)) < 200)
		return;
	client_end_reading(c);
	c->owner->refused(evhttp_connection_get_addr(c->evcon), status,
	    c->owner->refused_arg);
}

/* The request did not arrive whole in time: 408, and the cut. */
static void
client_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	if (c->aborting) {
		/* evhttp did not notice the shutdown: free it ourselves */
		evhttp_connection_free(c->evcon);
		return;
	}
	client_end_reading(c);
	c->owner->refused(
	    evhttp_connection_get_addr(c->evcon), 408, c->owner->refused_arg);
	client_abort(c);
}

static void
client_free(struct client *c)
{
	struct clients *cs = c->owner;

	event_del(c->deadline);
	event_del(c->watch);
	client_count_drop(cs, c->counted);
	client_table_remove(
	    &cs->conns, c, client_conn_hash(c), client_conn_link);
	free(c);
}

/* evhttp is freeing the connection: the only end of a struct client. */
static void
client_on_close(struct evhttp_connection *evcon, void *arg)
{
	struct client *c = arg;
	client_gone_fn gone = c->gone;
	void *gone_arg = c->gone_arg;

	client_free(c);
	if (gone != NULL)
		gone(gone_arg, true);
}

static struct client *
client_new(struct clients *cs, struct evhttp_connection *evcon,
    struct bufferevent *bev)
{
	size_t evsize = event_get_struct_event_size();
	struct client *c;
	bool over;

	if (client_table_grow(&cs->conns, client_conn_hash, client_conn_link) ==
	        -1 ||
	    (c = calloc(1, sizeof(*c) + 2 * evsize)) == NULL)
		return NULL;
	c->owner = cs;
	c->evcon = evcon;
	c->bev = bev;
	c->deadline = (struct event *)c->events;
	c->watch = (struct event *)((char *)c->events + evsize);
	evtimer_assign(c->deadline, cs->base, client_on_deadline, c);
	evtimer_assign(c->watch, cs->base, NULL, c);
	c->counted =
	    client_count_add(cs, evhttp_connection_get_addr(evcon), &over);
	if (c->counted == NULL && !over) {
		free(c); /* out of memory: stay untracked */
		return NULL;
	}
	c->next =
	    cs->conns.buckets[client_conn_hash(c) & (cs->conns.nbuckets - 1)];
	cs->conns.buckets[client_conn_hash(c) & (cs->conns.nbuckets - 1)] = c;
	cs->conns.count++;
	evhttp_connection_set_closecb(evcon, client_on_close, c);
	return c;
}

/* The first byte: now the bufferevent knows its evhttp connection. */
static void
client_on_first_data(
    struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct bufferevent *bev = arg;
	struct clients *cs = client_registry;
	void *evcon = NULL;
	struct client *c;

	if (info->n_added == 0 || cs == NULL)
		return;
	evbuffer_remove_cb(buf, client_on_first_data, bev);
	bufferevent_getcb(bev, NULL, NULL, NULL, &evcon);
	if (evcon == NULL || (c = client_new(cs, evcon, bev)) == NULL)
		return;
	evbuffer_add_cb(buf, client_on_input, c);
	evbuffer_add_cb(bufferevent_get_output(bev), client_on_output, c);
	client_begin_request(c);
}

/* evhttp's hook for each new connection's bufferevent. */
static struct bufferevent *
client_make_bufferevent(struct event_base *base, void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);

	if (bev == NULL)
		return NULL; /* evhttp makes its own: an untracked client */
	if (client_registry != NULL)
		bufferevent_setwatermark(
		    bev, EV_READ, 0, client_registry->limits.input_max);
	evbuffer_add_cb(bufferevent_get_input(bev), client_on_first_data, bev);
	return bev;
}

struct clients *
clients_new(struct event_base *base, struct evhttp *http,
    client_refused_fn refused, void *arg, char *err, size_t errlen)
{
	struct clients *cs;
	struct timeval delay = {0, CLIENT_WATCH_DELAY_MS * 1000};

	if (client_registry != NULL) {
		snprintf(err, errlen, "client tracking is already set up");
		return NULL;
	}
	if ((cs = calloc(1, sizeof(*cs))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	cs->base = base;
	cs->http = http;
	cs->refused = refused;
	cs->refused_arg = arg;
	cs->limits.read_timeout_ms = 10000;
	/* NULL (out of memory) just means the timer heap. */
	cs->watch_delay = event_base_init_common_timeout(base, &delay);
	evhttp_set_bevcb(http, client_make_bufferevent, NULL);
	client_registry = cs;
	return cs;
}

void
clients_free(struct clients *cs)
{
	struct client *c, *next;
	size_t i;

	if (cs == NULL)
		return;
	evhttp_set_bevcb(cs->http, NULL, NULL);
	for (i = 0; i < cs->conns.nbuckets; i++)
		for (c = cs->conns.buckets[i]; c != NULL; c = next) {
			next = c->next;
			evhttp_connection_set_closecb(c->evcon, NULL, NULL);
			evbuffer_remove_cb(
			    bufferevent_get_input(c->bev), client_on_input, c);
			evbuffer_remove_cb(bufferevent_get_output(c->bev),
			    client_on_output, c);
			client_free(c);
		}
	free(cs->conns.buckets);
	free(cs->counts.buckets);
	client_registry = NULL;
	free(cs);
}

void
clients_set_limits(struct clients *cs, const struct client_limits *limits)
{
	cs->limits = *limits;
}

size_t
clients_count(const struct clients *cs)
{
	return cs->conns.count;
}

struct client *
client_of(struct clients *cs, struct evhttp_request *req)
{
	struct client *c = client_find(cs, evhttp_request_get_connection(req));

	if (c != NULL) {
		client_end_reading(c);
		c->busy = true;
	}
	return c;
}

bool
client_over_limit(const struct client *c)
{
	return c->counted == NULL;
}

void
client_request_done(struct client *c)
{
	c->busy = false;
	/* A pipelined request already read has begun arriving. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		client_begin_request(c);
}

static void
client_went(struct client *c)
{
	client_gone_fn gone = c->gone;

	event_del(c->watch);
	c->gone = NULL;
	if (gone != NULL)
		gone(c->gone_arg, false);
}

/*
 * Readable, closed or in error while evhttp is not reading.  Bytes that
 * came (a pipelined request) are read into evhttp's own input buffer,
 * where it finds them when it reads again (evhttp_start_read_ looks for
 * pending input), so that the watch can go on to see a close or a reset
 * that follows them.  Past CLIENT_READ_AHEAD_MAX only a close
 * (EV_CLOSED) is watched.
 */
static void
client_on_watch_io(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t held = evbuffer_get_length(in);
	int n;

	if (what & EV_CLOSED) {
		client_went(c);
		return;
	}
	if (held >= CLIENT_READ_AHEAD_MAX) {
		event_del(c->watch);
		event_assign(c->watch, c->owner->base, fd,
		    EV_CLOSED | EV_PERSIST, client_on_watch_io, c);
		event_add(c->watch, NULL);
		return;
	}
	/* A socket bufferevent keeps the end of its input frozen but while
	 * it reads itself; read the same way. */
	evbuffer_unfreeze(in, 0);
	n = evbuffer_read(in, fd, (int)(CLIENT_READ_AHEAD_MAX - held));
	evbuffer_freeze(in, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		client_went(c);
}

static void
client_on_watch_delay(evutil_socket_t unused, short what, void *arg)
{
	struct client *c = arg;
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	if (fd < 0)
		return;
	event_assign(c->watch, c->owner->base, fd,
	    EV_READ | EV_CLOSED | EV_PERSIST, client_on_watch_io, c);
	event_add(c->watch, NULL);
}

void
client_watch(struct client *c, client_gone_fn gone, void *arg)
{
	struct timeval delay = {0, CLIENT_WATCH_DELAY_MS * 1000};

	c->gone = gone;
	c->gone_arg = arg;
	event_del(c->watch);
	evtimer_assign(c->watch, c->owner->base, client_on_watch_delay, c);
	evtimer_add(c->watch,
	    c->owner->watch_delay != NULL ? c->owner->watch_delay : &delay);
}

void
client_quiet(struct client *c)
{
	event_del(c->watch);
}

void
client_unwatch(struct client *c)
{
	event_del(c->watch);
	c->gone = NULL;
	c->gone_arg = NULL;
}

void
client_abort(struct client *c)
{
	struct timeval grace = {CLIENT_ABORT_GRACE_MS / 1000,
	    (CLIENT_ABORT_GRACE_MS % 1000) * 1000};
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	if (c->aborting)
		return;
	c->aborting = true;
	/*
	 * evhttp sees the end of the stream and frees the connection, when
	 * it is reading or writing; when it is neither, the timer does.
	 */
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	event_del(c->deadline);
	evtimer_add(c->deadline, &grace);
}
