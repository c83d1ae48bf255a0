/*
 * libFuzzer harness for request_parse(): the first byte picks the
 * Content-Type, the rest is the body.  Whatever the input, parsing must
 * return a spec or an error, never crash, leak or read out of bounds; and
 * so must request_check_url(), which the worker runs on each item's URL.
 */
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "request.h"

static const char *const content_types[] = {
    NULL,
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/json; charset=utf-8",
    "image/png",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config *cfg;
	struct request_error err;
	struct request_spec *spec;
	const char *ctype, *message;
	enum fetch_error error;
	size_t i;

	if (cfg == NULL)
		cfg = config_default();
	if (size == 0)
		return 0;
	ctype = content_types[data[0] % (sizeof(content_types) /
	                                    sizeof(content_types[0]))];
	spec =
	    request_parse(cfg, ctype, (const char *)data + 1, size - 1, &err);
	if (spec == NULL && (err.status < 400 || err.code == NULL))
		abort(); /* a failure must say why */
	for (i = 0; spec != NULL && i < spec->count; i++) {
		const struct fetch_spec *item = &spec->items[i];

		if (item->error == FETCH_OK)
			free(request_check_url(item->url, &error, &message));
	}
	request_spec_free(spec);
	return 0;
}
