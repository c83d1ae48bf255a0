/*
 * fanoutd: start-up in order (config, log, curl, pool, server), signals
 * as loop events, ordered shutdown.  No business logic lives here.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "clock.h"
#include "config.h"
#include "fetch.h"
#include "fields.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "server.h"
#include "tls.h"

#define DEFAULT_CONFIG    SYSCONFDIR "/fanoutd.conf"
#define WORKER_STACK_SIZE (256 * 1024)
#define SHUTDOWN_GRACE_MS 10000
#define SHUTDOWN_POLL_MS  50

struct daemon {
	const char *config_path;
	const char *port_file; /* --port-file: where the bound port goes */
	struct config *cfg;
	struct event_base *base;
	struct pool *pool;
	struct server *server;
	struct event *sig_hup, *sig_term, *sig_int, *stop_timer;
	uint64_t stop_deadline_ns;
	int canceled;
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: fanoutd [-t] [-c FILE] [--port-file FILE]\n"
	    "  -c, --config FILE  configuration file (default %s)\n"
	    "  -t, --test         check the configuration and exit\n"
	    "  --port-file FILE   write the port listened on to FILE (for\n"
	    "                     listen.port = 0: a port the kernel picks)\n"
	    "  -V, --version      print the version and exit\n"
	    "  -h, --help         print this help and exit\n",
	    DEFAULT_CONFIG);
}

/*
 * The config with its trust built and its modules checked by the code
 * that checks a request (the one hook: -t, start-up and reload all read
 * the CA files and vet the modules here, on this thread); NULL with every
 * error in err.
 */
static struct config *
config_with_trust(const char *path, char *err, size_t errlen)
{
	struct config *cfg = config_load(path, err, errlen);

	if (cfg != NULL && (config_load_trust(cfg, err, errlen) == -1 ||
	                       fields_check_modules(cfg, err, errlen) == -1)) {
		config_unref(cfg);
		return NULL;
	}
	return cfg;
}

static struct config *
load_config(const char *path)
{
	char err[4096];
	struct config *cfg = config_with_trust(path, err, sizeof(err));

	if (cfg == NULL)
		fprintf(stderr, "%s\n", err[0] ? err : "config: unknown error");
	return cfg;
}

/* Where the trust comes from, and a warning when nothing is checked. */
static void
log_trust(const struct config *cfg)
{
	char line[1024];

	if (tls_trust_describe(cfg->trust, line, sizeof(line)))
		log_info("%s", line);
	else
		log_warnx("%s", line);
	if (!cfg->verify_tls)
		log_warnx("tls.verify is false: certificates and host names "
		          "are not checked unless a request asks for it");
}

/* Tell systemd (Type=notify) where we are; a no-op elsewhere. */
static void
notify(const char *state)
{
#ifdef HAVE_SYSTEMD
	sd_notify(0, state);
#else
	(void)state;
#endif
}

/* Listening sockets passed by systemd socket activation, if any. */
static int
passed_sockets(int *fds, int max)
{
	int i, n = 0;

#ifdef HAVE_SYSTEMD
	if ((n = sd_listen_fds(1)) < 0)
		fatalx("sd_listen_fds: %s", strerror(-n));
	if (n > max)
		fatalx("too many sockets passed (%d, at most %d)", n, max);
	for (i = 0; i < n; i++)
		fds[i] = SD_LISTEN_FDS_START + i;
#else
	(void)fds;
	(void)max;
	(void)i;
#endif
	return n;
}

/*
 * Each fetch holds descriptors: let the pool use all the kernel allows.
 * Returns the limit in force afterwards.
 */
static long
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur > (rlim_t)LONG_MAX ? LONG_MAX : (long)rl.rlim_cur;
}

/*
 * workers.threads, or fewer when the descriptor limit cannot carry that
 * many transfers at once: more would fail as connect errors.  The
 * warning names the limit; extra fetches wait in the queue.
 */
