/*
 * config: libconfig file -> immutable struct config.
 *
 * One table, keys[], names every accepted key with its type, bounds,
 * default and place in struct config.  Defaults, type checks, range checks
 * and the unknown-key check all walk that table, so adding a key is one
 * line.  Loading starts from the defaults, walks the parsed tree once and
 * keeps going after an error, so the operator sees every mistake in one
 * run ("file:line: key: reason", one per line).  Checks that span keys
 * (max_urls against queue_limit, the token file) run after the walk.
 *
 * The result is never modified after config_load returns; readers share
 * it through an atomic reference count, so a reload can swap configs while
 * requests started under the old one still hold it.
 */
#include "autoconf.h"

#include <sys/stat.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <libconfig.h>

#include "config.h"
#include "config_compat.h"
#include "log.h"
#include "policy.h"
#include "tls.h"

/* A config file is a page or two; refuse to slurp anything huge. */
#define CONFIG_FILE_MAX (16 * 1024 * 1024)
/* A token is a short secret; anything longer is a wrong file. */
#define TOKEN_FILE_MAX 4096
/* Room for one reason, before "file:line: key: " is put in front. */
#define REASON_MAX 512

enum key_kind {
	KEY_INT,    /* int field, libconfig int or int64, range checked */
	KEY_INT64,  /* int64_t field, likewise */
	KEY_BOOL,   /* bool field */
	KEY_STRING, /* char * field, optional extra check */
	KEY_LEVEL,  /* int field, a log level name */
	KEY_CIDRS,  /* struct policy field, an array or list of CIDR strings */
};

struct key_spec {
	const char *group;
	const char *name;
	enum key_kind kind;
	size_t off; /* into struct config */
	int64_t min, max;
	int64_t def_num;
	const char *def_str;
	const char *const *def_list; /* NULL-terminated */
	/* Extra validation of a string; 0, or -1 with the reason in why. */
	int (*check)(const char *s, char *why, size_t whylen);
};

static int check_address(const char *, char *, size_t);
static int check_header_text(const char *, char *, size_t);
static int check_token(const char *, char *, size_t);

static const char *const default_allow_clients[] = {
    "127.0.0.0/8", "::1/128", NULL};
static const char *const default_deny_targets[] = {
    "169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", NULL};
static const char *const default_none[] = {NULL};

#define OFF(f) offsetof(struct config, f)
#define NUM(g, n, k, f, lo, hi, d)                                             \
	{                                                                      \
		.group = g, .name = n, .kind = k, .off = OFF(f), .min = lo,    \
		.max = hi, .def_num = d                                        \
	}
#define BOOLEAN(g, n, f, d)                                                    \
	{                                                                      \
		.group = g, .name = n, .kind = KEY_BOOL, .off = OFF(f),        \
		.def_num = d                                                   \
	}
#define TEXT(g, n, k, f, d, chk)                                               \
	{                                                                      \
		.group = g, .name = n, .kind = k, .off = OFF(f), .def_str = d, \
		.check = chk                                                   \
	}
#define CIDRS(g, n, f, d)                                                      \
	{                                                                      \
		.group = g, .name = n, .kind = KEY_CIDRS, .off = OFF(f),       \
		.def_list = d                                                  \
	}

