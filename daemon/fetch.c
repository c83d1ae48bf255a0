/*
 * One fetch on a worker's own easy handle.  The handle lives as long as
 * the worker, so its connection cache and TLS session cache stay private
 * to one thread (libcurl 7.88 must not share those across threads); only
 * the DNS cache is shared, through a share handle with mutex callbacks.
 *
 * Redirects are followed here rather than by libcurl: each hop is a
 * separate curl_easy_perform(), so every hop's URL passes the same checks
 * as the client's URL, the socket callback sees every hop's address, and
 * caller-supplied headers go only to the origin the client named.
 *
 * TLS: libcurl is given no CA file or path; each new connection's SSL_CTX
 * verifies against the config's shared store instead (tls.c), set up in
 * the SSL_CTX callback, which also marks when the handshake began.  The
 * prerequest callback, reached on new and reused connections alike once
 * the connection is up, reads what the result says of it.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "expect.h"
#include "fetch.h"
#include "policy.h"
#include "url.h"

struct fetch_worker;

/* State the callbacks of one hop see. */
struct fetch_xfer {
	const struct config *cfg;
	const atomic_bool *cancel;
	struct fetch_worker *w;
	struct fetch_result *r;
	const struct fetch_spec *spec;
	struct expect_state *expect; /* the fetch's, or NULL */
	bool verify;      /* this fetch checks certificates and host names */
	uint64_t sock_ns; /* the hop's first socket opened; 0: none */
	uint64_t tls_ns;  /* a TLS handshake began; 0: none */
	bool opened;      /* a new connection was opened */
	bool sent;        /* a request went out (prereq passed) */
	int64_t bytes;
	int too_large;
	int blocked;      /* the target policy refused an address */
	int blocked_late; /* ... on a connection that was already open */
	char blocked_ip[INET6_ADDRSTRLEN];
};

struct fetch_worker {
	CURL *easy;
	uint64_t rng; /* xorshift state: the jitter of retry waits */
	struct tls_capture *capture; /* the handshakes this worker runs */
	unsigned epoch; /* config conn_epoch its connections were made in */
	bool has_epoch; /* false until the first fetch */
	struct fetch_xfer xfer; /* the callbacks' view of the current hop */
	char errbuf[CURL_ERROR_SIZE];
};

static CURLSH *fetch_share;
static pthread_mutex_t fetch_share_locks[CURL_LOCK_DATA_LAST];

static const char *const fetch_error_codes[FETCH_E_COUNT] = {
    [FETCH_OK] = NULL,
    [FETCH_E_INVALID_URL] = "invalid_url",
    [FETCH_E_UNSUPPORTED_SCHEME] = "unsupported_scheme",
    [FETCH_E_BLOCKED] = "blocked",
    [FETCH_E_DNS] = "dns",
    [FETCH_E_CONNECT] = "connect",
    [FETCH_E_TLS] = "tls",
    [FETCH_E_TIMEOUT] = "timeout",
    [FETCH_E_TOO_LARGE] = "too_large",
    [FETCH_E_REDIRECT_LIMIT] = "redirect_limit",
    [FETCH_E_CANCELED] = "canceled",
    [FETCH_E_CHECK_FAILED] = "check_failed",
    [FETCH_E_OTHER] = "other",
};

static const char *const fetch_method_names[FETCH_METHOD_COUNT] = {
    [FETCH_GET] = "GET",
    [FETCH_HEAD] = "HEAD",
    [FETCH_POST] = "POST",
    [FETCH_PUT] = "PUT",
    [FETCH_PATCH] = "PATCH",
    [FETCH_DELETE] = "DELETE",
    [FETCH_OPTIONS] = "OPTIONS",
};

const char *
fetch_method_name(enum fetch_method method)
{
	return (unsigned)method < FETCH_METHOD_COUNT
	           ? fetch_method_names[method]
	           : "GET";
}

bool
fetch_method_idempotent(enum fetch_method method)
{
	return method != FETCH_POST && method != FETCH_PATCH;
}

const char *
fetch_error_code(enum fetch_error error)
{
	if ((unsigned)error >= FETCH_E_COUNT)
		return "other";
	return fetch_error_codes[error];
}

bool
fetch_result_ok(const struct fetch_result *result)
{
	return result->error == FETCH_OK &&
	       (result->checked ||
	           (result->status >= 200 && result->status < 400));
}

/* What one attempt made; a retry starts from nothing again. */
static void
fetch_result_clear_attempt(struct fetch_result *result)
{
	size_t i;

	free(result->body);
	result->body = NULL;
	result->body_len = 0;
	result->body_truncated = false;
	for (i = 0; result->headers != NULL && i < result->nheaders; i++) {
		free(result->headers[i].value);
		result->headers[i].value = NULL;
	}
	expect_failures_free(result->failed, result->nfailed);
	result->failed = NULL;
	result->nfailed = 0;
	result->checked = false;
}

