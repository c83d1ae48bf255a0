/*
 * libFuzzer harness for render.c.  The input is a recipe: results whose
 * strings are any bytes, whose ids are any JSON value jansson can hold
 * (reals of any finite bit pattern) and whose numbers and times are any
 * bit pattern (NaN and infinities too), with TLS facts of any bytes and
 * dates, a summary of them and of more statuses, and an error body.  They are
 * rendered as one answer, the way batch.c writes it, parsed back with jansson,
 * and every field is compared with what went in: strings after the U+FFFD rule
 * (with a decoder of this file's own), ids exactly (types, reals bit for bit,
 * key order), integers exactly, times as rounded to microseconds.  Any
 * difference aborts with both sides printed.  The same results are also
 * rendered as GET /probe's Prometheus text (probe.c), whose every line
 * must be a header or a sample with a finite value, and whose target
 * labels must read back as their URLs after the U+FFFD rule.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "fetch.h"
#include "probe.h"
#include "render.h"
#include "request.h"
#include "fuzz_sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RESULTS  8
#define MAX_ID_DEPTH 12
#define LONG_TEXT    (RENDER_OUT_SIZE + 100)
#define STATUS_LIMIT 1000 /* status_counts count 1..999 */
#define FFFD         "\xef\xbf\xbd"

/* ------------------------------------------------------------ the recipe */

struct input {
	const uint8_t *p;
	size_t left;
};

/* The next byte; 0 once the input is used up. */
static uint8_t
in_byte(struct input *in)
{
	if (in->left == 0)
		return 0;
	in->left--;
	return *in->p++;
}

static uint64_t
in_u64(struct input *in, int bytes)
{
	uint64_t v = 0;

	while (bytes-- > 0)
		v = v << 8 | in_byte(in);
	return v;
}

/* A double of any bit pattern, or a plausible number of milliseconds. */
static double
in_double(struct input *in)
{
	uint8_t kind = in_byte(in);
	uint64_t bits;
	double v;

	if (kind & 1) {
		bits = in_u64(in, 8);
		memcpy(&v, &bits, sizeof(v));
		return v;
	}
	return (double)in_u64(in, 4) / (double)(1u << (kind >> 1 & 15));
}

/*
 * A heap C string of any bytes, up to 254 of them; a length byte of 255
 * repeats a piece of 1..16 bytes past the size of render_out's buffer.
 */
static char *
in_text(struct input *in)
{
	uint8_t n = in_byte(in);
	char *s = malloc(n < 0xff ? n + 1 : LONG_TEXT + 1);
	size_t len = 0, k;

	if (s == NULL)
		abort();
	if (n < 0xff) {
		for (; len < n && in->left > 0; len++)
			s[len] = (char)in_byte(in);
	} else {
		k = in_byte(in) % 16 + 1;
		for (len = 0; len < k; len++)
			s[len] = (char)in_byte(in);
		for (; len < LONG_TEXT; len++)
			s[len] = s[len - k];
	}
	s[len] = '\0';
	return s;
}