static int
threads_allowed(const struct config *cfg, long nofile, FILE *warn_to)
{
	int allowed = fetch_workers_for_fds(nofile);
	char why[256];

	if (cfg->threads <= allowed)
		return cfg->threads;
	snprintf(why, sizeof(why),
	    "workers.threads = %d cannot be honoured: RLIMIT_NOFILE is %ld, "
	    "room for %d workers at %d descriptors each; using %d (raise "
	    "LimitNOFILE=)",
	    cfg->threads, nofile, allowed, FETCH_FDS_PER_WORKER, allowed);
	if (warn_to != NULL)
		fprintf(warn_to, "%s: warning: %s\n", cfg->file, why);
	else
		log_warnx("%s", why);
	return allowed;
}

static void *
worker_new(void *arg)
{
	return fetch_worker_new();
}

static void
worker_free(void *ctx, void *arg)
{
	fetch_worker_free(ctx);
}

/* The pool's limits as the config sets them, within the fd budget. */
static void
pool_limits_of(const struct config *cfg, struct pool_limits *limits)
{
	limits->max_threads = threads_allowed(cfg, raise_nofile(), NULL);
	limits->max_per_group = cfg->max_per_request;
	limits->max_per_key = cfg->max_per_host;
	limits->queue_limit = cfg->queue_limit;
	limits->idle_ms = cfg->idle_ms;
}

/* One log line per error, so each keeps its priority in the journal. */
static void
log_config_errors(char *err)
{
	char *line, *next;

	log_warnx("reload failed, keeping the running config");
	for (line = err; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		log_warnx("%s", line);
	}
}

/* SIGHUP: a new config for new requests, or the old one on error. */
static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	char err[4096];
	struct config *cfg =
	    config_with_trust(d->config_path, err, sizeof(err));
	struct pool_limits limits;

	notify("RELOADING=1");
	if (cfg == NULL) {
		log_config_errors(err);
		metrics_config_loaded(false);
		notify("READY=1");
		return;
	}
	if (strcmp(cfg->listen_address, d->cfg->listen_address) != 0 ||
	    cfg->listen_port != d->cfg->listen_port ||
	    cfg->reuse_port != d->cfg->reuse_port)
		log_warnx(
		    "listen.* changed: it takes effect at the next start");
	log_set_level(cfg->log_level);
	pool_limits_of(cfg, &limits);
	pool_resize(d->pool, &limits);
	cfg->conn_epoch = fetch_conn_epoch(d->cfg, cfg);
	server_set_config(d->server, cfg);
	config_unref(d->cfg);
	d->cfg = cfg;
	metrics_config_loaded(true);
	log_info("reloaded %s", d->config_path);
	log_trust(cfg);
	notify("READY=1");
}

static void
on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct timeval poll = {0, SHUTDOWN_POLL_MS * 1000};

	if (server_inflight(d->server) == 0) {
		event_base_loopexit(d->base, &poll);
		return;
	}
	if (!d->canceled && clock_now_ns() > d->stop_deadline_ns) {
		log_warnx("shutdown: canceling %zu fan-outs still in flight",
		    server_inflight(d->server));
		server_cancel_all(d->server);
		d->canceled = 1;
	}
	evtimer_add(d->stop_timer, &poll);
}

/* SIGTERM, SIGINT: stop accepting, let fan-outs finish, then exit. */
static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	if (d->stop_timer != NULL)
		return;
	notify("STOPPING=1");
	log_info("shutting down on signal %d, %zu fan-outs in flight", (int)sig,
	    server_inflight(d->server));
	server_stop_accepting(d->server);
	d->stop_deadline_ns = clock_now_ns() + SHUTDOWN_GRACE_MS * 1000000ull;
	d->stop_timer = evtimer_new(d->base, on_stop_timer, d);
	on_stop_timer(-1, 0, d);
}

/*
 * The port, as decimal digits and a newline, into path: written to
 * path.tmp and renamed, so that a reader never sees half a number.
 */
