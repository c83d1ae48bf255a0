/*
 * request: the POST /fetch body turned into a validated request_spec.
 *
 * Three layers of validation.  The envelope (content type, JSON syntax,
 * the object's request-level fields, the item count) fails the whole
 * request with a request_error.  Each item is then read alone: whatever is
 * wrong with its shape becomes that item's fetch error, so one bad item
 * never costs the client the other answers.  The URL itself is checked by
 * request_check_url() on the worker that fetches it (fetch.c): curl_url()
 * is most of the cost of reading an item, and a worker runs it in parallel
 * with the other fetches instead of holding the loop thread.
 *
 * Every fetch_spec owns plain heap memory (url, its own header list, a
 * reference to id); nothing is shared between items, so
 * request_spec_free() is a flat loop.  Pure: no I/O, no logging.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "config.h"
#include "request.h"

/* Longest URL accepted, in bytes (issue 3). */
#define REQUEST_URL_MAX 8192
/*
 * Cap on one fetch's custom header lines ("Name: value", summed).  The
 * request-level headers are copied into every item, so without a cap a
 * 1 MiB body could cost max_urls MiB of header lists.
 */
#define REQUEST_HEADER_BYTES_MAX 8192

/* The request-level fields every item starts from. */
struct request_defaults {
	int timeout_ms;
	bool follow_redirects;
	enum fetch_method method;
	bool verify_tls;
	json_t *headers;     /* validated object (borrowed), or NULL */
	size_t header_bytes; /* the line bytes of headers */
	size_t concurrency;  /* 0: the config's */
};

enum request_body { BODY_JSON, BODY_LINES, BODY_SNIFF, BODY_UNSUPPORTED };