/* Valid UTF-8 of up to 32 code points into buf (128 bytes); its length. */
static size_t
in_utf8(struct input *in, char *buf, bool nul)
{
	size_t n = in_byte(in) % 33, len = 0;
	uint32_t cp;

	while (n-- > 0) {
		cp = in_byte(in);
		if (cp >= 0x80)
			cp = (uint32_t)((cp & 0x7f) << 16 | in_u64(in, 2)) %
			     0x110000;
		if (cp >= 0xd800 && cp <= 0xdfff)
			cp += 0x800;
		if (cp == 0 && !nul)
			cp = '0';
		if (cp < 0x80) {
			buf[len++] = (char)cp;
		} else if (cp < 0x800) {
			buf[len++] = (char)(0xc0 | cp >> 6);
			buf[len++] = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			buf[len++] = (char)(0xe0 | cp >> 12);
			buf[len++] = (char)(0x80 | (cp >> 6 & 0x3f));
			buf[len++] = (char)(0x80 | (cp & 0x3f));
		} else {
			buf[len++] = (char)(0xf0 | cp >> 18);
			buf[len++] = (char)(0x80 | (cp >> 12 & 0x3f));
			buf[len++] = (char)(0x80 | (cp >> 6 & 0x3f));
			buf[len++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	return len;
}

/* A finite real: any bit pattern (exponent capped), or a short decimal. */
static json_t *
in_real(struct input *in)
{
	uint64_t bits = in_u64(in, 8);
	char text[64];
	double v;

	if (in_byte(in) & 1) {
		snprintf(text, sizeof(text), "%llue%d",
		    (unsigned long long)(bits % 100000000000000000ULL),
		    (int)(int8_t)in_byte(in) * 3);
		v = strtod(text, NULL);
	} else {
		memcpy(&v, &bits, sizeof(v));
	}
	if (!isfinite(v))
		v = copysign(1.5, v); /* jansson holds no NaN or infinity */
	return json_real(v);
}

static json_t *in_json(struct input *in, int depth);

static json_t *
in_container(struct input *in, bool object, int depth)
{
	json_t *c = object ? json_object() : json_array();
	size_t n = depth < MAX_ID_DEPTH ? in_byte(in) % 8 : 0;
	char key[128];

	while (n-- > 0) {
		if (object) {
			size_t len = in_utf8(in, key, false);

			json_object_setn_new(
			    c, key, len, in_json(in, depth + 1));
		} else {
			json_array_append_new(c, in_json(in, depth + 1));
		}
	}
	return c;
}

/* Any JSON value jansson's parser could have made. */
static json_t *
in_json(struct input *in, int depth)
{
	char buf[128];
	size_t len;

	switch (in_byte(in) % 8) {
	case 0:
		return json_null();
	case 1:
		return json_boolean(in_byte(in) & 1);
	case 2:
		return json_integer((json_int_t)in_u64(in, 8));
	case 3:
		return json_integer((json_int_t)(int8_t)in_byte(in));
	case 4:
		return in_real(in);
	case 5:
		len = in_utf8(in, buf, true);
		return json_stringn(buf, len);
	case 6:
		return in_container(in, false, depth);
	default:
		return in_container(in, true, depth);
	}
}

struct item {
	struct request_item spec;
	struct fetch_result result;
};

/* A fixed buffer of any bytes (NUL-terminated, maybe empty). */
static void
in_chars(struct input *in, char *buf, size_t size)
{
	size_t n = in_byte(in) % size, i;

	for (i = 0; i < n; i++)
		buf[i] = (char)in_byte(in);
	buf[n] = '\0';
}

/* The leaf's facts: names and SANs of any bytes, dates of any value. */
static void
in_cert(struct input *in, struct tls_cert *c)
{
	size_t n = in_byte(in) % 5, used = 0, len, i;
	char *entry;

	c->subject = in_text(in);
	c->issuer = in_text(in);
	in_chars(in, c->serial, sizeof(c->serial));
	c->not_before = (int64_t)in_u64(in, 8);
	c->not_after = (int64_t)in_u64(in, 8);
	c->days_left = (int64_t)in_u64(in, 8);
	if ((c->san = malloc(n * (LONG_TEXT + 1) + 1)) == NULL)
		abort();
	for (i = 0; i < n; i++) {
		entry = in_text(in);
		len = strlen(entry) + 1;
		memcpy(c->san + used, entry, len);
		used += len;
		free(entry);
	}
	c->nsan = n;
}

static void
in_tls(struct input *in, struct tls_facts *f)
{
	uint8_t flags = in_byte(in);

	f->used = true;
	f->verified = flags & 1;
	f->reason = (enum tls_reason)(in_byte(in) % (TLS_REASON_COUNT + 2));
	in_chars(in, f->version, sizeof(f->version));
	in_chars(in, f->cipher, sizeof(f->cipher));
	if ((f->has_cert = flags & 2) != 0)
		in_cert(in, &f->cert);
}

/* A captured body of any bytes, maybe NULs, maybe cut short. */
static void
in_body(struct input *in, struct item *it)
{
	it->spec.fetch.capture = 1 + in_byte(in);
	it->result.body = in_text(in);
	it->result.body_len = strlen(it->result.body);
	if (it->result.body_len > 0 && in_byte(in) & 1)
		it->result.body[in_byte(in) % it->result.body_len] = '\0';
	it->result.body_truncated = in_byte(in) & 1;
}

static void
in_item(struct input *in, struct item *it)
{
	static const int versions[] = {0, 10, 11, 20, 30, 12};
	uint8_t flags = in_byte(in);
	size_t n, i;

	memset(it, 0, sizeof(*it));
	it->spec.url = flags & 1 ? in_text(in) : NULL;
	it->spec.id = flags & 2 ? in_json(in, 0) : NULL;
	it->result.error =
	    (enum fetch_error)(in_byte(in) % (FETCH_E_COUNT + 2));
	if (it->result.error != FETCH_OK && (flags & 4))
		it->result.message = in_text(in);
	it->result.status = flags & 8 ? (long)(int32_t)in_u64(in, 4)
	                              : (long)(in_u64(in, 2) % 1100);
	it->result.bytes = (int64_t)in_u64(in, 8);
	it->result.redirects = (long)in_u64(in, 8);
	if (flags & 16)
		it->result.effective_url = in_text(in);
	n = in_byte(in) % sizeof(it->result.remote_ip);
	for (i = 0; i < n; i++)
		it->result.remote_ip[i] = (char)in_byte(in);
	it->result.time.queue = in_double(in);
	it->result.time.dns = in_double(in);
	it->result.time.connect = in_double(in);
	it->result.time.tls = in_double(in);
	it->result.time.ttfb = in_double(in);
	it->result.time.transfer = in_double(in);
	it->result.time.total = in_double(in);
	it->result.time.retry_wait = in_double(in);
	it->result.attempts = in_byte(in) % 7;
	it->result.http_version = versions[in_byte(in) % 6];
	if (flags & 32)
		in_tls(in, &it->result.tls);
	if (flags & 64)
		in_body(in, it);
}

static void
item_free(struct item *it)
{
	free(it->spec.url);
	json_decref(it->spec.id);
	free(it->result.message);
	free(it->result.effective_url);
	free(it->result.body);
	tls_facts_reset(&it->result.tls);
}

/* ------------------------------------------- what the API promises */

static void
fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_render: %s: %s\n", what, detail);
	abort();
}

static void
expect(bool ok, const char *what, json_t *got)
{
	char *text;

	if (ok)
		return;
	text = got != NULL ? json_dumps(got, JSON_ENCODE_ANY | JSON_ALLOW_NUL)
	                   : NULL;
	fail(what, text != NULL ? text : "(absent)");
}

/* Continuation bytes and the lowest code point for a lead byte. */
static size_t
utf8_length(unsigned char lead, uint32_t *min, uint32_t *bits)
{
	if (lead < 0x80)
		return *min = 0, *bits = lead, 1;
	if ((lead & 0xe0) == 0xc0)
		return *min = 0x80, *bits = lead & 0x1f, 2;
	if ((lead & 0xf0) == 0xe0)
		return *min = 0x800, *bits = lead & 0x0f, 3;
	if ((lead & 0xf8) == 0xf0)
		return *min = 0x10000, *bits = lead & 0x07, 4;
	return 0;
}

/*
 * Whether the k bytes at s begin a well-formed sequence (RFC 3629): the
 * code points that some continuation could give meet the scalar values
 * of that length (no overlong, no surrogate, nothing above U+10FFFF).
 * With k == the sequence's length, whether they are one.
 */
static bool
utf8_prefix(const unsigned char *s, size_t k)
{
	uint32_t min, cp, lo, hi;
	size_t n = utf8_length(s[0], &min, &cp), i;

	if (n == 0 || k > n)
		return false;
	for (i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return false;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	lo = cp << 6 * (n - k);
	hi = lo | ((1u << 6 * (n - k)) - 1);
	lo = lo > min ? lo : min;
	hi = hi < 0x10ffff ? hi : 0x10ffff;
	return lo <= hi && !(lo >= 0xd800 && hi <= 0xdfff);
}

/*
 * s as the answer must show it: valid sequences kept, each maximal
 * subpart of an invalid one (the longest start of some valid sequence,
 * at least one byte) replaced by U+FFFD.  Heap; *outlen its length.
 */
static char *
utf8_fix(const char *text, size_t *outlen)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t len = strlen(text), i = 0, n, k, out = 0;
	char *fixed = malloc(len * 3 + 1);
	uint32_t min, bits;

	if (fixed == NULL)
		abort();
	while (i < len) {
		n = utf8_length(s[i], &min, &bits);
		if (n > 0 && i + n <= len && utf8_prefix(s + i, n)) {
			memcpy(fixed + out, s + i, n);
			out += n;
			i += n;
			continue;
		}
		for (k = 1; i + k < len && utf8_prefix(s + i, k + 1); k++)
			;
		memcpy(fixed + out, FFFD, 3);
		out += 3;
		i += k;
	}
	fixed[out] = '\0';
	*outlen = out;
	return fixed;
}

/* got is text (or null for NULL) after the U+FFFD rule. */
static void
want_text(json_t *got, const char *text, const char *what)
{
	size_t len;
	char *want;

	if (text == NULL) {
		expect(json_is_null(got), what, got);
		return;
	}
	want = utf8_fix(text, &len);
	expect(json_is_string(got) && json_string_length(got) == len &&
	           memcmp(json_string_value(got), want, len) == 0,
	    what, got);
	free(want);
}

static void
expect_int(json_t *got, long long want, const char *what)
{
	expect(
	    json_is_integer(got) && json_integer_value(got) == want, what, got);
}

/* Milliseconds: rounded to microseconds; NaN, <= 0, >= 1e12 are 0. */
static void
expect_ms(json_t *got, double ms, const char *what)
{
	double want =
	    isfinite(ms) && ms > 0 && ms < 1e12 ? round(ms * 1000) / 1000 : 0;

	expect(json_is_real(got) && json_real_value(got) == want, what, got);
}

/* Same type and value; reals bit for bit, members in the same order. */
static bool
same_json(json_t *a, json_t *b)
{
	void *ia, *ib;
	double x, y;
	size_t i;

	if (json_typeof(a) != json_typeof(b))
		return false;
	switch (json_typeof(a)) {
	case JSON_OBJECT:
		if (json_object_size(a) != json_object_size(b))
			return false;
		for (ia = json_object_iter(a), ib = json_object_iter(b);
		     ia != NULL; ia = json_object_iter_next(a, ia),
		    ib = json_object_iter_next(b, ib))
			if (json_object_iter_key_len(ia) !=
			        json_object_iter_key_len(ib) ||
			    memcmp(json_object_iter_key(ia),
			        json_object_iter_key(ib),
			        json_object_iter_key_len(ia)) != 0 ||
			    !same_json(json_object_iter_value(ia),
			        json_object_iter_value(ib)))
				return false;
		return true;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return false;
		for (i = 0; i < json_array_size(a); i++)
			if (!same_json(
			        json_array_get(a, i), json_array_get(b, i)))
				return false;
		return true;
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b),
		           json_string_length(a)) == 0;
	case JSON_INTEGER:
		return json_integer_value(a) == json_integer_value(b);
	case JSON_REAL:
		x = json_real_value(a);
		y = json_real_value(b);
		return memcmp(&x, &y, sizeof(x)) == 0;
	default:
		return true;
	}
}

