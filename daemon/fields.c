/*
 * fields: one reader per field, each checking its JSON value and storing
 * what it means into a struct fields.  A reader returns NULL, or a reason
 * that the caller puts after the field's name ("expect.status: ...").
 *
 * What a field makes that an item will point to (a compiled expect, a
 * decoded body, a list of names, a resolve list) is kept in the arena.
 * For the request's and the modules' objects, which many items share, it
 * is made once: the arena remembers it by the JSON value it came from.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "config.h"
#include "expect.h"
#include "fields.h"

/* Cap on one fetch's custom header lines ("Name: value", summed). */
#define FIELDS_HEADER_BYTES_MAX 8192
#define FIELDS_NAMES_MAX        32
#define FIELDS_RESOLVE_MAX      16
#define FIELDS_RETRIES_MAX      5
#define FIELDS_BACKOFF_MAX      60000

enum fields_made_kind {
	MADE_EXPECT,
	MADE_BODY,
	MADE_NAMES,
	MADE_RESOLVE,
	MADE_TEXT
};

/* One thing the arena keeps, remembered by the JSON value it came from. */
struct fields_made {
	struct fields_made *next;
	json_t *from; /* NULL: made for one item, not to be found again */
	enum fields_made_kind kind;
	void *value;
};

struct fields_arena {
	struct fields_made *head;
};

struct fields_arena *
fields_arena_new(void)
{
	return calloc(1, sizeof(struct fields_arena));
}

/* Bytes with their length: a body may hold NUL bytes. */
struct fields_blob {
	size_t len;
	char data[]; /* len bytes and a NUL */
};

static void
fields_value_free(enum fields_made_kind kind, void *value)
{
	char **names = value;
	size_t i;

	switch (kind) {
	case MADE_EXPECT:
		expect_spec_unref(value);
		break;
	case MADE_RESOLVE:
		curl_slist_free_all(value);
		break;
	case MADE_NAMES:
		for (i = 0; names != NULL && names[i] != NULL; i++)
			free(names[i]);
		free(names);
		break;
	default:
		free(value);
	}
}

void
fields_arena_free(struct fields_arena *arena)
{
	struct fields_made *m, *next;

	if (arena == NULL)
		return;
	for (m = arena->head; m != NULL; m = next) {
		next = m->next;
		fields_value_free(m->kind, m->value);
		free(m);
	}
	free(arena);
}

static void *
arena_find(struct fields_arena *arena, json_t *from, enum fields_made_kind k)
{
	struct fields_made *m;

	for (m = arena->head; from != NULL && m != NULL; m = m->next)
		if (m->from == from && m->kind == k)
			return m->value;
	return NULL;
}

/* Keep value (freed with the arena, also when this fails); -1 OOM. */
static int
arena_keep(struct fields_arena *arena, json_t *from, enum fields_made_kind kind,
    void *value)
{
	struct fields_made *m = calloc(1, sizeof(*m));

	if (m == NULL) {
		fields_value_free(kind, value);
		return -1;
	}
	m->from = from;
	m->kind = kind;
	m->value = value;
	m->next = arena->head;
	arena->head = m;
	return 0;
}

/* The state of one fields_apply(). */
struct fields_ctx {
	struct fields *f;
	const struct config *cfg;
	struct fields_arena *arena;
	enum fields_scope scope;
	char *why;
	size_t whylen;
};

static const char *fields_reason(struct fields_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A reason made with a format, kept in the context's buffer. */
static const char *
fields_reason(struct fields_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, c->whylen, fmt, ap);
	va_end(ap);
	return c->why;
}

static bool
key_is(const char *key, size_t keylen, const char *name)
{
	return keylen == strlen(name) && memcmp(key, name, keylen) == 0;
}

/* RFC 9110 tchar. */
static bool
is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

static bool
is_token(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return len > 0;
}

/*
 * A field value may hold visible characters, spaces and tabs; CR, LF and
 * NUL would split or cut the request line, other controls have no place.
 */
