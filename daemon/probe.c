/*
 * probe: fan-out results as blackbox_exporter's metrics.
 *
 * The families are a table, written in name order (as blackbox's
 * registry writes them), each with all of its samples together: the text
 * format allows a family once, and promtool refuses a second HELP or
 * TYPE.  A family a target has no value for (the certificate expiry of a
 * plain http target) has no sample for it, and no header at all when no
 * target has one, as blackbox leaves it out.
 *
 * The values, from a result: probe_success is its "ok" (200-399, or its
 * expect); the durations are its time_ms phases in seconds (dns is
 * "resolve", ttfb "processing") and probe_duration_seconds its total;
 * probe_http_content_length the body bytes received.  Every value is a
 * finite number, 0 when the fetch never got that far.
 *
 * Label values come from clients: backslash, double quote and newline
 * are escaped as the format asks, and invalid UTF-8 (the format is
 * UTF-8) becomes U+FFFD, as render.c does for JSON.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "expect.h"
#include "probe.h"

#define PROBE_VALUE_MAX 32

/* probe_http_duration_seconds{phase=...}, in blackbox's order. */
enum probe_phase {
	PROBE_RESOLVE,
	PROBE_CONNECT,
	PROBE_TLS,
	PROBE_PROCESSING,
	PROBE_TRANSFER,
	PROBE_PHASE_COUNT
};

static const char *const probe_phase_names[PROBE_PHASE_COUNT] = {
    "resolve", "connect", "tls", "processing", "transfer"};

/* Write r's value (of phase, for a family by phase) into buf; false when
 * r has none. */
typedef bool probe_value_fn(
    const struct fetch_result *r, int phase, char *buf, size_t len);

struct probe_family {
	const char *name, *help;
	probe_value_fn *value;
	bool by_phase;
};

static bool
probe_int(char *buf, size_t len, long long v)
{
	snprintf(buf, len, "%lld", v);
	return true;
}

/* Milliseconds as seconds, to the microsecond: finite, never negative.
 * %g keeps it short and within the buffer whatever its size. */
static bool
probe_seconds(char *buf, size_t len, double ms)
{
	double s = round(ms * 1000) / 1e6;

	if (!isfinite(s)) /* NaN, infinite, or ms * 1000 overflowed */
		s = ms / 1000;
	if (!isfinite(s) || s < 0)
		s = 0;
	snprintf(buf, len, "%.9g", s);
	return true;
}

static bool
value_dns(const struct fetch_result *r, int phase, char *buf, size_t len)
{
	return probe_seconds(buf, len, r->time.dns);
}

static bool
value_duration(const struct fetch_result *r, int phase, char *buf, size_t len)
{
	return probe_seconds(buf, len, r->time.total);
}

/* blackbox's "regex" covers its body and header matchers: ours are the
 * body and header checks. */
static bool
probe_is_match_check(enum expect_kind kind)
{
	switch (kind) {
	case EXPECT_BODY_CONTAINS:
	case EXPECT_BODY_NOT_CONTAINS:
	case EXPECT_BODY_REGEX:
	case EXPECT_BODY_NOT_REGEX:
	case EXPECT_HEADERS:
		return true;
	default:
		return false;
	}
}

static bool
value_regex(const struct fetch_result *r, int phase, char *buf, size_t len)
{
	bool failed = false;
	size_t i;

	for (i = 0; i < r->nfailed; i++)
		failed |= probe_is_match_check(r->failed[i].kind);
	return probe_int(buf, len, failed);
}

static bool
value_length(const struct fetch_result *r, int phase, char *buf, size_t len)
{
	return probe_int(buf, len, r->bytes);
}

static bool
value_phase(const struct fetch_result *r, int phase, char *buf, size_t len)
{
	const struct fetch_timing *t = &r->time;
	double ms[PROBE_PHASE_COUNT] = {
	    t->dns, t->connect, t->tls, t->ttfb, t->transfer};

	return probe_seconds(buf, len, ms[phase]);
}

static bool
value_redirects(const struct fetch_result *r, int phase, char *buf, size_t len)
{
	return probe_int(buf, len, r->redirects);
}

/* Over TLS, and a response came: the last hop's connection was up. */
static bool
value_ssl(const struct fetch_result *r, int phase, char *buf, size_t len)
{
	return probe_int(buf, len, r->status > 0 && r->tls.used);
}

static bool
value_status(const struct fetch_result *r, int phase, char *buf, size_t len)
{
	return probe_int(buf, len, r->status);
}

/* 1, 1.1, 2, 3 (blackbox's reading of "HTTP/1.1"); 0 without a
 * response. */
static bool
value_version(const struct fetch_result *r, int phase, char *buf, size_t len)
{
	snprintf(buf, len, "%g", r->http_version / 10.0);
	return true;
}

static bool
value_ip(const struct fetch_result *r, int phase, char *buf, size_t len)
{
	if (r->remote_ip[0] == '\0')
		return probe_int(buf, len, 0);
	return probe_int(buf, len, strchr(r->remote_ip, ':') != NULL ? 6 : 4);
}

