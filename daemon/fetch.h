/*
 * fetch: one blocking HTTP transfer on a worker's own curl easy handle.
 * A worker keeps its handle for life, so its connections and DNS entries
 * are reused from one fetch to the next; the handle is reset (options
 * only) before each fetch.  Redirects are followed here, hop by hop, so
 * that every hop is checked against the target policy, custom headers
 * are dropped when the host changes and timings add up over all hops.
 *
 * Runs on worker threads only; touches nothing of libevent.
 */
#ifndef FANOUTD_FETCH_H
#define FANOUTD_FETCH_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include "expect.h"
#include "tls.h"

struct config;

/* Per-fetch outcome; mapped 1:1 to the API's error codes. */
enum fetch_error {
	FETCH_OK = 0,
	FETCH_E_INVALID_URL,
	FETCH_E_UNSUPPORTED_SCHEME,
	FETCH_E_BLOCKED,
	FETCH_E_DNS,
	FETCH_E_CONNECT,
	FETCH_E_TLS,
	FETCH_E_TIMEOUT,
	FETCH_E_TOO_LARGE,
	FETCH_E_REDIRECT_LIMIT,
	FETCH_E_CANCELED,
	FETCH_E_CHECK_FAILED, /* completed, but an expectation failed */
	FETCH_E_OTHER,
	FETCH_E_COUNT
};

enum fetch_method {
	FETCH_GET,
	FETCH_HEAD,
	FETCH_POST,
	FETCH_PUT,
	FETCH_PATCH,
	FETCH_DELETE,
	FETCH_OPTIONS,
	FETCH_METHOD_COUNT
};

/*
 * What one fetch is asked to do; built by request.c, immutable once the
 * fan-out starts, read by the worker.  The item owns url and headers; the
 * rest is shared by the items of a request and owned by it (fields.c).
 * The URL is checked on the worker (url.c), on every hop.
 */
struct fetch_spec {
	const char *url;            /* as the client gave it */
	struct curl_slist *headers; /* "Name: value" lines, or NULL */
	const char *body;           /* request body, or NULL */
	size_t body_len;
	const char *content_type; /* of the body, or NULL */
	int timeout_ms;
	enum fetch_method method;
	bool follow_redirects;
	bool verify_tls; /* check certificates and host names */
	int retries;     /* more attempts after a retryable failure */
	int retry_backoff_ms;
	size_t capture;                     /* body bytes to return */
	const char *const *capture_headers; /* header names to return */
	size_t ncapture_headers;
	struct curl_slist *resolve;       /* "host:port:address", or NULL */
	long ip_resolve;                  /* CURL_IPRESOLVE_* */
	const struct expect_spec *expect; /* NULL: 200-399 is ok */
};

/* "GET", "POST", ... */
const char *fetch_method_name(enum fetch_method method);
/* May a failed attempt be sent again (RFC 9110 9.2.2)? */
bool fetch_method_idempotent(enum fetch_method method);

/* Phase durations in milliseconds (see README, "Timings"). */
struct fetch_timing {
	double queue, dns, connect, tls, ttfb, transfer, total;
	double retry_wait; /* between attempts */
};

/* A response header the spec asked to return (the last value). */
struct fetch_header {
	const char *name; /* the spec's spelling */
	char *value;      /* heap; NULL when absent */
};

/*
 * curl's cumulative marks for one hop, in microseconds, and what
 * fanoutd saw itself: when the TLS handshake began (in curl's frame, from
 * the hop's start; 0 when none did; curl has no mark for a handshake that
 * failed), and
 * whether the hop ran on a connection opened before it.
 */
struct fetch_marks {
	int64_t namelookup, connect, appconnect, pretransfer, starttransfer,
	    total;
	int64_t tls_start;
	bool reused;
};