static bool
is_field_value(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/*
 * Headers that describe the message or the connection rather than the
 * request, refused from callers.  libcurl frames every request itself;
 * a caller's Content-Length on a bodiless GET makes the upstream read the
 * NEXT request on that pooled connection, perhaps another client's, as
 * this one's body (smuggling).  Connection, Keep-Alive, Upgrade, TE,
 * Trailer, Expect and Proxy-* are hop-by-hop or steer the connection.
 */
static const char *const fields_refused_headers[] = {"Content-Length",
    "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer",
    "Expect"};

static bool
header_refused(const char *name, size_t len)
{
	size_t i;

	if (len >= 6 && strncasecmp(name, "Proxy-", 6) == 0)
		return true;
	for (i = 0; i < sizeof(fields_refused_headers) /
	                    sizeof(fields_refused_headers[0]);
	     i++)
		if (len == strlen(fields_refused_headers[i]) &&
		    strncasecmp(name, fields_refused_headers[i], len) == 0)
			return true;
	return false;
}

/* One header of a headers object; NULL or why not. */
static const char *
header_check(struct fields_ctx *c, const char *name, size_t len, json_t *v)
{
	if (!is_token(name, len))
		return "a header name is not a token";
	if (header_refused(name, len))
		return fields_reason(c,
		    "header \"%.*s\" is refused: framing and hop-by-hop "
		    "headers are libcurl's to set (request smuggling)",
		    (int)(len > 64 ? 64 : len), name);
	if (!json_is_string(v))
		return "a header value is not a string";
	if (!is_field_value(json_string_value(v), json_string_length(v)))
		return "a header value contains CR, LF, NUL or a control "
		       "character";
	return NULL;
}

static const char *
read_headers(struct fields_ctx *c, json_t *v)
{
	const char *name, *why;
	size_t len;
	json_t *value;

	if (!json_is_object(v))
		return "is not an object";
	json_object_keylen_foreach(v, name, len, value)
	{
		if ((why = header_check(c, name, len, value)) != NULL)
			return why;
	}
	if (c->f->nheaders == FIELDS_HEADER_LEVELS)
		return "is given at too many levels";
	c->f->headers[c->f->nheaders++] = v;
	return NULL;
}

static const char *
read_timeout(struct fields_ctx *c, json_t *v)
{
	json_int_t ms;

	if (!json_is_integer(v) || (ms = json_integer_value(v)) < 1)
		return "is not an integer >= 1";
	c->f->timeout_ms =
	    ms > c->cfg->timeout_ms ? c->cfg->timeout_ms : (int)ms;
	return NULL;
}

static const char *
read_bool(json_t *v, bool *out)
{
	if (!json_is_boolean(v))
		return "is not a boolean";
	*out = json_is_true(v);
	return NULL;
}

static const char *
read_method(struct fields_ctx *c, json_t *v)
{
	const char *s = json_string_value(v);
	int i;

	for (i = 0; s != NULL && i < FETCH_METHOD_COUNT; i++)
		if (key_is(s, json_string_length(v),
		        fetch_method_name((enum fetch_method)i))) {
			c->f->method = (enum fetch_method)i;
			return NULL;
		}
	return "is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
}

/* An integer in [lo, hi]. */
static const char *
read_int(struct fields_ctx *c, json_t *v, long lo, long hi, long *out)
{
	json_int_t n;

	if (!json_is_integer(v) || (n = json_integer_value(v)) < lo || n > hi)
		return fields_reason(
		    c, "is not an integer from %ld to %ld", lo, hi);
	*out = (long)n;
	return NULL;
}

static const char *
read_retries(struct fields_ctx *c, json_t *v)
{
	long n = 0;
	const char *why = read_int(c, v, 0, FIELDS_RETRIES_MAX, &n);

	c->f->retries = (int)n;
	return why;
}

static const char *
read_backoff(struct fields_ctx *c, json_t *v)
{
	long n = 0;
	const char *why = read_int(c, v, 0, FIELDS_BACKOFF_MAX, &n);

	c->f->retry_backoff_ms = (int)n;
	return why;
}

static const char *
read_capture(struct fields_ctx *c, json_t *v)
{
	long n = 0;
	const char *why = read_int(c, v, 0, c->cfg->max_capture_bytes, &n);

	c->f->capture = (size_t)n;
	return why;
}

/* len bytes as a blob kept in the arena (found again by from). */
static const struct fields_blob *
arena_blob(struct fields_ctx *c, json_t *from, const char *data, size_t len)
{
	struct fields_blob *b = malloc(sizeof(*b) + len + 1);

	if (b == NULL)
		return NULL;
	b->len = len;
	memcpy(b->data, data, len);
	b->data[len] = '\0';
	if (arena_keep(c->arena, from, MADE_BODY, b) == -1)
		return NULL;
	return b;
}

static const char *
read_content_type(struct fields_ctx *c, json_t *v)
{
	const struct fields_blob *b;

	if (!json_is_string(v) ||
	    !is_field_value(json_string_value(v), json_string_length(v)))
		return "is not a string without control characters";
	if ((b = arena_blob(
	         c, NULL, json_string_value(v), json_string_length(v))) == NULL)
		return "out of memory";
	c->f->content_type = b->data;
	return NULL;
}

/* The request's and modules' values are made once; an item's its own. */
static json_t *
shared_key(struct fields_ctx *c, json_t *v)
{
	return c->scope == FIELDS_ITEM ? NULL : v;
}

static const char *
read_body(struct fields_ctx *c, json_t *v)
{
	const struct fields_blob *b;

	if (!json_is_string(v))
		return "is not a string";
	b = arena_find(c->arena, shared_key(c, v), MADE_BODY);
	if (b == NULL &&
	    (b = arena_blob(c, shared_key(c, v), json_string_value(v),
	         json_string_length(v))) == NULL)
		return "out of memory";
	c->f->body = b->data;
	c->f->body_len = b->len;
	return NULL;
}

/* RFC 4648 base64 through OpenSSL, padded, no line breaks; -1 if not. */
static int
base64_decode(const char *in, size_t len, unsigned char *out, size_t *n)
{
	int got, pad = 0;

	if (len % 4 != 0 || len > INT_MAX ||
	    strspn(in, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	               "0123456789+/=") != len)
		return -1;
	if (len > 0 && in[len - 1] == '=')
		pad = len > 1 && in[len - 2] == '=' ? 2 : 1;
	if (memchr(in, '=', len - (size_t)pad) != NULL)
		return -1;
	got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (got < 0)
		return -1;
	*n = (size_t)got - (size_t)pad;
	return 0;
}

static const char *
read_body_base64(struct fields_ctx *c, json_t *v)
{
	const struct fields_blob *b;
	unsigned char *raw;
	size_t len = json_string_length(v), n;

	if (!json_is_string(v))
		return "is not a string";
	if ((b = arena_find(c->arena, shared_key(c, v), MADE_BODY)) == NULL) {
		if ((raw = malloc(len / 4 * 3 + 3)) == NULL)
			return "out of memory";
		if (base64_decode(json_string_value(v), len, raw, &n) == -1) {
			free(raw);
			return "is not base64 (RFC 4648, padded, without line "
			       "breaks)";
		}
		b = arena_blob(c, shared_key(c, v), (const char *)raw, n);
		free(raw);
		if (b == NULL)
			return "out of memory";
	}
	c->f->body = b->data;
	c->f->body_len = b->len;
	return NULL;
}

/* capture_headers: a list of header names, kept NULL-terminated. */
static char **
make_names(json_t *v, const char **why)
{
	size_t i, n = json_array_size(v);
	char **names;

	*why = "is not a list of at most 32 header names";
	if (!json_is_array(v) || n > FIELDS_NAMES_MAX ||
	    (names = calloc(n + 1, sizeof(*names))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);

		if (!json_is_string(e) ||
		    !is_token(json_string_value(e), json_string_length(e)) ||
		    (names[i] = strdup(json_string_value(e))) == NULL) {
			fields_value_free(MADE_NAMES, names);
			return NULL;
		}
	}
	return names;
}

static const char *
read_capture_headers(struct fields_ctx *c, json_t *v)
{
	char **names = arena_find(c->arena, shared_key(c, v), MADE_NAMES);
	const char *why;

	if (names == NULL) {
		if ((names = make_names(v, &why)) == NULL)
			return why;
		if (arena_keep(c->arena, shared_key(c, v), MADE_NAMES, names) ==
		    -1)
			return "out of memory";
	}
	c->f->capture_headers = (const char *const *)names;
	c->f->ncapture_headers = json_array_size(v);
	return NULL;
}

/* One "host:port" and its address as curl's "host:port:address". */
static const char *
resolve_entry(const char *key, const char *addr, struct curl_slist **list)
{
	const char *colon = strrchr(key, ':');
	unsigned char raw[16];
	char line[512], *end;
	unsigned long port;
	struct curl_slist *next;

	if (strlen(key) >= 256)
		return "a host:port is too long";
	if (colon == NULL || colon == key || strpbrk(key, " \t\r\n,") != NULL)
		return "a key is not \"host:port\"";
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || colon[1] == '\0' || port < 1 || port > 65535)
		return "a key's port is not 1 to 65535";
	if (addr == NULL || (inet_pton(AF_INET, addr, raw) != 1 &&
	                        inet_pton(AF_INET6, addr, raw) != 1))
		return "a value is not an IPv4 or IPv6 address";
	/* curl wants IPv6 addresses in brackets here. */
	snprintf(line, sizeof(line), strchr(addr, ':') ? "%s:[%s]" : "%s:%s",
	    key, addr);
	if ((next = curl_slist_append(*list, line)) == NULL)
		return "out of memory";
	*list = next;
	return NULL;
}