/* o's keys are exactly keys, in that order (NULL ends the list). */
static void
expect_keys(json_t *o, const char *const *keys, const char *what)
{
	void *it = json_object_iter(o);
	size_t i;

	expect(json_is_object(o), what, o);
	for (i = 0; keys[i] != NULL; i++, it = json_object_iter_next(o, it))
		expect(it != NULL &&
		           strcmp(json_object_iter_key(it), keys[i]) == 0,
		    what, o);
	expect(it == NULL, what, o);
}

static const char *
error_code(enum fetch_error e)
{
	static const char *const codes[FETCH_E_COUNT] = {NULL, "invalid_url",
	    "unsupported_scheme", "blocked", "dns", "connect", "tls", "timeout",
	    "too_large", "redirect_limit", "canceled", "check_failed", "other"};

	return (unsigned)e < FETCH_E_COUNT ? codes[e] : "other";
}

static void
check_times(json_t *t, const struct fetch_timing *time)
{
	static const char *const keys[] = {"queue", "dns", "connect", "tls",
	    "ttfb", "transfer", "total", "retry_wait", NULL};

	expect_keys(t, keys, "time_ms keys");
	expect_ms(json_object_get(t, "queue"), time->queue, "time_ms.queue");
	expect_ms(json_object_get(t, "dns"), time->dns, "time_ms.dns");
	expect_ms(
	    json_object_get(t, "connect"), time->connect, "time_ms.connect");
	expect_ms(json_object_get(t, "tls"), time->tls, "time_ms.tls");
	expect_ms(json_object_get(t, "ttfb"), time->ttfb, "time_ms.ttfb");
	expect_ms(
	    json_object_get(t, "transfer"), time->transfer, "time_ms.transfer");
	expect_ms(json_object_get(t, "total"), time->total, "time_ms.total");
	expect_ms(json_object_get(t, "retry_wait"), time->retry_wait,
	    "time_ms.retry_wait");
}

