/*
 * config: the libconfig file, parsed into an immutable, reference-counted
 * struct.  One table of key specs (path, type, bounds, default) drives
 * defaults, type checks, range checks and the unknown-key check.  Every
 * error is reported as "file:line: key: reason", all of them, not just
 * the first.  Requests hold a reference, so a reload (SIGHUP) can swap
 * in a new config while fan-outs started under the old one finish.
 */
#ifndef FANOUTD_CONFIG_H
#define FANOUTD_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy.h"

struct json_t;

/*
 * A named preset of request fields (the config's "modules" list).  The
 * fields are kept as the JSON object the same fields make in a request,
 * so that request.c checks and applies them with the code that reads a
 * request.
 */
struct config_module {
	char *name;
	struct json_t *fields; /* every member but "name" */
	char *file;            /* where it was written, for errors */
	int line;
};
struct tls_trust;

struct config {
	atomic_int refs; /* see config_ref */
	char *file;      /* the path loaded; NULL for config_default() */

	char *listen_address;
	int listen_port;
	bool reuse_port; /* SO_REUSEPORT: several instances on one port */

	int threads;
	int max_per_request; /* 0: threads less an eighth (pool.h) */
	int queue_limit;
	int idle_ms;

	int max_urls;
	int64_t max_request_bytes;
	int64_t max_response_bytes;
	int max_capture_bytes;      /* most body bytes a result may carry */
	int request_timeout_ms;     /* whole fan-out deadline */
	int client_timeout_ms;      /* idle or slow client connection */
	int read_timeout_ms;        /* a request must arrive whole in this */
	int send_timeout_ms;        /* an answer must be read whole in this */
	int max_client_connections; /* per client address; 0: no cap */

	int timeout_ms;
	int connect_timeout_ms;
	int max_per_host; /* fetches at once per host:port; 0: no cap */
	bool follow_redirects;
	int max_redirects;
	char *user_agent;
	bool fetch_verify_tls; /* fetch.verify_tls, the alias of tls.verify */

	bool verify_tls;   /* tls.verify: the default of every fetch */
	char *ca_file;     /* "" = libcurl's default bundle (with ca_path "") */
	char *ca_path;     /* "" = none */
	char *client_cert; /* "" = none */
	char *client_key;  /* "" = in client_cert, or none */
	/*
	 * Not a key: the CA store and client identity read from the files
	 * above, shared by every fetch made under this config; a reference
	 * of its own, dropped with the config.  Built by config_load when a
	 * tls key names a file, else by config_load_trust().
	 */
	struct tls_trust *trust;

	char *auth_token;      /* "" = no auth; read from the file when set */
	char *auth_token_file; /* "" = none */
	struct policy allow_clients;
	struct policy deny_targets;
	struct policy allow_targets; /* empty = every target not denied */

	int log_level; /* enum log_level */
	bool access_log;

	struct config_module *modules;
	size_t nmodules;

	/*
	 * Not a key: connections made by a worker under one epoch may be
	 * reused under it.  A reload that changes what a connection was
	 * checked against starts a new one (fetch_conn_epoch()).
	 */
	unsigned conn_epoch;
};

/*
 * Read and validate path.  On failure returns NULL and writes every error,
 * one per line, into err.
 */
struct config *config_load(const char *path, char *err, size_t errlen);
/*
 * Give cfg its trust when config_load left it to the caller (no tls key
 * names a file: libcurl's default bundle, some 45 ms to read).  Call it
 * once, on a config not yet shared: at start-up, with -t and on reload.
 * Returns 0, or -1 with the reason in err.
 */
int config_load_trust(struct config *cfg, char *err, size_t errlen);
/* The defaults alone, as if the file were empty; NULL when out of memory. */
struct config *config_default(void);
/* Take one more reference (thread-safe); returns cfg. */
struct config *config_ref(struct config *cfg);
/* The module called name, or NULL. */
const struct config_module *config_module_find(
    const struct config *cfg, const char *name, size_t len);
/* Drop a reference (thread-safe); the last one frees.  Accepts NULL. */
void config_unref(struct config *cfg);

#endif
