/*
 * check: what a fetch's answer must look like (a request's "expect"),
 * and the verdict on one answer.  Pure: no I/O, no logging, no jansson.
 *
 * request.c builds a check_spec from the client's JSON; every item that
 * uses it holds a reference, so one spec (and its compiled regular
 * expressions) serves a whole request.  On the worker, fetch.c feeds the
 * last hop's headers and body into a check_state as they arrive, then asks
 * for the verdict.  A spec is immutable once built and may be read by
 * many workers at once; a state belongs to one fetch.
 */
#ifndef FANOUTD_CHECK_H
#define FANOUTD_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* The checks, in the order they are judged and named in the API. */
enum check_kind {
	CHECK_STATUS,
	CHECK_BODY_CONTAINS,
	CHECK_BODY_NOT_CONTAINS,
	CHECK_BODY_REGEX,
	CHECK_BODY_NOT_REGEX,
	CHECK_HEADERS,
	CHECK_MAX_MS,
	CHECK_CERT_DAYS_LEFT,
	CHECK_KIND_COUNT
};

/* One entry of expect.status as the client wrote it, and what it means. */
struct check_status_entry {
	int lo, hi;     /* the statuses it admits */
	bool is_number; /* 200, not "200" or "2xx" */
	char text[16];  /* "2xx", "200-299", or the digits */
};

/* One failed check; entry says which string or header of the spec. */
struct check_failure {
	enum check_kind kind;
	size_t entry;
	bool has_actual;
	double actual_num; /* status, total ms, days left */
	char *actual_str;  /* a header's value (heap), or NULL */
};

struct check_spec;
struct check_state;

/* Regular expressions: match and depth limits per match (PCRE2). */
#define CHECK_MATCH_LIMIT 1000000
#define CHECK_DEPTH_LIMIT 10000

const char *check_name(enum check_kind kind);

struct check_spec *check_spec_new(void);
struct check_spec *check_spec_ref(struct check_spec *spec);
/* Accepts NULL; the last reference frees. */
void check_spec_unref(struct check_spec *spec);

/*
 * Building (request.c, before any worker sees the spec).  Each returns
 * 0, or -1 with the reason in err.
 */
int check_add_status_code(struct check_spec *spec, long code, char *err,
    size_t errlen);
/* "2xx" or "200-299" (or digits). */
int check_add_status_text(
    struct check_spec *spec, const char *text, char *err, size_t errlen);
/* kind: CHECK_BODY_CONTAINS or CHECK_BODY_NOT_CONTAINS. */
int check_add_text(struct check_spec *spec, enum check_kind kind,
    const char *text, size_t len, char *err, size_t errlen);
/* kind: CHECK_BODY_REGEX or CHECK_BODY_NOT_REGEX; compiled now. */
int check_add_regex(struct check_spec *spec, enum check_kind kind,
    const char *pattern, size_t len, char *err, size_t errlen);
/* The header must be present and its (last) value match pattern. */
int check_add_header(struct check_spec *spec, const char *name,
    const char *pattern, size_t len, char *err, size_t errlen);
void check_set_max_ms(struct check_spec *spec, double ms);
void check_set_cert_days_left(struct check_spec *spec, double days);

/* Reading, for render.c: what each failure's "expected" shows. */
const struct check_status_entry *check_status_entries(
    const struct check_spec *spec, size_t *n);
const char *check_text(const struct check_spec *spec, enum check_kind kind,
    size_t entry, size_t *len);
void check_header(const struct check_spec *spec, size_t entry,
    const char **name, const char **pattern);
double check_limit(const struct check_spec *spec, enum check_kind kind);

/* True when the verdict needs the body, or response headers. */
bool check_wants_body(const struct check_spec *spec);
bool check_wants_headers(const struct check_spec *spec);
/* The name of the i-th header the checks read (NULL past the last). */
const char *check_header_name(const struct check_spec *spec, size_t i);

/* What one fetch has seen; body_max bounds what is kept for regexes. */
struct check_state *check_state_new(
    const struct check_spec *spec, size_t body_max);
void check_state_free(struct check_state *state);
/* A new hop: only the last hop's headers and body are judged. */
void check_state_new_hop(struct check_state *state);
/* Body bytes as they arrive; -1 when memory runs out. */
int check_feed_body(struct check_state *state, const char *data, size_t len);
/* A header line of the response ("Name: value\r\n"). */
int check_feed_header(
    struct check_state *state, const char *line, size_t len);

/* What the verdict needs to know of the answer besides its bytes. */
struct check_answer {
	long status;
	double total_ms;
	bool has_cert;
	double cert_days_left;
};

/*
 * Judge the answer.  Returns the number of failed checks (0: passed) and
 * sets *failures (heap, free with check_failures_free) and message: the
 * first failure in words, as "status 301 not in [2xx]".  -1 when memory
 * runs out.
 */
int check_verdict(const struct check_spec *spec, struct check_state *state,
    const struct check_answer *answer, struct check_failure **failures,
    char *message, size_t msglen);
void check_failures_free(struct check_failure *failures, size_t n);

#endif
