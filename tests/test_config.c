/*
 * Unit tests for config.c: every key's default, every key set, and every
 * kind of error with its file:line, all collected in one run.  Config and
 * token files are written into a private mkdtemp directory that main()
 * removes at the end.  Error cases are data (errors[] below), one loop
 * test each, so adding a key means adding rows, not code.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "autoconf.h"
#include "config.h"
#include "config_compat.h"
#include "log.h"
#include "check_run.h"

static char tmpdir[256];

/* Write text to name inside tmpdir; the full path goes to path. */
static void
write_file(const char *name, const char *text, char *path, size_t len)
{
	FILE *fp;

	snprintf(path, len, "%s/%s", tmpdir, name);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ge(fputs(text, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
}

/* Load text as a config file; path receives the file's name. */
static struct config *
load_text(
    const char *text, char *path, size_t pathlen, char *err, size_t errlen)
{
	write_file("test.conf", text, path, pathlen);
	return config_load(path, err, errlen);
}

/* Load text that must be valid. */
static struct config *
load_ok(const char *text)
{
	char path[512], err[4096];
	struct config *cfg;

	cfg = load_text(text, path, sizeof(path), err, sizeof(err));
	ck_assert_msg(cfg != NULL, "rejected: %s", err);
	ck_assert_str_eq(err, "");
	return cfg;
}

/* Load text that must fail with the error "<path><suffix>" on one line. */
static void
load_fails_with(const char *text, const char *suffix)
{
	char path[512], err[4096], want[1024];
	struct config *cfg;
	const char *hit;

	cfg = load_text(text, path, sizeof(path), err, sizeof(err));
	ck_assert_msg(cfg == NULL, "accepted: %s", text);
	snprintf(want, sizeof(want), "%s%s", path, suffix);
	hit = strstr(err, want);
	ck_assert_msg(hit != NULL, "want \"%s\" in \"%s\"", want, err);
	ck_assert_msg(
	    hit == err || hit[-1] == '\n', "not a line start: %s", err);
	hit += strlen(want);
	ck_assert_msg(*hit == '\0' || *hit == '\n', "not a line end: %s", err);
}

static void
check_defaults(const struct config *cfg)
{
	ck_assert_str_eq(cfg->listen_address, "127.0.0.1");
	ck_assert_int_eq(cfg->listen_port, 8080);
	ck_assert_int_eq(cfg->threads, 256);
	ck_assert_int_eq(cfg->queue_limit, 10000);
	ck_assert_int_eq(cfg->idle_ms, 120000);
	ck_assert_int_eq(cfg->max_urls, 1000);
	ck_assert_int_eq(cfg->max_request_bytes, 1048576);
	ck_assert_int_eq(cfg->max_response_bytes, 1048576);
	ck_assert_int_eq(cfg->request_timeout_ms, 60000);
	ck_assert_int_eq(cfg->client_timeout_ms, 30000);
	ck_assert(!cfg->reuse_port);
	ck_assert_int_eq(cfg->timeout_ms, 10000);
	ck_assert_int_eq(cfg->connect_timeout_ms, 3000);
	ck_assert(cfg->follow_redirects);
	ck_assert_int_eq(cfg->max_redirects, 5);
	ck_assert_str_eq(cfg->user_agent, "fanoutd/" PACKAGE_VERSION);
	ck_assert(cfg->verify_tls);
	ck_assert_str_eq(cfg->ca_file, "");
	ck_assert_str_eq(cfg->ca_path, "");
	ck_assert_str_eq(cfg->client_cert, "");
	ck_assert_str_eq(cfg->client_key, "");
	/* nothing named: the default bundle waits for config_load_trust() */
	ck_assert_ptr_null(cfg->trust);
	ck_assert_str_eq(cfg->auth_token, "");
	ck_assert_str_eq(cfg->auth_token_file, "");
	ck_assert_int_eq(cfg->log_level, LOG_LVL_INFO);
	ck_assert(cfg->access_log);

	ck_assert_uint_eq(cfg->allow_clients.count, 2);
	ck_assert(policy_match_text(&cfg->allow_clients, "127.1.2.3"));
	ck_assert(policy_match_text(&cfg->allow_clients, "::1"));
	ck_assert(!policy_match_text(&cfg->allow_clients, "10.0.0.1"));
	ck_assert_uint_eq(cfg->deny_targets.count, 3);
	ck_assert(policy_match_text(&cfg->deny_targets, "169.254.169.254"));
	ck_assert(policy_match_text(&cfg->deny_targets, "fe80::1"));
	ck_assert(policy_match_text(&cfg->deny_targets, "fd00:ec2::254"));
	ck_assert(!policy_match_text(&cfg->deny_targets, "fd00:ec2::253"));
	ck_assert_uint_eq(cfg->allow_targets.count, 0);
}

START_TEST(defaults)
{
	struct config *cfg = config_default();

	ck_assert_ptr_nonnull(cfg);
	check_defaults(cfg);
	ck_assert_ptr_null(cfg->file);
	ck_assert_int_eq(cfg->refs, 1);
	config_unref(cfg);
}
END_TEST

START_TEST(empty_file_is_defaults)
{
	struct config *cfg = load_ok("");

	check_defaults(cfg);
	ck_assert_ptr_nonnull(strstr(cfg->file, "/test.conf"));
	config_unref(cfg);
}
END_TEST

START_TEST(empty_groups_are_defaults)
{
	struct config *cfg = load_ok("# every group, no key\n"
	                             "listen = {}; workers = {}; limits = {};\n"
	                             "fetch = {}; security = {}; log = {};\n");

	check_defaults(cfg);
	config_unref(cfg);
}
END_TEST

START_TEST(every_key_set)
{
	struct config *cfg = load_ok(
	    "listen = { address = \"::1\"; port = 9090; reuse_port = true; };\n"
	    "workers = { threads = 8; queue_limit = 500; idle_ms = 0; };\n"
	    "limits = { max_urls = 50; max_request_bytes = 2048;\n"
	    "  max_response_bytes = 0; request_timeout_ms = 1234;\n"
	    "  client_timeout_ms = 2500; };\n"
	    "fetch = { timeout_ms = 1500; connect_timeout_ms = 700;\n"
	    "  follow_redirects = false; max_redirects = 0;\n"
	    "  user_agent = \"probe/2 (ops)\"; verify_tls = false; };\n"
	    "security = { auth_token = \"tok-123\";\n"
	    "  allow_clients = [ \"10.0.0.0/8\" ];\n"
	    "  deny_targets = [ \"192.168.0.0/16\", \"2001:db8::/32\" ];\n"
	    "  allow_targets = [ \"203.0.113.0/24\" ]; };\n"
	    "log = { level = \"debug\"; access_log = false; };\n");

	ck_assert_str_eq(cfg->listen_address, "::1");
	ck_assert_int_eq(cfg->listen_port, 9090);
	ck_assert_int_eq(cfg->threads, 8);
	ck_assert_int_eq(cfg->queue_limit, 500);
	ck_assert_int_eq(cfg->idle_ms, 0);
	ck_assert_int_eq(cfg->max_urls, 50);
	ck_assert_int_eq(cfg->max_request_bytes, 2048);
	ck_assert_int_eq(cfg->max_response_bytes, 0);
	ck_assert_int_eq(cfg->request_timeout_ms, 1234);
	ck_assert_int_eq(cfg->client_timeout_ms, 2500);
	ck_assert(cfg->reuse_port);
	ck_assert_int_eq(cfg->timeout_ms, 1500);
	ck_assert_int_eq(cfg->connect_timeout_ms, 700);
	ck_assert(!cfg->follow_redirects);
	ck_assert_int_eq(cfg->max_redirects, 0);
	ck_assert_str_eq(cfg->user_agent, "probe/2 (ops)");
	ck_assert(!cfg->verify_tls);
	ck_assert_str_eq(cfg->auth_token, "tok-123");
	ck_assert_int_eq(cfg->log_level, LOG_LVL_DEBUG);
	ck_assert(!cfg->access_log);
	/* a list replaces the default, it does not add to it */
	ck_assert_uint_eq(cfg->allow_clients.count, 1);
	ck_assert(!policy_match_text(&cfg->allow_clients, "127.0.0.1"));
	ck_assert(policy_match_text(&cfg->allow_clients, "10.1.1.1"));
	ck_assert_uint_eq(cfg->deny_targets.count, 2);
	ck_assert(policy_match_text(&cfg->deny_targets, "2001:db8::5"));
	ck_assert(!policy_match_text(&cfg->deny_targets, "169.254.169.254"));
	ck_assert_uint_eq(cfg->allow_targets.count, 1);
	ck_assert(policy_match_text(&cfg->allow_targets, "203.0.113.9"));
	config_unref(cfg);
}
END_TEST

START_TEST(bounds_inclusive_low)
{
	struct config *cfg = load_ok(
	    "listen = { port = 1; address = \"0.0.0.0\"; };\n"
	    "workers = { threads = 1; queue_limit = 1; idle_ms = 0; };\n"
	    "limits = { max_urls = 1; max_request_bytes = 1;\n"
	    "  max_response_bytes = 0; request_timeout_ms = 1; };\n"
	    "fetch = { timeout_ms = 1; connect_timeout_ms = 1;\n"
	    "  max_redirects = 0; };\n"
	    "log = { level = \"error\"; };\n");

	ck_assert_int_eq(cfg->listen_port, 1);
	ck_assert_int_eq(cfg->threads, 1);
	ck_assert_int_eq(cfg->queue_limit, 1);
	ck_assert_int_eq(cfg->max_urls, 1);
	ck_assert_int_eq(cfg->max_request_bytes, 1);
	ck_assert_int_eq(cfg->request_timeout_ms, 1);
	ck_assert_int_eq(cfg->timeout_ms, 1);
	ck_assert_int_eq(cfg->connect_timeout_ms, 1);
	ck_assert_int_eq(cfg->log_level, LOG_LVL_ERROR);
	config_unref(cfg);
}
END_TEST

START_TEST(bounds_inclusive_high)
{
	struct config *cfg = load_ok(
	    "listen = { port = 65535; address = \"::\"; };\n"
	    "workers = { threads = 10000; queue_limit = 1000000;\n"
	    "  idle_ms = 3600000; };\n"
	    "limits = { max_urls = 1000000; max_request_bytes = 1073741824;\n"
	    "  max_response_bytes = 1099511627776;\n"
	    "  request_timeout_ms = 3600000; };\n"
	    "fetch = { timeout_ms = 3600000; connect_timeout_ms = 600000;\n"
	    "  max_redirects = 50; };\n"
	    "log = { level = \"warn\"; };\n");

	ck_assert_int_eq(cfg->listen_port, 65535);
	ck_assert_int_eq(cfg->threads, 10000);
	ck_assert_int_eq(cfg->queue_limit, 1000000);
	ck_assert_int_eq(cfg->idle_ms, 3600000);
	ck_assert_int_eq(cfg->max_urls, 1000000);
	ck_assert_int_eq(cfg->max_request_bytes, 1073741824);
	ck_assert(cfg->max_response_bytes == INT64_C(1099511627776));
	ck_assert_int_eq(cfg->request_timeout_ms, 3600000);
	ck_assert_int_eq(cfg->timeout_ms, 3600000);
	ck_assert_int_eq(cfg->connect_timeout_ms, 600000);
	ck_assert_int_eq(cfg->max_redirects, 50);
	ck_assert_int_eq(cfg->log_level, LOG_LVL_WARN);
	config_unref(cfg);
}
END_TEST

/*
 * libconfig truncates integers wider than 32 bits unless they carry an L
 * (decimal ones in 1.5, hex ones still in 1.7); the loader must keep
 * their value either way (config_compat.c).
 */
START_TEST(wide_integers_keep_their_value)
{
	struct config *cfg = load_ok(
	    "# 99999999999999999999999 in a comment is not a number\n"
	    "limits = { max_response_bytes = 4294967296; };\n"
	    "fetch = { user_agent = \"ua 99999999999999999999999\"; };\n");

	ck_assert(cfg->max_response_bytes == INT64_C(4294967296));
	ck_assert_str_eq(cfg->user_agent, "ua 99999999999999999999999");
	config_unref(cfg);
	cfg = load_ok("limits = { max_response_bytes = 0x10000000000; };");
	ck_assert(cfg->max_response_bytes == INT64_C(1) << 40);
	config_unref(cfg);
	cfg = load_ok("limits = { max_response_bytes = 5000000000L; };\n"
	              "listen = { port = 8081L; };");
	ck_assert(cfg->max_response_bytes == INT64_C(5000000000));
	ck_assert_int_eq(cfg->listen_port, 8081);
	config_unref(cfg);
	cfg = load_ok("limits = { max_response_bytes = 0x80000000; };");
	ck_assert(cfg->max_response_bytes == INT64_C(0x80000000));
	config_unref(cfg);
	cfg = load_ok("listen = { port = 0x1F91; };");
	ck_assert_int_eq(cfg->listen_port, 8081);
	config_unref(cfg);
	/* 0: a port the kernel picks (fanoutd --port-file tells which) */
	cfg = load_ok("listen = { port = 0; };");
	ck_assert_int_eq(cfg->listen_port, 0);
	config_unref(cfg);
}
END_TEST

START_TEST(lists_and_arrays)
{
	struct config *cfg = load_ok(
	    "security = { allow_clients = ( \"10.0.0.0/8\", \"::1\" );\n"
	    "  deny_targets = []; allow_targets = (); };\n");

	ck_assert_uint_eq(cfg->allow_clients.count, 2);
	ck_assert_uint_eq(cfg->deny_targets.count, 0);
	ck_assert_uint_eq(cfg->allow_targets.count, 0);
	config_unref(cfg);
}
END_TEST

/* One row per error: the config text, and the error line after the path. */
static const struct {
	const char *text;
	const char *error;
} errors[] = {
    /* unknown keys and groups, at every level */
    {"listen = { port = 80; bogus = 1; };", ":1: listen.bogus: unknown key"},
    {"\n\nworkers = {\n  thread = 4;\n};", ":4: workers.thread: unknown key"},
    {"security = { deny = [ \"1.2.3.4\" ]; };",
        ":1: security.deny: unknown key"},
    {"log = { level = \"info\"; sub = { a = 1; }; };",
        ":1: log.sub: unknown key"},
    {"metrics = { enabled = true; };", ":1: metrics: unknown group"},
    {"port = 8080;", ":1: port: unknown key"},
    {"\nlisten = 8080;", ":2: listen: expected a group, got an integer"},
    {"fetch = [ 1 ];", ":1: fetch: expected a group, got an array"},
    /* wrong types */
    {"listen = { port = \"8080\"; };",
        ":1: listen.port: expected an integer, got a string"},
    {"listen = { port = 8080.0; };",
        ":1: listen.port: expected an integer, got a float"},
    {"listen = { address = 127; };",
        ":1: listen.address: expected a string, got an integer"},
    {"workers = { threads = true; };",
        ":1: workers.threads: expected an integer, got a boolean"},
    {"workers = { queue_limit = [ 1 ]; };",
        ":1: workers.queue_limit: expected an integer, got an array"},
    {"fetch = { timeout_ms = 1.0000000000000000000000000000000000000000000"
     "0000000000000000000001; };",
        ":1: fetch.timeout_ms: expected an integer, got a float"},
    {"workers = { idle_ms = 1e3; };",
        ":1: workers.idle_ms: expected an integer, got a float"},
    {"tls = { verify = \"yes\"; };",
        ":1: tls.verify: expected a boolean, got a string"},
    {"tls = { ca_file = 1; };",
        ":1: tls.ca_file: expected a string, got an integer"},
    {"tls = { ca_path = [ \"/etc\" ]; };",
        ":1: tls.ca_path: expected a string, got an array"},
    {"tls = {\n ca_file = \"a\\nb\"; };",
        ":2: tls.ca_file: must not contain control characters"},
    {"tls = { client_cert = true; };",
        ":1: tls.client_cert: expected a string, got a boolean"},
    /* tls files: named at the key's line */
    {"\ntls = { client_key = \"/k.pem\"; };",
        ":2: tls.client_key: is set without tls.client_cert"},
    {"tls = {\n  ca_file = \"/nonexistent/ca.pem\"; };",
        ":2: tls.ca_file: /nonexistent/ca.pem: No such file or directory"},
    {"tls = { ca_path = \"/nonexistent\"; };",
        ":1: tls.ca_path: /nonexistent: No such file or directory"},
    {"tls = { ca_file = \"/dev/null\"; };",
        ":1: tls.ca_file: /dev/null: not a regular file"},
    {"tls = { client_cert = \"/nonexistent/c.pem\"; };",
        ":1: tls.client_cert: /nonexistent/c.pem: No such file or "
        "directory"},
    /* fetch.verify_tls is an alias: it may not contradict tls.verify */
    {"fetch = { verify_tls = false; };\ntls = { verify = true; };",
        ":1: fetch.verify_tls: is the old name of tls.verify, which is set "
        "otherwise (line 2)"},
    {"limits = { max_urls = \"10\"; };",
        ":1: limits.max_urls: expected an integer, got a string"},
    {"limits = { max_request_bytes = 1.5; };",
        ":1: limits.max_request_bytes: expected an integer, got a float"},
    {"limits = { max_response_bytes = {}; };",
        ":1: limits.max_response_bytes: expected an integer, got a group"},
    {"limits = { request_timeout_ms = false; };",
        ":1: limits.request_timeout_ms: expected an integer, got a boolean"},
    {"fetch = { timeout_ms = \"1s\"; };",
        ":1: fetch.timeout_ms: expected an integer, got a string"},
    {"fetch = { connect_timeout_ms = 0.5; };",
        ":1: fetch.connect_timeout_ms: expected an integer, got a float"},
    {"fetch = { follow_redirects = 1; };",
        ":1: fetch.follow_redirects: expected a boolean, got an integer"},
    {"fetch = { max_redirects = \"5\"; };",
        ":1: fetch.max_redirects: expected an integer, got a string"},
    {"fetch = { user_agent = true; };",
        ":1: fetch.user_agent: expected a string, got a boolean"},
    {"fetch = { verify_tls = \"yes\"; };",
        ":1: fetch.verify_tls: expected a boolean, got a string"},
    {"security = { auth_token = 42; };",
        ":1: security.auth_token: expected a string, got an integer"},
    {"security = { auth_token_file = [ \"a\" ]; };",
        ":1: security.auth_token_file: expected a string, got an array"},
    {"security = { allow_clients = \"10.0.0.0/8\"; };",
        ":1: security.allow_clients: expected an array of CIDR strings, got "
        "a string"},
    {"security = { deny_targets = {}; };",
        ":1: security.deny_targets: expected an array of CIDR strings, got a "
        "group"},
    {"security = { allow_targets = ( \"10.0.0.0/8\",\n 7 ); };",
        ":2: security.allow_targets[1]: expected a CIDR string, got an "
        "integer"},
    {"log = { level = 3; };", ":1: log.level: expected a string, got an "
                              "integer"},
    {"log = { access_log = \"no\"; };",
        ":1: log.access_log: expected a boolean, got a string"},
    /* out of range, below and above */
    {"listen = { port = 65536; };",
        ":1: listen.port: 65536 is out of range (0..65535)"},
    {"listen = { port = 4294975376; };",
        ":1: listen.port: 4294975376 is out of range (0..65535)"},
    {"listen = { port = -8080; };",
        ":1: listen.port: -8080 is out of range (0..65535)"},
    {"workers = { threads = 0; };",
        ":1: workers.threads: 0 is out of range (1..10000)"},
    {"workers = { threads = 10001; };",
        ":1: workers.threads: 10001 is out of range (1..10000)"},
    {"workers = { queue_limit = 0; };",
        ":1: workers.queue_limit: 0 is out of range (1..1000000)"},
    {"workers = { queue_limit = 1000001; };",
        ":1: workers.queue_limit: 1000001 is out of range (1..1000000)"},
    {"workers = { idle_ms = -1; };",
        ":1: workers.idle_ms: -1 is out of range (0..3600000)"},
    {"workers = { idle_ms = 3600001; };",
        ":1: workers.idle_ms: 3600001 is out of range (0..3600000)"},
    {"limits = { max_urls = 0; };",
        ":1: limits.max_urls: 0 is out of range (1..1000000)"},
    {"limits = { max_urls = 1000001; };",
        ":1: limits.max_urls: 1000001 is out of range (1..1000000)"},
    {"limits = { max_request_bytes = 0; };",
        ":1: limits.max_request_bytes: 0 is out of range (1..1073741824)"},
    {"limits = { max_request_bytes = 1073741825; };",
        ":1: limits.max_request_bytes: 1073741825 is out of range "
        "(1..1073741824)"},
    {"limits = { max_response_bytes = -1; };",
        ":1: limits.max_response_bytes: -1 is out of range (0..1099511627776)"},
    {"limits = { max_response_bytes = 1099511627777; };",
        ":1: limits.max_response_bytes: 1099511627777 is out of range "
        "(0..1099511627776)"},
    {"limits = { client_timeout_ms = 99; };",
        ":1: limits.client_timeout_ms: 99 is out of range (100..3600000)"},
    {"listen = { reuse_port = 1; };",
        ":1: listen.reuse_port: expected a boolean, got an integer"},
    {"limits = { request_timeout_ms = 0; };",
        ":1: limits.request_timeout_ms: 0 is out of range (1..3600000)"},
    {"limits = { request_timeout_ms = 3600001; };",
        ":1: limits.request_timeout_ms: 3600001 is out of range "
        "(1..3600000)"},
    {"fetch = { timeout_ms = 0; };",
        ":1: fetch.timeout_ms: 0 is out of range (1..3600000)"},
    {"fetch = { timeout_ms = 3600001; };",
        ":1: fetch.timeout_ms: 3600001 is out of range (1..3600000)"},
    {"fetch = { connect_timeout_ms = 0; };",
        ":1: fetch.connect_timeout_ms: 0 is out of range (1..600000)"},
    {"fetch = { connect_timeout_ms = 600001; };",
        ":1: fetch.connect_timeout_ms: 600001 is out of range (1..600000)"},
    {"fetch = { max_redirects = -1; };",
        ":1: fetch.max_redirects: -1 is out of range (0..50)"},
    {"fetch = { max_redirects = 51; };",
        ":1: fetch.max_redirects: 51 is out of range (0..50)"},
    /* max_urls must fit an idle pool; named at whichever key was set */
    {"workers = { queue_limit = 10; };\nlimits = { max_urls = 11; };",
        ":2: limits.max_urls: 11 is above workers.queue_limit (10)"},
    {"\nworkers = { queue_limit = 999; };",
        ":2: limits.max_urls: 1000 is above workers.queue_limit (999)"},
    {"limits = { max_urls = 10001; };",
        ":1: limits.max_urls: 10001 is above workers.queue_limit (10000)"},
    /* values that parse but mean nothing */
    {"security = { deny_targets = [ \"10.0.0.0/8\",\n  \"1.2.3.4/33\" ]; };",
        ":2: security.deny_targets[1]: \"1.2.3.4/33\": prefix length must be "
        "0 to 32"},
    {"security = { allow_clients = [ \"abc\" ]; };",
        ":1: security.allow_clients[0]: \"abc\": not an IPv4 or IPv6 "
        "address"},
    {"security = { allow_targets = [ \"::/129\" ]; };",
        ":1: security.allow_targets[0]: \"::/129\": prefix length must be 0 "
        "to 128"},
    {"security = { deny_targets = [ \"\" ]; };",
        ":1: security.deny_targets[0]: \"\": empty network"},
    {"listen = { address = \"localhost\"; };",
        ":1: listen.address: \"localhost\" is not an IPv4 or IPv6 address"},
    {"listen = { address = \"1.2.3.256\"; };",
        ":1: listen.address: \"1.2.3.256\" is not an IPv4 or IPv6 address"},
    {"listen = { address = \"\"; };",
        ":1: listen.address: \"\" is not an IPv4 or IPv6 address"},
    {"log = { level = \"verbose\"; };",
        ":1: log.level: unknown level \"verbose\" (want error, warn, info or "
        "debug)"},
    {"fetch = { user_agent = \"a\\r\\nX-Evil: 1\"; };",
        ":1: fetch.user_agent: must not contain control characters"},
    {"security = { auth_token = \"two words\"; };",
        ":1: security.auth_token: must be printable ASCII without spaces"},
    /* the file itself */
    {"listen = {\n  port = = 80;\n};", ":2: syntax error: syntax error"},
    {"listen = { port = 80; }\nlog = {", ":2: syntax error: syntax error"},
    {"log = { level = \"info\"; };\n/* log = { level = \"debug\"; };",
        ":2: syntax error: unterminated comment"},
    {"fetch = { user_agent = \"abc\" \"de; };",
        ":1: syntax error: unterminated string"},
    {"\n\nlimits = { max_response_bytes = 99999999999999999999; };",
#if CONFIG_COMPAT_WIDE_DECIMAL
        ":3: syntax error: integer 99999999999999999999 does not fit in 64 "
        "bits"},
#else
        ":3: syntax error: syntax error"}, /* libconfig 1.6+ says so */
#endif
    {"\nlimits = { max_response_bytes = 0x10000000000000000; };",
        ":2: syntax error: integer 0x10000000000000000 does not fit in 64 "
        "bits"},
};

START_TEST(error_cases)
{
	load_fails_with(errors[_i].text, errors[_i].error);
}
END_TEST

START_TEST(missing_file)
{
	char path[512], err[1024], want[1024];

	snprintf(path, sizeof(path), "%s/no-such.conf", tmpdir);
	ck_assert_ptr_null(config_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want),
	    "%s: cannot read: No such file or "
	    "directory",
	    path);
	ck_assert_str_eq(err, want);
	ck_assert_ptr_null(config_load(tmpdir, err, sizeof(err)));
	snprintf(want, sizeof(want),
	    "%s: cannot read: not a regular file (a directory)", tmpdir);
	ck_assert_str_eq(err, want);
}
END_TEST