void
fetch_result_reset(struct fetch_result *result)
{
	size_t i;

	free(result->message);
	free(result->effective_url);
	tls_facts_reset(&result->tls);
	free(result->body);
	for (i = 0; result->headers != NULL && i < result->nheaders; i++)
		free(result->headers[i].value);
	free(result->headers);
	expect_failures_free(result->failed, result->nfailed);
	memset(result, 0, sizeof(*result));
}

void
fetch_result_set_error(
    struct fetch_result *result, enum fetch_error error, const char *message)
{
	free(result->message);
	result->error = error;
	result->message = strdup(message != NULL ? message : "");
}

static double
fetch_phase_ms(int64_t from, int64_t to)
{
	return to > from ? (double)(to - from) / 1000.0 : 0.0;
}

void
fetch_timing_add(struct fetch_timing *t, const struct fetch_marks *m)
{
	/* Marks are cumulative from the hop's start; phases are differences,
	 * clamped at 0.  A reused connection has no DNS, connect or TLS
	 * phase: curl still marks a name lookup for it, which is dropped.
	 * A handshake that failed has no curl mark at all (curl marks the
	 * connect only once TLS is up too): the TCP connect then ends, and
	 * the handshake begins, when fanoutd saw the handshake begin: never
	 * after the total, so that the phases still add up to it. */
	if (m->reused) {
		/* nothing before the request */
	} else if (m->appconnect == 0 && m->tls_start > 0) {
		int64_t tls_start =
		    m->tls_start < m->total ? m->tls_start : m->total;

		t->dns += fetch_phase_ms(0, m->namelookup);
		t->connect += fetch_phase_ms(m->namelookup, tls_start);
		t->tls += fetch_phase_ms(tls_start, m->total);
	} else {
		t->dns += fetch_phase_ms(0, m->namelookup);
		t->connect += fetch_phase_ms(m->namelookup, m->connect);
		if (m->appconnect > 0)
			t->tls += fetch_phase_ms(m->connect, m->appconnect);
	}
	t->ttfb += fetch_phase_ms(m->pretransfer, m->starttransfer);
	if (m->starttransfer > 0)
		t->transfer += fetch_phase_ms(m->starttransfer, m->total);
	t->total += fetch_phase_ms(0, m->total);
}

enum fetch_error
fetch_error_from_curl(CURLcode code)
{
	switch (code) {
	case CURLE_OK:
		return FETCH_OK;
	case CURLE_URL_MALFORMAT:
		return FETCH_E_INVALID_URL;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return FETCH_E_DNS;
	case CURLE_COULDNT_CONNECT:
		return FETCH_E_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return FETCH_E_TIMEOUT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_USE_SSL_FAILED:
	case CURLE_SSL_CLIENTCERT:
		return FETCH_E_TLS;
	case CURLE_FILESIZE_EXCEEDED:
		return FETCH_E_TOO_LARGE;
	case CURLE_TOO_MANY_REDIRECTS:
		return FETCH_E_REDIRECT_LIMIT;
	case CURLE_ABORTED_BY_CALLBACK:
		return FETCH_E_CANCELED;
	default:
		return FETCH_E_OTHER;
	}
}

uint64_t
fetch_host_key(const struct fetch_spec *spec)
{
	return url_host_key(spec->url, UINT64_C(0xcbf29ce484222325));
}

uint64_t
fetch_affinity_of(uint64_t host_key, bool verify_tls)
{
	uint64_t h;

	if (host_key == 0)
		return 0;
	h = url_hash_lower(host_key, verify_tls ? "v" : "n", 1);
	return h != 0 ? h : 1;
}

uint64_t
fetch_affinity(const struct fetch_spec *spec)
{
	return fetch_affinity_of(fetch_host_key(spec), spec->verify_tls);
}

static void
fetch_share_lock(CURL *h, curl_lock_data data, curl_lock_access a, void *u)
{
	pthread_mutex_lock(&fetch_share_locks[data]);
}

static void
fetch_share_unlock(CURL *h, curl_lock_data data, void *u)
{
	pthread_mutex_unlock(&fetch_share_locks[data]);
}

int
fetch_global_init(char *err, size_t errlen)
{
	CURLcode rc;
	size_t i;

	if ((rc = curl_global_init(CURL_GLOBAL_ALL)) != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init: %s",
		    curl_easy_strerror(rc));
		return -1;
	}
	if (tls_global_init(err, errlen) == -1)
		return -1;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&fetch_share_locks[i], NULL);
	if ((fetch_share = curl_share_init()) == NULL) {
		snprintf(err, errlen, "curl_share_init failed");
		return -1;
	}
	/* DNS only: connections and TLS sessions stay per thread. */
	curl_share_setopt(fetch_share, CURLSHOPT_LOCKFUNC, fetch_share_lock);
	curl_share_setopt(
	    fetch_share, CURLSHOPT_UNLOCKFUNC, fetch_share_unlock);
	curl_share_setopt(fetch_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	return 0;
}

void
fetch_global_cleanup(void)
{
	size_t i;

	curl_share_cleanup(fetch_share);
	fetch_share = NULL;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&fetch_share_locks[i]);
	curl_global_cleanup();
}

