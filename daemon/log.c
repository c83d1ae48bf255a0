/*
 * Leveled logging to stderr.  Each line is formatted into one buffer and
 * written with one write(2), so lines from worker threads never
 * interleave.  The level is an atomic so a reload can change it while
 * workers log.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

static atomic_int log_level = LOG_LVL_INFO;
static int log_journal; /* prefix lines with <N> for journald */

static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* syslog priorities: err, warning, info, debug */
static const int level_prio[] = {3, 4, 6, 7};

void
log_init(enum log_level level)
{
	/* systemd sets JOURNAL_STREAM when stderr is a journal stream. */
	log_journal = getenv("JOURNAL_STREAM") != NULL;
	log_set_level(level);
}

void
log_set_level(enum log_level level)
{
	atomic_store(&log_level, level);
}

enum log_level
log_get_level(void)
{
	return atomic_load(&log_level);
}

int
log_level_parse(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

static void
log_vemit(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	char line[2048];
	size_t len = 0;
	int n;

	if ((int)level > atomic_load(&log_level))
		return;
	if (log_journal)
		len = (size_t)snprintf(
		    line, sizeof(line), "<%d>", level_prio[level]);
	else
		len = (size_t)snprintf(
		    line, sizeof(line), "fanoutd: %s: ", level_names[level]);
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	len = n < 0 ? len : len + (size_t)n;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	if (errnum != 0) {
		n = snprintf(
		    line + len, sizeof(line) - len, ": %s", strerror(errnum));
		len = n < 0 ? len : len + (size_t)n;
		if (len > sizeof(line) - 2)
			len = sizeof(line) - 2;
	}
	line[len++] = '\n';
	/* A short write to stderr has nowhere better to be reported. */
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}

#define LOG_FN(name, level, with_errno)                                        \
	void name(const char *fmt, ...)                                        \
	{                                                                      \
		va_list ap;                                                    \
		int saved = errno;                                             \
		va_start(ap, fmt);                                             \
		log_vemit(level, with_errno ? saved : 0, fmt, ap);             \
		va_end(ap);                                                    \
		errno = saved;                                                 \
	}

LOG_FN(log_warn, LOG_LVL_WARN, 1)
LOG_FN(log_warnx, LOG_LVL_WARN, 0)
LOG_FN(log_info, LOG_LVL_INFO, 0)
LOG_FN(log_debug, LOG_LVL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vemit(LOG_LVL_ERROR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LVL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