/*
 * "host:port:address", curl's --resolve form: the one a config module
 * can write, since a libconfig name cannot hold ':' or '.'.  The host
 * may be a bracketed IPv6 literal, the address may be bracketed too.
 */
static const char *
resolve_line(json_t *v, struct curl_slist **list)
{
	const char *s = json_string_value(v), *host_end, *port, *addr;
	char key[256], bare[INET6_ADDRSTRLEN];
	size_t alen;

	if (s == NULL || strlen(s) != json_string_length(v))
		return "an entry is not a \"host:port:address\" string";
	host_end = s[0] == '[' ? strchr(s, ']') : s;
	if (host_end == NULL || (port = strchr(host_end, ':')) == NULL ||
	    (addr = strchr(port + 1, ':')) == NULL)
		return "an entry is not \"host:port:address\"";
	if ((size_t)(addr - s) >= sizeof(key))
		return "a host:port is too long";
	snprintf(key, sizeof(key), "%.*s", (int)(addr - s), s);
	addr++;
	alen = strlen(addr);
	if (alen > 2 && addr[0] == '[' && addr[alen - 1] == ']' &&
	    alen - 2 < sizeof(bare)) {
		snprintf(bare, sizeof(bare), "%.*s", (int)(alen - 2), addr + 1);
		addr = bare;
	}
	return resolve_entry(key, addr, list);
}