static size_t fetch_write(char *, size_t, size_t, void *);
static size_t fetch_header(char *, size_t, size_t, void *);
static int fetch_progress(
    void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t);
static curl_socket_t fetch_opensocket(
    void *, curlsocktype, struct curl_sockaddr *);
static int fetch_prereq(void *, char *, char *, int, int);
static CURLcode fetch_ssl_ctx(CURL *, void *, void *);

/*
 * The options that never change for a handle, set once rather than reset
 * and set again before every fetch.  Everything a fetch varies is set by
 * fetch_setup() each time, so nothing carries over from one fetch to the
 * next.
 */
static CURL *
fetch_handle_new(struct fetch_worker *w)
{
	CURL *h = curl_easy_init();

	if (h == NULL)
		return NULL;
	curl_easy_setopt(h, CURLOPT_SHARE, fetch_share);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROXY, ""); /* ignore *_proxy env vars */
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, w->errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fetch_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &w->xfer);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, fetch_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &w->xfer);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, fetch_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &w->xfer);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, fetch_opensocket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &w->xfer);
	curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, fetch_prereq);
	curl_easy_setopt(h, CURLOPT_PREREQDATA, &w->xfer);
	/* Trust comes from the config's shared store, never from files
	 * libcurl would read again for every connection. */
	curl_easy_setopt(h, CURLOPT_CAINFO, NULL);
	curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(h, CURLOPT_CA_CACHE_TIMEOUT, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, fetch_ssl_ctx);
	curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, w);
	/* One connection, the last fetch's: the pool sends the next fetch
	 * for that host here (pool_job.affinity). */
	curl_easy_setopt(h, CURLOPT_MAXCONNECTS, 1L);
	return h;
}

struct fetch_worker *
fetch_worker_new(void)
{
	struct fetch_worker *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->rng = clock_now_ns() ^ (uint64_t)(uintptr_t)w;
	if (w->rng == 0)
		w->rng = 1;
	if ((w->capture = tls_capture_new()) == NULL ||
	    (w->easy = fetch_handle_new(w)) == NULL) {
		tls_capture_free(w->capture);
		free(w);
		return NULL;
	}
	return w;
}

void
fetch_worker_free(struct fetch_worker *w)
{
	if (w == NULL)
		return;
	curl_easy_cleanup(w->easy);
	tls_capture_free(w->capture);
	free(w);
}

void
fetch_worker_flush(struct fetch_worker *w)
{
	CURL *fresh;

	/* A new handle has an empty connection cache: pooled connections
	 * were checked against the old policy and must not be reused. */
	if ((fresh = fetch_handle_new(w)) == NULL)
		return;
	curl_easy_cleanup(w->easy);
	w->easy = fresh;
}

int
fetch_workers_for_fds(long nofile)
{
	long reserve = nofile / 8 < 256 ? 256 : nofile / 8;
	long workers = (nofile - reserve) / FETCH_FDS_PER_WORKER;

	return workers < 1 ? 1 : workers > INT_MAX ? INT_MAX : (int)workers;
}

unsigned
fetch_conn_epoch(const struct config *old, const struct config *cfg)
{
	bool same = policy_equal(&old->deny_targets, &cfg->deny_targets) &&
	            policy_equal(&old->allow_targets, &cfg->allow_targets) &&
	            tls_trust_equal(old->trust, cfg->trust);

	return same ? old->conn_epoch : old->conn_epoch + 1;
}

/*
 * Connections made under another epoch were checked against what a
 * reload has since changed: drop them before this fetch.  A worker
 * alternating between fan-outs of the old and the new config flushes
 * each time, which only lasts while the old fan-outs do.
 */
static void
fetch_worker_epoch(struct fetch_worker *w, const struct config *cfg)
{
	if (w->has_epoch && w->epoch != cfg->conn_epoch)
		fetch_worker_flush(w);
	w->epoch = cfg->conn_epoch;
	w->has_epoch = true;
}

/* Keep up to spec->capture body bytes; note that there were more. */
static int
fetch_capture_body(struct fetch_xfer *x, const char *data, size_t n)
{
	struct fetch_result *r = x->r;
	size_t room = x->spec->capture - r->body_len;

	if (n > room) {
		r->body_truncated = true;
		n = room;
	}
	if (n == 0)
		return 0;
	if (r->body == NULL && (r->body = malloc(x->spec->capture)) == NULL)
		return -1;
	/* One buffer of the cap's size: the capture is bounded and small. */
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	return 0;
}

/*
 * Body bytes of the hop: counted against max_response_bytes (more
 * aborts the transfer), fed to the expect checks, and captured.
 */
static size_t
fetch_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct fetch_xfer *x = arg;
	size_t n = size * nmemb;

	x->bytes += (int64_t)n;
	if (x->bytes > x->cfg->max_response_bytes) {
		x->too_large = 1;
		return 0; /* aborts with CURLE_WRITE_ERROR */
	}
	if ((x->expect != NULL && expect_feed_body(x->expect, data, n) == -1) ||
	    (x->spec->capture > 0 && fetch_capture_body(x, data, n) == -1))
		return 0;
	return n;
}

