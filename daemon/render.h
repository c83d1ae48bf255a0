/*
 * render: results, summaries and error bodies as JSON text.  Results and
 * summaries are written straight into a render_out buffer that flushes
 * through a callback, so a large answer is written in one pass and never
 * held as one giant tree.  Pure: no I/O, no logging.
 */
#ifndef FANOUTD_RENDER_H
#define FANOUTD_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "fetch.h"
#include "request.h"
#include "summary.h"

/*
 * Text on its way to an emit callback, gathered so that a whole small
 * answer goes out in one piece.  Kept on the caller's stack; only
 * render.c touches the fields.
 */
#define RENDER_OUT_SIZE 8192

struct render_out {
	json_dump_callback_t emit;
	void *data;
	size_t len;
	int rc; /* -1 once anything failed */
	char buf[RENDER_OUT_SIZE];
};

void render_out_init(
    struct render_out *out, json_dump_callback_t emit, void *data);
void render_out_add(struct render_out *out, const char *text, size_t len);
/*
 * A string literal, without its NUL.  "" lit "" makes anything but a
 * literal a compile error: sizeof a pointer would cut the text short.
 */
#define RENDER_OUT_LITERAL(out, lit)                                           \
	render_out_add(out, "" lit "", sizeof(lit) - 1)
/* Emit what is gathered; 0, or -1 when any step since init failed. */
int render_out_flush(struct render_out *out);

/* The result object for item index, compact. */
void render_result_out(struct render_out *out, size_t index,
    const struct request_item *item, const struct fetch_result *result);
/* The summary object, compact. */
void render_summary_out(struct render_out *out, const struct summary *summary);

/* The same, each emitted in one piece; 0 or -1. */
int render_result(size_t index, const struct request_item *item,
    const struct fetch_result *result, json_dump_callback_t emit, void *data);
int render_summary(
    const struct summary *summary, json_dump_callback_t emit, void *data);

/* Dump value compactly through emit, as an id is written; 0 or -1. */
int render_dump(json_t *value, json_dump_callback_t emit, void *data);

/*
 * The buffered answer, {"results":[...],"summary":{...}} and a newline,
 * written in pieces: open, each item in index order (first says whether
 * a comma goes before it), close.
 */
void render_answer_open(struct render_out *out);
void render_answer_item(struct render_out *out, bool first, size_t index,
    const struct request_item *item, const struct fetch_result *result);
void render_answer_close(struct render_out *out, const struct summary *summary);
/* NDJSON: one result line, and the closing {"summary":...} line. */
void render_line(struct render_out *out, size_t index,
    const struct request_item *item, const struct fetch_result *result);
void render_summary_line(struct render_out *out, const struct summary *summary);

/*
 * The decimal digits of v at p (room for 20); returns the end.  The one
 * integer formatter of the daemon: printf's is slower, and this one needs
 * no terminator.
 */
char *render_uint(char *p, unsigned long long v);

/*
 * The length of the well-formed UTF-8 sequence at s (NUL-terminated), or
 * 0 when there is none; then *bad is the length of the maximal subpart
 * of one (at least 1), which a writer replaces with one U+FFFD.
 */
size_t render_utf8_len(const unsigned char *s, size_t *bad);

/* {"error":{"code":..,"message":..}} as a heap string. */
char *render_error(const char *code, const char *message);

#endif