static const struct key_spec keys[] = {
    TEXT("listen", "address", KEY_STRING, listen_address, "127.0.0.1",
        check_address),
    NUM("listen", "port", KEY_INT, listen_port, 0, 65535, 8080),
    BOOLEAN("listen", "reuse_port", reuse_port, 0),
    NUM("workers", "threads", KEY_INT, threads, 1, 10000, 256),
    NUM("workers", "max_per_request", KEY_INT, max_per_request, 0, 10000, 0),
    NUM("workers", "queue_limit", KEY_INT, queue_limit, 1, 1000000, 10000),
    NUM("workers", "idle_ms", KEY_INT, idle_ms, 0, 3600000, 120000),
    NUM("limits", "max_urls", KEY_INT, max_urls, 1, 1000000, 1000),
    NUM("limits", "max_request_bytes", KEY_INT64, max_request_bytes, 1,
        INT64_C(1) << 30, 1048576),
    NUM("limits", "max_response_bytes", KEY_INT64, max_response_bytes, 0,
        INT64_C(1) << 40, 1048576),
    NUM("limits", "max_capture_bytes", KEY_INT, max_capture_bytes, 0,
        16 * 1024 * 1024, 65536),
    NUM("limits", "request_timeout_ms", KEY_INT, request_timeout_ms, 1, 3600000,
        60000),
    NUM("limits", "client_timeout_ms", KEY_INT, client_timeout_ms, 100, 3600000,
        30000),
    NUM("limits", "read_timeout_ms", KEY_INT, read_timeout_ms, 100, 3600000,
        10000),
    NUM("limits", "send_timeout_ms", KEY_INT, send_timeout_ms, 100, 3600000,
        30000),
    NUM("limits", "max_client_connections", KEY_INT, max_client_connections, 0,
        1000000, 256),
    NUM("fetch", "timeout_ms", KEY_INT, timeout_ms, 1, 3600000, 10000),
    NUM("fetch", "connect_timeout_ms", KEY_INT, connect_timeout_ms, 1, 600000,
        3000),
    BOOLEAN("fetch", "follow_redirects", follow_redirects, 1),
    NUM("fetch", "max_redirects", KEY_INT, max_redirects, 0, 50, 5),
    NUM("fetch", "max_per_host", KEY_INT, max_per_host, 0, 10000, 0),
    TEXT("fetch", "user_agent", KEY_STRING, user_agent,
        "fanoutd/" PACKAGE_VERSION, check_header_text),
    BOOLEAN("fetch", "verify_tls", fetch_verify_tls, 1), /* tls.verify */
    TEXT("security", "auth_token", KEY_STRING, auth_token, "", check_token),
    TEXT("security", "auth_token_file", KEY_STRING, auth_token_file, "", NULL),
    CIDRS("security", "allow_clients", allow_clients, default_allow_clients),
    CIDRS("security", "deny_targets", deny_targets, default_deny_targets),
    CIDRS("security", "allow_targets", allow_targets, default_none),
    BOOLEAN("tls", "verify", verify_tls, 1),
    TEXT("tls", "ca_file", KEY_STRING, ca_file, "", check_header_text),
    TEXT("tls", "ca_path", KEY_STRING, ca_path, "", check_header_text),
    TEXT("tls", "client_cert", KEY_STRING, client_cert, "", check_header_text),
    TEXT("tls", "client_key", KEY_STRING, client_key, "", check_header_text),
    TEXT("log", "level", KEY_LEVEL, log_level, "info", NULL),
    BOOLEAN("log", "access_log", access_log, 1),
};

#define NKEYS                  (sizeof(keys) / sizeof(keys[0]))
#define FIELD(cfg, spec, type) ((type *)(void *)((char *)(cfg) + (spec)->off))

/* Where a key was set, for errors found after the walk; line 0 = unset. */
struct key_site {
	const char *file;
	int line;
};

struct loader {
	const char *path;
	struct config *cfg;
	char *err;
	size_t errlen;
	size_t used;
	int nerr;
	struct key_site site[NKEYS];
};

/*
 * Append "file:line: what: reason" as one line of err.  The count goes up
 * even when err is full, so a truncated report still fails the load.
 */