/* {"code": code, "message": message or ""}, after the U+FFFD rule. */
static void
check_error_fields(json_t *e, const char *code, const char *message)
{
	static const char *const keys[] = {"code", "message", NULL};

	expect_keys(e, keys, "error keys");
	want_text(json_object_get(e, "code"), code, "error.code");
	want_text(json_object_get(e, "message"), message != NULL ? message : "",
	    "error.message");
}

static void
check_error(json_t *e, const struct fetch_result *r)
{
	static const char *const with_reason[] = {
	    "code", "message", "reason", NULL};
	static const char *const names[] = {"handshake", "expired",
	    "not_yet_valid", "untrusted", "hostname", "handshake"};

	if (r->error == FETCH_OK) {
		expect(json_is_null(e), "error of a success", e);
		return;
	}
	if (r->error != FETCH_E_TLS) {
		check_error_fields(e, error_code(r->error), r->message);
		return;
	}
	/* a tls error also says why; unknown reasons are "handshake" */
	expect_keys(e, with_reason, "tls error keys");
	want_text(json_object_get(e, "code"), "tls", "error.code");
	want_text(json_object_get(e, "message"),
	    r->message != NULL ? r->message : "", "error.message");
	want_text(json_object_get(e, "reason"),
	    (unsigned)r->tls.reason < TLS_REASON_COUNT ? names[r->tls.reason]
	                                               : "handshake",
	    "error.reason");
}

