/*
 * request: the POST /fetch body turned into a validated request_spec.
 *
 * Three layers of validation.  The envelope (content type, JSON syntax,
 * the object's request-level fields, the item count) fails the whole
 * request with a request_error.  Each item is then read alone: whatever
 * is wrong with its shape or its fields becomes that item's error, so
 * one bad item never costs the client the other answers.  The URL itself
 * is checked on the worker that fetches it (url.c, from fetch.c):
 * curl_url() is most of the cost of reading an item, and a worker runs it
 * in parallel with the other fetches instead of holding the loop thread.
 *
 * The fields (timeout_ms, headers, expect, ...) are fields.c's: the
 * request's are resolved once, over the config's defaults and its
 * module, and each item starts from them.  What they make is kept in the
 * request's arena and shared by the items.  Each item owns its URL, its
 * id reference, its merged header list and its error message.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "fields.h"
#include "request.h"

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

/* The first error of an item sticks; -1 for the caller to return. */
static int
item_fail(
    struct request_item *item, enum fetch_error error, const char *message)
{
	if (item->error == FETCH_OK) {
		item->error = error;
		/* NULL (out of memory) still fails the item: render says "". */
		item->error_message = strdup(message);
	}
	return -1;
}

/* Keep the URL as given, for the echo; a C string cannot keep a NUL. */
static int
item_set_url(struct request_item *item, json_t *url)
{
	const char *s = json_string_value(url);
	size_t len = json_string_length(url);

	if (memchr(s, '\0', len) != NULL)
		return item_fail(
		    item, FETCH_E_INVALID_URL, "URL contains a NUL byte");
	if ((item->url = strndup(s, len)) == NULL)
		return item_fail(item, FETCH_E_OTHER, "out of memory");
	item->fetch.url = item->url;
	return 0;
}

/*
 * The item's fields over the request's (rf), then the rules that span
 * fields, then its fetch spec.  Its id and url are taken first, so that
 * even an invalid item echoes them back.
 */
static void
item_parse(const struct config *cfg, const struct fields *rf,
    struct fields_arena *arena, json_t *obj, struct request_item *item)
{
	struct fields f = *rf;
	char why[512];
	json_t *url = obj;

	if (json_is_object(obj)) {
		item->id = json_incref(json_object_get(obj, "id"));
		url = json_object_get(obj, "url");
	}
	if (!json_is_string(url)) {
		item_fail(item, FETCH_E_INVALID_URL,
		    json_is_object(obj) ? "item has no string \"url\""
		                        : "item is not a URL string or object");
		return;
	}
	if (item_set_url(item, url) == -1)
		return;
	if ((json_is_object(obj) && fields_apply(&f, obj, FIELDS_ITEM, cfg,
	                                arena, why, sizeof(why)) == -1) ||
	    fields_finish(&f, why, sizeof(why)) == -1 ||
	    fields_to_spec(&f, &item->fetch, why, sizeof(why)) == -1)
		item_fail(item, FETCH_E_INVALID_URL, why);
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
	        NULL ||
	    (spec->arena = fields_arena_new()) == NULL) {
		free(spec);
		request_fail(err, 500, "internal", "out of memory");
		return NULL;
	}
	spec->count = count;
	spec->items = (struct request_item *)(spec + 1);
	return spec;
}

/*
 * The most items of this request fetched at once: an integer >= 1.  The
 * pool caps it at workers.max_per_request; a client can only ask for
 * less (to spare its targets), never for every worker.
 */
static int
concurrency_read(json_t *v, size_t *concurrency, struct request_error *err)
{
	json_int_t n;

	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || (n = json_integer_value(v)) < 1) {
		request_fail(err, 400, "invalid_request",
		    "\"concurrency\" is not an integer >= 1");
		return -1;
	}
	*concurrency = n > 1000000 ? 1000000 : (size_t)n;
	return 0;
}

/*
 * The request as a whole: a bare array, or an object around "urls"
 * whose other members are the request's fields.  rf starts from the
 * config's defaults.
 */
static int
envelope_parse(const struct config *cfg, json_t *root, struct fields *rf,
    struct fields_arena *arena, json_t **urls, size_t *concurrency,
    struct request_error *err)
{
	char why[512];

	if (json_is_array(root)) {
		*urls = root;
		return 0;
	}
	if (!json_is_object(root)) {
		request_fail(err, 400, "invalid_request",
		    "the body is not a JSON array or object");
		return -1;
	}
	*urls = json_object_get(root, "urls");
	if (!json_is_array(*urls)) {
		request_fail(err, 400, "invalid_request",
		    *urls == NULL ? "the object has no \"urls\" array"
		                  : "\"urls\" is not an array");
		return -1;
	}
	if (concurrency_read(
	        json_object_get(root, "concurrency"), concurrency, err) == -1)
		return -1;
	if (fields_apply(
	        rf, root, FIELDS_REQUEST, cfg, arena, why, sizeof(why)) == -1 ||
	    fields_finish(rf, why, sizeof(why)) == -1) {
		request_fail(err, 400, "invalid_request", "%s", why);
		return -1;
	}
	return 0;
}

