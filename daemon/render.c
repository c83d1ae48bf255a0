/*
 * render: results, summaries and error bodies as JSON.
 *
 * Results and summaries are written as text, field by field in the API's
 * key order, into a render_out buffer that is emitted when full, so a
 * 1000-item answer never exists as one tree and a small one goes out in
 * one piece.  Building jansson objects only to dump them again was most
 * of the loop thread's cost per request.  The text is exactly what
 * jansson would write (compact, reals with 10 significant digits): plain
 * strings, integers and millisecond times are written directly, anything
 * else (escapes, ids, odd numbers) through jansson itself.  Text that
 * comes from outside (curl's messages, servers' URLs, jansson's error
 * snippets of a client's body) may be invalid UTF-8, which jansson
 * refuses; such bytes are replaced rather than losing the field or the
 * whole answer.  Times are rounded to microseconds, so that 3.612 prints
 * as 3.612, not 3.6120000000000001.
 *
 * Pure: no I/O, no logging.  Functions returning json_t * return NULL
 * only when memory runs out.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

#define RENDER_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(10))

/* A JSON string, or null for NULL; invalid UTF-8 bytes become '?'. */
static json_t *
render_string(const char *s)
{
	json_t *value;
	char *copy;
	size_t i;

	if (s == NULL)
		return json_null();
	if ((value = json_string(s)) != NULL)
		return value;
	if ((copy = strdup(s)) == NULL)
		return NULL;
	for (i = 0; copy[i] != '\0'; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	value = json_string(copy);
	free(copy);
	return value;
}

/* Milliseconds to 3 decimals; jansson cannot encode NaN or infinity. */
static json_t *
render_ms(double ms)
{
	if (!isfinite(ms))
		ms = 0;
	return json_real(round(ms * 1000) / 1000);
}

/* Decimal digits of v at p; returns the end. */
static char *
render_uint(char *p, unsigned long long v)
{
	char digits[24];
	int n = 0;

	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		*p++ = digits[--n];
	return p;
}

/* Milliseconds rounded to microseconds, shortest form: 3.61, 2.0. */
static char *
render_ms_text(char *p, double ms)
{
	/* NaN, negative and absurd values (over 30 years) print as 0. */
	unsigned long long us = isfinite(ms) && ms > 0 && ms < 1e12
	                            ? (unsigned long long)llround(ms * 1000)
	                            : 0;
	unsigned frac = (unsigned)(us % 1000);

	p = render_uint(p, us / 1000);
	*p++ = '.';
	*p++ = (char)('0' + frac / 100);
	if (frac % 100 != 0) {
		*p++ = (char)('0' + frac / 10 % 10);
		if (frac % 10 != 0)
			*p++ = (char)('0' + frac % 10);
	}
	return p;
}

/*
 * ,"time_ms":{...}} as text, which also closes the result object.
 * Formatting reals through jansson (printf's %g) was the largest cost of
 * writing an answer; these are fixed-point microseconds.  buf must hold
 * RENDER_TIME_MAX bytes.
 */
#define RENDER_TIME_MAX 256

static size_t
render_time_text(const struct fetch_timing *t, char *buf)
{
	const double v[] = {t->queue, t->dns, t->connect, t->tls, t->ttfb,
	    t->transfer, t->total};
	static const char *const names[] = {
	    ",\"time_ms\":{\"queue\":", ",\"dns\":", ",\"connect\":",
	    ",\"tls\":", ",\"ttfb\":", ",\"transfer\":", ",\"total\":"};
	char *p = buf;
	size_t i, n;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		n = strlen(names[i]);
		memcpy(p, names[i], n);
		p = render_ms_text(p + n, v[i]);
	}
	*p++ = '}';
	*p++ = '}';
	return (size_t)(p - buf);
}