/* "Name: value" into the captured header it names (the last one wins). */
static int
fetch_capture_header(struct fetch_xfer *x, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len), *v;
	struct fetch_result *r = x->r;
	size_t nlen, vlen, i;

	if (colon == NULL)
		return 0;
	nlen = (size_t)(colon - line);
	v = colon + 1;
	vlen = len - nlen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	while (vlen > 0 && strchr(" \t\r\n", v[vlen - 1]) != NULL)
		vlen--;
	for (i = 0; i < r->nheaders; i++) {
		if (strlen(r->headers[i].name) != nlen ||
		    strncasecmp(r->headers[i].name, line, nlen) != 0)
			continue;
		free(r->headers[i].value);
		if ((r->headers[i].value = strndup(v, vlen)) == NULL)
			return -1;
	}
	return 0;
}

/*
 * Response header lines of the hop.  A status line starts a response
 * anew (a 100 Continue came first): what was seen of headers is dropped.
 */
static size_t
fetch_header(char *line, size_t size, size_t nitems, void *arg)
{
	struct fetch_xfer *x = arg;
	size_t n = size * nitems, i;

	if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		if (x->expect != NULL)
			expect_state_new_hop(x->expect);
		for (i = 0; i < x->r->nheaders; i++) {
			free(x->r->headers[i].value);
			x->r->headers[i].value = NULL;
		}
		return n;
	}
	if ((x->expect != NULL &&
	        expect_feed_header(x->expect, line, n) == -1) ||
	    fetch_capture_header(x, line, n) == -1)
		return 0;
	return n;
}

static int
fetch_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct fetch_xfer *x = arg;

	return atomic_load_explicit(x->cancel, memory_order_relaxed) ? 1 : 0;
}

static bool
fetch_target_allowed(const struct config *cfg, const struct sockaddr *sa)
{
	return policy_target_allowed(
	    &cfg->deny_targets, &cfg->allow_targets, sa);
}

/*
 * Every new connection, on every hop, comes through here after DNS and
 * before connect(): a denied address never even gets a SYN.
 */
static curl_socket_t
fetch_opensocket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct fetch_xfer *x = arg;
	const struct sockaddr *sa = &addr->addr;
	const void *raw;

	if (!fetch_target_allowed(x->cfg, sa)) {
		x->blocked = 1;
		raw = sa->sa_family == AF_INET6
		          ? (const void *)&((const struct sockaddr_in6 *)sa)
		                ->sin6_addr
		          : (const void *)&((const struct sockaddr_in *)sa)
		                ->sin_addr;
		inet_ntop(
		    sa->sa_family, raw, x->blocked_ip, sizeof(x->blocked_ip));
		return CURL_SOCKET_BAD;
	}
	x->opened = true;
	if (x->sock_ns == 0)
		x->sock_ns = clock_now_ns();
	return socket(
	    addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/*
 * What the connection a request is about to go out on says of TLS, new
 * or reused: libcurl verified it (when asked to) before getting here.
 */
static void
fetch_tls_facts(struct fetch_xfer *x)
{
	struct curl_tlssessioninfo *info = NULL;

	if (curl_easy_getinfo(x->w->easy, CURLINFO_TLS_SSL_PTR, &info) !=
	        CURLE_OK ||
	    info == NULL || info->backend != CURLSSLBACKEND_OPENSSL ||
	    info->internals == NULL)
		return;
	/* Out of memory leaves the facts partly filled: still true. */
	tls_facts_from_ssl(
	    &x->r->tls, info->internals, x->verify, (int64_t)time(NULL));
}

/*
 * Every request, on a new or a reused connection, comes through here
 * before its first byte is sent: the address the connection actually
 * reached is checked against this fetch's policy.  A pooled connection
 * opened for a fan-out admitted before a reload that tightened the
 * policy is refused here, as is anything the socket check missed.  No
 * address (which should not happen) is refused too.
 */
static int
fetch_prereq(void *arg, char *primary_ip, char *local_ip, int primary_port,
    int local_port)
{
	struct fetch_xfer *x = arg;
	struct sockaddr_storage ss;

	if (policy_sockaddr_parse(primary_ip, &ss) == 0 &&
	    fetch_target_allowed(x->cfg, (const struct sockaddr *)&ss)) {
		x->sent = true;
		fetch_tls_facts(x);
		return CURL_PREREQFUNC_OK;
	}
	x->blocked = x->blocked_late = 1;
	snprintf(x->blocked_ip, sizeof(x->blocked_ip), "%s",
	    primary_ip != NULL && primary_ip[0] != '\0' ? primary_ip
	                                                : "an unknown address");
	return CURL_PREREQFUNC_ABORT;
}

/*
 * A new TLS connection, after its TCP connect and before its handshake:
 * verify against the config's shared store, and note the moment.
 */
static CURLcode
fetch_ssl_ctx(CURL *h, void *ssl_ctx, void *arg)
{
	struct fetch_worker *w = arg;

	w->xfer.tls_ns = clock_now_ns();
	if (tls_ctx_setup(ssl_ctx, w->xfer.cfg->trust, w->capture) == -1)
		return CURLE_SSL_CERTPROBLEM;
	return CURLE_OK;
}

/* What a hop sends, and to whom. */
struct fetch_hop {
	CURLU *url; /* checked; the hop fetches it (CURLOPT_CURLU) */
	char *text; /* the URL as given (heap), for effective_url */
	enum fetch_method method;
	const char *body; /* NULL: none */
	size_t body_len;
	bool with_headers; /* the caller's headers go to this origin */
};

static void
fetch_method_setup(CURL *h, const struct fetch_hop *hop)
{
	bool custom = hop->method > FETCH_POST;

	curl_easy_setopt(
	    h, CURLOPT_NOBODY, hop->method == FETCH_HEAD ? 1L : 0L);
	if (hop->body != NULL) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, hop->body);
		curl_easy_setopt(
		    h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)hop->body_len);
	} else if (hop->method == FETCH_POST) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	} else if (hop->method != FETCH_HEAD)
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST,
	    custom ? fetch_method_name(hop->method) : NULL);
}