static void __attribute__((format(printf, 5, 6))) load_error(struct loader *ld,
    const char *file, int line, const char *what, const char *fmt, ...)
{
	char reason[REASON_MAX], where[32] = "";
	va_list ap;
	int n;

	ld->nerr++;
	if (ld->errlen == 0 || ld->used + 1 >= ld->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(where, sizeof(where), ":%d", line);
	n = snprintf(ld->err + ld->used, ld->errlen - ld->used,
	    "%s%s%s: %s: %s", ld->used > 0 ? "\n" : "",
	    file != NULL ? file : ld->path, where, what, reason);
	if (n < 0)
		return;
	ld->used += (size_t)n;
	if (ld->used >= ld->errlen)
		ld->used = ld->errlen - 1; /* truncated; err stays terminated */
}

/* An error about one setting, placed at its file and line. */
#define SETTING_ERROR(ld, s, what, ...)                                        \
	load_error(ld, config_setting_source_file(s),                          \
	    (int)config_setting_source_line(s), what, __VA_ARGS__)

/* Copy s for an error message: bounded, control bytes shown as '?'. */
static const char *
quote(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < len; i++)
		buf[i] =
		    (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = '\0';
	if (s[i] != '\0' && len > 4)
		memcpy(buf + len - 4, "...", 4);
	return buf;
}

/* What st_mode is, for "not a regular file (a FIFO)". */
static const char *
file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISSOCK(mode))
		return "a socket";
	return "something else";
}

/*
 * Open path for reading, refusing anything but a regular file before a
 * read can block: O_NONBLOCK makes the open of a FIFO return at once (a
 * reload runs on the loop thread, and -t must not hang), the type is
 * checked on the descriptor, then the flag goes for the reads.  Returns
 * the descriptor, or -1 with the reason in why.
 */
static int
file_open_regular(const char *path, char *why, size_t whylen)
{
	struct stat st;
	int fd, flags;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || (flags = fcntl(fd, F_GETFL)) == -1)
		snprintf(why, whylen, "%s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		snprintf(why, whylen, "not a regular file (%s)",
		    file_kind(st.st_mode));
	else if (fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1)
		snprintf(why, whylen, "%s", strerror(errno));
	else
		return fd;
	close(fd);
	return -1;
}

/* Read fd to its end into *buf (grown as needed), at most max + 1 bytes. */
static int
file_read_fd(int fd, size_t max, char **buf, size_t *len)
{
	size_t cap = 0;
	char *grown;
	ssize_t n;

	for (;;) {
		if (*len + 1 >= cap) {
			cap = cap == 0 ? 4096 : cap * 2;
			if (cap > max + 2)
				cap = max + 2; /* max + 1 bytes and the NUL */
			if ((grown = realloc(*buf, cap)) == NULL)
				return -1;
			*buf = grown;
		}
		n = read(fd, *buf + *len, cap - 1 - *len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return (int)n;
		if ((*len += (size_t)n) > max)
			return 0;
	}
}

/*
 * Read the regular file at path, at most max bytes, into a new
 * NUL-terminated buffer.  Returns 0, or -1 with the reason in why.
 */
static int
file_read(const char *path, size_t max, char **out, size_t *outlen, char *why,
    size_t whylen)
{
	char *buf = NULL;
	size_t len = 0;
	int fd, rc;

	if ((fd = file_open_regular(path, why, whylen)) == -1)
		return -1;
	if ((rc = file_read_fd(fd, max, &buf, &len)) == -1)
		snprintf(why, whylen, "%s", strerror(errno));
	else if (len > max)
		snprintf(why, whylen, "larger than %zu bytes", max);
	close(fd);
	if (rc == -1 || len > max) {
		free(buf);
		return -1;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

static int
check_address(const char *s, char *why, size_t whylen)
{
	unsigned char addr[16];
	char q[64];

	if (inet_pton(AF_INET, s, addr) == 1 ||
	    inet_pton(AF_INET6, s, addr) == 1)
		return 0;
	snprintf(why, whylen, "\"%s\" is not an IPv4 or IPv6 address",
	    quote(s, q, sizeof(q)));
	return -1;
}

/* Sent as a header: CR or LF would split it. */
static int
check_header_text(const char *s, char *why, size_t whylen)
{
	for (; *s != '\0'; s++) {
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f) {
			snprintf(why, whylen, "%s",
			    "must not contain control characters");
			return -1;
		}
	}
	return 0;
}

/* Compared against a Bearer header; never echo it, it is a secret. */
static int
check_token(const char *s, char *why, size_t whylen)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
			snprintf(why, whylen, "%s",
			    "must be printable ASCII without spaces");
			return -1;
		}
	}
	return 0;
}

