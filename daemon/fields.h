/*
 * fields: what a request, an item or a module may set about its fetches
 * (timeout_ms, method, headers, expect, capture, body, retries, resolve,
 * ...), read from JSON, checked, and resolved into a fetch_spec.  Pure:
 * no I/O, no logging.
 *
 * The levels an item's fields come from, each overriding the ones before
 * it: the config, the request's module, the request, the item's module,
 * the item.  Headers merge by name across the levels instead (a later
 * level wins a name).  What a field makes (compiled expectations,
 * decoded bodies, lists) goes into an arena that the request owns and
 * its items borrow from, so a request-level expect serves 1000 items as
 * one compiled spec.
 */
#ifndef FANOUTD_FIELDS_H
#define FANOUTD_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "fetch.h"

struct config;
struct fields_arena;

enum fields_scope {
	FIELDS_MODULE,  /* a config module: "module" is not a field here */
	FIELDS_REQUEST, /* the request object: "urls" and "concurrency" are
	                   the caller's */
	FIELDS_ITEM,    /* an item object: "url" and "id" are the caller's */
};

/* The most header objects an item's headers merge from. */
#define FIELDS_HEADER_LEVELS 4

/* Every field's value as resolved so far. */
struct fields {
	int timeout_ms;
	bool follow_redirects;
	enum fetch_method method;
	bool verify_tls;
	int retries, retry_backoff_ms;
	size_t capture;
	const char *const *capture_headers;
	size_t ncapture_headers;
	const char *body, *content_type;
	size_t body_len;
	struct curl_slist *resolve;
	long ip_resolve;
	const struct expect_spec *expect;
	json_t *headers[FIELDS_HEADER_LEVELS]; /* borrowed, in level order */
	size_t nheaders;
};

struct fields_arena *fields_arena_new(void);
/* Accepts NULL. */
void fields_arena_free(struct fields_arena *arena);

/* The config's defaults. */
void fields_defaults(struct fields *f, const struct config *cfg);
/*
 * Apply the fields of obj (and of the module it names first) over f.
 * Keys the scope leaves to its caller are skipped; any other unknown key
 * is an error.  obj must live as long as f is used (headers are
 * borrowed).  Returns 0, or -1 with a message that names the field.
 */
int fields_apply(struct fields *f, json_t *obj, enum fields_scope scope,
    const struct config *cfg, struct fields_arena *arena, char *err,
    size_t errlen);
/* The rules that span fields, once every level is applied. */
int fields_finish(const struct fields *f, char *err, size_t errlen);
/*
 * spec from f; the merged header list is made here and owned by the
 * caller (curl_slist_free_all).  -1 with err when the headers are too
 * long together or memory runs out.
 */
int fields_to_spec(
    const struct fields *f, struct fetch_spec *spec, char *err, size_t errlen);

/*
 * Check every module of cfg with the code that checks a request; one
 * "FILE:LINE: modules: NAME: reason" line per bad module.  0 or -1.
 */
int fields_check_modules(const struct config *cfg, char *err, size_t errlen);

#endif