/*
 * The options of one hop; the rest were set by fetch_handle_new().
 * extra holds the header lines fanoutd adds before the caller's: with a
 * body, its Content-Type (or none: curl's default form type would lie)
 * and an empty Expect (no 100-continue round trip).
 */
static void
fetch_setup(struct fetch_worker *w, const struct fetch_hop *hop,
    const struct fetch_spec *spec, long ms, struct curl_slist extra[2],
    char *ctype, size_t ctype_len)
{
	const struct config *cfg = w->xfer.cfg;
	CURL *h = w->easy;
	long connect_ms =
	    cfg->connect_timeout_ms < ms ? cfg->connect_timeout_ms : ms;
	struct curl_slist *headers = hop->with_headers ? spec->headers : NULL;

	w->errbuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_CURLU, hop->url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(h, CURLOPT_USERAGENT, cfg->user_agent);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, spec->verify_tls ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, spec->verify_tls ? 2L : 0L);
	curl_easy_setopt(h, CURLOPT_IPRESOLVE, spec->ip_resolve);
	fetch_method_setup(h, hop);
	/* A bodiless POST is an empty one, not an empty form. */
	if (hop->body != NULL || hop->method == FETCH_POST) {
		snprintf(ctype, ctype_len, "Content-Type:%s%s",
		    spec->content_type != NULL ? " " : "",
		    spec->content_type != NULL ? spec->content_type : "");
		extra[0] = (struct curl_slist){ctype, &extra[1]};
		extra[1] = (struct curl_slist){"Expect:", headers};
		headers = &extra[0]; /* the caller's list is not changed */
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
}

/*
 * When the handshake began, in curl's frame (microseconds from the hop's
 * start); 0: none did.  fanoutd's clock and curl's share no origin: the
 * hop's setup runs between fanoutd's hop start and curl's, and under load
 * that gap outgrew a failed handshake.  So the moment is measured from
 * the first socket's opening, which curl reaches just after its name
 * lookup mark: the estimate is never later than the true moment.
 */
static int64_t
fetch_tls_start(const struct fetch_xfer *x, int64_t namelookup)
{
	if (x->tls_ns == 0 || x->sock_ns == 0 || x->tls_ns < x->sock_ns)
		return 0;
	return namelookup + (int64_t)((x->tls_ns - x->sock_ns) / 1000u);
}

static void
fetch_collect(struct fetch_worker *w, struct fetch_result *r)
{
	struct fetch_marks m = {0};
	curl_off_t v;
	char *ip = NULL;
	long version = 0;

	curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &r->status);
	if (curl_easy_getinfo(w->easy, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK &&
	    ip != NULL && ip[0] != '\0')
		snprintf(r->remote_ip, sizeof(r->remote_ip), "%s", ip);
	curl_easy_getinfo(w->easy, CURLINFO_HTTP_VERSION, &version);
	r->http_version = r->status == 0                     ? 0
	                  : version == CURL_HTTP_VERSION_1_0 ? 10
	                  : version == CURL_HTTP_VERSION_1_1 ? 11
	                  : version == CURL_HTTP_VERSION_2_0 ? 20
	                  : version == CURL_HTTP_VERSION_3   ? 30
	                                                     : 0;
#define MARK(info, field)                                                      \
	if (curl_easy_getinfo(w->easy, info, &v) == CURLE_OK)                  \
	m.field = v
	MARK(CURLINFO_NAMELOOKUP_TIME_T, namelookup);
	MARK(CURLINFO_CONNECT_TIME_T, connect);
	MARK(CURLINFO_APPCONNECT_TIME_T, appconnect);
	MARK(CURLINFO_PRETRANSFER_TIME_T, pretransfer);
	MARK(CURLINFO_STARTTRANSFER_TIME_T, starttransfer);
	MARK(CURLINFO_TOTAL_TIME_T, total);
#undef MARK
	m.tls_start = fetch_tls_start(&w->xfer, m.namelookup);
	m.reused = w->xfer.sent && !w->xfer.opened;
	fetch_timing_add(&r->time, &m);
}