/* A FIFO would block open() until a writer came: refused, at once. */
START_TEST(fifo_refused)
{
	char fifo[512], path[512], err[2048], want[2048];

	snprintf(fifo, sizeof(fifo), "%s/fifo", tmpdir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert_ptr_null(config_load(fifo, err, sizeof(err)));
	snprintf(want, sizeof(want),
	    "%s: cannot read: not a regular file (a FIFO)", fifo);
	ck_assert_str_eq(err, want);

	snprintf(want, sizeof(want),
	    "security = {\n  auth_token_file = \"%s\";\n};\n", fifo);
	ck_assert_ptr_null(
	    load_text(want, path, sizeof(path), err, sizeof(err)));
	snprintf(want, sizeof(want),
	    "%s:2: security.auth_token_file: cannot read \"%s\": not a "
	    "regular file (a FIFO)",
	    path, fifo);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(unlink(fifo), 0);
}
END_TEST

/* /dev/null is a character device: refused too, not read as empty. */
START_TEST(device_refused)
{
	char err[1024];

	ck_assert_ptr_null(config_load("/dev/null", err, sizeof(err)));
	ck_assert_str_eq(err, "/dev/null: cannot read: not a regular file (a "
	                      "character device)");
}
END_TEST

START_TEST(config_too_large)
{
	char path[512], err[1024];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/huge.conf", tmpdir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	/* A sparse file one byte over the cap: nothing is written. */
	ck_assert_int_eq(ftruncate(fileno(fp), 16 * 1024 * 1024 + 1), 0);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_ptr_null(config_load(path, err, sizeof(err)));
	ck_assert_ptr_nonnull(
	    strstr(err, ": cannot read: larger than 16777216 bytes"));
	ck_assert_int_eq(unlink(path), 0);
}
END_TEST

START_TEST(all_errors_reported_together)
{
	char path[512], err[4096], line[1024];
	const char *p;
	int n = 0;

	ck_assert_ptr_null(load_text("listen = { port = -1;\n"
	                             "  address = \"nowhere\"; };\n"
	                             "bogus = {};\n"
	                             "security = { deny_targets = [ \"x\",\n"
	                             "  \"y\" ]; };\n"
	                             "log = { level = \"loud\"; };\n",
	    path, sizeof(path), err, sizeof(err)));
	for (p = err; p != NULL; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		n++;
	ck_assert_msg(n == 6, "want 6 lines: %s", err);
	snprintf(line, sizeof(line), "%s:1: listen.port:", path);
	ck_assert_ptr_nonnull(strstr(err, line));
	snprintf(line, sizeof(line), "%s:2: listen.address:", path);
	ck_assert_ptr_nonnull(strstr(err, line));
	snprintf(line, sizeof(line), "%s:3: bogus: unknown group", path);
	ck_assert_ptr_nonnull(strstr(err, line));
	snprintf(line, sizeof(line), "%s:4: security.deny_targets[0]:", path);
	ck_assert_ptr_nonnull(strstr(err, line));
	snprintf(line, sizeof(line), "%s:5: security.deny_targets[1]:", path);
	ck_assert_ptr_nonnull(strstr(err, line));
	snprintf(line, sizeof(line), "%s:6: log.level:", path);
	ck_assert_ptr_nonnull(strstr(err, line));
	ck_assert(err[strlen(err) - 1] != '\n');
}
END_TEST

START_TEST(errors_truncate_safely)
{
	char path[512], err[48];

	memset(err, 'x', sizeof(err));
	ck_assert_ptr_null(load_text("listen = { port = 0; address = \"\"; };\n"
	                             "log = { level = \"loud\"; };\n",
	    path, sizeof(path), err, sizeof(err)));
	ck_assert_uint_lt(strlen(err), sizeof(err));
	ck_assert_ptr_null(
	    load_text("bogus = {};", path, sizeof(path), NULL, 0));
}
END_TEST

/* Write a token file and a config naming it. */
static struct config *
load_with_token_file(const char *token, char *err, size_t errlen)
{
	char tpath[512], cpath[512], text[1024];

	write_file("token", token, tpath, sizeof(tpath));
	snprintf(text, sizeof(text),
	    "security = {\n  auth_token_file = \"%s\";\n};\n", tpath);
	return load_text(text, cpath, sizeof(cpath), err, errlen);
}

START_TEST(token_file_read_and_stripped)
{
	static const char *const forms[] = {
	    "s3cret\n", "s3cret", "s3cret\r\n", "s3cret\n\n"};
	struct config *cfg;
	char err[1024];
	size_t i;

	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		cfg = load_with_token_file(forms[i], err, sizeof(err));
		ck_assert_msg(cfg != NULL, "%s", err);
		ck_assert_str_eq(cfg->auth_token, "s3cret");
		ck_assert_ptr_nonnull(strstr(cfg->auth_token_file, "/token"));
		config_unref(cfg);
	}
}
END_TEST

START_TEST(token_file_errors)
{
	char path[512], err[1024], want[1024];

	ck_assert_ptr_null(load_with_token_file("\n", err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, ":2: security.auth_token_file: "
	                                  "token file is empty"));
	ck_assert_ptr_null(load_with_token_file("a b\n", err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, ":2: security.auth_token_file: "
	                                  "must be printable ASCII"));
	ck_assert_ptr_null(strstr(err, "a b"));

	snprintf(want, sizeof(want),
	    "security = { auth_token_file = \"%s/absent\"; };", tmpdir);
	ck_assert_ptr_null(
	    load_text(want, path, sizeof(path), err, sizeof(err)));
	snprintf(want, sizeof(want),
	    "%s:1: security.auth_token_file: cannot read \"%s/absent\": No "
	    "such file or directory",
	    path, tmpdir);
	ck_assert_str_eq(err, want);

	snprintf(want, sizeof(want),
	    "security = { auth_token_file = \"%s\"; };", tmpdir);
	ck_assert_ptr_null(
	    load_text(want, path, sizeof(path), err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, ": not a regular file"));
}
END_TEST

START_TEST(token_file_too_large)
{
	char big[5000], err[1024];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_ptr_null(load_with_token_file(big, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "larger than 4096 bytes"));
}
END_TEST

START_TEST(token_and_token_file_both_set)
{
	char tpath[512], text[1024];

	write_file("token", "abc\n", tpath, sizeof(tpath));
	snprintf(text, sizeof(text),
	    "security = { auth_token = \"xyz\";\n"
	    "  auth_token_file = \"%s\"; };\n",
	    tpath);
	load_fails_with(text, ":2: security.auth_token_file: cannot be set "
	                      "together with security.auth_token");
}
END_TEST

/* fetch.verify_tls alone still works; agreeing with tls.verify too. */
START_TEST(verify_tls_alias)
{
	static const struct {
		const char *text;
		bool verify;
	} cases[] = {
	    {"fetch = { verify_tls = false; };", false},
	    {"fetch = { verify_tls = true; };", true},
	    {"tls = { verify = false; };", false},
	    {"fetch = { verify_tls = false; }; tls = { verify = false; };",
	        false},
	    {"fetch = { verify_tls = true; }; tls = { verify = true; };", true},
	};
	struct config *cfg;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cfg = load_ok(cases[i].text);
		ck_assert_msg(
		    cfg->verify_tls == cases[i].verify, "%s", cases[i].text);
		config_unref(cfg);
	}
}
END_TEST