static struct request_spec *
request_parse_json(const struct config *cfg, const char *body, size_t len,
    struct request_error *err)
{
	struct fields_arena *arena = fields_arena_new();
	struct request_spec *spec = NULL;
	json_t *root, *urls = NULL;
	size_t concurrency = 0, i;
	json_error_t jerr;
	struct fields rf;

	/*
	 * DECODE_ANY: a scalar body is a shape error (invalid_request), not
	 * a syntax error.  ALLOW_NUL: a "\u0000" in one URL fails that item
	 * alone; every string is therefore handled with its length.
	 * jansson itself rejects invalid UTF-8 and caps the nesting depth.
	 */
	root = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (root == NULL || arena == NULL) {
		if (arena == NULL ||
		    json_error_code(&jerr) == json_error_out_of_memory)
			request_fail(err, 500, "internal", "out of memory");
		else
			request_fail(err, 400, "invalid_json",
			    "invalid JSON: %s at line %d column %d", jerr.text,
			    jerr.line, jerr.column);
		json_decref(root);
		fields_arena_free(arena);
		return NULL;
	}
	fields_defaults(&rf, cfg);
	if (envelope_parse(cfg, root, &rf, arena, &urls, &concurrency, err) ==
	        0 &&
	    (spec = spec_new(cfg, json_array_size(urls), err)) != NULL) {
		fields_arena_free(spec->arena);
		spec->arena = arena;
		arena = NULL;
		spec->concurrency = concurrency;
		for (i = 0; i < spec->count; i++)
			item_parse(cfg, &rf, spec->arena,
			    json_array_get(urls, i), &spec->items[i]);
	}
	fields_arena_free(arena);
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
line_parse(const struct config *cfg, const struct fields *rf,
    struct fields_arena *arena, const char *line, size_t len,
    struct request_item *item)
{
	json_t *url;

	/* jansson checks UTF-8 here, so the echo is always valid JSON. */
	if ((url = json_stringn(line, len)) == NULL) {
		item_fail(item, FETCH_E_INVALID_URL, "line is not valid UTF-8");
		return;
	}
	item_parse(cfg, rf, arena, url, item);
	json_decref(url);
}

static struct request_spec *
request_parse_lines(const struct config *cfg, const char *body, size_t len,
    struct request_error *err)
{
	struct request_spec *spec;
	size_t pos = 0, count = 0, linelen, i = 0;
	const char *line;
	struct fields rf;

	while (line_next(body, len, &pos, &line, &linelen))
		count += line_is_item(line, linelen);
	if ((spec = spec_new(cfg, count, err)) == NULL)
		return NULL;
	fields_defaults(&rf, cfg);
	pos = 0;
	while (line_next(body, len, &pos, &line, &linelen)) {
		if (line_is_item(line, linelen))
			line_parse(cfg, &rf, spec->arena, line, linelen,
			    &spec->items[i++]);
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

struct request_spec *
request_from_targets(const struct config *cfg, const char *const *targets,
    size_t n, const char *module, struct request_error *err)
{
	struct request_spec *spec = spec_new(cfg, n, err);
	json_t *obj = NULL, *url;
	struct fields rf;
	char why[512];
	size_t i;

	if (spec == NULL)
		return NULL;
	fields_defaults(&rf, cfg);
	if (module != NULL &&
	    ((obj = json_pack("{s:s}", "module", module)) == NULL ||
	        fields_apply(&rf, obj, FIELDS_REQUEST, cfg, spec->arena, why,
	            sizeof(why)) == -1 ||
	        fields_finish(&rf, why, sizeof(why)) == -1)) {
		request_fail(err, obj == NULL ? 500 : 400,
		    obj == NULL ? "internal" : "invalid_request", "%s",
		    obj == NULL ? "out of memory" : why);
		json_decref(obj);
		request_spec_free(spec);
		return NULL;
	}
	json_decref(obj);
	for (i = 0; i < n; i++) {
		if ((url = json_string(targets[i])) != NULL)
			item_parse(cfg, &rf, spec->arena, url, &spec->items[i]);
		else {
			/* Never fetched; kept for the probe's target label,
			 * which replaces what is not UTF-8. */
			spec->items[i].url = strdup(targets[i]);
			item_fail(&spec->items[i], FETCH_E_INVALID_URL,
			    "target is not valid UTF-8");
		}
		json_decref(url);
	}
	return spec;
}

void
request_spec_free(struct request_spec *spec)
{
	size_t i;

	if (spec == NULL)
		return;
	for (i = 0; i < spec->count; i++) {
		struct request_item *item = &spec->items[i];

		free(item->url);
		free(item->error_message);
		json_decref(item->id);
		curl_slist_free_all(item->fetch.headers);
	}
	fields_arena_free(spec->arena);
	free(spec);
}