static void
fetch_fail(struct fetch_worker *w, struct fetch_xfer *x, CURLcode code,
    struct fetch_result *r)
{
	char msg[CURL_ERROR_SIZE + 64];
	enum fetch_error e = fetch_error_from_curl(code);

	snprintf(msg, sizeof(msg), "%s",
	    w->errbuf[0] != '\0' ? w->errbuf : curl_easy_strerror(code));
	if (x->too_large) {
		e = FETCH_E_TOO_LARGE;
		snprintf(msg, sizeof(msg),
		    "response body exceeds limits.max_response_bytes (%lld)",
		    (long long)x->cfg->max_response_bytes);
	} else if (code == CURLE_UNSUPPORTED_PROTOCOL ||
	           code == CURLE_WEIRD_SERVER_REPLY) {
		/* Schemes were checked before: this is the reply itself. */
		snprintf(msg, sizeof(msg),
		    "the server's reply is not HTTP that can be read: %s",
		    w->errbuf[0] != '\0' ? w->errbuf
		                         : curl_easy_strerror(code));
	} else if (x->blocked && (code == CURLE_COULDNT_CONNECT ||
	                             code == CURLE_ABORTED_BY_CALLBACK)) {
		e = FETCH_E_BLOCKED;
		snprintf(msg, sizeof(msg),
		    "connection to %s refused by the target policy",
		    x->blocked_ip);
		r->remote_ip[0] = '\0'; /* nothing was sent there */
	}
	fetch_result_set_error(r, e, msg);
}

/*
 * Where the hop that just ended points, if it is to be followed: fills
 * next and returns 1; 0 to stop here (r may carry an error).  301, 302
 * and 303 become GET (HEAD stays HEAD) without the body; 307 and 308 keep
 * the method and the body, but only to the origin the client named.
 */
static int
fetch_next_hop(struct fetch_worker *w, const struct fetch_spec *spec,
    CURLU *origin, const struct fetch_hop *hop, struct fetch_result *r,
    struct fetch_hop *next)
{
	enum url_verdict verdict;
	const char *why;
	char *location = NULL;

	if (!spec->follow_redirects || r->status < 300 || r->status > 399 ||
	    curl_easy_getinfo(w->easy, CURLINFO_REDIRECT_URL, &location) !=
	        CURLE_OK ||
	    location == NULL)
		return 0;
	if (r->redirects >= w->xfer.cfg->max_redirects) {
		fetch_result_set_error(
		    r, FETCH_E_REDIRECT_LIMIT, "maximum redirects followed");
		return 0;
	}
	*next = *hop;
	if ((next->url = url_parse(location, &verdict, &why)) == NULL) {
		fetch_result_set_error(r,
		    verdict == URL_UNSUPPORTED ? FETCH_E_UNSUPPORTED_SCHEME
		                               : FETCH_E_INVALID_URL,
		    why);
		return 0;
	}
	next->with_headers =
	    hop->with_headers && url_same_origin(origin, next->url);
	if (r->status <= 303) {
		next->method =
		    hop->method == FETCH_HEAD ? FETCH_HEAD : FETCH_GET;
		next->body = NULL;
	} else if (hop->body != NULL && !url_same_origin(origin, next->url)) {
		curl_url_cleanup(next->url);
		return 0; /* a body never goes to another origin */
	}
	if ((next->text = strdup(location)) == NULL) {
		curl_url_cleanup(next->url);
		fetch_result_set_error(r, FETCH_E_OTHER, "out of memory");
		return 0;
	}
	return 1;
}

/* Fresh state for one hop; the result describes the last hop's TLS. */
static void
fetch_hop_begin(struct fetch_worker *w, const struct fetch_spec *spec,
    const struct config *cfg, const atomic_bool *cancel,
    struct expect_state *st, struct fetch_result *r)
{
	size_t i;

	w->xfer = (struct fetch_xfer){.cfg = cfg,
	    .cancel = cancel,
	    .w = w,
	    .r = r,
	    .spec = spec,
	    .expect = st,
	    .verify = spec->verify_tls};
	tls_capture_reset(w->capture);
	tls_facts_reset(&r->tls);
	/* only the last hop's body and headers count */
	if (st != NULL)
		expect_state_new_hop(st);
	r->body_len = 0;
	r->body_truncated = false;
	for (i = 0; i < r->nheaders; i++) {
		free(r->headers[i].value);
		r->headers[i].value = NULL;
	}
}

/*
 * A hop that failed after its handshake began, or in it: what the
 * verify callback saw (the leaf even when it was refused) and why.
 */
static void
fetch_tls_failed(struct fetch_worker *w, CURLcode code, struct fetch_result *r)
{
	if (r->tls.used || (w->xfer.tls_ns == 0 && r->error != FETCH_E_TLS))
		return;
	tls_facts_from_failure(&r->tls, w->capture, w->xfer.verify,
	    code == CURLE_PEER_FAILED_VERIFICATION, (int64_t)time(NULL));
}

