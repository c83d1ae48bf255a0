/*
 * config_compat: what old libconfig releases get silently wrong, mended in
 * the config text before libconfig parses it.  One switch per problem,
 * each keyed on the first libconfig release that no longer has it; when
 * every switch is 0 the module is a pass-through.  See config_compat.c
 * for the versions and how they were checked.
 */
#ifndef FANOUTD_CONFIG_COMPAT_H
#define FANOUTD_CONFIG_COMPAT_H

#include <libconfig.h>

/* True when the libconfig compiled against is older than maj.min. */
#define CONFIG_COMPAT_BEFORE(maj, min)                                         \
	(LIBCONFIG_VER_MAJOR < (maj) ||                                        \
	    (LIBCONFIG_VER_MAJOR == (maj) && LIBCONFIG_VER_MINOR < (min)))

/* Decimal integers over 32 bits without an L: truncated by 1.5. */
#define CONFIG_COMPAT_WIDE_DECIMAL CONFIG_COMPAT_BEFORE(1, 6)
/* Hex integers over 32 bits without an L: truncated; no fixed release. */
#define CONFIG_COMPAT_WIDE_HEX 1
/* An unclosed comment or string at the end: no fixed release. */
#define CONFIG_COMPAT_UNCLOSED 1

#define CONFIG_COMPAT_NEEDED                                                   \
	(CONFIG_COMPAT_WIDE_DECIMAL || CONFIG_COMPAT_WIDE_HEX ||               \
	    CONFIG_COMPAT_UNCLOSED)

/*
 * Mend text for the libconfig in use.  *mended is set to a new text to
 * parse instead (the caller frees it), or to NULL when text is fine as it
 * is.  What cannot be mended is passed to report, once per problem, with
 * its line.  Returns 0, or -1 when out of memory.
 */
int config_compat_mend(const char *text, char **mended,
    void (*report)(void *arg, int line, const char *reason), void *arg);

#endif