struct fetch_result {
	enum fetch_error error;
	char *message;       /* heap, NULL when error == FETCH_OK */
	long status;         /* 0 when no response */
	int64_t bytes;       /* body bytes received on the last hop */
	long redirects;      /* hops followed */
	char *effective_url; /* heap, NULL when never requested */
	char remote_ip[INET6_ADDRSTRLEN];
	struct fetch_timing time;
	int http_version;     /* of the last response: 10, 11, 20, 30; 0 none */
	struct tls_facts tls; /* of the last hop's connection */
	unsigned attempts;    /* 1, or more after retries */
	char *body;           /* heap: up to spec->capture bytes, or NULL */
	size_t body_len;
	bool body_truncated;          /* the body was longer */
	struct fetch_header *headers; /* heap, nheaders of them */
	size_t nheaders;
	bool checked;                  /* an expect was judged */
	struct expect_failure *failed; /* heap, nfailed of them */
	size_t nfailed;
};

/* "invalid_url", "timeout", ...; NULL for FETCH_OK. */
const char *fetch_error_code(enum fetch_error error);
/*
 * Completed, and passed: its expect (which then set error on failure),
 * or, without one, 200 <= status < 400.
 */
bool fetch_result_ok(const struct fetch_result *result);
/* Free the result's strings and zero it. */
void fetch_result_reset(struct fetch_result *result);
void fetch_result_set_error(
    struct fetch_result *result, enum fetch_error error, const char *message);
/* Turn one hop's cumulative marks into phases, added to timing. */
void fetch_timing_add(
    struct fetch_timing *timing, const struct fetch_marks *marks);
/* The per-fetch outcome for a CURLcode (blocked is decided by the caller). */
enum fetch_error fetch_error_from_curl(CURLcode code);
/*
 * A cheap hash of the spec's scheme://host:port (and whether it
 * verifies), read lexically, without curl_url(): the pool's affinity
 * key, so that a fetch goes to the worker whose connection it can reuse.
 * 0 when the URL has no such parts (a hint only; never wrong to ignore).
 */
uint64_t fetch_affinity(const struct fetch_spec *spec);
/*
 * The key of the spec's host:port for fetch.max_per_host, or 0; the
 * same lexical reading as fetch_affinity, without the verify flag.
 */
uint64_t fetch_host_key(const struct fetch_spec *spec);
/* fetch_affinity from a host key already read (one lexical scan). */
uint64_t fetch_affinity_of(uint64_t host_key, bool verify_tls);

/*
 * The most workers nofile descriptors can carry.  A blocking libcurl
 * 7.88 transfer holds its socket and the wakeup socketpair of the easy
 * handle's own multi handle; a worker also keeps its last connection,
 * holds it while it opens the next, and a name lookup opens a socketpair
 * of its own: 5 at most.  An eighth of the limit (at least 256) stays
 * for clients, listeners and the loop.
 */
#define FETCH_FDS_PER_WORKER 5
int fetch_workers_for_fds(long nofile);

/* Process-wide set-up: call once before any thread starts. */
int fetch_global_init(char *err, size_t errlen);
void fetch_global_cleanup(void);

/*
 * A worker keeps at most one connection (CURLOPT_MAXCONNECTS 1): the one
 * of its last fetch, which the pool's affinity key names.
 */
struct fetch_worker;
struct fetch_worker *fetch_worker_new(void);
void fetch_worker_free(struct fetch_worker *worker);
/* Drop cached connections (after a policy change). */
void fetch_worker_flush(struct fetch_worker *worker);
/*
 * The conn_epoch for cfg, which replaces old on a reload: old's, or the
 * next one when connections made under old must not be reused under cfg
 * (the target policy or the trust changed).
 */
unsigned fetch_conn_epoch(const struct config *old, const struct config *cfg);

/*
 * Check spec->url (url.c), then fetch it under cfg's limits, with its
 * retries, filling result; a URL that fails the check is the result's
 * error (invalid_url, unsupported_scheme).  Stops early,
 * as FETCH_E_CANCELED, once *cancel becomes true.  deadline_ns, when not
 * zero, is a monotonic instant no hop may run past.
 */
void fetch_perform(struct fetch_worker *worker, const struct fetch_spec *spec,
    const struct config *cfg, const atomic_bool *cancel, uint64_t deadline_ns,
    struct fetch_result *result);

#endif