static const char *
type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

/* Store one integer key, or report its wrong type or range. */
static void
set_number(struct loader *ld, const struct key_spec *k,
    const config_setting_t *s, const char *path)
{
	int type = config_setting_type(s);
	long long v;

	if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
		SETTING_ERROR(
		    ld, s, path, "expected an integer, got %s", type_name(s));
		return;
	}
	v = config_setting_get_int64(s);
	if (v < k->min || v > k->max) {
		SETTING_ERROR(ld, s, path,
		    "%lld is out of range (%" PRId64 "..%" PRId64 ")", v,
		    k->min, k->max);
		return;
	}
	if (k->kind == KEY_INT)
		*FIELD(ld->cfg, k, int) = (int)v;
	else
		*FIELD(ld->cfg, k, int64_t) = (int64_t)v;
}

static void
set_bool(struct loader *ld, const struct key_spec *k, const config_setting_t *s,
    const char *path)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		SETTING_ERROR(
		    ld, s, path, "expected a boolean, got %s", type_name(s));
		return;
	}
	*FIELD(ld->cfg, k, bool) = config_setting_get_bool(s) != 0;
}

static void
set_string(struct loader *ld, const struct key_spec *k,
    const config_setting_t *s, const char *path)
{
	char why[REASON_MAX], q[64];
	const char *v;
	char *copy;
	int level;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		SETTING_ERROR(
		    ld, s, path, "expected a string, got %s", type_name(s));
		return;
	}
	v = config_setting_get_string(s);
	if (k->kind == KEY_LEVEL) {
		if ((level = log_level_parse(v)) < 0)
			SETTING_ERROR(ld, s, path, "unknown level \"%s\" (%s)",
			    quote(v, q, sizeof(q)),
			    "want error, warn, info or debug");
		else
			*FIELD(ld->cfg, k, int) = level;
		return;
	}
	if (k->check != NULL && k->check(v, why, sizeof(why)) == -1) {
		SETTING_ERROR(ld, s, path, "%s", why);
		return;
	}
	if ((copy = strdup(v)) == NULL) {
		SETTING_ERROR(ld, s, path, "%s", strerror(errno));
		return;
	}
	free(*FIELD(ld->cfg, k, char *));
	*FIELD(ld->cfg, k, char *) = copy;
}

/* Replace the default list; every bad element is reported, not just one. */
static void
set_cidrs(struct loader *ld, const struct key_spec *k,
    const config_setting_t *s, const char *path)
{
	struct policy *policy = FIELD(ld->cfg, k, struct policy);
	char why[REASON_MAX], q[64], elem[192];
	int i, n, type = config_setting_type(s);

	if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
		SETTING_ERROR(ld, s, path,
		    "expected an array of CIDR strings, got %s", type_name(s));
		return;
	}
	policy_reset(policy);
	n = config_setting_length(s);
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		const char *v;

		snprintf(elem, sizeof(elem), "%s[%d]", path, i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			SETTING_ERROR(ld, e, elem,
			    "expected a CIDR string, got %s", type_name(e));
			continue;
		}
		v = config_setting_get_string(e);
		if (policy_add(policy, v, why, sizeof(why)) == -1)
			SETTING_ERROR(ld, e, elem, "\"%s\": %s",
			    quote(v, q, sizeof(q)), why);
	}
}

static const struct key_spec *
key_find(const char *group, const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].group, group) == 0 &&
		    strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool
group_known(const char *group)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].group, group) == 0)
			return true;
	return false;
}

static void
load_key(struct loader *ld, const config_setting_t *s, const char *group)
{
	const char *name = config_setting_name(s);
	const struct key_spec *k;
	char path[128];

	snprintf(path, sizeof(path), "%s.%s", group, name);
	if ((k = key_find(group, name)) == NULL) {
		SETTING_ERROR(ld, s, path, "unknown key");
		return;
	}
	ld->site[k - keys].file = config_setting_source_file(s);
	ld->site[k - keys].line = (int)config_setting_source_line(s);
	switch (k->kind) {
	case KEY_INT:
	case KEY_INT64:
		set_number(ld, k, s, path);
		break;
	case KEY_BOOL:
		set_bool(ld, k, s, path);
		break;
	case KEY_STRING:
	case KEY_LEVEL:
		set_string(ld, k, s, path);
		break;
	case KEY_CIDRS:
		set_cidrs(ld, k, s, path);
		break;
	}
}