/* The pairs of an object, or the strings of a list, into *list. */
static const char *
resolve_list(json_t *v, struct curl_slist **list)
{
	const char *key, *why = NULL;
	json_t *value;
	size_t i;

	if (json_is_array(v))
		json_array_foreach(v, i, value)
		{
			if (why == NULL)
				why = resolve_line(value, list);
		}
	else
		json_object_foreach(v, key, value)
		{
			if (why == NULL)
				why = resolve_entry(
				    key, json_string_value(value), list);
		}
	return why;
}

static const char *
read_resolve(struct fields_ctx *c, json_t *v)
{
	struct curl_slist *list =
	    arena_find(c->arena, shared_key(c, v), MADE_RESOLVE);
	size_t n = json_is_array(v) ? json_array_size(v) : json_object_size(v);
	const char *why;

	if (list == NULL) {
		if ((!json_is_object(v) && !json_is_array(v)) || n == 0 ||
		    n > FIELDS_RESOLVE_MAX)
			return "is not an object of 1 to 16 \"host:port\": "
			       "\"address\" pairs (or a list of "
			       "\"host:port:address\" strings)";
		if ((why = resolve_list(v, &list)) != NULL) {
			curl_slist_free_all(list);
			return why;
		}
		if (arena_keep(
		        c->arena, shared_key(c, v), MADE_RESOLVE, list) == -1)
			return "out of memory";
	}
	c->f->resolve = list;
	return NULL;
}

