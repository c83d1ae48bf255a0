/*
 * render: results, summaries and error bodies as JSON.
 *
 * Results and summaries are written as text, field by field in the API's
 * key order, into a render_out buffer that is emitted when full, so a
 * 1000-item answer never exists as one tree and a small one goes out in
 * one piece.  Building jansson objects only to dump them again was most
 * of the loop thread's cost per request.  The text is what jansson would
 * write compactly: plain strings, integers, ids and millisecond times are
 * written directly, and every string that needs escaping goes through
 * jansson itself.  Two deliberate differences: a real in an id keeps
 * every digit it needs to read back as the same double (jansson rounds
 * to one fixed precision), and times are fixed-point microseconds, so
 * that 3.612 prints as 3.612, not 3.6120000000000001.  Text that comes
 * from outside (curl's messages, servers' URLs, jansson's error snippets
 * of a client's body) may be invalid UTF-8, which jansson refuses: each
 * invalid sequence becomes U+FFFD rather than losing the field or the
 * whole answer.  tests/fuzz/fuzz_render.c checks all of it against
 * jansson's parser.
 *
 * Pure: no I/O, no logging.  Functions returning json_t * return NULL
 * only when memory runs out.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "render.h"

#define RENDER_DUMP_FLAGS JSON_COMPACT

/*
 * Unicode's table 3-7: no overlongs, no surrogates, nothing above
 * U+10FFFF.  The NUL that ends s is never a continuation byte.
 */
size_t
render_utf8_len(const unsigned char *s, size_t *bad)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else {
		*bad = 1;
		return 0;
	}
	if (s[0] == 0xe0)
		lo = 0xa0; /* overlong below U+0800 */
	else if (s[0] == 0xed)
		hi = 0x9f; /* surrogates */
	else if (s[0] == 0xf0)
		lo = 0x90; /* overlong below U+10000 */
	else if (s[0] == 0xf4)
		hi = 0x8f; /* above U+10FFFF */
	for (i = 1; i < n; i++, lo = 0x80, hi = 0xbf) {
		if (s[i] < lo || s[i] > hi) {
			*bad = i;
			return 0;
		}
	}
	return n;
}

/*
 * A JSON string, or null for NULL.  Each maximal subpart of an invalid
 * UTF-8 sequence becomes one U+FFFD, as Unicode recommends; valid
 * multi-byte text is kept as it is.
 */
static json_t *
render_string(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	json_t *value;
	size_t n, bad, len = 0;
	char *copy;

	if (s == NULL)
		return json_null();
	if ((value = json_string(s)) != NULL)
		return value;
	/* at most 3 bytes of U+FFFD for every byte replaced */
	if ((copy = malloc(strlen(s) * 3 + 1)) == NULL)
		return NULL;
	while (*p != '\0') {
		if ((n = render_utf8_len(p, &bad)) > 0) {
			memcpy(copy + len, p, n);
			len += n;
			p += n;
		} else {
			memcpy(copy + len, "\xef\xbf\xbd", 3);
			len += 3;
			p += bad;
		}
	}
	value = json_stringn(copy, len);
	free(copy);
	return value;
}

/* Decimal digits of v at p; returns the end. */
char *
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
 * ,"time_ms":{...} as text.  Formatting reals through jansson (printf's
 * %g) was the largest cost of writing an answer; these are fixed-point
 * microseconds.  buf must hold RENDER_TIME_MAX bytes.
 */
#define RENDER_TIME_MAX 256

static size_t
render_time_text(const struct fetch_timing *t, char *buf)
{
	const double v[] = {t->queue, t->dns, t->connect, t->tls, t->ttfb,
	    t->transfer, t->total, t->retry_wait};
	static const char *const names[] = {",\"time_ms\":{\"queue\":",
	    ",\"dns\":", ",\"connect\":", ",\"tls\":", ",\"ttfb\":",
	    ",\"transfer\":", ",\"total\":", ",\"retry_wait\":"};
	char *p = buf;
	size_t i, n;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		n = strlen(names[i]);
		memcpy(p, names[i], n);
		p = render_ms_text(p + n, v[i]);
	}
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
 * Whether len bytes of s need no escaping: printable ASCII other than
 * '"' and '\\', which is what URLs and addresses are made of.
 */
static bool
render_plain(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] >= 0x7f || p[i] == '"' || p[i] == '\\')
			return false;
	return true;
}