/* The most modules, and the longest module name. */
#define MODULES_MAX     256
#define MODULE_NAME_MAX 64

/* A setting as the JSON value it stands for; NULL when it has none. */
static json_t *
setting_json(const config_setting_t *s)
{
	json_t *v = NULL, *e;
	int i, n = config_setting_length(s);

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return json_integer(config_setting_get_int64(s));
	case CONFIG_TYPE_FLOAT:
		return json_real(config_setting_get_float(s));
	case CONFIG_TYPE_STRING:
		return json_string(config_setting_get_string(s));
	case CONFIG_TYPE_BOOL:
		return json_boolean(config_setting_get_bool(s));
	case CONFIG_TYPE_ARRAY:
	case CONFIG_TYPE_LIST:
		v = json_array();
		break;
	case CONFIG_TYPE_GROUP:
		v = json_object();
		break;
	}
	for (i = 0; v != NULL && i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(s, i);

		if ((e = setting_json(m)) == NULL ||
		    (json_is_array(v) ? json_array_append_new(v, e)
		                      : json_object_set_new(v,
		                            config_setting_name(m), e)) != 0) {
			json_decref(v);
			return NULL;
		}
	}
	return v;
}

static bool
module_name_ok(const char *name)
{
	size_t len = strlen(name);

	return len > 0 && len <= MODULE_NAME_MAX &&
	       strspn(name,
	           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	           "0123456789_.-") == len;
}

/* One { name = ...; fields... } of the modules list. */
static void
load_module(struct loader *ld, const config_setting_t *g, const char *what)
{
	struct config *cfg = ld->cfg;
	struct config_module *m = &cfg->modules[cfg->nmodules];
	const char *name = NULL;
	char q[80];

	if (!config_setting_is_group(g)) {
		SETTING_ERROR(
		    ld, g, what, "expected a group, got %s", type_name(g));
		return;
	}
	if (config_setting_lookup_string(g, "name", &name) == CONFIG_FALSE ||
	    !module_name_ok(name)) {
		SETTING_ERROR(ld, g, what,
		    "needs a name of 1 to %d letters, "
		    "digits, '_', '.' or '-'",
		    MODULE_NAME_MAX);
		return;
	}
	if (config_module_find(cfg, name, strlen(name)) != NULL) {
		SETTING_ERROR(ld, g, what, "a second module named \"%s\"",
		    quote(name, q, sizeof(q)));
		return;
	}
	memset(m, 0, sizeof(*m));
	if ((m->fields = setting_json(g)) == NULL ||
	    json_object_del(m->fields, "name") != 0 ||
	    (m->name = strdup(name)) == NULL ||
	    (m->file = strdup(config_setting_source_file(g) != NULL
	                          ? config_setting_source_file(g)
	                          : ld->path)) == NULL) {
		SETTING_ERROR(ld, g, what,
		    "a value is not valid UTF-8, or "
		    "memory ran out");
		free(m->name);
		free(m->file);
		json_decref(m->fields);
		return;
	}
	m->line = (int)config_setting_source_line(g);
	cfg->nmodules++;
}

/*
 * modules = ( { name = "http_2xx"; expect = { status = [ "2xx" ]; }; } );
 * Only the shape is checked here; request_check_modules() checks the
 * fields, with the code that checks a request.
 */
