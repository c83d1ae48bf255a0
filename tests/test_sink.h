/*
 * What the unit tests render into: a fixed buffer behind a jansson-style
 * emit callback, kept NUL-terminated so that a test can compare it as a
 * string.  Text that does not fit fails the emit, as a full socket would.
 */
#ifndef FANOUTD_TESTS_TEST_SINK_H
#define FANOUTD_TESTS_TEST_SINK_H

#include <stddef.h>
#include <string.h>

struct sink {
	char text[65536];
	size_t len;
};

static inline int
sink_emit(const char *data, size_t size, void *arg)
{
	struct sink *sink = arg;

	if (size >= sizeof(sink->text) - sink->len)
		return -1;
	memcpy(sink->text + sink->len, data, size);
	sink->len += size;
	sink->text[sink->len] = '\0';
	return 0;
}

#endif
