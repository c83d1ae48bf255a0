/*
 * libFuzzer harness for config_load(): the input is written to a file and
 * loaded.  Every input must give a config or error text, never a crash or
 * a leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	char err[4096];
	struct config *cfg;
	FILE *f;

	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/tmp/fuzz_config.%d.conf",
		    (int)getpid());
	if ((f = fopen(path, "w")) == NULL)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	err[0] = '\0';
	cfg = config_load(path, err, sizeof(err));
	if (cfg == NULL && err[0] == '\0')
		abort(); /* a failure must say why */
	config_unref(cfg);
	return 0;
}