static const char *
read_ip_version(struct fields_ctx *c, json_t *v)
{
	const char *s = json_string_value(v);

	if (s != NULL && strcmp(s, "4") == 0)
		c->f->ip_resolve = CURL_IPRESOLVE_V4;
	else if (s != NULL && strcmp(s, "6") == 0)
		c->f->ip_resolve = CURL_IPRESOLVE_V6;
	else if (s != NULL && strcmp(s, "any") == 0)
		c->f->ip_resolve = CURL_IPRESOLVE_WHATEVER;
	else
		return "is not \"4\", \"6\" or \"any\"";
	return NULL;
}

/* expect.status: codes, and strings like "2xx" or "200-299". */
static int
expect_status(struct expect_spec *spec, json_t *v, char *err, size_t len)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v) || json_array_size(v) == 0) {
		snprintf(err, len, "status is not a non-empty list");
		return -1;
	}
	json_array_foreach(v, i, e)
	{
		if (json_is_integer(e) &&
		    expect_add_status_code(
		        spec, (long)json_integer_value(e), err, len) == -1)
			return -1;
		if (json_is_string(e) &&
		    expect_add_status_text(
		        spec, json_string_value(e), err, len) == -1)
			return -1;
		if (!json_is_integer(e) && !json_is_string(e)) {
			snprintf(err, len,
			    "status entries are numbers or "
			    "strings");
			return -1;
		}
	}
	return 0;
}

/* body_contains / body_not_contains: a string or a list of them. */
static int
expect_texts(struct expect_spec *spec, enum expect_kind kind, json_t *v,
    char *err, size_t len)
{
	size_t i;
	json_t *e;

	if (json_is_string(v))
		return expect_add_text(spec, kind, json_string_value(v),
		    json_string_length(v), err, len);
	if (!json_is_array(v) || json_array_size(v) == 0) {
		snprintf(err, len, "%s is not a string or a list of them",
		    expect_name(kind));
		return -1;
	}
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e)) {
			snprintf(err, len,
			    "%s is not a string or a list of "
			    "them",
			    expect_name(kind));
			return -1;
		}
		if (expect_add_text(spec, kind, json_string_value(e),
		        json_string_length(e), err, len) == -1)
			return -1;
	}
	return 0;
}

static int
expect_headers(struct expect_spec *spec, json_t *v, char *err, size_t len)
{
	const char *name;
	size_t namelen;
	json_t *re;

	if (!json_is_object(v) || json_object_size(v) == 0) {
		snprintf(err, len, "headers is not an object of name: regex");
		return -1;
	}
	json_object_keylen_foreach(v, name, namelen, re)
	{
		if (!is_token(name, namelen) || !json_is_string(re)) {
			snprintf(err, len,
			    "headers is not an object of "
			    "name: regex");
			return -1;
		}
		if (expect_add_header(spec, name, json_string_value(re),
		        json_string_length(re), err, len) == -1)
			return -1;
	}
	return 0;
}

static int
expect_number(json_t *v, const char *what, double *out, char *err, size_t len)
{
	if (!json_is_number(v) || json_number_value(v) < 0) {
		snprintf(err, len, "%s is not a number >= 0", what);
		return -1;
	}
	*out = json_number_value(v);
	return 0;
}

/* One member of an expect object. */
static int
expect_member(
    struct expect_spec *spec, const char *key, json_t *v, char *err, size_t len)
{
	double d;

	if (strcmp(key, "status") == 0)
		return expect_status(spec, v, err, len);
	if (strcmp(key, "body_contains") == 0)
		return expect_texts(spec, EXPECT_BODY_CONTAINS, v, err, len);
	if (strcmp(key, "body_not_contains") == 0)
		return expect_texts(
		    spec, EXPECT_BODY_NOT_CONTAINS, v, err, len);
	if (strcmp(key, "body_regex") == 0 ||
	    strcmp(key, "body_not_regex") == 0) {
		if (!json_is_string(v)) {
			snprintf(err, len, "%s is not a string", key);
			return -1;
		}
		return expect_add_regex(spec,
		    key[5] == 'n' ? EXPECT_BODY_NOT_REGEX : EXPECT_BODY_REGEX,
		    json_string_value(v), json_string_length(v), err, len);
	}
	if (strcmp(key, "headers") == 0)
		return expect_headers(spec, v, err, len);
	if (strcmp(key, "max_ms") == 0 || strcmp(key, "cert_days_left") == 0) {
		if (expect_number(v, key, &d, err, len) == -1)
			return -1;
		if (key[0] == 'm')
			expect_set_max_ms(spec, d);
		else
			expect_set_cert_days_left(spec, d);
		return 0;
	}
	snprintf(err, len, "unknown member \"%.40s\"", key);
	return -1;
}