/* RFC 3339 UTC as the C library spells it, clamped to years 0-9999. */
static void
expect_time(json_t *got, int64_t t, const char *what)
{
	const int64_t lo = -INT64_C(62167219200), hi = INT64_C(253402300799);
	char want[64];
	struct tm tm;
	time_t tt;

	tt = (time_t)(t < lo ? lo : t > hi ? hi : t);
	if (gmtime_r(&tt, &tm) == NULL)
		abort();
	snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec);
	want_text(got, want, what);
}

static void
check_cert(json_t *o, const struct tls_cert *c)
{
	static const char *const keys[] = {"subject", "issuer", "serial",
	    "not_before", "not_after", "days_left", "san", NULL};
	json_t *san = json_object_get(o, "san");
	const char *entry = c->san;
	size_t i;

	expect_keys(o, keys, "cert keys");
	want_text(json_object_get(o, "subject"), c->subject, "subject");
	want_text(json_object_get(o, "issuer"), c->issuer, "issuer");
	want_text(json_object_get(o, "serial"), c->serial, "serial");
	expect_time(
	    json_object_get(o, "not_before"), c->not_before, "not_before");
	expect_time(json_object_get(o, "not_after"), c->not_after, "not_after");
	expect_int(json_object_get(o, "days_left"), c->days_left, "days_left");
	expect(
	    json_is_array(san) && json_array_size(san) == c->nsan, "san", san);
	for (i = 0; i < c->nsan; i++, entry += strlen(entry) + 1)
		want_text(json_array_get(san, i), entry, "san entry");
}

/* "" is null; anything else its text after the U+FFFD rule. */
static void
expect_known(json_t *got, const char *text, const char *what)
{
	want_text(got, text[0] != '\0' ? text : NULL, what);
}

static void
check_tls(json_t *o, const struct tls_facts *f)
{
	static const char *const keys[] = {
	    "version", "cipher", "verified", "cert", NULL};

	if (!f->used) {
		expect(json_is_null(o), "tls of plain http", o);
		return;
	}
	expect_keys(o, keys, "tls keys");
	expect_known(json_object_get(o, "version"), f->version, "tls.version");
	expect_known(json_object_get(o, "cipher"), f->cipher, "tls.cipher");
	expect(json_is_boolean(json_object_get(o, "verified")) &&
	           json_is_true(json_object_get(o, "verified")) == f->verified,
	    "tls.verified", json_object_get(o, "verified"));
	if (f->has_cert)
		check_cert(json_object_get(o, "cert"), &f->cert);
	else
		expect(json_is_null(json_object_get(o, "cert")), "tls.cert",
		    json_object_get(o, "cert"));
}

static void
check_http_version(json_t *got, int version)
{
	const char *want = version == 10   ? "1.0"
	                   : version == 11 ? "1.1"
	                   : version == 20 ? "2"
	                   : version == 30 ? "3"
	                                   : NULL;

	want_text(got, want, "http_version");
}

/* body_len bytes are UTF-8 text without NUL, as JSON can carry them. */
static bool
body_is_text(const char *body, size_t len)
{
	size_t fixed_len;
	char *fixed;
	bool same;

	if (memchr(body, '\0', len) != NULL)
		return false;
	fixed = utf8_fix(body, &fixed_len);
	same = fixed_len == len && memcmp(fixed, body, len) == 0;
	free(fixed);
	return same;
}

/*
 * The captured body: text as "body" byte for byte, anything else as
 * "body_base64" that decodes to the same bytes; then the keys are taken
 * out, so the fixed key list can be checked.
 */
