/*
 * expect: what a fetch's answer must look like (a request's "expect"),
 * and the verdict on one answer.  Pure: no I/O, no logging, no jansson.
 *
 * request.c builds an expect_spec from the client's JSON; every item that
 * uses it holds a reference, so one spec (and its compiled regular
 * expressions) serves a whole request.  On the worker, fetch.c feeds the
 * last hop's headers and body into an expect_state as they arrive, then asks
 * for the verdict.  A spec is immutable once built and may be read by
 * many workers at once; a state belongs to one fetch.
 */
#ifndef FANOUTD_EXPECT_H
#define FANOUTD_EXPECT_H

#include <stdbool.h>
#include <stddef.h>

/* The checks, in the order they are judged and named in the API. */
enum expect_kind {
	EXPECT_STATUS,
	EXPECT_BODY_CONTAINS,
	EXPECT_BODY_NOT_CONTAINS,
	EXPECT_BODY_REGEX,
	EXPECT_BODY_NOT_REGEX,
	EXPECT_HEADERS,
	EXPECT_MAX_MS,
	EXPECT_CERT_DAYS_LEFT,
	EXPECT_KIND_COUNT
};

/* One entry of expect.status as the client wrote it, and what it means. */
struct expect_status_entry {
	int lo, hi;     /* the statuses it admits */
	bool is_number; /* 200, not "200" or "2xx" */
	char text[16];  /* "2xx", "200-299", or the digits */
};

/* One failed check; entry says which string or header of the spec. */
struct expect_failure {
	enum expect_kind kind;
	size_t entry;
	bool has_actual;
	double actual_num; /* status, total ms, days left */
	char *actual_str;  /* a header's value (heap), or NULL */
};

struct expect_spec;
struct expect_state;

/* Regular expressions: match and depth limits per match (PCRE2). */
#define EXPECT_MATCH_LIMIT 1000000
#define EXPECT_DEPTH_LIMIT 10000

const char *expect_name(enum expect_kind kind);

struct expect_spec *expect_spec_new(void);
struct expect_spec *expect_spec_ref(struct expect_spec *spec);
/* Accepts NULL; the last reference frees. */
void expect_spec_unref(struct expect_spec *spec);

/*
 * Building (request.c, before any worker sees the spec).  Each returns
 * 0, or -1 with the reason in err.
 */
int expect_add_status_code(
    struct expect_spec *spec, long code, char *err, size_t errlen);
/* "2xx" or "200-299" (or digits). */
int expect_add_status_text(
    struct expect_spec *spec, const char *text, char *err, size_t errlen);
/* kind: EXPECT_BODY_CONTAINS or EXPECT_BODY_NOT_CONTAINS. */
int expect_add_text(struct expect_spec *spec, enum expect_kind kind,
    const char *text, size_t len, char *err, size_t errlen);
/* kind: EXPECT_BODY_REGEX or EXPECT_BODY_NOT_REGEX; compiled now. */
int expect_add_regex(struct expect_spec *spec, enum expect_kind kind,
    const char *pattern, size_t len, char *err, size_t errlen);
/* The header must be present and its (last) value match pattern. */
int expect_add_header(struct expect_spec *spec, const char *name,
    const char *pattern, size_t len, char *err, size_t errlen);
void expect_set_max_ms(struct expect_spec *spec, double ms);
void expect_set_cert_days_left(struct expect_spec *spec, double days);

/* Reading, for render.c: what each failure's "expected" shows. */
const struct expect_status_entry *expect_status_entries(
    const struct expect_spec *spec, size_t *n);
const char *expect_text(const struct expect_spec *spec, enum expect_kind kind,
    size_t entry, size_t *len);
void expect_header(const struct expect_spec *spec, size_t entry,
    const char **name, const char **pattern);
double expect_limit(const struct expect_spec *spec, enum expect_kind kind);

/* True when the verdict needs the body, or response headers. */
bool expect_wants_body(const struct expect_spec *spec);
bool expect_wants_headers(const struct expect_spec *spec);
/* The name of the i-th header the checks read (NULL past the last). */
const char *expect_header_name(const struct expect_spec *spec, size_t i);

/* What one fetch has seen; body_max bounds what is kept for regexes. */
struct expect_state *expect_state_new(
    const struct expect_spec *spec, size_t body_max);
void expect_state_free(struct expect_state *state);
/* A new hop: only the last hop's headers and body are judged. */
void expect_state_new_hop(struct expect_state *state);
/* Body bytes as they arrive; -1 when memory runs out. */
int expect_feed_body(struct expect_state *state, const char *data, size_t len);
/* A header line of the response ("Name: value\r\n"). */
int expect_feed_header(
    struct expect_state *state, const char *line, size_t len);

/* What the verdict needs to know of the answer besides its bytes. */
struct expect_answer {
	long status;
	double total_ms;
	bool has_cert;
	double cert_days_left;
};

/*
 * Judge the answer.  Returns the number of failed checks (0: passed) and
 * sets *failures (heap, free with expect_failures_free) and message: the
 * first failure in words, as "status 301 not in [2xx]".  -1 when memory
 * runs out.
 */
int expect_verdict(const struct expect_spec *spec, struct expect_state *state,
    const struct expect_answer *answer, struct expect_failure **failures,
    char *message, size_t msglen);
void expect_failures_free(struct expect_failure *failures, size_t n);

#endif