static int
write_port_file(const char *path, int port, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	FILE *f;
	bool written;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		snprintf(
		    err, errlen, "--port-file %.200s: name too long", path);
		return -1;
	}
	if ((f = fopen(tmp, "w")) == NULL) {
		snprintf(err, errlen, "--port-file %.200s: %s", tmp,
		    strerror(errno));
		return -1;
	}
	written = fprintf(f, "%d\n", port) > 0;
	if (fclose(f) != 0 || !written || rename(tmp, path) == -1) {
		snprintf(err, errlen, "--port-file %.200s: %s", path,
		    strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static void
daemon_start(struct daemon *d)
{
	char err[512];
	int fds[SERVER_MAX_LISTEN];
	int nfds;
	struct pool_params pp = {
	    .stack_size = WORKER_STACK_SIZE,
	    .worker_new = worker_new,
	    .worker_free = worker_free,
	};

	signal(SIGPIPE, SIG_IGN);
	log_init(d->cfg->log_level);
	pool_limits_of(d->cfg, &pp.limits);
	nfds = passed_sockets(fds, SERVER_MAX_LISTEN);
	if (fetch_global_init(err, sizeof(err)) == -1)
		fatalx("%s", err);
	if ((d->base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	if ((d->pool = pool_new(&pp, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	d->server = server_new(
	    d->base, d->cfg, d->pool, fds, (size_t)nfds, err, sizeof(err));
	if (d->server == NULL)
		fatalx("%s", err);
	d->sig_hup = evsignal_new(d->base, SIGHUP, on_hup, d);
	d->sig_term = evsignal_new(d->base, SIGTERM, on_term, d);
	d->sig_int = evsignal_new(d->base, SIGINT, on_term, d);
	if (evsignal_add(d->sig_hup, NULL) == -1 ||
	    evsignal_add(d->sig_term, NULL) == -1 ||
	    evsignal_add(d->sig_int, NULL) == -1)
		fatalx("cannot install signal events");
	if (nfds > 0)
		log_info("fanoutd %s serving %d passed socket(s), up to %d "
		         "threads",
		    PACKAGE_VERSION, nfds, d->cfg->threads);
	else
		log_info("fanoutd %s listening on %s port %d, up to %d threads",
		    PACKAGE_VERSION, d->cfg->listen_address,
		    server_port(d->server), d->cfg->threads);
	if (d->port_file != NULL &&
	    write_port_file(
	        d->port_file, server_port(d->server), err, sizeof(err)) == -1)
		fatalx("%s", err);
	log_trust(d->cfg);
	notify("READY=1");
}

static void
daemon_stop(struct daemon *d)
{
	server_free(d->server);
	pool_free(d->pool);
	if (d->stop_timer != NULL)
		event_free(d->stop_timer);
	event_free(d->sig_hup);
	event_free(d->sig_term);
	event_free(d->sig_int);
	event_base_free(d->base);
	config_unref(d->cfg);
	fetch_global_cleanup();
	log_info("stopped");
}

/*
 * The command line into d and *test_only; -1 to go on, else the exit
 * status (--version, --help, a usage error).
 */
static int
parse_args(int argc, char *argv[], struct daemon *d, int *test_only)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"test", no_argument, NULL, 't'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {"port-file", required_argument, NULL, 'P'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d->config_path = optarg;
			break;
		case 't':
			*test_only = 1;
			break;
		case 'V':
			printf("fanoutd %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case 'P':
			d->port_file = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return -1;
}

int
main(int argc, char *argv[])
{
	struct daemon d = {.config_path = DEFAULT_CONFIG};
	int rc, test_only = 0;

	if ((rc = parse_args(argc, argv, &d, &test_only)) != -1)
		return rc;
	if ((d.cfg = load_config(d.config_path)) == NULL)
		return 1;
	if (test_only) {
		threads_allowed(d.cfg, raise_nofile(), stderr);
		printf("%s: configuration OK\n", d.config_path);
		config_unref(d.cfg);
		return 0;
	}
	metrics_config_loaded(true); /* the start-up load counts as one */
	daemon_start(&d);
	event_base_dispatch(d.base);
	daemon_stop(&d);
	return 0;
}