static void request_fail(struct request_error *err, int status,
    const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
request_fail(struct request_error *err, int status, const char *code,
    const char *fmt, ...)
{
	va_list ap;

	err->status = status;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* Does a counted key (it may hold NUL bytes) equal name? */
static bool
key_is(const char *key, size_t keylen, const char *name)
{
	return keylen == strlen(name) && memcmp(key, name, keylen) == 0;
}

/* Does a string hold CR, LF or NUL (len counts the whole string)? */
static bool
has_crlfnul(const char *s, size_t len)
{
	return memchr(s, '\r', len) != NULL || memchr(s, '\n', len) != NULL ||
	       memchr(s, '\0', len) != NULL;
}

/* True when the URL holds a user name, password or login options. */
static bool
url_has_userinfo(CURLU *h)
{
	static const CURLUPart parts[] = {
	    CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS};
	char *part;
	size_t i;

	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (curl_url_get(h, parts[i], &part, 0) == CURLUE_OK) {
			curl_free(part);
			return true;
		}
	}
	return false;
}

/* Only http and https are ever fetched, on every hop. */
static bool
url_scheme_ok(CURLU *h)
{
	char *scheme;
	bool ok;

	if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
		return false;
	ok =
	    strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0;
	curl_free(scheme);
	return ok;
}

char *
request_check_url(
    const char *url, enum fetch_error *error, const char **message)
{
	char *text = NULL;
	CURLUcode rc;
	CURLU *h;

	*error = FETCH_E_INVALID_URL;
	if (strlen(url) > REQUEST_URL_MAX) {
		*message = "URL is longer than 8192 bytes";
		return NULL;
	}
	if (has_crlfnul(url, strlen(url))) {
		*message = "URL contains CR or LF";
		return NULL;
	}
	if ((h = curl_url()) == NULL) {
		*message = "out of memory";
		return NULL;
	}
	/*
	 * NON_SUPPORT_SCHEME: any scheme parses, so that file:// is reported
	 * as unsupported_scheme rather than invalid_url.  No GUESS_SCHEME: a
	 * URL without a scheme is invalid, never silently http.
	 */
	rc = curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (rc != CURLUE_OK)
		*message = curl_url_strerror(rc);
	else if (!url_scheme_ok(h)) {
		*error = FETCH_E_UNSUPPORTED_SCHEME;
		*message = "only http and https URLs are fetched";
	} else if (url_has_userinfo(h))
		*message = "URL contains user credentials";
	else if ((text = strdup(url)) == NULL)
		*message = "out of memory";
	else
		*error = FETCH_OK; /* curl parses it again, the same way */
	curl_url_cleanup(h);
	return text;
}

/* RFC 7230 tchar. */
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

	if (len == 0)
		return false;
	for (i = 0; i < len; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return true;
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
 * request.  The fetch sends no body, and libcurl sets the framing itself;
 * a caller's Content-Length or Transfer-Encoding on a bodiless GET makes
 * the upstream read the NEXT request on that pooled connection as this
 * one's body, and that request may be another client's (smuggling).
 * Connection-level headers (Connection, Keep-Alive, Upgrade, TE, Trailer,
 * Expect, Proxy-*) are hop-by-hop: they would change how the upstream
 * treats the shared connection.  Each message names the header.
 */
static const struct {
	const char *name;
	const char *reason;
} request_refused_headers[] = {
    {"Content-Length", "header \"Content-Length\" is refused: framing is "
                       "libcurl's to set (RFC 9112 6)"},
    {"Transfer-Encoding", "header \"Transfer-Encoding\" is refused: "
                          "framing is libcurl's to set (RFC 9112 6)"},
    {"Connection", "header \"Connection\" is refused: it is hop-by-hop "
                   "(RFC 9110 7.6.1)"},
    {"Keep-Alive", "header \"Keep-Alive\" is refused: it is hop-by-hop "
                   "(RFC 9110 7.6.1)"},
    {"Upgrade", "header \"Upgrade\" is refused: it is hop-by-hop "
                "(RFC 9110 7.8)"},
    {"TE", "header \"TE\" is refused: it is hop-by-hop (RFC 9110 10.1.4)"},
    {"Trailer", "header \"Trailer\" is refused: it describes framing "
                "(RFC 9110 6.6.2)"},
    {"Expect", "header \"Expect\" is refused: it changes how the body is "
               "sent (RFC 9110 10.1.1)"},
};

/* NULL, or why a caller may not set this header. */
static const char *
header_refused(const char *name, size_t len)
{
	size_t i;

	if (len >= 6 && strncasecmp(name, "Proxy-", 6) == 0)
		return "a \"Proxy-*\" header is refused: it is for proxies, "
		       "and fanoutd uses none";
	for (i = 0; i < sizeof(request_refused_headers) /
	                    sizeof(request_refused_headers[0]);
	     i++)
		if (len == strlen(request_refused_headers[i].name) &&
		    strncasecmp(name, request_refused_headers[i].name, len) ==
		        0)
			return request_refused_headers[i].reason;
	return NULL;
}

/*
 * Validate a {name: value} header object, adding its line bytes to
 * *bytes.  Returns NULL or a static reason.
 */
static const char *
headers_check(json_t *headers, size_t *bytes)
{
	const char *name, *refused;
	size_t namelen;
	json_t *value;

	if (!json_is_object(headers))
		return "\"headers\" is not an object";
	json_object_keylen_foreach(headers, name, namelen, value)
	{
		if (!is_token(name, namelen))
			return "header name is not a token";
		if ((refused = header_refused(name, namelen)) != NULL)
			return refused;
		if (!json_is_string(value))
			return "header value is not a string";
		if (!is_field_value(
		        json_string_value(value), json_string_length(value)))
			return "header value contains CR, LF, NUL or a control "
			       "character";
		*bytes += namelen + json_string_length(value) + 2;
		if (*bytes > REQUEST_HEADER_BYTES_MAX)
			return "headers are longer than 8192 bytes";
	}
	return NULL;
}

/* A timeout_ms value: an integer >= 1, capped at the config's. */
static const char *
timeout_check(json_t *value, int cap, int *timeout_ms)
{
	json_int_t ms;

	if (!json_is_integer(value) || (ms = json_integer_value(value)) < 1)
		return "\"timeout_ms\" is not an integer >= 1";
	*timeout_ms = ms > cap ? cap : (int)ms;
	return NULL;
}

/*
 * The most items of this request fetched at once: an integer >= 1.  The
 * pool caps it at workers.max_per_request; a client can only ask for
 * less (to spare its targets), never for every worker.
 */
static const char *
concurrency_check(json_t *value, size_t *concurrency)
{
	json_int_t n;

	if (!json_is_integer(value) || (n = json_integer_value(value)) < 1)
		return "\"concurrency\" is not an integer >= 1";
	*concurrency = n > 1000000 ? 1000000 : (size_t)n;
	return NULL;
}

static const char *
verify_check(json_t *value, bool *verify_tls)
{
	if (!json_is_boolean(value))
		return "\"verify_tls\" is not a boolean";
	*verify_tls = json_is_true(value);
	return NULL;
}

static const char *
method_check(json_t *value, enum fetch_method *method)
{
	const char *s = json_string_value(value);
	size_t len = json_string_length(value);

	if (s != NULL && key_is(s, len, "GET"))
		*method = FETCH_GET;
	else if (s != NULL && key_is(s, len, "HEAD"))
		*method = FETCH_HEAD;
	else
		return "\"method\" is not \"GET\" or \"HEAD\"";
	return NULL;
}

static int
item_fail(struct fetch_spec *spec, enum fetch_error error, const char *message)
{
	if (spec->error == FETCH_OK) {
		spec->error = error;
		spec->error_message = message;
	}
	return -1;
}

/* Keep the URL as given, for the echo; a C string cannot keep a NUL. */
static int
item_set_url(struct fetch_spec *spec, json_t *url)
{
	const char *s = json_string_value(url);
	size_t len = json_string_length(url);

	if (memchr(s, '\0', len) != NULL)
		return item_fail(
		    spec, FETCH_E_INVALID_URL, "URL contains a NUL byte");
	if ((spec->url = strndup(s, len)) == NULL)
		return item_fail(spec, FETCH_E_OTHER, "out of memory");
	return 0;
}

/* One field of an item object; NULL or a static reason. */
static const char *
item_field(const struct config *cfg, struct fetch_spec *spec, const char *key,
    size_t keylen, json_t *value, size_t *header_bytes)
{
	if (key_is(key, keylen, "url"))
		return json_is_string(value) ? NULL
		                             : "item has no string \"url\"";
	if (key_is(key, keylen, "id"))
		return NULL; /* taken before the other fields */
	if (key_is(key, keylen, "method"))
		return method_check(value, &spec->method);
	if (key_is(key, keylen, "timeout_ms"))
		return timeout_check(value, cfg->timeout_ms, &spec->timeout_ms);
	if (key_is(key, keylen, "headers"))
		return headers_check(value, header_bytes);
	if (key_is(key, keylen, "verify_tls"))
		return verify_check(value, &spec->verify_tls);
	return "item has an unknown field";
}

/*
 * An item object.  id and url are taken first so that even an invalid
 * item echoes them back and the client can tell which one failed.
 */
static int
item_object(const struct config *cfg, json_t *item, struct fetch_spec *spec,
    size_t header_bytes)
{
	json_t *url = json_object_get(item, "url"), *value;
	const char *key, *reason;
	size_t keylen;

	spec->id = json_incref(json_object_get(item, "id"));
	if (!json_is_string(url))
		return item_fail(
		    spec, FETCH_E_INVALID_URL, "item has no string \"url\"");
	if (item_set_url(spec, url) == -1)
		return -1;
	json_object_keylen_foreach(item, key, keylen, value)
	{
		reason =
		    item_field(cfg, spec, key, keylen, value, &header_bytes);
		if (reason != NULL)
			return item_fail(spec, FETCH_E_INVALID_URL, reason);
	}
	return 0;
}

/* "Name: value"; "Name;" sends an empty value ("Name:" would disable it). */
static int
header_append(struct curl_slist **list, const char *name, json_t *value)
{
	char line[REQUEST_HEADER_BYTES_MAX + 2];
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

/* Header names are case-insensitive (RFC 7230, 3.2). */
static bool
headers_have(json_t *headers, const char *name)
{
	const char *other;
	json_t *value;

	json_object_foreach(headers, other, value)
	{
		if (strcasecmp(name, other) == 0)
			return true;
	}
	return false;
}

/* The request's headers, then the item's; the item wins on a name. */
static int
headers_build(struct curl_slist **list, json_t *request, json_t *item)
{
	const char *name;
	json_t *value;

	json_object_foreach(request, name, value)
	{
		if (!headers_have(item, name) &&
		    header_append(list, name, value) == -1)
			return -1;
	}
	json_object_foreach(item, name, value)
	{
		if (header_append(list, name, value) == -1)
			return -1;
	}
	return 0;
}

/* Makes the item start from the request's defaults. */
static void
item_defaults(struct fetch_spec *spec, const struct request_defaults *d)
{
	spec->timeout_ms = d->timeout_ms;
	spec->follow_redirects = d->follow_redirects;
	spec->method = d->method;
	spec->verify_tls = d->verify_tls;
}

/* Validate one item into spec, which starts from the request's defaults. */
static void
item_parse(const struct config *cfg, const struct request_defaults *d,
    json_t *item, struct fetch_spec *spec)
{
	item_defaults(spec, d);
	if (json_is_string(item)) {
		if (item_set_url(spec, item) == -1)
			return;
	} else if (json_is_object(item)) {
		if (item_object(cfg, item, spec, d->header_bytes) == -1)
			return;
	} else {
		item_fail(spec, FETCH_E_INVALID_URL,
		    "item is not a URL string or object");
		return;
	}
	if (headers_build(&spec->headers, d->headers,
	        json_object_get(item, "headers")) == -1) {
		curl_slist_free_all(spec->headers);
		spec->headers = NULL;
		item_fail(spec, FETCH_E_OTHER, "out of memory");
	}
}

/* The count is checked before anything is allocated for the items. */
static struct request_spec *
spec_new(const struct config *cfg, size_t count, struct request_error *err)
{
	struct request_spec *spec;

	if (count > (size_t)cfg->max_urls) {
		request_fail(err, 413, "too_many_urls",
		    "%zu URLs given; at most %d are allowed", count,
		    cfg->max_urls);
		return NULL;
	}
	/* One allocation: the spec, then its items. */
	if ((spec = calloc(1, sizeof(*spec) + count * sizeof(*spec->items))) ==
	    NULL) {
		request_fail(err, 500, "internal", "out of memory");
		return NULL;
	}
	spec->count = count;
	spec->items = (struct fetch_spec *)(spec + 1);
	return spec;
}

static struct request_spec *
items_parse(const struct config *cfg, const struct request_defaults *d,
    json_t *urls, struct request_error *err)
{
	struct request_spec *spec;
	size_t i;

	if ((spec = spec_new(cfg, json_array_size(urls), err)) == NULL)
		return NULL;
	spec->concurrency = d->concurrency;
	for (i = 0; i < spec->count; i++)
		item_parse(cfg, d, json_array_get(urls, i), &spec->items[i]);
	return spec;
}

static const char request_unknown_field[] = "unknown field";

/* One request-level field of the object form; NULL or a reason. */
static const char *
envelope_field(const struct config *cfg, const char *key, size_t keylen,
    json_t *value, struct request_defaults *d, json_t **urls)
{
	if (key_is(key, keylen, "urls")) {
		*urls = value;
		return json_is_array(value) ? NULL : "\"urls\" is not an array";
	}
	if (key_is(key, keylen, "timeout_ms"))
		return timeout_check(value, cfg->timeout_ms, &d->timeout_ms);
	if (key_is(key, keylen, "follow_redirects")) {
		d->follow_redirects = json_is_true(value);
		return json_is_boolean(value)
		           ? NULL
		           : "\"follow_redirects\" is not a boolean";
	}
	if (key_is(key, keylen, "method"))
		return method_check(value, &d->method);
	if (key_is(key, keylen, "concurrency"))
		return concurrency_check(value, &d->concurrency);
	if (key_is(key, keylen, "verify_tls"))
		return verify_check(value, &d->verify_tls);
	if (key_is(key, keylen, "headers")) {
		d->headers = value;
		return headers_check(value, &d->header_bytes);
	}
	return request_unknown_field;
}

/* The message names the field; the shared reasons mostly do already. */
static void
envelope_fail(struct request_error *err, const char *key, size_t keylen,
    const char *reason)
{
	int n = keylen > 64 ? 64 : (int)keylen;

	if (reason == request_unknown_field)
		request_fail(err, 400, "invalid_request",
		    "unknown field \"%.*s\"", n, key);
	else if (reason[0] != '"') /* "header name is not a token" */
		request_fail(err, 400, "invalid_request", "\"%.*s\": %s", n,
		    key, reason);
	else
		request_fail(err, 400, "invalid_request", "%s", reason);
}

/* The request as a whole: a bare array, or an object around "urls". */
static int
envelope_parse(const struct config *cfg, json_t *root,
    struct request_defaults *d, json_t **urls, struct request_error *err)
{
	const char *key, *reason;
	size_t keylen;
	json_t *value;

	if (json_is_array(root)) {
		*urls = root;
		return 0;
	}
	if (!json_is_object(root)) {
		request_fail(err, 400, "invalid_request",
		    "the body is not a JSON array or object");
		return -1;
	}
	json_object_keylen_foreach(root, key, keylen, value)
	{
		reason = envelope_field(cfg, key, keylen, value, d, urls);
		if (reason != NULL) {
			envelope_fail(err, key, keylen, reason);
			return -1;
		}
	}
	if (*urls == NULL) {
		request_fail(err, 400, "invalid_request",
		    "the object has no \"urls\" array");
		return -1;
	}
	return 0;
}

static struct request_spec *
request_parse_json(const struct config *cfg, const char *body, size_t len,
    struct request_error *err)
{
	struct request_defaults d = {cfg->timeout_ms, cfg->follow_redirects,
	    FETCH_GET, cfg->verify_tls, NULL, 0, 0};
	struct request_spec *spec = NULL;
	json_t *root, *urls = NULL;
	json_error_t jerr;

	/*
	 * DECODE_ANY: a scalar body is a shape error (invalid_request), not
	 * a syntax error.  ALLOW_NUL: a "\u0000" in one URL fails that item
	 * alone; every string is therefore handled with its length.
	 * jansson itself rejects invalid UTF-8 and caps the nesting depth.
	 */
	root = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (root == NULL) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			request_fail(err, 500, "internal", "out of memory");
		else
			request_fail(err, 400, "invalid_json",
			    "invalid JSON: %s at line %d column %d", jerr.text,
			    jerr.line, jerr.column);
		return NULL;
	}
	if (envelope_parse(cfg, root, &d, &urls, err) == 0)
		spec = items_parse(cfg, &d, urls, err);
	json_decref(root); /* items hold their own id references */
	return spec;
}

/* The next line from *pos, trimmed of blanks and CR; false at the end. */
static bool
line_next(const char *body, size_t len, size_t *pos, const char **line,
    size_t *linelen)
{
	const char *s = body + *pos, *nl;
	size_t n;

	if (*pos >= len)
		return false;
	nl = memchr(s, '\n', len - *pos);
	n = nl != NULL ? (size_t)(nl - s) : len - *pos;
	*pos += n + 1;
	while (n > 0 && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (
	    n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		n--;
	*line = s;
	*linelen = n;
	return true;
}

/* Blank lines and comments are skipped. */
static bool
line_is_item(const char *line, size_t len)
{
	return len > 0 && line[0] != '#';
}

static void
line_parse(const struct config *cfg, const struct request_defaults *d,
    const char *line, size_t len, struct fetch_spec *spec)
{
	json_t *url;

	/* jansson checks UTF-8 here, so the echo is always valid JSON. */
	if ((url = json_stringn(line, len)) == NULL) {
		item_defaults(spec, d);
		item_fail(spec, FETCH_E_INVALID_URL, "line is not valid UTF-8");
		return;
	}
	item_parse(cfg, d, url, spec);
	json_decref(url);
}

static struct request_spec *
request_parse_lines(const struct config *cfg, const char *body, size_t len,
    struct request_error *err)
{
	struct request_defaults d = {cfg->timeout_ms, cfg->follow_redirects,
	    FETCH_GET, cfg->verify_tls, NULL, 0, 0};
	struct request_spec *spec;
	size_t pos = 0, count = 0, linelen, i = 0;
	const char *line;

	while (line_next(body, len, &pos, &line, &linelen))
		count += line_is_item(line, linelen);
	if ((spec = spec_new(cfg, count, err)) == NULL)
		return NULL;
	pos = 0;
	while (line_next(body, len, &pos, &line, &linelen)) {
		if (line_is_item(line, linelen))
			line_parse(cfg, &d, line, linelen, &spec->items[i++]);
	}
	return spec;
}

/* Does a media type (before any ';' parameters) equal name? */
static bool
media_is(const char *type, size_t len, const char *name)
{
	return len == strlen(name) && strncasecmp(type, name, len) == 0;
}

static enum request_body
request_body_kind(const char *content_type)
{
	const char *t = content_type;
	size_t len;

	if (t == NULL)
		return BODY_SNIFF;
	t += strspn(t, " \t");
	len = strcspn(t, ";");
	while (len > 0 && (t[len - 1] == ' ' || t[len - 1] == '\t'))
		len--;
	if (len == 0 || media_is(t, len, "application/x-www-form-urlencoded"))
		return BODY_SNIFF; /* curl -d without -H sends the latter */
	if (media_is(t, len, "application/json"))
		return BODY_JSON;
	if (media_is(t, len, "text/plain"))
		return BODY_LINES;
	return BODY_UNSUPPORTED;
}

/* JSON when the first non-blank byte opens an array or object. */
static bool
request_sniff_json(const char *body, size_t len)
{
	size_t i = 0;

	while (i < len && strchr(" \t\r\n", body[i]) != NULL && body[i] != '\0')
		i++;
	return i < len && (body[i] == '[' || body[i] == '{');
}

struct request_spec *
request_parse(const struct config *cfg, const char *content_type,
    const char *body, size_t len, struct request_error *err)
{
	if (body == NULL) /* an empty body may come without a buffer */
		body = "", len = 0;
	switch (request_body_kind(content_type)) {
	case BODY_JSON:
		return request_parse_json(cfg, body, len, err);
	case BODY_LINES:
		return request_parse_lines(cfg, body, len, err);
	case BODY_SNIFF:
		if (request_sniff_json(body, len))
			return request_parse_json(cfg, body, len, err);
		return request_parse_lines(cfg, body, len, err);
	default:
		request_fail(err, 415, "unsupported_media_type",
		    "Content-Type must be application/json or text/plain");
		return NULL;
	}
}

void
request_spec_free(struct request_spec *spec)
{
	size_t i;

	if (spec == NULL)
		return;
	for (i = 0; i < spec->count; i++) {
		struct fetch_spec *item = &spec->items[i];

		free(item->url);
		json_decref(item->id);
		curl_slist_free_all(item->headers);
	}
	free(spec);
}