/* The leaf's not_after: the only certificate fanoutd reads, so the
 * earliest expiry it knows of. */
static bool
value_expiry(const struct fetch_result *r, int phase, char *buf, size_t len)
{
	return r->tls.has_cert && probe_int(buf, len, r->tls.cert.not_after);
}

static bool
value_success(const struct fetch_result *r, int phase, char *buf, size_t len)
{
	return probe_int(buf, len, fetch_result_ok(r));
}

/* blackbox_exporter's names and help texts, in name order. */
static const struct probe_family probe_families[] = {
    {"probe_dns_lookup_time_seconds",
        "Returns the time taken for probe dns lookup in seconds", value_dns,
        false},
    {"probe_duration_seconds",
        "Returns how long the probe took to complete in seconds",
        value_duration, false},
    {"probe_failed_due_to_regex", "Indicates if probe failed due to regex",
        value_regex, false},
    {"probe_http_content_length", "Length of http content response",
        value_length, false},
    {"probe_http_duration_seconds",
        "Duration of http request by phase, summed over all redirects",
        value_phase, true},
    {"probe_http_redirects", "The number of redirects", value_redirects, false},
    {"probe_http_ssl", "Indicates if SSL was used for the final redirect",
        value_ssl, false},
    {"probe_http_status_code", "Response HTTP status code", value_status,
        false},
    {"probe_http_version", "Returns the version of HTTP of the probe response",
        value_version, false},
    {"probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6",
        value_ip, false},
    {"probe_ssl_earliest_cert_expiry",
        "Returns last SSL chain expiry in unixtime", value_expiry, false},
    {"probe_success", "Displays whether or not the probe was a success",
        value_success, false},
};

static void
probe_text(struct render_out *out, const char *text)
{
	render_out_add(out, text, strlen(text));
}

/* A label value, escaped, with each invalid UTF-8 sequence replaced. */
static void
probe_label_value(struct render_out *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	const char *run = s, *escape;
	size_t n, bad;

	while (*p != '\0') {
		escape = *p == '\\'   ? "\\\\"
		         : *p == '"'  ? "\\\""
		         : *p == '\n' ? "\\n"
		                      : NULL;
		n = escape == NULL ? render_utf8_len(p, &bad) : 0;
		if (n > 0) {
			p += n;
			continue;
		}
		render_out_add(out, run, (size_t)((const char *)p - run));
		probe_text(out, escape != NULL ? escape : "\xef\xbf\xbd");
		p += escape != NULL ? 1 : bad;
		run = (const char *)p;
	}
	render_out_add(out, run, (size_t)((const char *)p - run));
}

/* name{phase="...",target="..."} value */
static void
probe_sample(struct render_out *out, const struct probe_family *fam, int phase,
    const char *target, const char *value)
{
	probe_text(out, fam->name);
	if (fam->by_phase || target != NULL)
		RENDER_OUT_LITERAL(out, "{");
	if (fam->by_phase) {
		RENDER_OUT_LITERAL(out, "phase=\"");
		probe_text(out, probe_phase_names[phase]);
		RENDER_OUT_LITERAL(out, "\"");
		if (target != NULL)
			RENDER_OUT_LITERAL(out, ",");
	}
	if (target != NULL) {
		RENDER_OUT_LITERAL(out, "target=\"");
		probe_label_value(out, target);
		RENDER_OUT_LITERAL(out, "\"");
	}
	if (fam->by_phase || target != NULL)
		RENDER_OUT_LITERAL(out, "}");
	RENDER_OUT_LITERAL(out, " ");
	probe_text(out, value);
	RENDER_OUT_LITERAL(out, "\n");
}

static void
probe_header(struct render_out *out, const struct probe_family *fam)
{
	RENDER_OUT_LITERAL(out, "# HELP ");
	probe_text(out, fam->name);
	RENDER_OUT_LITERAL(out, " ");
	probe_text(out, fam->help);
	RENDER_OUT_LITERAL(out, "\n# TYPE ");
	probe_text(out, fam->name);
	RENDER_OUT_LITERAL(out, " gauge\n");
}

/* One family: its header before its first sample, then every sample. */
static void
probe_family(struct render_out *out, const struct probe_family *fam,
    const struct probe_target *targets, size_t n)
{
	int phases = fam->by_phase ? PROBE_PHASE_COUNT : 1, phase;
	char value[PROBE_VALUE_MAX];
	const char *target;
	bool started = false;
	size_t i;

	for (i = 0; i < n; i++) {
		target = n == 1                         ? NULL
		         : targets[i].item->url != NULL ? targets[i].item->url
		                                        : "";
		for (phase = 0; phase < phases; phase++) {
			if (!fam->value(
			        targets[i].result, phase, value, sizeof(value)))
				continue;
			if (!started)
				probe_header(out, fam);
			started = true;
			probe_sample(out, fam, phase, target, value);
		}
	}
}

void
probe_render(
    struct render_out *out, const struct probe_target *targets, size_t n)
{
	size_t f;

	for (f = 0; f < sizeof(probe_families) / sizeof(probe_families[0]); f++)
		probe_family(out, &probe_families[f], targets, n);
}
