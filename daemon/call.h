/*
 * call: one HTTP request as the access log and the metrics see it, and
 * the replies that finish it.  Loop thread only.
 *
 * Every answer, from the route or from a fan-out, goes out through
 * call_reply() or is closed by call_log(): each counts the status in the
 * metrics and writes the access line (when the config asks for it), and
 * tells the client connection that its answer is queued.
 */
#ifndef FANOUTD_CALL_H
#define FANOUTD_CALL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct client;
struct evhttp_request;

#define CALL_ID_MAX   64
#define CALL_PATH_MAX (512 + 8)

/* The client's address, kept to be written only when a line needs it. */
union call_addr {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

/* What the access line says of a fan-out; zero for other requests. */
struct call_counts {
	size_t urls, ok, failed;
};

struct call {
	struct evhttp_request *req; /* NULL once evhttp freed it */
	struct client *client;      /* NULL when not tracked */
	const char *method;
	/* The path, with every unsafe byte as \xHH and cut at 512 bytes:
	 * safe to log, and still there after evhttp freed the request. */
	char path[CALL_PATH_MAX];
	union call_addr addr;
	char id[CALL_ID_MAX + 1]; /* X-Request-Id */
	uint64_t start_ns;
	bool access_log; /* of the config it was admitted under */
};

/* Fill c for req: method, path, address, request id, start time. */
void call_init(struct call *c, struct evhttp_request *req,
    struct client *client, bool access_log);
/* The id made for a request without a usable one: "pid-counter". */
void call_make_id(char *buf, size_t len);
/* Count status and write the access line; counts may be NULL. */
void call_log(
    const struct call *c, int status, const struct call_counts *counts);
/* A line for a request evhttp refused before it reached the route. */
void call_log_refused(const struct sockaddr *addr, int status, bool access_log);
/* Send the output buffer's body with status and ctype; log; done. */
void call_reply(struct call *c, int status, const char *ctype,
    const struct call_counts *counts);
/* The same with text (NULL: none) as the body. */
void call_reply_text(
    struct call *c, int status, const char *ctype, const char *text);
/* {"error":{"code":..,"message":..}} with status. */
void call_reply_error(
    struct call *c, int status, const char *code, const char *message);
/* The reason phrase of a status the daemon sends. */
const char *call_status_text(int status);

#endif