static void
check_body(json_t *o, const struct fetch_result *r)
{
	json_t *text = json_object_get(o, "body"),
	       *b64 = json_object_get(o, "body_base64");
	unsigned char *raw;
	size_t n, pad = 0;
	int got;

	if (body_is_text(r->body, r->body_len)) {
		expect(b64 == NULL && json_is_string(text) &&
		           json_string_length(text) == r->body_len &&
		           memcmp(json_string_value(text), r->body,
		               r->body_len) == 0,
		    "body", text);
	} else {
		expect(text == NULL && json_is_string(b64), "body_base64", b64);
		n = json_string_length(b64);
		if ((raw = malloc(n + 1)) == NULL)
			abort();
		got = EVP_DecodeBlock(
		    raw, (const unsigned char *)json_string_value(b64), (int)n);
		while (pad < n && pad < 2 &&
		       json_string_value(b64)[n - 1 - pad] == '=')
			pad++;
		expect(got >= 0 && (size_t)got - pad == r->body_len &&
		           memcmp(raw, r->body, r->body_len) == 0,
		    "body_base64 bytes", b64);
		free(raw);
	}
	expect(json_is_boolean(json_object_get(o, "body_truncated")) &&
	           json_is_true(json_object_get(o, "body_truncated")) ==
	               r->body_truncated,
	    "body_truncated", json_object_get(o, "body_truncated"));
	json_object_del(o, "body");
	json_object_del(o, "body_base64");
	json_object_del(o, "body_truncated");
}

static void
check_result(json_t *o, size_t index, const struct item *it)
{
	static const char *const with_id[] = {"index", "url", "id", "status",
	    "ok", "error", "bytes", "redirects", "effective_url", "remote_ip",
	    "time_ms", "http_version", "tls", "attempts", NULL};
	static const char *const without_id[] = {"index", "url", "status", "ok",
	    "error", "bytes", "redirects", "effective_url", "remote_ip",
	    "time_ms", "http_version", "tls", "attempts", NULL};
	const struct fetch_result *r = &it->result;
	bool ok = r->error == FETCH_OK && r->status >= 200 && r->status < 400;

	if (it->spec.fetch.capture > 0)
		check_body(o, r);
	/* no "id" key at all when the item had none */
	expect_keys(
	    o, it->spec.id != NULL ? with_id : without_id, "result keys");
	expect_int(json_object_get(o, "index"), (long long)index, "index");
	want_text(json_object_get(o, "url"), it->spec.url, "url");
	if (it->spec.id != NULL)
		expect(same_json(it->spec.id, json_object_get(o, "id")), "id",
		    json_object_get(o, "id"));
	if (r->status == 0)
		expect(json_is_null(json_object_get(o, "status")), "status",
		    json_object_get(o, "status"));
	else
		expect_int(json_object_get(o, "status"), r->status, "status");
	expect(json_is_boolean(json_object_get(o, "ok")) &&
	           json_is_true(json_object_get(o, "ok")) == ok,
	    "ok", json_object_get(o, "ok"));
	check_error(json_object_get(o, "error"), r);
	expect_int(json_object_get(o, "bytes"), r->bytes, "bytes");
	expect_int(json_object_get(o, "redirects"), r->redirects, "redirects");
	want_text(json_object_get(o, "effective_url"), r->effective_url,
	    "effective_url");
	want_text(json_object_get(o, "remote_ip"),
	    r->remote_ip[0] != '\0' ? r->remote_ip : NULL, "remote_ip");
	check_times(json_object_get(o, "time_ms"), &r->time);
	check_http_version(json_object_get(o, "http_version"), r->http_version);
	check_tls(json_object_get(o, "tls"), &r->tls);
}

/* What the summary must say, counted here on the side. */
struct tally {
	size_t total, ok;
	size_t statuses[STATUS_LIMIT];
	size_t errors[FETCH_E_COUNT];
	bool has_expiry;
	int64_t expiry; /* the smallest not_after of a certificate */
};

static void
tally_add(struct tally *t, struct summary *s, const struct fetch_result *r)
{
	summary_add(s, r);
	t->total++;
	if (r->error == FETCH_OK && r->status >= 200 && r->status < 400)
		t->ok++;
	if (r->status > 0 && r->status < STATUS_LIMIT)
		t->statuses[r->status]++;
	if ((unsigned)r->error >= FETCH_E_COUNT)
		t->errors[FETCH_E_OTHER]++;
	else if (r->error != FETCH_OK)
		t->errors[r->error]++;
	if (r->tls.used && r->tls.has_cert &&
	    (!t->has_expiry || r->tls.cert.not_after < t->expiry)) {
		t->has_expiry = true;
		t->expiry = r->tls.cert.not_after;
	}
}

/* o holds exactly the non-zero counts[1..n-1], ascending, named by name. */
static void
expect_counts(json_t *o, const size_t *counts, size_t n,
    const char *(*name)(size_t, char *), const char *what)
{
	void *it = json_object_iter(o);
	char buf[32];
	size_t i;

	expect(json_is_object(o), what, o);
	for (i = 1; i < n; i++) {
		if (counts[i] == 0)
			continue;
		expect(it != NULL &&
		           strcmp(json_object_iter_key(it), name(i, buf)) == 0,
		    what, o);
		expect_int(
		    json_object_iter_value(it), (long long)counts[i], what);
		it = json_object_iter_next(o, it);
	}
	expect(it == NULL, what, o);
}