/* {"code": .., "message": ..}; message is "" when there is none. */
static json_t *
render_error_object(const char *code, const char *message)
{
	json_t *o = json_object();
	int rc = 0;

	if (o == NULL)
		return NULL;
	rc |= json_object_set_new(o, "code", render_string(code));
	rc |= json_object_set_new(
	    o, "message", render_string(message != NULL ? message : ""));
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

void
render_out_init(struct render_out *out, json_dump_callback_t emit, void *data)
{
	out->emit = emit;
	out->data = data;
	out->len = 0;
	out->rc = 0;
}

int
render_out_flush(struct render_out *out)
{
	if (out->len > 0 && out->rc == 0 &&
	    out->emit(out->buf, out->len, out->data) != 0)
		out->rc = -1;
	out->len = 0;
	return out->rc;
}

void
render_out_add(struct render_out *out, const char *text, size_t len)
{
	if (len > sizeof(out->buf) - out->len)
		render_out_flush(out);
	if (len > sizeof(out->buf)) {
		/* Too big to gather: straight through, in order. */
		if (out->rc == 0 && out->emit(text, len, out->data) != 0)
			out->rc = -1;
		return;
	}
	memcpy(out->buf + out->len, text, len);
	out->len += len;
}

/* Room for n bytes (n <= RENDER_OUT_SIZE) at the end of the buffer. */
static char *
render_out_space(struct render_out *out, size_t n)
{
	if (n > sizeof(out->buf) - out->len)
		render_out_flush(out);
	return out->buf + out->len;
}

/* Gathered text up to end, which render_out_space() gave room for. */
static void
render_out_commit(struct render_out *out, const char *end)
{
	out->len = (size_t)(end - out->buf);
}

static void
render_out_text(struct render_out *out, const char *text)
{
	render_out_add(out, text, strlen(text));
}

static int
render_out_emit(const char *text, size_t len, void *data)
{
	render_out_add(data, text, len);
	return 0;
}

/* Any JSON value, as jansson writes it; takes the reference. */
static void
render_out_json(struct render_out *out, json_t *value)
{
	if (value == NULL || json_dump_callback(value, render_out_emit, out,
	                         RENDER_DUMP_FLAGS | JSON_ENCODE_ANY) != 0)
		out->rc = -1;
	json_decref(value);
}

/*
 * A JSON string, or null for NULL.  Printable ASCII other than '"' and
 * '\\' needs no escaping, which is what URLs and addresses are made of;
 * anything else goes through jansson, so escapes and the replacement of
 * invalid UTF-8 stay exactly jansson's.
 */
static void
render_out_string(struct render_out *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char *dst;

	if (s == NULL) {
		RENDER_OUT_LITERAL(out, "null");
		return;
	}
	for (; *p != '\0'; p++)
		if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
			break;
	if (*p != '\0') {
		render_out_json(out, render_string(s));
		return;
	}
	dst = render_out_space(out, 1);
	*dst = '"';
	render_out_commit(out, dst + 1);
	render_out_add(out, s, (size_t)(p - (const unsigned char *)s));
	dst = render_out_space(out, 1);
	*dst = '"';
	render_out_commit(out, dst + 1);
}

/* A decimal integer, as jansson writes one. */
static void
render_out_int(struct render_out *out, long long v)
{
	char *p = render_out_space(out, 24);

	if (v < 0) {
		*p++ = '-';
		p = render_uint(p, 0ULL - (unsigned long long)v);
	} else
		p = render_uint(p, (unsigned long long)v);
	render_out_commit(out, p);
}

static void
render_out_error(struct render_out *out, const struct fetch_result *r)
{
	if (r->error == FETCH_OK) {
		RENDER_OUT_LITERAL(out, "null");
		return;
	}
	RENDER_OUT_LITERAL(out, "{\"code\":");
	render_out_string(out, fetch_error_code(r->error));
	RENDER_OUT_LITERAL(out, ",\"message\":");
	render_out_string(out, r->message != NULL ? r->message : "");
	RENDER_OUT_LITERAL(out, "}");
}

void
render_result_out(struct render_out *out, size_t index,
    const struct fetch_spec *spec, const struct fetch_result *r)
{
	char *p;

	RENDER_OUT_LITERAL(out, "{\"index\":");
	render_out_int(out, (long long)index);
	RENDER_OUT_LITERAL(out, ",\"url\":");
	render_out_string(out, spec->url);
	if (spec->id != NULL) {
		RENDER_OUT_LITERAL(out, ",\"id\":");
		render_out_json(out, json_incref(spec->id));
	}
	RENDER_OUT_LITERAL(out, ",\"status\":");
	if (r->status != 0)
		render_out_int(out, r->status);
	else
		RENDER_OUT_LITERAL(out, "null");
	render_out_text(out, fetch_result_ok(r) ? ",\"ok\":true,\"error\":"
	                                        : ",\"ok\":false,\"error\":");
	render_out_error(out, r);
	RENDER_OUT_LITERAL(out, ",\"bytes\":");
	render_out_int(out, r->bytes);
	RENDER_OUT_LITERAL(out, ",\"redirects\":");
	render_out_int(out, r->redirects);
	RENDER_OUT_LITERAL(out, ",\"effective_url\":");
	render_out_string(out, r->effective_url);
	RENDER_OUT_LITERAL(out, ",\"remote_ip\":");
	render_out_string(out, r->remote_ip[0] != '\0' ? r->remote_ip : NULL);
	/* ,"time_ms":{...}} closes the object too. */
	p = render_out_space(out, RENDER_TIME_MAX);
	render_out_commit(out, p + render_time_text(&r->time, p));
}

int
render_result(size_t index, const struct fetch_spec *spec,
    const struct fetch_result *r, json_dump_callback_t emit, void *data)
{
	struct render_out out;

	render_out_init(&out, emit, data);
	render_result_out(&out, index, spec, r);
	return render_out_flush(&out);
}

int
summary_reserve(struct summary *s, size_t n)
{
	size_t i;

	if (n <= SUMMARY_STATUS_INLINE || s->status_table != NULL)
		return 0;
	s->status_table = calloc(SUMMARY_STATUS_MAX, sizeof(size_t));
	if (s->status_table == NULL)
		return -1;
	for (i = 0; i < s->nstatuses; i++)
		s->status_table[s->statuses[i].status] = s->statuses[i].count;
	s->nstatuses = 0;
	return 0;
}

/* Count status in the sorted inline list, or in the table once full. */
static void
summary_add_status(struct summary *s, int status)
{
	size_t i;

	if (s->status_table != NULL) {
		s->status_table[status]++;
		return;
	}
	for (i = 0; i < s->nstatuses && s->statuses[i].status < status; i++)
		;
	if (i < s->nstatuses && s->statuses[i].status == status) {
		s->statuses[i].count++;
		return;
	}
	if (s->nstatuses == SUMMARY_STATUS_INLINE) {
		if (summary_reserve(s, SUMMARY_STATUS_INLINE + 1) == 0)
			s->status_table[status]++;
		return;
	}
	memmove(&s->statuses[i + 1], &s->statuses[i],
	    (s->nstatuses - i) * sizeof(s->statuses[0]));
	s->statuses[i].status = status;
	s->statuses[i].count = 1;
	s->nstatuses++;
}

void
summary_add(struct summary *s, const struct fetch_result *r)
{
	s->total++;
	if (fetch_result_ok(r))
		s->ok++;
	else
		s->failed++;
	if (r->status > 0 && r->status < SUMMARY_STATUS_MAX)
		summary_add_status(s, (int)r->status);
	/* render names an unknown error "other", so count it as that */
	if ((unsigned)r->error >= FETCH_E_COUNT)
		s->error_counts[FETCH_E_OTHER]++;
	else if (r->error != FETCH_OK)
		s->error_counts[r->error]++;
}

void
summary_reset(struct summary *s)
{
	free(s->status_table);
	memset(s, 0, sizeof(*s));
}

/* One "status":count member; first says whether a comma goes before. */
static void
render_out_status(
    struct render_out *out, bool first, size_t status, size_t count)
{
	char *p = render_out_space(out, 64);

	if (!first)
		*p++ = ',';
	*p++ = '"';
	p = render_uint(p, status);
	*p++ = '"';
	*p++ = ':';
	render_out_commit(out, render_uint(p, count));
}

/* {"200": n, ...}: non-zero counts only, in ascending status order. */
static void
render_status_counts(struct render_out *out, const struct summary *s)
{
	bool first = true;
	size_t i;

	RENDER_OUT_LITERAL(out, "{");
	if (s->status_table != NULL) {
		for (i = 0; i < SUMMARY_STATUS_MAX; i++) {
			if (s->status_table[i] == 0)
				continue;
			render_out_status(out, first, i, s->status_table[i]);
			first = false;
		}
	}
	for (i = 0; s->status_table == NULL && i < s->nstatuses; i++)
		render_out_status(out, i == 0, (size_t)s->statuses[i].status,
		    s->statuses[i].count);
	RENDER_OUT_LITERAL(out, "}");
}

/* {"timeout": n, ...}: non-zero counts only, in the enum's order. */
static void
render_error_counts(struct render_out *out, const struct summary *s)
{
	bool first = true;
	int e;

	RENDER_OUT_LITERAL(out, "{");
	for (e = FETCH_OK + 1; e < FETCH_E_COUNT; e++) {
		if (s->error_counts[e] == 0)
			continue;
		if (!first)
			RENDER_OUT_LITERAL(out, ",");
		first = false;
		render_out_string(out, fetch_error_code(e));
		RENDER_OUT_LITERAL(out, ":");
		render_out_int(out, (long long)s->error_counts[e]);
	}
	RENDER_OUT_LITERAL(out, "}");
}

/*
 * Milliseconds as jansson writes render_ms(ms) with 10 significant
 * digits.  Below 1e6 those are every digit of the rounded value, which
 * render_ms_text() writes as well; anything else goes through jansson.
 */
static void
render_out_ms(struct render_out *out, double ms)
{
	char *p;

	if (!(!signbit(ms) && ms < 1e6)) {
		render_out_json(out, render_ms(ms));
		return;
	}
	p = render_out_space(out, 32);
	render_out_commit(out, render_ms_text(p, ms));
}

void
render_summary_out(struct render_out *out, const struct summary *s)
{
	RENDER_OUT_LITERAL(out, "{\"total\":");
	render_out_int(out, (long long)s->total);
	RENDER_OUT_LITERAL(out, ",\"ok\":");
	render_out_int(out, (long long)s->ok);
	RENDER_OUT_LITERAL(out, ",\"failed\":");
	render_out_int(out, (long long)s->failed);
	RENDER_OUT_LITERAL(out, ",\"status_counts\":");
	render_status_counts(out, s);
	RENDER_OUT_LITERAL(out, ",\"error_counts\":");
	render_error_counts(out, s);
	RENDER_OUT_LITERAL(out, ",\"elapsed_ms\":");
	render_out_ms(out, s->elapsed_ms);
	RENDER_OUT_LITERAL(out, "}");
}

int
render_summary(const struct summary *s, json_dump_callback_t emit, void *data)
{
	struct render_out out;

	render_out_init(&out, emit, data);
	render_summary_out(&out, s);
	return render_out_flush(&out);
}

int
render_dump(json_t *value, json_dump_callback_t emit, void *data)
{
	struct render_out out;

	render_out_init(&out, emit, data);
	render_out_json(&out, json_incref(value));
	return render_out_flush(&out);
}

char *
render_error(const char *code, const char *message)
{
	json_t *o = json_object();
	char *text = NULL;

	if (o == NULL)
		return NULL;
	if (json_object_set_new(
	        o, "error", render_error_object(code, message)) == 0)
		text = json_dumps(o, RENDER_DUMP_FLAGS);
	json_decref(o);
	return text;
}
