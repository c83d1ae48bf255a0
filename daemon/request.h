/*
 * request: a client's POST /fetch body turned into a validated list of
 * fetch specs.  Pure: no I/O, no logging.  The envelope is validated as a
 * whole (errors fail the request); each item is validated alone (errors
 * become that item's result).
 */
#ifndef FANOUTD_REQUEST_H
#define FANOUTD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "fetch.h"

struct config;

struct request_spec {
	struct fetch_spec *items;
	size_t count;
	size_t concurrency; /* most items fetched at once; 0: the default */
};

/* A whole-request failure: HTTP status, API error code and message. */
struct request_error {
	int status;
	const char *code;
	char message[256];
};

/*
 * Parse body (len bytes, not NUL-terminated) sent with content_type
 * (NULL when absent).  Returns the spec, or NULL with err filled.
 */
struct request_spec *request_parse(const struct config *cfg,
    const char *content_type, const char *body, size_t len,
    struct request_error *err);
void request_spec_free(struct request_spec *spec);

/*
 * Validate one URL as fetch.c will see it: parsed by curl_url(), http or
 * https only, no user credentials.  Returns a heap copy of url as given
 * (curl parses it again, the same way), or NULL with *error and *message
 * set.  Safe on any thread: fetch.c calls it for every item and every
 * redirect hop.
 */
char *request_check_url(
    const char *url, enum fetch_error *error, const char **message);

#endif
