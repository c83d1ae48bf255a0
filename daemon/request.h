/*
 * request: a client's POST /fetch body turned into validated items.
 * Pure: no I/O, no logging.  The envelope is validated as a whole
 * (errors fail the request); each item is validated alone (errors become
 * that item's result).
 */
#ifndef FANOUTD_REQUEST_H
#define FANOUTD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "fetch.h"

struct config;
struct fields_arena;

/* One item: what to fetch, and what the answer echoes of it. */
struct request_item {
	struct fetch_spec fetch; /* fetch.url points at url */
	char *url;               /* as given; NULL when not a string */
	json_t *id;              /* echoed back; NULL when absent */
	enum fetch_error error;  /* FETCH_OK, or why it is not fetched */
	char *error_message;     /* heap, with error */
};

struct request_spec {
	struct request_item *items;
	size_t count;
	size_t concurrency;         /* most items at once; 0: the default */
	struct fields_arena *arena; /* what the items' fields share */
};

/* A whole-request failure: HTTP status, API error code and message. */
struct request_error {
	int status;
	const char *code;
	char message[512];
};

/*
 * Parse body (len bytes, not NUL-terminated) sent with content_type
 * (NULL when absent).  Returns the spec, or NULL with err filled.
 */
struct request_spec *request_parse(const struct config *cfg,
    const char *content_type, const char *body, size_t len,
    struct request_error *err);
/*
 * The items of GET /probe: each target URL, under module (NULL: none).
 * NULL with err filled when there are more than limits.max_urls, the
 * module is unknown or memory runs out.  A target that is not UTF-8 is
 * an invalid_url item whose url keeps its bytes as given.
 */
struct request_spec *request_from_targets(const struct config *cfg,
    const char *const *targets, size_t n, const char *module,
    struct request_error *err);
void request_spec_free(struct request_spec *spec);

#endif