/* Run one hop; 0 when it completed, -1 when it failed (r says why). */
static int
fetch_hop(struct fetch_worker *w, const struct fetch_hop *hop,
    const struct fetch_spec *spec, const atomic_bool *cancel,
    struct expect_state *st, uint64_t end, struct fetch_result *r)
{
	struct curl_slist extra[2];
	uint64_t now = clock_now_ns();
	char ctype[320];
	CURLcode code;

	if (atomic_load(cancel)) {
		fetch_result_set_error(r, FETCH_E_CANCELED, "request canceled");
		return -1;
	}
	if (now + 1000000u > end) {
		fetch_result_set_error(
		    r, FETCH_E_TIMEOUT, "timed out before the next hop");
		return -1;
	}
	fetch_hop_begin(w, spec, w->xfer.cfg, cancel, st, r);
	fetch_setup(w, hop, spec, (long)((end - now) / 1000000u), extra, ctype,
	    sizeof(ctype));
	code = curl_easy_perform(w->easy);
	curl_easy_setopt(w->easy, CURLOPT_CURLU, NULL);
	curl_easy_setopt(w->easy, CURLOPT_HTTPHEADER, NULL);
	r->bytes = w->xfer.bytes;
	fetch_collect(w, r);
	if (code == CURLE_OK)
		return 0;
	fetch_fail(w, &w->xfer, code, r);
	fetch_tls_failed(w, code, r);
	/* curl keeps the refused connection in its cache */
	if (w->xfer.blocked_late)
		fetch_worker_flush(w);
	return -1;
}

/* The hops of one attempt, from the client's URL to the last redirect. */
static void
fetch_attempt(struct fetch_worker *w, const struct fetch_spec *spec,
    CURLU *origin, const atomic_bool *cancel, struct expect_state *st,
    uint64_t end, struct fetch_result *r)
{
	struct fetch_hop hop = {.url = origin,
	                     .method = spec->method,
	                     .body = spec->body,
	                     .body_len = spec->body_len,
	                     .with_headers = true},
	                 next;

	if ((hop.text = strdup(spec->url)) == NULL) {
		fetch_result_set_error(r, FETCH_E_OTHER, "out of memory");
		return;
	}
	for (;;) {
		free(r->effective_url);
		r->effective_url = hop.text; /* the result owns it now */
		if (fetch_hop(w, &hop, spec, cancel, st, end, r) == -1 ||
		    fetch_next_hop(w, spec, origin, &hop, r, &next) == 0)
			break;
		if (hop.url != origin)
			curl_url_cleanup(hop.url);
		r->redirects++;
		hop = next;
	}
	if (hop.url != origin)
		curl_url_cleanup(hop.url);
}

/* A failure another attempt might not meet (RFC 9110 15.6, 15.5.29). */
static bool
fetch_retryable(const struct fetch_result *r)
{
	switch (r->error) {
	case FETCH_E_DNS:
	case FETCH_E_CONNECT:
	case FETCH_E_TIMEOUT:
		return true;
	case FETCH_OK:
		return r->status == 429 || r->status == 502 ||
		       r->status == 503 || r->status == 504;
	default:
		return false;
	}
}

/* The longest Retry-After honoured, in seconds: a day. */
#define FETCH_RETRY_AFTER_MAX 86400

/*
 * How long to wait before attempt n+1: retry_backoff_ms doubled each
 * time, the second half of it random (so that many fetches retrying
 * together spread out), and never less than the server's Retry-After.
 */
static uint64_t
fetch_backoff_ns(
    struct fetch_worker *w, const struct fetch_spec *spec, unsigned n)
{
	uint64_t base = (uint64_t)spec->retry_backoff_ms * CLOCK_NS_PER_MS
	                << (n > 20 ? 20 : n - 1);
	curl_off_t after = 0;

	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	base = base / 2 + (base > 1 ? w->rng % (base / 2 + 1) : 0);
	/* Seconds past a day are past any deadline (timeout_ms is at most
	 * an hour), and would overflow in nanoseconds into a short wait. */
	if (curl_easy_getinfo(w->easy, CURLINFO_RETRY_AFTER, &after) ==
	        CURLE_OK &&
	    after > 0) {
		after = after < FETCH_RETRY_AFTER_MAX ? after
		                                      : FETCH_RETRY_AFTER_MAX;
		if ((uint64_t)after * 1000000000u > base)
			base = (uint64_t)after * 1000000000u;
	}
	return base;
}

/* Sleep ns, a little at a time; false when canceled or past end. */
static bool
fetch_wait(const atomic_bool *cancel, uint64_t ns, uint64_t end)
{
	uint64_t until = clock_now_ns() + ns, now;
	struct timespec step;

	if (until + 1000000u > end)
		return false; /* no time left for the attempt after it */
	while ((now = clock_now_ns()) < until) {
		if (atomic_load(cancel))
			return false;
		step.tv_sec = 0;
		step.tv_nsec =
		    (long)(until - now < 50000000u ? until - now : 50000000u);
		nanosleep(&step, NULL);
	}
	return true;
}