static const char *
status_name(size_t status, char *buf)
{
	snprintf(buf, 32, "%zu", status);
	return buf;
}

static const char *
error_name(size_t e, char *buf)
{
	(void)buf;
	return error_code((enum fetch_error)e);
}

static void
check_summary(json_t *o, const struct tally *t, double elapsed_ms)
{
	static const char *const keys[] = {"total", "ok", "failed",
	    "status_counts", "error_counts", "elapsed_ms",
	    "earliest_cert_expiry", NULL};

	expect_keys(o, keys, "summary keys");
	expect_int(json_object_get(o, "total"), (long long)t->total, "total");
	expect_int(json_object_get(o, "ok"), (long long)t->ok, "ok");
	expect_int(json_object_get(o, "failed"), (long long)(t->total - t->ok),
	    "failed");
	expect_counts(json_object_get(o, "status_counts"), t->statuses,
	    STATUS_LIMIT, status_name, "status_counts");
	expect_counts(json_object_get(o, "error_counts"), t->errors,
	    FETCH_E_COUNT, error_name, "error_counts");
	expect_ms(json_object_get(o, "elapsed_ms"), elapsed_ms, "elapsed_ms");
	if (t->has_expiry)
		expect_time(json_object_get(o, "earliest_cert_expiry"),
		    t->expiry, "earliest_cert_expiry");
	else
		expect(json_is_null(json_object_get(o, "earliest_cert_expiry")),
		    "earliest_cert_expiry",
		    json_object_get(o, "earliest_cert_expiry"));
}

/* render_error()'s body for a code and message of any bytes. */
static void
check_error_body(struct input *in)
{
	static const char *const keys[] = {"error", NULL};
	char *code = in_text(in),
	     *message = in_byte(in) & 1 ? in_text(in) : NULL;
	char *text = render_error(code, message);
	json_error_t jerr;
	json_t *o;

	if (text == NULL)
		fail("render_error", "NULL");
	if ((o = json_loads(text, 0, &jerr)) == NULL)
		fail(jerr.text, text);
	expect_keys(o, keys, "error body keys");
	check_error_fields(json_object_get(o, "error"), code, message);
	json_decref(o);
	free(text);
	free(code);
	free(message);
}

/* ------------------------------------------------------------ the answer */

/* The whole answer as batch_write() writes it. */
static json_t *
render_answer(const struct item *items, size_t n, const struct summary *s)
{
	struct sink sink = {NULL, 0, 0};
	struct render_out out;
	json_error_t jerr;
	json_t *answer;
	size_t i;

	render_out_init(&out, sink_emit, &sink);
	RENDER_OUT_LITERAL(&out, "{\"results\":[");
	for (i = 0; i < n; i++) {
		if (i > 0)
			RENDER_OUT_LITERAL(&out, ",");
		render_result_out(&out, i, &items[i].spec, &items[i].result);
	}
	RENDER_OUT_LITERAL(&out, "],\"summary\":");
	render_summary_out(&out, s);
	RENDER_OUT_LITERAL(&out, "}\n");
	if (render_out_flush(&out) != 0)
		fail("render", "the answer failed");
	answer = json_loadb(sink.buf, sink.len, JSON_ALLOW_NUL, &jerr);
	if (answer == NULL) {
		fprintf(stderr, "%.*s\n", (int)sink.len, sink.buf);
		fail("not JSON", jerr.text);
	}
	free(sink.buf);
	return answer;
}

/* ------------------------------------------------------- GET /probe */

/*
 * The label value from p (past its opening quote) unescaped, as a heap
 * string; *next is past its closing quote.  Only \\, \" and \n are
 * escapes, and no raw newline may occur.
 */
static char *
probe_label(const char *p, const char *eol, const char **next)
{
	char *v = malloc((size_t)(eol - p) + 1);
	size_t n = 0;

	if (v == NULL)
		abort();
	for (; p < eol && *p != '"'; p++) {
		if (*p != '\\') {
			v[n++] = *p;
			continue;
		}
		if (++p < eol && (*p == '\\' || *p == '"'))
			v[n++] = *p;
		else if (p < eol && *p == 'n')
			v[n++] = '\n';
		else
			fail("probe", "an unknown escape in a label value");
	}
	if (p >= eol)
		fail("probe", "an unterminated label value");
	v[n] = '\0';
	*next = p + 1;
	return v;
}

