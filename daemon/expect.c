/*
 * expect: expectations and verdicts.
 *
 * Substrings are looked for as the body arrives: each chunk is searched,
 * and so is the seam with the chunk before (the last longest-needle
 * minus one bytes are kept), so nothing but that tail is held for them.
 * Regular expressions need the whole body: it is kept, up to the body
 * limit the fetch enforces anyway, only when the spec has one.  PCRE2
 * patterns are compiled once per spec with PCRE2_UTF and
 * PCRE2_MATCH_INVALID_UTF (bodies are bytes, maybe not UTF-8), and every
 * match runs under a match and a depth limit, so no pattern can hold a
 * worker for long; a match that hits a limit fails its check.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <ctype.h>
#include <math.h>
#include <pcre2.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "expect.h"

/* The longest text, pattern or header name a spec keeps (bytes). */
#define EXPECT_TEXT_MAX    4096
#define EXPECT_ENTRIES_MAX 64

struct expect_needle {
	char *text;
	size_t len;
};

struct expect_pattern {
	char *text;
	size_t len;
	pcre2_code *code;
};

struct expect_header_rule {
	char *name;
	struct expect_pattern pattern;
};

struct expect_spec {
	atomic_int refs;
	struct expect_status_entry *status; /* NULL: 200-399 */
	size_t nstatus;
	struct expect_needle *needles[2]; /* contains, not_contains */
	size_t nneedles[2];
	size_t longest_needle;
	struct expect_pattern regex[2]; /* body_regex, body_not_regex */
	struct expect_header_rule *headers;
	size_t nheaders;
	bool has_limit[EXPECT_KIND_COUNT];
	double limit[EXPECT_KIND_COUNT]; /* max_ms, cert_days_left */
	pcre2_match_context *mctx;
};

struct expect_state {
	const struct expect_spec *spec;
	bool *found[2]; /* per needle */
	char *tail;     /* the seam with the previous chunk */
	size_t tail_len;
	char *body; /* the whole body, when a regex needs it */
	size_t body_len, body_cap, body_max;
	char **values; /* per header rule: its last value, or NULL */
};

static const char *const expect_names[EXPECT_KIND_COUNT] = {
    [EXPECT_STATUS] = "status",
    [EXPECT_BODY_CONTAINS] = "body_contains",
    [EXPECT_BODY_NOT_CONTAINS] = "body_not_contains",
    [EXPECT_BODY_REGEX] = "body_regex",
    [EXPECT_BODY_NOT_REGEX] = "body_not_regex",
    [EXPECT_HEADERS] = "headers",
    [EXPECT_MAX_MS] = "max_ms",
    [EXPECT_CERT_DAYS_LEFT] = "cert_days_left",
};

const char *
expect_name(enum expect_kind kind)
{
	return (unsigned)kind < EXPECT_KIND_COUNT ? expect_names[kind] : "?";
}

struct expect_spec *
expect_spec_new(void)
{
	struct expect_spec *spec = calloc(1, sizeof(*spec));

	if (spec == NULL)
		return NULL;
	atomic_init(&spec->refs, 1);
	if ((spec->mctx = pcre2_match_context_create(NULL)) == NULL) {
		free(spec);
		return NULL;
	}
	pcre2_set_match_limit(spec->mctx, EXPECT_MATCH_LIMIT);
	pcre2_set_depth_limit(spec->mctx, EXPECT_DEPTH_LIMIT);
	return spec;
}

struct expect_spec *
expect_spec_ref(struct expect_spec *spec)
{
	atomic_fetch_add_explicit(&spec->refs, 1, memory_order_relaxed);
	return spec;
}

static void
expect_pattern_reset(struct expect_pattern *p)
{
	free(p->text);
	pcre2_code_free(p->code);
	memset(p, 0, sizeof(*p));
}