static void
load_modules(struct loader *ld, const config_setting_t *list)
{
	int i, n = config_setting_length(list);
	char what[32];

	if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
		SETTING_ERROR(ld, list, "modules",
		    "expected a list of groups, "
		    "got %s",
		    type_name(list));
		return;
	}
	if (n > MODULES_MAX) {
		SETTING_ERROR(
		    ld, list, "modules", "more than %d modules", MODULES_MAX);
		return;
	}
	ld->cfg->modules = calloc((size_t)n + 1, sizeof(*ld->cfg->modules));
	if (ld->cfg->modules == NULL) {
		SETTING_ERROR(ld, list, "modules", "%s", strerror(ENOMEM));
		return;
	}
	for (i = 0; i < n; i++) {
		snprintf(what, sizeof(what), "modules[%d]", i);
		load_module(ld, config_setting_get_elem(list, i), what);
	}
}

const struct config_module *
config_module_find(const struct config *cfg, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < cfg->nmodules; i++)
		if (strlen(cfg->modules[i].name) == len &&
		    memcmp(cfg->modules[i].name, name, len) == 0)
			return &cfg->modules[i];
	return NULL;
}

/* Every top-level setting must be a known group of known keys. */
static void
load_root(struct loader *ld, const config_setting_t *root)
{
	int i, j, n = config_setting_length(root);

	for (i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(root, i);
		const char *name = config_setting_name(g);

		if (strcmp(name, "modules") == 0) {
			load_modules(ld, g);
			continue;
		}
		if (!group_known(name)) {
			SETTING_ERROR(ld, g, name, "unknown %s",
			    config_setting_is_group(g) ? "group" : "key");
			continue;
		}
		if (!config_setting_is_group(g)) {
			SETTING_ERROR(ld, g, name, "expected a group, got %s",
			    type_name(g));
			continue;
		}
		for (j = 0; j < config_setting_length(g); j++)
			load_key(ld, config_setting_get_elem(g, j), name);
	}
}

/* The site of a key by name, for errors raised after the walk. */
static const struct key_site *
site_of(const struct loader *ld, const char *group, const char *name)
{
	return &ld->site[key_find(group, name) - keys];
}