/* Is target, read back, the URL of one of the items (repaired)? */
static bool
probe_is_target(const char *target, const struct item *items, size_t n)
{
	size_t i, len;
	char *want;
	bool same;

	for (i = 0; i < n; i++) {
		want = utf8_fix(
		    items[i].spec.url != NULL ? items[i].spec.url : "", &len);
		same = strcmp(want, target) == 0;
		free(want);
		if (same)
			return true;
	}
	return false;
}

/* name{labels} value: a target label exactly when n > 1, one of the
 * items' URLs; a finite value. */
static void
check_probe_sample(
    const char *p, const char *eol, const struct item *items, size_t n)
{
	bool has_target = false;
	const char *name;
	char *value, *stop;
	double v;

	if (strncmp(p, "probe_", 6) != 0)
		fail("probe", "a line that is neither a header nor a sample");
	p += strcspn(p, "{ ");
	while (*p == '{' || *p == ',') {
		name = p + 1;
		p = memchr(name, '=', (size_t)(eol - name));
		if (p == NULL || p[1] != '"')
			fail("probe", "a label without =\"");
		value = probe_label(p + 2, eol, &p);
		if (strncmp(name, "target=", 7) == 0) {
			has_target = true;
			if (!probe_is_target(value, items, n))
				fail("probe: not a target's URL", value);
		}
		free(value);
		if (*p == '}')
			p++;
	}
	if (has_target != (n > 1))
		fail("probe", n > 1 ? "a sample without a target label"
		                    : "a target label on a single target");
	if (*p != ' ')
		fail("probe", "no space before the value");
	v = strtod(p + 1, &stop);
	if (stop != eol || !isfinite(v))
		fail("probe", "a value that is not a finite number");
}

/* The results as GET /probe writes them: every line checked. */
static void
check_probe(const struct item *items, size_t n)
{
	struct probe_target targets[MAX_RESULTS];
	struct sink sink = {NULL, 0, 0};
	struct render_out out;
	const char *p, *end, *eol;
	size_t i;

	for (i = 0; i < n; i++) {
		targets[i].item = &items[i].spec;
		targets[i].result = &items[i].result;
	}
	render_out_init(&out, sink_emit, &sink);
	probe_render(&out, targets, n);
	if (render_out_flush(&out) != 0 || sink.len == 0 ||
	    sink.buf[sink.len - 1] != '\n' ||
	    memchr(sink.buf, '\0', sink.len) != NULL)
		fail("probe", "no text, a NUL, or no newline at the end");
	sink.buf[sink.len - 1] = '\0'; /* strtod and strcspn stop there */
	for (p = sink.buf, end = sink.buf + sink.len; p < end; p = eol + 1) {
		eol = memchr(p, '\n', (size_t)(end - 1 - p));
		if (eol == NULL)
			eol = end - 1;
		if (strncmp(p, "# HELP probe_", 13) == 0 ||
		    strncmp(p, "# TYPE probe_", 13) == 0)
			continue;
		check_probe_sample(p, eol, items, n);
	}
	free(sink.buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	struct item items[MAX_RESULTS];
	struct summary summary = {0};
	struct tally *tally = calloc(1, sizeof(*tally));
	uint8_t flags = in_byte(&in);
	size_t n = flags % MAX_RESULTS + 1, extra, i;
	json_t *answer, *results;

	if (tally == NULL ||
	    ((flags & 0x80) && summary_reserve(&summary, 9) != 0))
		abort();
	for (i = 0; i < n; i++) {
		in_item(&in, &items[i]);
		tally_add(tally, &summary, &items[i].result);
	}
	/* more statuses and errors, past the summary's inline list */
	for (extra = in_byte(&in); extra > 0; extra--) {
		struct fetch_result r = {
		    .error =
		        (enum fetch_error)(in_byte(&in) % (FETCH_E_COUNT + 2)),
		    .status = (long)(in_u64(&in, 2) % 1100) - 50,
		};

		tally_add(tally, &summary, &r);
	}
	summary.elapsed_ms = in_double(&in);
	answer = render_answer(items, n, &summary);
	results = json_object_get(answer, "results");
	expect(json_array_size(results) == n, "results", results);
	for (i = 0; i < n; i++)
		check_result(json_array_get(results, i), i, &items[i]);
	check_summary(
	    json_object_get(answer, "summary"), tally, summary.elapsed_ms);
	check_error_body(&in);
	check_probe(items, n);
	json_decref(answer);
	for (i = 0; i < n; i++)
		item_free(&items[i]);
	summary_reset(&summary);
	free(tally);
	return 0;
}
