/*
 * render: results, summaries and error bodies as JSON.
 *
 * Each result is its own small object, built and dumped by the caller
 * one at a time, so a 1000-item answer never exists as one tree.  Key
 * order is the API's (jansson keeps insertion order).  Text that comes
 * from outside (curl's messages, servers' URLs, jansson's error snippets
 * of a client's body) may be invalid UTF-8, which jansson refuses; such
 * bytes are replaced rather than losing the field or the whole answer.
 * Times are rounded to microseconds and dumped with 10 significant digits
 * so that 3.612 prints as 3.612, not 3.6120000000000001.
 *
 * Pure: no I/O, no logging.  Functions returning json_t * return NULL
 * only when memory runs out.
 */
#include <math.h>
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

static json_t *
render_count(size_t n)
{
	return json_integer((json_int_t)n);
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
 * ,"time_ms":{...}} as text, to splice over a dumped object's closing
 * brace.  Formatting reals through jansson (printf's %g) was the largest
 * cost of writing an answer; these are fixed-point microseconds.  buf
 * must hold RENDER_TIME_MAX bytes.
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

static json_t *
render_result_error(const struct fetch_result *r)
{
	if (r->error == FETCH_OK)
		return json_null();
	return render_error_object(fetch_error_code(r->error), r->message);
}

static json_t *
render_result_base(
    size_t index, const struct fetch_spec *spec, const struct fetch_result *r)
{
	json_t *o = json_object();
	int rc = 0;

	if (o == NULL)
		return NULL;
	rc |= json_object_set_new(o, "index", render_count(index));
	rc |= json_object_set_new(o, "url", render_string(spec->url));
	if (spec->id != NULL)
		rc |= json_object_set(o, "id", spec->id);
	rc |= json_object_set_new(o, "status",
	    r->status != 0 ? json_integer(r->status) : json_null());
	rc |= json_object_set_new(o, "ok", json_boolean(fetch_result_ok(r)));
	rc |= json_object_set_new(o, "error", render_result_error(r));
	rc |= json_object_set_new(o, "bytes", json_integer(r->bytes));
	rc |= json_object_set_new(o, "redirects", json_integer(r->redirects));
	rc |= json_object_set_new(
	    o, "effective_url", render_string(r->effective_url));
	rc |= json_object_set_new(o, "remote_ip",
	    r->remote_ip[0] != '\0' ? render_string(r->remote_ip)
	                            : json_null());
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/*
 * Dump o into one buffer and emit it in one piece: jansson's callback
 * interface emits every token separately, which costs more than the
 * dump itself.  A non-empty tail replaces the object's closing brace.
 */
static int
render_emit(json_t *o, const char *tail, size_t tlen, json_dump_callback_t emit,
    void *data)
{
	char stack[4096], *buf = stack;
	size_t need;
	int rc = -1;

	need = json_dumpb(o, buf, sizeof(stack), RENDER_DUMP_FLAGS);
	if (need == 0)
		return -1;
	if (need + tlen > sizeof(stack)) {
		if ((buf = malloc(need + tlen)) == NULL)
			return -1;
		need = json_dumpb(o, buf, need, RENDER_DUMP_FLAGS);
	}
	if (tlen > 0 && (need < 2 || buf[need - 1] != '}'))
		goto out;
	if (tlen > 0) {
		memcpy(buf + need - 1, tail, tlen);
		need += tlen - 1;
	}
	rc = emit(buf, need, data);
out:
	if (buf != stack)
		free(buf);
	return rc;
}

int
render_result(size_t index, const struct fetch_spec *spec,
    const struct fetch_result *r, json_dump_callback_t emit, void *data)
{
	char times[RENDER_TIME_MAX];
	json_t *o = render_result_base(index, spec, r);
	int rc;

	if (o == NULL)
		return -1;
	/* The object's closing brace becomes ,"time_ms":{...}} */
	rc = render_emit(
	    o, times, render_time_text(&r->time, times), emit, data);
	json_decref(o);
	return rc;
}

void
summary_add(struct summary *s, const struct fetch_result *r)
{
	size_t n = sizeof(s->status_counts) / sizeof(s->status_counts[0]);

	s->total++;
	if (fetch_result_ok(r))
		s->ok++;
	else
		s->failed++;
	if (r->status > 0 && (size_t)r->status < n)
		s->status_counts[r->status]++;
	/* render names an unknown error "other", so count it as that */
	if ((unsigned)r->error >= FETCH_E_COUNT)
		s->error_counts[FETCH_E_OTHER]++;
	else if (r->error != FETCH_OK)
		s->error_counts[r->error]++;
}

/* {"200": n, ...}: non-zero counts only, in ascending status order. */
static json_t *
render_status_counts(const struct summary *s)
{
	size_t n = sizeof(s->status_counts) / sizeof(s->status_counts[0]), i;
	json_t *o = json_object();
	char key[24];

	for (i = 0; o != NULL && i < n; i++) {
		if (s->status_counts[i] == 0)
			continue;
		snprintf(key, sizeof(key), "%zu", i);
		if (json_object_set_new(
		        o, key, render_count(s->status_counts[i])) != 0) {
			json_decref(o);
			o = NULL;
		}
	}
	return o;
}

/* {"timeout": n, ...}: non-zero counts only, in the enum's order. */
static json_t *
render_error_counts(const struct summary *s)
{
	json_t *o = json_object();
	int e;

	for (e = FETCH_OK + 1; o != NULL && e < FETCH_E_COUNT; e++) {
		if (s->error_counts[e] == 0)
			continue;
		if (json_object_set_new(o, fetch_error_code(e),
		        render_count(s->error_counts[e])) != 0) {
			json_decref(o);
			o = NULL;
		}
	}
	return o;
}

json_t *
render_summary(const struct summary *s)
{
	json_t *o = json_object();
	int rc = 0;

	if (o == NULL)
		return NULL;
	rc |= json_object_set_new(o, "total", render_count(s->total));
	rc |= json_object_set_new(o, "ok", render_count(s->ok));
	rc |= json_object_set_new(o, "failed", render_count(s->failed));
	rc |= json_object_set_new(o, "status_counts", render_status_counts(s));
	rc |= json_object_set_new(o, "error_counts", render_error_counts(s));
	rc |= json_object_set_new(o, "elapsed_ms", render_ms(s->elapsed_ms));
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int
render_dump(json_t *value, json_dump_callback_t emit, void *data)
{
	if (value == NULL)
		return -1;
	return render_emit(value, NULL, 0, emit, data);
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
