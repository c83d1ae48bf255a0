/*
 * log: leveled messages to stderr, one line each.  When stderr is the
 * journal (JOURNAL_STREAM names its device and inode) every line carries
 * a <N> priority prefix so journald keeps the level; elsewhere it starts
 * with an RFC 3339 UTC time in milliseconds.  Thread-safe: each line is
 * written with a single write(2).
 */
#ifndef FANOUTD_LOG_H
#define FANOUTD_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Decide on prefixes (is stderr the journal?) and set the first level. */
void log_init(enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int log_level_parse(const char *name);

/*
 * text as one field of a log line: every byte outside printable ASCII,
 * and the space, backslash and double quote, as \xHH, so that text from
 * a client cannot split, forge or hide fields; cut to fit len (at least
 * 12) with "..." when longer.  Returns buf.
 */
const char *log_escape(const char *text, char *buf, size_t len);

/* log_warn appends strerror(errno); log_warnx does not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Start-up only: log at error level and exit(1). */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