/* Start an attempt afresh; queue time and retry waits stay. */
static void
fetch_result_next_attempt(struct fetch_result *r)
{
	struct fetch_timing keep = {
	    .queue = r->time.queue, .retry_wait = r->time.retry_wait};

	fetch_result_clear_attempt(r);
	free(r->message);
	r->message = NULL;
	r->error = FETCH_OK;
	r->status = 0;
	r->bytes = 0;
	r->redirects = 0;
	r->http_version = 0;
	r->remote_ip[0] = '\0';
	r->time = keep;
}

/* The expect verdict on a completed fetch: check_failed when it fails. */
static void
fetch_judge(const struct fetch_spec *spec, struct expect_state *st,
    struct fetch_result *r)
{
	struct expect_answer a = {.status = r->status,
	    .total_ms = r->time.total,
	    .has_cert = r->tls.used && r->tls.has_cert,
	    .cert_days_left = (double)r->tls.cert.days_left};
	char message[256];
	int n;

	if (spec->expect == NULL || r->error != FETCH_OK)
		return;
	r->checked = true;
	n = expect_verdict(
	    spec->expect, st, &a, &r->failed, message, sizeof(message));
	if (n < 0)
		fetch_result_set_error(r, FETCH_E_OTHER, "out of memory");
	else if (n > 0) {
		r->nfailed = (size_t)n;
		fetch_result_set_error(r, FETCH_E_CHECK_FAILED, message);
	}
}

/*
 * A fetch's own resolve list must neither go into the DNS cache the
 * workers share, nor use, nor leave behind, a connection to the address
 * the name has for everybody else: the handle is made afresh, unshared,
 * before, and made afresh again after.
 */
static void
fetch_isolate(struct fetch_worker *w, const struct fetch_spec *spec)
{
	fetch_worker_flush(w);
	curl_easy_setopt(w->easy, CURLOPT_SHARE, NULL);
	curl_easy_setopt(w->easy, CURLOPT_RESOLVE, spec->resolve);
}

/* The captured headers' slots, named by the spec; -1 out of memory. */
static int
fetch_result_prepare(const struct fetch_spec *spec, struct fetch_result *r)
{
	size_t i;

	if (spec->ncapture_headers == 0)
		return 0;
	r->headers = calloc(spec->ncapture_headers, sizeof(*r->headers));
	if (r->headers == NULL)
		return -1;
	r->nheaders = spec->ncapture_headers;
	for (i = 0; i < r->nheaders; i++)
		r->headers[i].name = spec->capture_headers[i];
	return 0;
}

static void
fetch_attempts(struct fetch_worker *w, const struct fetch_spec *spec,
    CURLU *origin, const atomic_bool *cancel, struct expect_state *st,
    uint64_t end, struct fetch_result *r)
{
	uint64_t wait, start;

	for (r->attempts = 1;; r->attempts++) {
		fetch_attempt(w, spec, origin, cancel, st, end, r);
		if ((int)r->attempts > spec->retries || !fetch_retryable(r))
			break;
		wait = fetch_backoff_ns(w, spec, r->attempts);
		start = clock_now_ns();
		if (!fetch_wait(cancel, wait, end))
			break;
		r->time.retry_wait += clock_ms_between(start, clock_now_ns());
		fetch_result_next_attempt(r);
	}
	fetch_judge(spec, st, r);
}

void
fetch_perform(struct fetch_worker *w, const struct fetch_spec *spec,
    const struct config *cfg, const atomic_bool *cancel, uint64_t deadline_ns,
    struct fetch_result *r)
{
	uint64_t end = clock_now_ns() + (uint64_t)spec->timeout_ms * 1000000u;
	struct expect_state *st = NULL;
	enum url_verdict verdict;
	const char *why;
	CURLU *origin;

	fetch_worker_epoch(w, cfg);
	w->xfer.cfg = cfg;
	/* Checked here, not while parsing: on every core, and without
	 * holding the loop thread for a 100,000-URL request. */
	if ((origin = url_parse(spec->url, &verdict, &why)) == NULL) {
		fetch_result_set_error(r,
		    verdict == URL_UNSUPPORTED ? FETCH_E_UNSUPPORTED_SCHEME
		                               : FETCH_E_INVALID_URL,
		    why);
		return;
	}
	if (deadline_ns != 0 && deadline_ns < end)
		end = deadline_ns;
	if (fetch_result_prepare(spec, r) == -1 ||
	    (spec->expect != NULL &&
	        (st = expect_state_new(
	             spec->expect, (size_t)cfg->max_response_bytes)) == NULL))
		fetch_result_set_error(r, FETCH_E_OTHER, "out of memory");
	else {
		if (spec->resolve != NULL)
			fetch_isolate(w, spec);
		fetch_attempts(w, spec, origin, cancel, st, end, r);
		if (spec->resolve != NULL)
			fetch_worker_flush(w);
	}
	expect_state_free(st);
	curl_url_cleanup(origin);
}