/* An empty CA file, one that is not PEM, at their lines, together. */
START_TEST(tls_file_errors_name_file_and_line)
{
	char empty[512], text[512], conf[2048], cpath[512], err[4096];
	char want[1200];

	write_file("empty.pem", "", empty, sizeof(empty));
	write_file("text.pem", "not a certificate\n", text, sizeof(text));
	snprintf(
	    conf, sizeof(conf), "tls = {\n  ca_file = \"%s\";\n};\n", empty);
	ck_assert_ptr_null(
	    load_text(conf, cpath, sizeof(cpath), err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:2: tls.ca_file: %s: is empty", cpath,
	    empty);
	ck_assert_str_eq(err, want);
	snprintf(conf, sizeof(conf),
	    "tls = { ca_file = \"%s\";\n  client_cert = \"%s\"; };\n", text,
	    text);
	ck_assert_ptr_null(
	    load_text(conf, cpath, sizeof(cpath), err, sizeof(err)));
	snprintf(want, sizeof(want),
	    "%s:1: tls.ca_file: %s: holds no PEM certificate", cpath, text);
	ck_assert_str_eq(err, want);
}
END_TEST

/* With no file named, the hook reads libcurl's default bundle. */
START_TEST(load_trust_reads_the_default_bundle)
{
	struct config *cfg = load_ok("tls = { verify = false; };");
	char err[1024] = "";
	int rc = config_load_trust(cfg, err, sizeof(err));

	ck_assert_ptr_null(strchr(err, '\n'));
	if (rc == 0)
		ck_assert_ptr_nonnull(cfg->trust);
	else /* a machine without any bundle: the error says which */
		ck_assert_ptr_nonnull(strstr(err, "tls: "));
	/* a second call keeps what is there */
	ck_assert_int_eq(config_load_trust(cfg, err, sizeof(err)), rc);
	config_unref(cfg);
}
END_TEST

START_TEST(refcount)
{
	struct config *cfg = config_default();

	ck_assert_ptr_eq(config_ref(cfg), cfg);
	ck_assert_int_eq(cfg->refs, 2);
	config_unref(cfg);
	ck_assert_int_eq(cfg->refs, 1);
	ck_assert_str_eq(cfg->listen_address, "127.0.0.1"); /* still alive */
	config_unref(cfg); /* frees; ASan and valgrind watch this */
	config_unref(NULL);
}
END_TEST

static void *
ref_storm(void *arg)
{
	struct config *cfg = arg;
	int i;

	for (i = 0; i < 100000; i++)
		config_unref(config_ref(cfg));
	return NULL;
}

START_TEST(refcount_threads)
{
	struct config *cfg = config_default();
	pthread_t t[4];
	int i;

	for (i = 0; i < 4; i++)
		ck_assert_int_eq(
		    pthread_create(&t[i], NULL, ref_storm, cfg), 0);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(cfg->refs, 1);
	config_unref(cfg);
}
END_TEST

/* modules: named presets kept as the JSON their fields make. */
START_TEST(modules_parse)
{
	struct config *cfg = load_ok(
	    "modules = (\n"
	    "  { name = \"http_2xx\"; timeout_ms = 5000;\n"
	    "    expect = { status = ( \"2xx\", 301 );\n"
	    "               body_contains = \"ok\"; max_ms = 250.5; };\n"
	    "    follow_redirects = false; },\n"
	    "  { name = \"x.y-z_1\"; }\n"
	    ");\n");
	const struct config_module *m;
	json_t *want = json_loads(
	    "{\"timeout_ms\": 5000, \"expect\": {\"status\": [\"2xx\", 301],"
	    " \"body_contains\": \"ok\", \"max_ms\": 250.5},"
	    " \"follow_redirects\": false}",
	    0, NULL);

	ck_assert_uint_eq(cfg->nmodules, 2);
	m = config_module_find(cfg, "http_2xx", 8);
	ck_assert_ptr_nonnull(m);
	ck_assert(json_equal(m->fields, want));
	ck_assert_int_eq(m->line, 2);
	ck_assert_ptr_nonnull(config_module_find(cfg, "x.y-z_1", 7));
	ck_assert_ptr_null(config_module_find(cfg, "http", 4));
	json_decref(want);
	config_unref(cfg);
}
END_TEST

START_TEST(modules_refused)
{
	load_fails_with("modules = { name = \"a\"; };\n",
	    ":1: modules: expected a list of groups, got a group");
	load_fails_with("modules = ( { timeout_ms = 1; } );\n",
	    ":1: modules[0]: needs a name of 1 to 64 letters, digits, '_', "
	    "'.' or '-'");
	load_fails_with("modules = ( { name = \"a b\"; } );\n",
	    ":1: modules[0]: needs a name of 1 to 64 letters, digits, '_', "
	    "'.' or '-'");
	load_fails_with(
	    "modules = ( { name = \"a\"; },\n { name = \"a\"; } );\n",
	    ":2: modules[1]: a second module named \"a\"");
	load_fails_with("modules = ( 5 );\n",
	    ":1: modules[0]: expected a group, got an integer");
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *values = tcase_create("values");
	TCase *errs = tcase_create("errors");
	TCase *token = tcase_create("token");
	TCase *refs = tcase_create("refcount");

	tcase_add_test(values, defaults);
	tcase_add_test(values, modules_parse);
	tcase_add_test(values, modules_refused);
	tcase_add_test(values, empty_file_is_defaults);
	tcase_add_test(values, empty_groups_are_defaults);
	tcase_add_test(values, every_key_set);
	tcase_add_test(values, bounds_inclusive_low);
	tcase_add_test(values, bounds_inclusive_high);
	tcase_add_test(values, wide_integers_keep_their_value);
	tcase_add_test(values, lists_and_arrays);
	suite_add_tcase(s, values);

	tcase_add_loop_test(
	    errs, error_cases, 0, sizeof(errors) / sizeof(errors[0]));
	tcase_add_test(errs, missing_file);
	tcase_add_test(errs, fifo_refused);
	tcase_add_test(errs, device_refused);
	tcase_add_test(errs, config_too_large);
	tcase_add_test(errs, all_errors_reported_together);
	tcase_add_test(errs, errors_truncate_safely);
	suite_add_tcase(s, errs);

	tcase_add_test(token, token_file_read_and_stripped);
	tcase_add_test(token, token_file_errors);
	tcase_add_test(token, token_file_too_large);
	tcase_add_test(token, token_and_token_file_both_set);
	tcase_add_test(token, verify_tls_alias);
	tcase_add_test(token, tls_file_errors_name_file_and_line);
	tcase_add_test(token, load_trust_reads_the_default_bundle);
	suite_add_tcase(s, token);

	tcase_add_test(refs, refcount);
	tcase_add_test(refs, refcount_threads);
	suite_add_tcase(s, refs);
	return s;
}

/* Remove the files the tests wrote, then the directory. */
static void
remove_tmpdir(void)
{
	char path[512];
	struct dirent *de;
	DIR *dir;

	if ((dir = opendir(tmpdir)) == NULL)
		return;
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, de->d_name);
		unlink(path);
	}
	closedir(dir);
	rmdir(tmpdir);
}

int
main(void)
{
	const char *base = getenv("TMPDIR");
	int rc;

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_config.XXXXXX",
	    base != NULL && base[0] != '\0' ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	rc = check_run(config_suite());
	remove_tmpdir();
	return rc;
}
