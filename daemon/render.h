/*
 * render: results, summaries and error bodies as JSON text.  Each result
 * is built as a small jansson object and dumped at once through a
 * callback, so a large answer is written in one pass and never held as
 * one giant tree.  Pure: no I/O, no logging.
 */
#ifndef FANOUTD_RENDER_H
#define FANOUTD_RENDER_H

#include <stddef.h>

#include <jansson.h>

#include "fetch.h"

/* Running counts for a fan-out's "summary". */
struct summary {
	size_t total, ok, failed;
	size_t status_counts[600]; /* by HTTP status; 0..599 */
	size_t error_counts[FETCH_E_COUNT];
	double elapsed_ms;
};

void summary_add(struct summary *summary, const struct fetch_result *result);

/* The result object for item index, written compactly through emit. */
int render_result(size_t index, const struct fetch_spec *spec,
    const struct fetch_result *result, json_dump_callback_t emit, void *data);
json_t *render_summary(const struct summary *summary);

/* Dump value compactly through emit; 0 or -1. */
int render_dump(json_t *value, json_dump_callback_t emit, void *data);

/* {"error":{"code":..,"message":..}} as a heap string. */
char *render_error(const char *code, const char *message);

#endif