/* Check the bytes read and keep them as the token, trailing CR/LF off. */
static int
token_take(char *buf, size_t len, char **out, char *why, size_t whylen)
{
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	if (len == 0 || memchr(buf, '\0', len) != NULL) {
		snprintf(why, whylen, "token file %s",
		    len == 0 ? "is empty" : "contains a NUL byte");
		return -1;
	}
	if (check_token(buf, why, whylen) == -1)
		return -1;
	if ((*out = strdup(buf)) == NULL) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Read the whole token file (at most TOKEN_FILE_MAX bytes) into *out. */
static int
read_token_file(const char *path, char **out, char *why, size_t whylen)
{
	char reason[128], q[128];
	size_t len;
	char *buf;
	int rc;

	if (file_read(path, TOKEN_FILE_MAX, &buf, &len, reason,
	        sizeof(reason)) == -1) {
		snprintf(why, whylen, "cannot read \"%s\": %s",
		    quote(path, q, sizeof(q)), reason);
		return -1;
	}
	rc = token_take(buf, len, out, why, whylen);
	explicit_bzero(buf, len); /* a secret: leave no copy on the heap */
	free(buf);
	return rc;
}

/* The token comes from the setting or from the file, never both. */
static void
check_auth(struct loader *ld)
{
	const struct key_site *at = site_of(ld, "security", "auth_token_file");
	struct config *cfg = ld->cfg;
	char why[REASON_MAX];
	char *token;

	if (cfg->auth_token_file[0] == '\0')
		return;
	if (cfg->auth_token[0] != '\0') {
		load_error(ld, at->file, at->line, "security.auth_token_file",
		    "cannot be set together with security.auth_token");
		return;
	}
	if (read_token_file(cfg->auth_token_file, &token, why, sizeof(why)) ==
	    -1) {
		load_error(ld, at->file, at->line, "security.auth_token_file",
		    "%s", why);
		return;
	}
	free(cfg->auth_token);
	cfg->auth_token = token;
}

/* fetch.verify_tls is the old name of tls.verify; both may not disagree. */
static void
check_verify_alias(struct loader *ld)
{
	const struct key_site *alias = site_of(ld, "fetch", "verify_tls");
	const struct key_site *verify = site_of(ld, "tls", "verify");
	struct config *cfg = ld->cfg;

	if (alias->line == 0)
		return;
	if (verify->line == 0)
		cfg->verify_tls = cfg->fetch_verify_tls;
	else if (cfg->verify_tls != cfg->fetch_verify_tls)
		load_error(ld, alias->file, alias->line, "fetch.verify_tls",
		    "is the old name of tls.verify, which is set otherwise "
		    "(line %d)",
		    verify->line);
}

static const char *const tls_key_names[] = {
    [TLS_KEY_DEFAULT] = NULL,
    [TLS_KEY_CA_FILE] = "ca_file",
    [TLS_KEY_CA_PATH] = "ca_path",
    [TLS_KEY_CLIENT_CERT] = "client_cert",
    [TLS_KEY_CLIENT_KEY] = "client_key",
};

static struct tls_trust *
trust_build(
    const struct config *cfg, enum tls_key *key, char *why, size_t whylen)
{
	struct tls_settings s = {
	    cfg->ca_file, cfg->ca_path, cfg->client_cert, cfg->client_key};

	return tls_trust_new(&s, key, why, whylen);
}

/*
 * Every file a tls key names is read and checked here, so that -t and a
 * reload report it at its line; the trust built from them is kept.
 * With none named, config_load_trust() reads libcurl's default bundle.
 */
static void
check_tls(struct loader *ld)
{
	const struct key_site *key = site_of(ld, "tls", "client_key");
	struct config *cfg = ld->cfg;
	const struct key_site *at;
	char why[REASON_MAX], what[32];
	enum tls_key bad;

	check_verify_alias(ld);
	if (cfg->client_key[0] != '\0' && cfg->client_cert[0] == '\0') {
		load_error(ld, key->file, key->line, "tls.client_key",
		    "is set without tls.client_cert");
		return;
	}
	if (cfg->ca_file[0] == '\0' && cfg->ca_path[0] == '\0' &&
	    cfg->client_cert[0] == '\0')
		return;
	if ((cfg->trust = trust_build(cfg, &bad, why, sizeof(why))) != NULL)
		return;
	if (bad == TLS_KEY_DEFAULT) {
		load_error(ld, NULL, 0, "tls", "%s", why);
		return;
	}
	at = site_of(ld, "tls", tls_key_names[bad]);
	snprintf(what, sizeof(what), "tls.%s", tls_key_names[bad]);
	load_error(ld, at->file, at->line, what, "%s", why);
}

int
config_load_trust(struct config *cfg, char *err, size_t errlen)
{
	char why[REASON_MAX];
	enum tls_key bad;

	if (cfg->trust != NULL)
		return 0;
	if ((cfg->trust = trust_build(cfg, &bad, why, sizeof(why))) != NULL)
		return 0;
	snprintf(err, errlen, "%s: tls%s%s: %s",
	    cfg->file != NULL ? cfg->file : "config",
	    bad == TLS_KEY_DEFAULT ? "" : ".",
	    bad == TLS_KEY_DEFAULT ? "" : tls_key_names[bad], why);
	return -1;
}

/* Checks across keys, run once every key has its final value. */
static void
check_all(struct loader *ld)
{
	const struct key_site *urls = site_of(ld, "limits", "max_urls");
	const struct key_site *queue = site_of(ld, "workers", "queue_limit");
	const struct key_site *at = urls->line > 0 ? urls : queue;

	/* A request must always fit an idle pool, or it could never run. */
	if (ld->cfg->max_urls > ld->cfg->queue_limit)
		load_error(ld, at->file, at->line, "limits.max_urls",
		    "%d is above workers.queue_limit (%d)", ld->cfg->max_urls,
		    ld->cfg->queue_limit);
	check_auth(ld);
	check_tls(ld);
}

/*
 * Read the whole file.  Reading it ourselves makes a missing file report
 * errno's own words, refuses what is not a regular file, and lets
 * config_compat_mend see the text.
 */
static char *
read_config(struct loader *ld)
{
	char why[REASON_MAX];
	size_t len;
	char *text;

	if (file_read(ld->path, CONFIG_FILE_MAX, &text, &len, why,
	        sizeof(why)) == -1) {
		load_error(ld, NULL, 0, "cannot read", "%s", why);
		return NULL;
	}
	return text;
}

/* A problem config_compat_mend found in the text, as a syntax error. */
static void
compat_error(void *arg, int line, const char *reason)
{
	load_error(arg, NULL, line, "syntax error", "%s", reason);
}

/* Parse with libconfig, then walk the tree; errors go to ld. */
static void
parse_text(struct loader *ld, const char *text)
{
	config_t lc;

	config_init(&lc);
	if (config_read_string(&lc, text) == CONFIG_FALSE) {
		load_error(ld, config_error_file(&lc), config_error_line(&lc),
		    "syntax error", "%s", config_error_text(&lc));
	} else {
		load_root(ld, config_root_setting(&lc));
		check_all(ld);
	}
	config_destroy(&lc);
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct loader ld = {.path = path, .err = err, .errlen = errlen};
	char *text, *mended = NULL;

	if (errlen > 0)
		err[0] = '\0';
	if ((text = read_config(&ld)) == NULL)
		return NULL;
	if ((ld.cfg = config_default()) == NULL ||
	    (ld.cfg->file = strdup(path)) == NULL ||
	    config_compat_mend(text, &mended, compat_error, &ld) == -1)
		load_error(&ld, NULL, 0, "config", "%s", strerror(ENOMEM));
	else if (ld.nerr == 0)
		parse_text(&ld, mended != NULL ? mended : text);
	free(mended);
	free(text);
	if (ld.nerr > 0) {
		config_unref(ld.cfg);
		return NULL;
	}
	return ld.cfg;
}

/* Fill every key from the table; -1 only when memory runs out. */
static int
set_defaults(struct config *cfg)
{
	char why[REASON_MAX];
	const char *const *cidr;
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		const struct key_spec *k = &keys[i];

		switch (k->kind) {
		case KEY_INT:
			*FIELD(cfg, k, int) = (int)k->def_num;
			break;
		case KEY_INT64:
			*FIELD(cfg, k, int64_t) = k->def_num;
			break;
		case KEY_BOOL:
			*FIELD(cfg, k, bool) = k->def_num != 0;
			break;
		case KEY_STRING:
			if ((*FIELD(cfg, k, char *) = strdup(k->def_str)) ==
			    NULL)
				return -1;
			break;
		case KEY_LEVEL:
			*FIELD(cfg, k, int) = log_level_parse(k->def_str);
			break;
		case KEY_CIDRS:
			for (cidr = k->def_list; *cidr != NULL; cidr++)
				if (policy_add(FIELD(cfg, k, struct policy),
				        *cidr, why, sizeof(why)) == -1)
					return -1;
			break;
		}
	}
	return 0;
}

/* Free every string and list the table names; accepts half-built configs. */
static void
config_free(struct config *cfg)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (keys[i].kind == KEY_STRING)
			free(*FIELD(cfg, &keys[i], char *));
		else if (keys[i].kind == KEY_CIDRS)
			policy_reset(FIELD(cfg, &keys[i], struct policy));
	}
	for (i = 0; i < cfg->nmodules; i++) {
		free(cfg->modules[i].name);
		free(cfg->modules[i].file);
		json_decref(cfg->modules[i].fields);
	}
	free(cfg->modules);
	tls_trust_unref(cfg->trust);
	free(cfg->file);
	free(cfg);
}

struct config *
config_default(void)
{
	struct config *cfg;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return NULL;
	atomic_init(&cfg->refs, 1);
	if (set_defaults(cfg) == -1) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

struct config *
config_ref(struct config *cfg)
{
	/* The caller already holds a reference: nothing to order against. */
	atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
	return cfg;
}

/*
 * Release orders this holder's reads before the decrement; acquire, on
 * the last one, orders every holder's reads before the free.
 */
void
config_unref(struct config *cfg)
{
	if (cfg != NULL &&
	    atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
		config_free(cfg);
}