static const char *
read_expect(struct fields_ctx *c, json_t *v)
{
	struct expect_spec *spec =
	    arena_find(c->arena, shared_key(c, v), MADE_EXPECT);
	const char *key;
	json_t *member;

	if (spec == NULL) {
		if (!json_is_object(v))
			return "is not an object";
		if ((spec = expect_spec_new()) == NULL)
			return "out of memory";
		json_object_foreach(v, key, member)
		{
			if (expect_member(
			        spec, key, member, c->why, c->whylen) == -1) {
				expect_spec_unref(spec);
				return c->why;
			}
		}
		if (arena_keep(c->arena, shared_key(c, v), MADE_EXPECT, spec) ==
		    -1)
			return "out of memory";
	}
	c->f->expect = spec;
	return NULL;
}

static const char *
read_follow(struct fields_ctx *c, json_t *v)
{
	return read_bool(v, &c->f->follow_redirects);
}

static const char *
read_verify(struct fields_ctx *c, json_t *v)
{
	return read_bool(v, &c->f->verify_tls);
}

static const struct {
	const char *name;
	const char *(*read)(struct fields_ctx *c, json_t *v);
} fields_readers[] = {
    {"timeout_ms", read_timeout},
    {"follow_redirects", read_follow},
    {"method", read_method},
    {"headers", read_headers},
    {"verify_tls", read_verify},
    {"expect", read_expect},
    {"capture", read_capture},
    {"capture_headers", read_capture_headers},
    {"body", read_body},
    {"body_base64", read_body_base64},
    {"content_type", read_content_type},
    {"retries", read_retries},
    {"retry_backoff_ms", read_backoff},
    {"resolve", read_resolve},
    {"ip_version", read_ip_version},
};

/* Keys a scope's caller reads itself. */
static bool
fields_skipped(enum fields_scope scope, const char *key, size_t len)
{
	if (key_is(key, len, "module"))
		return scope != FIELDS_MODULE;
	if (scope == FIELDS_REQUEST)
		return key_is(key, len, "urls") ||
		       key_is(key, len, "concurrency");
	if (scope == FIELDS_ITEM)
		return key_is(key, len, "url") || key_is(key, len, "id");
	return false;
}

/* The field key of obj: read it, or say why not. */
static int
fields_read(struct fields_ctx *c, const char *key, size_t len, json_t *v,
    char *err, size_t errlen)
{
	const char *why = NULL;
	size_t i;
	int n = len > 40 ? 40 : (int)len;

	for (i = 0; i < sizeof(fields_readers) / sizeof(fields_readers[0]); i++)
		if (key_is(key, len, fields_readers[i].name)) {
			why = fields_readers[i].read(c, v);
			if (why == NULL)
				return 0;
			snprintf(err, errlen, "\"%.*s\" %s", n, key, why);
			return -1;
		}
	snprintf(err, errlen, "unknown field \"%.*s\"", n, key);
	return -1;
}

/* "module": the named preset, applied before the object's own fields. */
static int
fields_module(struct fields_ctx *c, json_t *v, char *err, size_t errlen)
{
	const struct config_module *m;

	if (c->scope == FIELDS_MODULE) {
		snprintf(err, errlen, "\"module\" is not a field of a module");
		return -1;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "\"module\" is not a string");
		return -1;
	}
	m = config_module_find(
	    c->cfg, json_string_value(v), json_string_length(v));
	if (m == NULL) {
		snprintf(err, errlen, "unknown module \"%.40s\"",
		    json_string_value(v));
		return -1;
	}
	/* A module with a bad field fails every request that names it:
	 * the message says which module (fields_check_modules() is what
	 * catches it at load). */
	if (fields_apply(c->f, m->fields, FIELDS_MODULE, c->cfg, c->arena,
	        c->why, c->whylen) == -1) {
		snprintf(err, errlen, "module \"%s\": %s", m->name, c->why);
		return -1;
	}
	return 0;
}