/* "s" for len bytes that render_plain() allows. */
static void
render_out_quoted(struct render_out *out, const char *s, size_t len)
{
	char *dst = render_out_space(out, 1);

	*dst = '"';
	render_out_commit(out, dst + 1);
	render_out_add(out, s, len);
	dst = render_out_space(out, 1);
	*dst = '"';
	render_out_commit(out, dst + 1);
}

/*
 * A JSON string, or null for NULL.  Anything but plain text goes through
 * render_string() (invalid UTF-8 replaced) and jansson, so escapes stay
 * exactly jansson's.
 */
static void
render_out_string(struct render_out *out, const char *s)
{
	size_t len;

	if (s == NULL) {
		RENDER_OUT_LITERAL(out, "null");
		return;
	}
	len = strlen(s);
	if (render_plain(s, len))
		render_out_quoted(out, s, len);
	else
		render_out_json(out, render_string(s));
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

/*
 * A real as the shortest of %.15g, %.16g and %.17g that reads back as
 * the same double, so that an id comes back exactly as it was read
 * (jansson's own dump rounds every real to one fixed precision).  Marked
 * as jansson marks reals: ".0" when there is neither '.' nor an exponent
 * (else it would read back as an integer), and an exponent without '+'
 * or leading zeros ("1e300", "1e-5").  buf holds RENDER_REAL_MAX bytes.
 */
#define RENDER_REAL_MAX 32

static size_t
render_real_text(char *buf, double v)
{
	char *e, *digits;
	int prec, n = 0;

	for (prec = 15; prec <= 17; prec++) {
		n = snprintf(buf, RENDER_REAL_MAX, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	if ((e = strchr(buf, 'e')) == NULL) {
		if (strchr(buf, '.') == NULL) {
			memcpy(buf + n, ".0", 3);
			n += 2;
		}
		return (size_t)n;
	}
	/* %g writes at least two exponent digits, never all zeros */
	if (e[1] == '-')
		e++;
	for (digits = e + 1; *digits == '+' || *digits == '0'; digits++)
		;
	memmove(e + 1, digits, strlen(digits) + 1);
	return strlen(buf);
}

static void
render_out_real(struct render_out *out, double v)
{
	char *p;

	if (!isfinite(v)) {
		out->rc = -1; /* not JSON; no json_t can hold one */
		return;
	}
	p = render_out_space(out, RENDER_REAL_MAX);
	render_out_commit(out, p + render_real_text(p, v));
}

/*
 * Nested deeper than jansson's parser allows: not from a request, and
 * maybe a cycle.
 */
#define RENDER_DEPTH_MAX JSON_PARSER_MAX_DEPTH

static void render_out_value(struct render_out *, json_t *, int);

/* "key": for len bytes of an object's key. */
static void
render_out_key(struct render_out *out, const char *key, size_t len)
{
	if (render_plain(key, len))
		render_out_quoted(out, key, len);
	else
		render_out_json(out, json_stringn(key, len));
	RENDER_OUT_LITERAL(out, ":");
}

/* Members in the object's own order, as jansson keeps and dumps them. */
static void
render_out_object(struct render_out *out, json_t *o, int depth)
{
	const char *key;
	size_t len;
	json_t *v;
	bool first = true;

	RENDER_OUT_LITERAL(out, "{");
	json_object_keylen_foreach(o, key, len, v)
	{
		if (!first)
			RENDER_OUT_LITERAL(out, ",");
		first = false;
		render_out_key(out, key, len);
		render_out_value(out, v, depth + 1);
	}
	RENDER_OUT_LITERAL(out, "}");
}

static void
render_out_array(struct render_out *out, json_t *a, int depth)
{
	size_t i;

	RENDER_OUT_LITERAL(out, "[");
	for (i = 0; i < json_array_size(a); i++) {
		if (i > 0)
			RENDER_OUT_LITERAL(out, ",");
		render_out_value(out, json_array_get(a, i), depth + 1);
	}
	RENDER_OUT_LITERAL(out, "]");
}

/*
 * Any JSON value (an id) as jansson writes it compactly, except that a
 * real keeps every digit it needs; strings that need escaping still go
 * through jansson.  Integers are json_int_t, exact.
 */
static void
render_out_value(struct render_out *out, json_t *v, int depth)
{
	if (v == NULL || depth > RENDER_DEPTH_MAX) {
		out->rc = -1;
		return;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		render_out_object(out, v, depth);
		break;
	case JSON_ARRAY:
		render_out_array(out, v, depth);
		break;
	case JSON_STRING:
		if (render_plain(json_string_value(v), json_string_length(v)))
			render_out_quoted(
			    out, json_string_value(v), json_string_length(v));
		else
			render_out_json(out, json_incref(v));
		break;
	case JSON_INTEGER:
		render_out_int(out, json_integer_value(v));
		break;
	case JSON_REAL:
		render_out_real(out, json_real_value(v));
		break;
	case JSON_TRUE:
		RENDER_OUT_LITERAL(out, "true");
		break;
	case JSON_FALSE:
		RENDER_OUT_LITERAL(out, "false");
		break;
	case JSON_NULL:
		RENDER_OUT_LITERAL(out, "null");
		break;
	}
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
	if (r->error == FETCH_E_TLS) {
		/* every tls error has a reason; handshake when nothing else */
		RENDER_OUT_LITERAL(out, ",\"reason\":");
		render_out_string(out, r->tls.reason != TLS_REASON_NONE
		                           ? tls_reason_name(r->tls.reason)
		                           : "handshake");
	}
	RENDER_OUT_LITERAL(out, "}");
}

/* An RFC 3339 UTC time, quoted. */
static void
render_out_time(struct render_out *out, int64_t t)
{
	char text[TLS_TIME_TEXT];

	tls_time_text(t, text);
	render_out_quoted(out, text, strlen(text));
}

/* "" is unknown: null. */
static void
render_out_known(struct render_out *out, const char *s)
{
	render_out_string(out, s[0] != '\0' ? s : NULL);
}

static void
render_out_cert(struct render_out *out, const struct tls_cert *c)
{
	const char *san = c->san;
	size_t i;

	RENDER_OUT_LITERAL(out, "{\"subject\":");
	render_out_string(out, c->subject != NULL ? c->subject : "");
	RENDER_OUT_LITERAL(out, ",\"issuer\":");
	render_out_string(out, c->issuer != NULL ? c->issuer : "");
	RENDER_OUT_LITERAL(out, ",\"serial\":");
	render_out_string(out, c->serial);
	RENDER_OUT_LITERAL(out, ",\"not_before\":");
	render_out_time(out, c->not_before);
	RENDER_OUT_LITERAL(out, ",\"not_after\":");
	render_out_time(out, c->not_after);
	RENDER_OUT_LITERAL(out, ",\"days_left\":");
	render_out_int(out, c->days_left);
	RENDER_OUT_LITERAL(out, ",\"san\":[");
	for (i = 0; i < c->nsan && san != NULL; i++, san += strlen(san) + 1) {
		if (i > 0)
			RENDER_OUT_LITERAL(out, ",");
		render_out_string(out, san);
	}
	RENDER_OUT_LITERAL(out, "]}");
}

/* "tls": null for plain http, else what the last hop's connection said. */
static void
render_out_tls(struct render_out *out, const struct tls_facts *f)
{
	if (!f->used) {
		RENDER_OUT_LITERAL(out, "null");
		return;
	}
	RENDER_OUT_LITERAL(out, "{\"version\":");
	render_out_known(out, f->version);
	RENDER_OUT_LITERAL(out, ",\"cipher\":");
	render_out_known(out, f->cipher);
	render_out_text(out, f->verified ? ",\"verified\":true,\"cert\":"
	                                 : ",\"verified\":false,\"cert\":");
	if (f->has_cert)
		render_out_cert(out, &f->cert);
	else
		RENDER_OUT_LITERAL(out, "null");
	RENDER_OUT_LITERAL(out, "}");
}

/* "1.0", "1.1", "2", "3"; null when no response arrived. */
static void
render_out_http_version(struct render_out *out, int version)
{
	switch (version) {
	case 10:
		RENDER_OUT_LITERAL(out, "\"1.0\"");
		break;
	case 11:
		RENDER_OUT_LITERAL(out, "\"1.1\"");
		break;
	case 20:
		RENDER_OUT_LITERAL(out, "\"2\"");
		break;
	case 30:
		RENDER_OUT_LITERAL(out, "\"3\"");
		break;
	default:
		RENDER_OUT_LITERAL(out, "null");
	}
}

static void render_out_ms(struct render_out *out, double ms);

/*
 * len bytes are UTF-8 with no NUL: a JSON string can carry them.  The
 * bytes are a capture, not a C string: a sequence its lead byte says is
 * longer than what is left is refused before render_utf8_len() would
 * read past the end (a capture may cut a character in two).
 */
static bool
render_utf8_text(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n, bad, need;

	while (i < len) {
		need = p[i] < 0x80 ? 1 : p[i] < 0xe0 ? 2 : p[i] < 0xf0 ? 3 : 4;
		if (p[i] == '\0' || need > len - i ||
		    (n = render_utf8_len(p + i, &bad)) == 0)
			return false;
		i += n;
	}
	return true;
}

/* The captured body: "body" when it is text, else "body_base64". */
static void
render_out_body(struct render_out *out, const struct fetch_result *r)
{
	size_t len = r->body_len;
	unsigned char *b64;

	if (render_utf8_text(r->body != NULL ? r->body : "", len)) {
		RENDER_OUT_LITERAL(out, ",\"body\":");
		render_out_json(
		    out, json_stringn(r->body != NULL ? r->body : "", len));
	} else if ((b64 = malloc(4 * ((len + 2) / 3) + 1)) != NULL) {
		EVP_EncodeBlock(b64, (const unsigned char *)r->body, (int)len);
		RENDER_OUT_LITERAL(out, ",\"body_base64\":");
		render_out_quoted(out, (const char *)b64, strlen((char *)b64));
		free(b64);
	} else
		out->rc = -1;
	render_out_text(out, r->body_truncated ? ",\"body_truncated\":true"
	                                       : ",\"body_truncated\":false");
}

/* {"name": value or null, ...} for the headers the item asked for. */
static void
render_out_headers(struct render_out *out, const struct fetch_result *r)
{
	size_t i;

	RENDER_OUT_LITERAL(out, ",\"headers\":{");
	for (i = 0; i < r->nheaders; i++) {
		if (i > 0)
			RENDER_OUT_LITERAL(out, ",");
		render_out_string(out, r->headers[i].name);
		RENDER_OUT_LITERAL(out, ":");
		render_out_string(out, r->headers[i].value);
	}
	RENDER_OUT_LITERAL(out, "}");
}

/* expect.status as the client wrote it; the default rule as "200-399". */
static void
render_out_status_entries(
    struct render_out *out, const struct expect_spec *spec)
{
	const struct expect_status_entry *e;
	size_t n, i;

	e = expect_status_entries(spec, &n);
	if (n == 0) {
		RENDER_OUT_LITERAL(out, "[\"200-399\"]");
		return;
	}
	RENDER_OUT_LITERAL(out, "[");
	for (i = 0; i < n; i++) {
		if (i > 0)
			RENDER_OUT_LITERAL(out, ",");
		if (e[i].is_number)
			render_out_int(out, e[i].lo);
		else
			render_out_string(out, e[i].text);
	}
	RENDER_OUT_LITERAL(out, "]");
}

/* What the check of f expected, as the client wrote it. */
static void
render_out_expected(struct render_out *out, const struct expect_spec *spec,
    const struct expect_failure *f)
{
	const char *text, *name, *pattern;
	size_t len;

	switch (f->kind) {
	case EXPECT_STATUS:
		render_out_status_entries(out, spec);
		break;
	case EXPECT_HEADERS:
		expect_header(spec, f->entry, &name, &pattern);
		RENDER_OUT_LITERAL(out, "{");
		render_out_string(out, name);
		RENDER_OUT_LITERAL(out, ":");
		render_out_string(out, pattern);
		RENDER_OUT_LITERAL(out, "}");
		break;
	case EXPECT_MAX_MS:
	case EXPECT_CERT_DAYS_LEFT:
		render_out_real(out, expect_limit(spec, f->kind));
		break;
	default:
		text = expect_text(spec, f->kind, f->entry, &len);
		render_out_json(out, json_stringn(text, len));
	}
}

/* [{"check":..,"expected":..,"actual":..}, ...]; actual omitted for the
 * body checks. */
static void
render_out_failed(struct render_out *out, const struct expect_spec *spec,
    const struct fetch_result *r)
{
	const struct expect_failure *f;
	size_t i;

	RENDER_OUT_LITERAL(out, ",\"failed_checks\":[");
	for (i = 0; i < r->nfailed; i++) {
		f = &r->failed[i];
		if (i > 0)
			RENDER_OUT_LITERAL(out, ",");
		RENDER_OUT_LITERAL(out, "{\"check\":");
		render_out_string(out, expect_name(f->kind));
		RENDER_OUT_LITERAL(out, ",\"expected\":");
		render_out_expected(out, spec, f);
		if (f->has_actual) {
			RENDER_OUT_LITERAL(out, ",\"actual\":");
			if (f->kind == EXPECT_HEADERS)
				render_out_string(out, f->actual_str);
			else if (f->kind == EXPECT_MAX_MS)
				render_out_ms(out, f->actual_num);
			else
				render_out_int(out, (long long)f->actual_num);
		}
		RENDER_OUT_LITERAL(out, "}");
	}
	RENDER_OUT_LITERAL(out, "]");
}

/* The fields an item asked for: checks, the body, headers. */
static void
render_out_asked(struct render_out *out, const struct fetch_spec *spec,
    const struct fetch_result *r)
{
	if (spec->expect != NULL)
		render_out_failed(out, spec->expect, r);
	if (spec->capture > 0)
		render_out_body(out, r);
	if (spec->ncapture_headers > 0)
		render_out_headers(out, r);
}

void
render_result_out(struct render_out *out, size_t index,
    const struct request_item *item, const struct fetch_result *r)
{
	char *p;

	RENDER_OUT_LITERAL(out, "{\"index\":");
	render_out_int(out, (long long)index);
	RENDER_OUT_LITERAL(out, ",\"url\":");
	render_out_string(out, item->url);
	if (item->id != NULL) {
		RENDER_OUT_LITERAL(out, ",\"id\":");
		render_out_value(out, item->id, 0);
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
	p = render_out_space(out, RENDER_TIME_MAX);
	render_out_commit(out, p + render_time_text(&r->time, p));
	RENDER_OUT_LITERAL(out, ",\"http_version\":");
	render_out_http_version(out, r->http_version);
	RENDER_OUT_LITERAL(out, ",\"tls\":");
	render_out_tls(out, &r->tls);
	RENDER_OUT_LITERAL(out, ",\"attempts\":");
	render_out_int(out, r->attempts > 0 ? r->attempts : 1);
	render_out_asked(out, &item->fetch, r);
	RENDER_OUT_LITERAL(out, "}");
}

int
render_result(size_t index, const struct request_item *item,
    const struct fetch_result *r, json_dump_callback_t emit, void *data)
{
	struct render_out out;

	render_out_init(&out, emit, data);
	render_result_out(&out, index, item, r);
	return render_out_flush(&out);
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

/* Milliseconds as in time_ms: NaN, negative and absurd values are 0. */
static void
render_out_ms(struct render_out *out, double ms)
{
	char *p = render_out_space(out, 32);

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
	RENDER_OUT_LITERAL(out, ",\"earliest_cert_expiry\":");
	if (s->has_cert_expiry)
		render_out_time(out, s->earliest_cert_expiry);
	else
		RENDER_OUT_LITERAL(out, "null");
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
	render_out_value(&out, value, 0);
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

/*
 * The answer's skeleton, piece by piece, so that a fan-out can write a
 * big answer as the client reads it: open, then each item, then close.
 */
void
render_answer_open(struct render_out *out)
{
	RENDER_OUT_LITERAL(out, "{\"results\":[");
}

void
render_answer_item(struct render_out *out, bool first, size_t index,
    const struct request_item *item, const struct fetch_result *result)
{
	if (!first)
		RENDER_OUT_LITERAL(out, ",");
	render_result_out(out, index, item, result);
}

void
render_answer_close(struct render_out *out, const struct summary *summary)
{
	RENDER_OUT_LITERAL(out, "],\"summary\":");
	render_summary_out(out, summary);
	RENDER_OUT_LITERAL(out, "}\n");
}

void
render_line(struct render_out *out, size_t index,
    const struct request_item *item, const struct fetch_result *result)
{
	render_result_out(out, index, item, result);
	RENDER_OUT_LITERAL(out, "\n");
}

void
render_summary_line(struct render_out *out, const struct summary *summary)
{
	RENDER_OUT_LITERAL(out, "{\"summary\":");
	render_summary_out(out, summary);
	RENDER_OUT_LITERAL(out, "}\n");
}
