/*
 * libFuzzer harness for request_parse(): the first byte picks the
 * Content-Type, the rest is the body.  Whatever the input, parsing must
 * return a spec or an error, never crash, leak or read out of bounds.
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
	const char *ctype;

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
	request_spec_free(spec);
	return 0;
}
