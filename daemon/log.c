/*
 * Leveled logging to stderr.  Each line is formatted into one buffer and
 * written with one write(2), so lines from worker threads never
 * interleave.  The level is an atomic so a reload can change it while
 * workers log.
 *
 * Where a line goes decides its prefix, once, in log_init: into the
 * journal a line starts with <N> (journald stamps the time itself);
 * anywhere else with an RFC 3339 UTC time in milliseconds.  stderr is the
 * journal only when JOURNAL_STREAM names its device and inode, as
 * systemd.exec(5) says: a child whose stderr was redirected to a file
 * still inherits the variable.
 */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static atomic_int log_level = LOG_LVL_INFO;
static int log_journal; /* prefix lines with <N> for journald */

static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* syslog priorities: err, warning, info, debug */
static const int level_prio[] = {3, 4, 6, 7};

/* "DEV:INO" (decimal, as systemd writes it) -> 0, or -1 when malformed. */
static int
log_parse_stream(const char *s, uintmax_t *dev, uintmax_t *ino)
{
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	*dev = strtoumax(s, &end, 10);
	if (errno != 0 || *end != ':' || end[1] < '0' || end[1] > '9')
		return -1;
	*ino = strtoumax(end + 1, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	return 0;
}

/* Is stderr the journal stream that JOURNAL_STREAM names? */
static int
log_stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	uintmax_t dev, ino;
	struct stat st;

	if (env == NULL || log_parse_stream(env, &dev, &ino) == -1)
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

void
log_init(enum log_level level)
{
	log_journal = log_stderr_is_journal();
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

/*
 * The line's prefix into buf: "<N>" for the journal, else
 * "2026-01-02T03:04:05.678Z fanoutd: LEVEL: ".  Digits by hand rather
 * than strftime: no locale, and nothing but gmtime_r's reentrant state.
 */
static size_t
log_prefix(char *buf, size_t size, enum log_level level)
{
	struct timespec ts;
	struct tm tm;
	int n;

	if (log_journal)
		n = snprintf(buf, size, "<%d>", level_prio[level]);
	else if (clock_gettime(CLOCK_REALTIME, &ts) == -1 ||
	         gmtime_r(&ts.tv_sec, &tm) == NULL)
		n = snprintf(buf, size, "fanoutd: %s: ", level_names[level]);
	else
		n = snprintf(buf, size,
		    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ fanoutd: %s: ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
		    level_names[level]);
	return n < 0 ? 0 : (size_t)n;
}

static void
log_vemit(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	char line[2048];
	size_t len;
	int n;

	if ((int)level > atomic_load(&log_level))
		return;
	len = log_prefix(line, sizeof(line), level);
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

const char *
log_escape(const char *text, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)text;
	size_t n = 0;

	for (; *p != '\0' && n + 8 < len; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '\\' && *p != '"') {
			buf[n++] = (char)*p;
			continue;
		}
		buf[n++] = '\\';
		buf[n++] = 'x';
		buf[n++] = hex[*p >> 4];
		buf[n++] = hex[*p & 15];
	}
	if (*p != '\0')
		memcpy(buf + n, "...", 3), n += 3;
	buf[n] = '\0';
	return buf;
}