int
fields_apply(struct fields *f, json_t *obj, enum fields_scope scope,
    const struct config *cfg, struct fields_arena *arena, char *err,
    size_t errlen)
{
	char why[512];
	struct fields_ctx c = {f, cfg, arena, scope, why, sizeof(why)};
	json_t *module = json_object_get(obj, "module"), *v;
	const char *key;
	size_t len;

	if (module != NULL && fields_module(&c, module, err, errlen) == -1)
		return -1;
	json_object_keylen_foreach(obj, key, len, v)
	{
		if (fields_skipped(scope, key, len))
			continue;
		if (fields_read(&c, key, len, v, err, errlen) == -1)
			return -1;
	}
	return 0;
}

void
fields_defaults(struct fields *f, const struct config *cfg)
{
	memset(f, 0, sizeof(*f));
	f->timeout_ms = cfg->timeout_ms;
	f->follow_redirects = cfg->follow_redirects;
	f->method = FETCH_GET;
	f->verify_tls = cfg->verify_tls;
	f->retry_backoff_ms = 200;
	f->ip_resolve = CURL_IPRESOLVE_WHATEVER;
}

static bool header_overridden(
    const struct fields *f, size_t level, const char *name);

/* The line bytes of the merged headers of every level so far. */
static size_t
fields_header_bytes(const struct fields *f)
{
	size_t level, bytes = 0;
	const char *name;
	json_t *value;

	for (level = 0; level < f->nheaders; level++)
		json_object_foreach(f->headers[level], name, value)
		{
			if (!header_overridden(f, level, name))
				bytes += strlen(name) +
				         json_string_length(value) + 2;
		}
	return bytes;
}

/*
 * The first resolve entry whose address ip_version rules out, or NULL.
 * curl drops such an entry and asks DNS for the name instead: the name
 * the caller pinned would be looked up and connected elsewhere.
 */
static const char *
resolve_excluded(const struct fields *f)
{
	const struct curl_slist *l;
	size_t len;
	bool v6;

	if (f->ip_resolve == CURL_IPRESOLVE_WHATEVER)
		return NULL;
	for (l = f->resolve; l != NULL; l = l->next) {
		len = strlen(l->data);
		v6 = len > 0 && l->data[len - 1] == ']'; /* "host:port:[::1]" */
		if (v6 != (f->ip_resolve == CURL_IPRESOLVE_V6))
			return l->data;
	}
	return NULL;
}

/* The message for an entry ("host:port:address") ip_version rules out. */
static void
resolve_excluded_error(
    const char *entry, long ip_resolve, char *err, size_t errlen)
{
	size_t len = strlen(entry);
	bool v6 = entry[len - 1] == ']';
	const char *addr = v6 ? strrchr(entry, '[') : strrchr(entry, ':') + 1;
	int keylen = (int)(addr - entry) - 1; /* the colon before it */

	snprintf(err, errlen,
	    "\"resolve\": \"%.*s\" maps to an IPv%c address, but "
	    "\"ip_version\" is \"%c\" (the name would be looked up in DNS "
	    "instead)",
	    keylen > 300 ? 300 : keylen, entry, v6 ? '6' : '4',
	    ip_resolve == CURL_IPRESOLVE_V6 ? '6' : '4');
}

int
fields_finish(const struct fields *f, char *err, size_t errlen)
{
	const char *excluded;

	if (fields_header_bytes(f) > FIELDS_HEADER_BYTES_MAX) {
		snprintf(err, errlen, "\"headers\" are longer than 8192 bytes");
		return -1;
	}
	if (f->body != NULL &&
	    (f->method == FETCH_GET || f->method == FETCH_HEAD)) {
		snprintf(err, errlen,
		    "\"body\": a %s request sends no body; "
		    "use POST, PUT, PATCH, DELETE or OPTIONS",
		    fetch_method_name(f->method));
		return -1;
	}
	if (f->retries > 0 && !fetch_method_idempotent(f->method)) {
		snprintf(err, errlen,
		    "\"retries\": a %s is not idempotent; "
		    "only GET, HEAD, PUT, DELETE and OPTIONS "
		    "are retried",
		    fetch_method_name(f->method));
		return -1;
	}
	if ((excluded = resolve_excluded(f)) != NULL) {
		resolve_excluded_error(excluded, f->ip_resolve, err, errlen);
		return -1;
	}
	return 0;
}

