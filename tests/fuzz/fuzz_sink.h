/*
 * What the fuzzers render into: a growing buffer behind a jansson-style
 * emit callback, as the daemon's writers hand their text on.
 */
#ifndef FANOUTD_FUZZ_SINK_H
#define FANOUTD_FUZZ_SINK_H

#include <stdlib.h>
#include <string.h>

struct sink {
	char *buf;
	size_t len, cap;
};

/* Append size bytes; aborts when memory runs out (a fuzzer has no use
 * for that path). */
static inline int
sink_emit(const char *data, size_t size, void *arg)
{
	struct sink *sink = arg;

	if (sink->len + size > sink->cap) {
		sink->cap = (sink->len + size) * 2;
		if ((sink->buf = realloc(sink->buf, sink->cap)) == NULL)
			abort();
	}
	memcpy(sink->buf + sink->len, data, size);
	sink->len += size;
	return 0;
}

#endif