void
expect_spec_unref(struct expect_spec *spec)
{
	size_t i, k;

	if (spec == NULL || atomic_fetch_sub_explicit(
	                        &spec->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(spec->status);
	for (k = 0; k < 2; k++) {
		for (i = 0; i < spec->nneedles[k]; i++)
			free(spec->needles[k][i].text);
		free(spec->needles[k]);
		expect_pattern_reset(&spec->regex[k]);
	}
	for (i = 0; i < spec->nheaders; i++) {
		free(spec->headers[i].name);
		expect_pattern_reset(&spec->headers[i].pattern);
	}
	free(spec->headers);
	pcre2_match_context_free(spec->mctx);
	free(spec);
}

/* Grow an array of n elements of size sz by one; NULL out of memory. */
static void *
expect_grow(void *array, size_t n, size_t sz)
{
	if (n >= EXPECT_ENTRIES_MAX)
		return NULL;
	return reallocarray(array, n + 1, sz);
}

static int
expect_add_range(struct expect_spec *spec, int lo, int hi, bool number,
    const char *text, char *err, size_t errlen)
{
	struct expect_status_entry *e;

	if ((e = expect_grow(spec->status, spec->nstatus, sizeof(*e))) ==
	    NULL) {
		snprintf(err, errlen, "too many status entries (at most %d)",
		    EXPECT_ENTRIES_MAX);
		return -1;
	}
	spec->status = e;
	e += spec->nstatus++;
	e->lo = lo;
	e->hi = hi;
	e->is_number = number;
	snprintf(e->text, sizeof(e->text), "%s", text);
	return 0;
}

int
expect_add_status_code(
    struct expect_spec *spec, long code, char *err, size_t errlen)
{
	char text[16];

	if (code < 100 || code > 999) {
		snprintf(err, errlen, "status %ld is not 100 to 999", code);
		return -1;
	}
	snprintf(text, sizeof(text), "%ld", code);
	return expect_add_range(
	    spec, (int)code, (int)code, true, text, err, errlen);
}

/* Three digits at s, the first 1-9; -1 when not. */
static int
expect_three_digits(const char *s)
{
	if (s[0] < '1' || s[0] > '9' || !isdigit((unsigned char)s[1]) ||
	    !isdigit((unsigned char)s[2]))
		return -1;
	return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

int
expect_add_status_text(
    struct expect_spec *spec, const char *text, char *err, size_t errlen)
{
	size_t len = strlen(text);
	int lo = -1, hi = -1;

	if (len == 3 && text[0] >= '1' && text[0] <= '9' &&
	    strcasecmp(text + 1, "xx") == 0) {
		lo = (text[0] - '0') * 100;
		hi = lo + 99;
	} else if (len == 3)
		lo = hi = expect_three_digits(text);
	else if (len == 7 && text[3] == '-') {
		lo = expect_three_digits(text);
		hi = expect_three_digits(text + 4);
	}
	if (lo < 0 || hi < lo) {
		snprintf(err, errlen,
		    "status entry \"%.20s\" is not a code, a class like "
		    "\"2xx\" "
		    "or a range like \"200-299\"",
		    text);
		return -1;
	}
	return expect_add_range(spec, lo, hi, false, text, err, errlen);
}

int
expect_add_text(struct expect_spec *spec, enum expect_kind kind,
    const char *text, size_t len, char *err, size_t errlen)
{
	int k = kind == EXPECT_BODY_NOT_CONTAINS;
	struct expect_needle *n;

	if (len == 0 || len > EXPECT_TEXT_MAX) {
		snprintf(err, errlen, "%s: a text must be 1 to %d bytes",
		    expect_name(kind), EXPECT_TEXT_MAX);
		return -1;
	}
	n = expect_grow(spec->needles[k], spec->nneedles[k], sizeof(*n));
	if (n == NULL) {
		snprintf(err, errlen, "%s: too many texts (at most %d)",
		    expect_name(kind), EXPECT_ENTRIES_MAX);
		return -1;
	}
	spec->needles[k] = n;
	n += spec->nneedles[k];
	if ((n->text = malloc(len + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(n->text, text, len);
	n->text[len] = '\0';
	n->len = len;
	spec->nneedles[k]++;
	if (len > spec->longest_needle)
		spec->longest_needle = len;
	return 0;
}

/* Compile pattern into p; -1 with PCRE2's reason and offset in err. */
static int
expect_compile(struct expect_pattern *p, const char *what, const char *pattern,
    size_t len, char *err, size_t errlen)
{
	PCRE2_UCHAR msg[128];
	PCRE2_SIZE offset;
	int code;

	if (len > EXPECT_TEXT_MAX) {
		snprintf(err, errlen, "%s: a pattern must be at most %d bytes",
		    what, EXPECT_TEXT_MAX);
		return -1;
	}
	p->code = pcre2_compile((PCRE2_SPTR)pattern, len,
	    PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &offset, NULL);
	if (p->code == NULL) {
		pcre2_get_error_message(code, msg, sizeof(msg));
		snprintf(err, errlen,
		    "%s: bad regular expression at offset %zu: %s", what,
		    (size_t)offset, (const char *)msg);
		return -1;
	}
	if ((p->text = malloc(len + 1)) == NULL) {
		pcre2_code_free(p->code);
		p->code = NULL;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(p->text, pattern, len);
	p->text[len] = '\0';
	p->len = len;
	return 0;
}

int
expect_add_regex(struct expect_spec *spec, enum expect_kind kind,
    const char *pattern, size_t len, char *err, size_t errlen)
{
	struct expect_pattern *p = &spec->regex[kind == EXPECT_BODY_NOT_REGEX];

	expect_pattern_reset(p);
	return expect_compile(p, expect_name(kind), pattern, len, err, errlen);
}

int
expect_add_header(struct expect_spec *spec, const char *name,
    const char *pattern, size_t len, char *err, size_t errlen)
{
	struct expect_header_rule *h;

	h = expect_grow(spec->headers, spec->nheaders, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errlen, "headers: too many (at most %d)",
		    EXPECT_ENTRIES_MAX);
		return -1;
	}
	spec->headers = h;
	h += spec->nheaders;
	memset(h, 0, sizeof(*h));
	if (expect_compile(&h->pattern, "headers", pattern, len, err, errlen) ==
	    -1)
		return -1;
	if ((h->name = strdup(name)) == NULL) {
		expect_pattern_reset(&h->pattern);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	spec->nheaders++;
	return 0;
}

void
expect_set_max_ms(struct expect_spec *spec, double ms)
{
	spec->has_limit[EXPECT_MAX_MS] = true;
	spec->limit[EXPECT_MAX_MS] = ms;
}

void
expect_set_cert_days_left(struct expect_spec *spec, double days)
{
	spec->has_limit[EXPECT_CERT_DAYS_LEFT] = true;
	spec->limit[EXPECT_CERT_DAYS_LEFT] = days;
}

const struct expect_status_entry *
expect_status_entries(const struct expect_spec *spec, size_t *n)
{
	*n = spec->nstatus;
	return spec->status;
}

const char *
expect_text(const struct expect_spec *spec, enum expect_kind kind, size_t entry,
    size_t *len)
{
	const struct expect_pattern *p;

	if (kind == EXPECT_BODY_CONTAINS || kind == EXPECT_BODY_NOT_CONTAINS) {
		const struct expect_needle *n =
		    &spec->needles[kind == EXPECT_BODY_NOT_CONTAINS][entry];

		*len = n->len;
		return n->text;
	}
	p = &spec->regex[kind == EXPECT_BODY_NOT_REGEX];
	*len = p->len;
	return p->text;
}

void
expect_header(const struct expect_spec *spec, size_t entry, const char **name,
    const char **pattern)
{
	*name = spec->headers[entry].name;
	*pattern = spec->headers[entry].pattern.text;
}

double
expect_limit(const struct expect_spec *spec, enum expect_kind kind)
{
	return spec->limit[kind];
}

bool
expect_wants_body(const struct expect_spec *spec)
{
	return spec->nneedles[0] + spec->nneedles[1] > 0 ||
	       spec->regex[0].code != NULL || spec->regex[1].code != NULL;
}

bool
expect_wants_headers(const struct expect_spec *spec)
{
	return spec->nheaders > 0;
}

const char *
expect_header_name(const struct expect_spec *spec, size_t i)
{
	return i < spec->nheaders ? spec->headers[i].name : NULL;
}

struct expect_state *
expect_state_new(const struct expect_spec *spec, size_t body_max)
{
	struct expect_state *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->spec = spec;
	st->body_max = body_max;
	if ((spec->nneedles[0] > 0 &&
	        (st->found[0] = calloc(spec->nneedles[0], 1)) == NULL) ||
	    (spec->nneedles[1] > 0 &&
	        (st->found[1] = calloc(spec->nneedles[1], 1)) == NULL) ||
	    (spec->longest_needle > 1 &&
	        (st->tail = malloc(spec->longest_needle)) == NULL) ||
	    (spec->nheaders > 0 && (st->values = calloc(spec->nheaders,
	                                sizeof(char *))) == NULL)) {
		expect_state_free(st);
		return NULL;
	}
	return st;
}

void
expect_state_free(struct expect_state *st)
{
	size_t i;

	if (st == NULL)
		return;
	free(st->found[0]);
	free(st->found[1]);
	free(st->tail);
	free(st->body);
	for (i = 0; st->values != NULL && i < st->spec->nheaders; i++)
		free(st->values[i]);
	free(st->values);
	free(st);
}

void
expect_state_new_hop(struct expect_state *st)
{
	const struct expect_spec *spec = st->spec;
	size_t i;

	for (i = 0; i < 2; i++)
		if (st->found[i] != NULL)
			memset(st->found[i], 0, spec->nneedles[i]);
	st->tail_len = 0;
	st->body_len = 0;
	for (i = 0; st->values != NULL && i < spec->nheaders; i++) {
		free(st->values[i]);
		st->values[i] = NULL;
	}
}

/* Mark every needle of set k found in the data, seam included. */
static void
expect_search(struct expect_state *st, int k, const char *data, size_t len)
{
	const struct expect_spec *spec = st->spec;
	char seam[2 * EXPECT_TEXT_MAX];
	size_t i, head, seam_len;

	head = len < spec->longest_needle ? len : spec->longest_needle - 1;
	memcpy(seam, st->tail, st->tail_len);
	memcpy(seam + st->tail_len, data, head);
	seam_len = st->tail_len + head;
	for (i = 0; i < spec->nneedles[k]; i++) {
		const struct expect_needle *n = &spec->needles[k][i];

		if (st->found[k][i])
			continue;
		st->found[k][i] =
		    memmem(data, len, n->text, n->len) != NULL ||
		    memmem(seam, seam_len, n->text, n->len) != NULL;
	}
}

/* Keep the last longest-needle minus one bytes seen. */
static void
expect_keep_tail(struct expect_state *st, const char *data, size_t len)
{
	size_t keep = st->spec->longest_needle - 1;

	if (len >= keep) {
		memcpy(st->tail, data + len - keep, keep);
		st->tail_len = keep;
		return;
	}
	if (st->tail_len + len > keep) {
		memmove(
		    st->tail, st->tail + st->tail_len + len - keep, keep - len);
		st->tail_len = keep - len;
	}
	memcpy(st->tail + st->tail_len, data, len);
	st->tail_len += len;
}

static int
expect_keep_body(struct expect_state *st, const char *data, size_t len)
{
	size_t want = st->body_len + len, cap;
	char *grown;

	if (want > st->body_max)
		len = st->body_max - st->body_len, want = st->body_max;
	if (want > st->body_cap) {
		cap = st->body_cap == 0 ? 16384 : st->body_cap;
		while (cap < want)
			cap *= 2;
		if (cap > st->body_max)
			cap = st->body_max;
		if ((grown = realloc(st->body, cap)) == NULL)
			return -1;
		st->body = grown;
		st->body_cap = cap;
	}
	memcpy(st->body + st->body_len, data, len);
	st->body_len += len;
	return 0;
}

int
expect_feed_body(struct expect_state *st, const char *data, size_t len)
{
	const struct expect_spec *spec = st->spec;

	if (len == 0)
		return 0;
	if (spec->nneedles[0] > 0)
		expect_search(st, 0, data, len);
	if (spec->nneedles[1] > 0)
		expect_search(st, 1, data, len);
	if (spec->longest_needle > 1)
		expect_keep_tail(st, data, len);
	if (spec->regex[0].code != NULL || spec->regex[1].code != NULL)
		return expect_keep_body(st, data, len);
	return 0;
}

int
expect_feed_header(struct expect_state *st, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len), *v;
	size_t nlen, vlen, i;
	char *copy;

	if (colon == NULL || st->values == NULL)
		return 0;
	nlen = (size_t)(colon - line);
	v = colon + 1;
	vlen = len - nlen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	while (vlen > 0 && strchr(" \t\r\n", v[vlen - 1]) != NULL)
		vlen--;
	for (i = 0; i < st->spec->nheaders; i++) {
		const char *name = st->spec->headers[i].name;

		if (strlen(name) != nlen || strncasecmp(name, line, nlen) != 0)
			continue;
		if ((copy = strndup(v, vlen)) == NULL)
			return -1;
		free(st->values[i]); /* the last value counts */
		st->values[i] = copy;
	}
	return 0;
}

/* 1: matches, 0: does not, -1: the match hit a limit or failed. */
static int
expect_match(const struct expect_spec *spec, const struct expect_pattern *p,
    const char *subject, size_t len)
{
	pcre2_match_data *md =
	    pcre2_match_data_create_from_pattern(p->code, NULL);
	int rc;

	if (md == NULL)
		return -1;
	rc = pcre2_match(p->code, (PCRE2_SPTR)(subject != NULL ? subject : ""),
	    len, 0, 0, md, spec->mctx);
	pcre2_match_data_free(md);
	return rc >= 0 ? 1 : rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

static bool
expect_status_ok(const struct expect_spec *spec, long status)
{
	size_t i;

	if (spec->nstatus == 0)
		return status >= 200 && status < 400;
	for (i = 0; i < spec->nstatus; i++)
		if (status >= spec->status[i].lo &&
		    status <= spec->status[i].hi)
			return true;
	return false;
}

/* Collects failures in order; the first also makes the message. */
struct expect_verdict {
	struct expect_failure *list;
	size_t n;
	int rc;
	char *message;
	size_t msglen;
};

static struct expect_failure *
expect_fail(struct expect_verdict *v, enum expect_kind kind, size_t entry)
{
	struct expect_failure *f;

	if (v->rc < 0 ||
	    (f = reallocarray(v->list, v->n + 1, sizeof(*f))) == NULL) {
		v->rc = -1;
		return NULL;
	}
	v->list = f;
	f += v->n++;
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->entry = entry;
	return f;
}

/* The entries of expect.status as the message shows them: "2xx, 301". */
static void
expect_status_words(const struct expect_spec *spec, char *buf, size_t len)
{
	size_t i, used = 0;

	snprintf(buf, len, "%s", spec->nstatus == 0 ? "200-399" : "");
	for (i = 0; i < spec->nstatus && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
		    i > 0 ? ", " : "", spec->status[i].text);
}

static void
expect_judge_status(const struct expect_spec *spec,
    const struct expect_answer *a, struct expect_verdict *v)
{
	struct expect_failure *f;
	char words[256];

	if (expect_status_ok(spec, a->status))
		return;
	if ((f = expect_fail(v, EXPECT_STATUS, 0)) == NULL)
		return;
	f->has_actual = true;
	f->actual_num = (double)a->status;
	if (v->n == 1) {
		expect_status_words(spec, words, sizeof(words));
		snprintf(v->message, v->msglen, "status %ld not in [%s]",
		    a->status, words);
	}
}

static void
expect_judge_needles(const struct expect_spec *spec,
    const struct expect_state *st, struct expect_verdict *v)
{
	size_t k, i;

	for (k = 0; k < 2; k++)
		for (i = 0; i < spec->nneedles[k]; i++) {
			bool bad = k == 0 ? !st->found[k][i] : st->found[k][i];

			if (!bad || expect_fail(v,
			                k == 0 ? EXPECT_BODY_CONTAINS
			                       : EXPECT_BODY_NOT_CONTAINS,
			                i) == NULL)
				continue;
			if (v->n == 1)
				snprintf(v->message, v->msglen,
				    "body %s \"%.60s\"",
				    k == 0 ? "does not contain" : "contains",
				    spec->needles[k][i].text);
		}
}

static void
expect_judge_regexes(const struct expect_spec *spec,
    const struct expect_state *st, struct expect_verdict *v)
{
	size_t k;
	int m;

	for (k = 0; k < 2; k++) {
		if (spec->regex[k].code == NULL)
			continue;
		m = expect_match(spec, &spec->regex[k], st->body, st->body_len);
		if ((k == 0 ? m == 1 : m == 0) ||
		    expect_fail(v,
		        k == 0 ? EXPECT_BODY_REGEX : EXPECT_BODY_NOT_REGEX,
		        0) == NULL)
			continue;
		if (v->n == 1)
			snprintf(v->message, v->msglen, "body %s /%.60s/%s",
			    m < 0    ? "could not be matched against"
			    : k == 0 ? "does not match"
			             : "matches",
			    spec->regex[k].text, m < 0 ? " (match limit)" : "");
	}
}

static void
expect_judge_headers(const struct expect_spec *spec,
    const struct expect_state *st, struct expect_verdict *v)
{
	struct expect_failure *f;
	const char *value;
	size_t i;

	for (i = 0; i < spec->nheaders; i++) {
		value = st->values != NULL ? st->values[i] : NULL;
		if (value != NULL &&
		    expect_match(spec, &spec->headers[i].pattern, value,
		        strlen(value)) == 1)
			continue;
		if ((f = expect_fail(v, EXPECT_HEADERS, i)) == NULL)
			continue;
		if (value != NULL && (f->actual_str = strdup(value)) == NULL)
			v->rc = -1;
		f->has_actual = true; /* null when missing */
		if (v->n > 1)
			continue;
		if (value == NULL)
			snprintf(v->message, v->msglen,
			    "header %.60s is missing", spec->headers[i].name);
		else
			snprintf(v->message, v->msglen,
			    "header %.60s: \"%.60s\" does not match /%.60s/",
			    spec->headers[i].name, value,
			    spec->headers[i].pattern.text);
	}
}

static void
expect_judge_limits(const struct expect_spec *spec,
    const struct expect_answer *a, struct expect_verdict *v)
{
	struct expect_failure *f;

	if (spec->has_limit[EXPECT_MAX_MS] &&
	    a->total_ms > spec->limit[EXPECT_MAX_MS] &&
	    (f = expect_fail(v, EXPECT_MAX_MS, 0)) != NULL) {
		f->has_actual = true;
		f->actual_num = a->total_ms;
		if (v->n == 1)
			snprintf(v->message, v->msglen,
			    "total %.1f ms is above max_ms %g", a->total_ms,
			    spec->limit[EXPECT_MAX_MS]);
	}
	/* Only a certificate can fail this: plain http has none to check. */
	if (spec->has_limit[EXPECT_CERT_DAYS_LEFT] && a->has_cert &&
	    a->cert_days_left < spec->limit[EXPECT_CERT_DAYS_LEFT] &&
	    (f = expect_fail(v, EXPECT_CERT_DAYS_LEFT, 0)) != NULL) {
		f->has_actual = true;
		f->actual_num = a->cert_days_left;
		if (v->n == 1)
			snprintf(v->message, v->msglen,
			    "certificate valid for %.0f more days, fewer than "
			    "%g",
			    floor(a->cert_days_left),
			    spec->limit[EXPECT_CERT_DAYS_LEFT]);
	}
}

int
expect_verdict(const struct expect_spec *spec, struct expect_state *st,
    const struct expect_answer *answer, struct expect_failure **failures,
    char *message, size_t msglen)
{
	struct expect_verdict v = {.message = message, .msglen = msglen};

	if (msglen > 0)
		message[0] = '\0';
	expect_judge_status(spec, answer, &v);
	if (st != NULL) {
		expect_judge_needles(spec, st, &v);
		expect_judge_regexes(spec, st, &v);
		expect_judge_headers(spec, st, &v);
	}
	expect_judge_limits(spec, answer, &v);
	if (v.rc < 0) {
		expect_failures_free(v.list, v.n);
		*failures = NULL;
		return -1;
	}
	*failures = v.list;
	return (int)v.n;
}

void
expect_failures_free(struct expect_failure *failures, size_t n)
{
	size_t i;

	for (i = 0; failures != NULL && i < n; i++)
		free(failures[i].actual_str);
	free(failures);
}