/* Is name set at a level after `level`?  (Header names ignore case.) */
static bool
header_overridden(const struct fields *f, size_t level, const char *name)
{
	const char *other;
	json_t *v;
	size_t i;

	for (i = level + 1; i < f->nheaders; i++)
		json_object_foreach(f->headers[i], other, v)
		{
			if (strcasecmp(name, other) == 0)
				return true;
		}
	return false;
}

/* "Name: value"; "Name;" sends an empty value ("Name:" would unset it). */
static int
header_append(struct curl_slist **list, const char *name, json_t *value)
{
	char line[FIELDS_HEADER_BYTES_MAX + 2];
	const char *v = json_string_value(value);
	size_t vlen = json_string_length(value);
	struct curl_slist *next;

	while (vlen > 0 && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	if (vlen == 0)
		snprintf(line, sizeof(line), "%s;", name);
	else
		snprintf(line, sizeof(line), "%s: %.*s", name, (int)vlen, v);
	if ((next = curl_slist_append(*list, line)) == NULL)
		return -1;
	*list = next;
	return 0;
}

/* Every level's headers, a later level winning a name; capped in all. */
static int
fields_headers(
    const struct fields *f, struct curl_slist **list, char *err, size_t errlen)
{
	size_t level, bytes = 0;
	const char *name;
	json_t *value;

	*list = NULL;
	for (level = 0; level < f->nheaders; level++)
		json_object_foreach(f->headers[level], name, value)
		{
			if (header_overridden(f, level, name))
				continue;
			bytes += strlen(name) + json_string_length(value) + 2;
			if (bytes > FIELDS_HEADER_BYTES_MAX) {
				snprintf(err, errlen,
				    "\"headers\" are longer "
				    "than 8192 bytes");
				curl_slist_free_all(*list);
				*list = NULL;
				return -1;
			}
			if (header_append(list, name, value) == -1) {
				snprintf(err, errlen, "out of memory");
				curl_slist_free_all(*list);
				*list = NULL;
				return -1;
			}
		}
	return 0;
}

int
fields_to_spec(
    const struct fields *f, struct fetch_spec *spec, char *err, size_t errlen)
{
	spec->timeout_ms = f->timeout_ms;
	spec->follow_redirects = f->follow_redirects;
	spec->method = f->method;
	spec->verify_tls = f->verify_tls;
	spec->retries = f->retries;
	spec->retry_backoff_ms = f->retry_backoff_ms;
	spec->capture = f->capture;
	spec->capture_headers = f->capture_headers;
	spec->ncapture_headers = f->ncapture_headers;
	spec->body = f->body;
	spec->body_len = f->body_len;
	spec->content_type = f->body != NULL ? f->content_type : NULL;
	spec->resolve = f->resolve;
	spec->ip_resolve = f->ip_resolve;
	spec->expect = f->expect;
	return fields_headers(f, &spec->headers, err, errlen);
}

int
fields_check_modules(const struct config *cfg, char *err, size_t errlen)
{
	struct fields_arena *arena = fields_arena_new();
	size_t i, used = 0;
	struct fields f;
	char why[512];
	int bad = 0;

	if (errlen > 0)
		err[0] = '\0';
	for (i = 0; arena != NULL && i < cfg->nmodules; i++) {
		const struct config_module *m = &cfg->modules[i];

		fields_defaults(&f, cfg);
		if (fields_apply(&f, m->fields, FIELDS_MODULE, cfg, arena, why,
		        sizeof(why)) == 0 &&
		    fields_finish(&f, why, sizeof(why)) == 0)
			continue;
		bad++;
		if (used < errlen)
			used += (size_t)snprintf(err + used, errlen - used,
			    "%s%s:%d: modules: %s: %s", used > 0 ? "\n" : "",
			    m->file, m->line, m->name, why);
	}
	if (arena == NULL) {
		snprintf(err, errlen, "out of memory checking the modules");
		return -1;
	}
	fields_arena_free(arena);
	return bad > 0 ? -1 : 0;
}
