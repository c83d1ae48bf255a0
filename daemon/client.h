/*
 * client: every client connection, from its first byte to its close.
 * Loop thread only.
 *
 * evhttp 2.1 says nothing about a connection until a whole request has
 * arrived on it, and a connection that never completes one is invisible.
 * client.c sees each connection from its first byte (through the
 * bufferevent it makes for evhttp), and so it can:
 *  - cap connections per client address (limits.max_client_connections);
 *  - give each request an absolute deadline to arrive whole
 *    (limits.read_timeout_ms), however slowly its bytes trickle;
 *  - tell a watcher when a client goes away while its request is being
 *    answered: closed, half-closed, reset, or closed after sending more
 *    bytes (a pipelined request), which evhttp does not notice while it
 *    is not reading;
 *  - report the requests evhttp refuses itself (413, 400) that never
 *    reach the route, so that metrics and the access log count them.
 */
#ifndef FANOUTD_CLIENT_H
#define FANOUTD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct evhttp;
struct evhttp_request;
struct clients;
struct client;

struct client_limits {
	int read_timeout_ms; /* a request must arrive whole in this */
	int max_per_address; /* 0: no cap */
	/*
	 * The most bytes a connection may hold read and unparsed: evhttp
	 * waits for a whole body in its input, so the largest request.
	 */
	size_t input_max;
};

/* evhttp answered a request itself with status; it never reached us. */
typedef void (*client_refused_fn)(
    const struct sockaddr *addr, int status, void *arg);
/* The client went away; freed: its evhttp connection is being freed. */
typedef void (*client_gone_fn)(void *arg, bool freed);

/*
 * Track the connections of http from now on.  One per process (evhttp's
 * bufferevent hook carries no argument of ours to the buffers).
 */
struct clients *clients_new(struct event_base *base, struct evhttp *http,
    client_refused_fn refused, void *arg, char *err, size_t errlen);
/* Before evhttp_free(): connections still open stop being tracked. */
void clients_free(struct clients *clients);
void clients_set_limits(
    struct clients *clients, const struct client_limits *limits);
/* Connections open now. */
size_t clients_count(const struct clients *clients);

/*
 * The connection of a request that has reached the route (its read
 * deadline ends here), or NULL when it is not tracked (out of memory).
 */
struct client *client_of(struct clients *clients, struct evhttp_request *req);
/* More connections from this address than max_per_address. */
bool client_over_limit(const struct client *client);
/* The route has queued its answer's last byte: the next request may begin
 * arriving, under a new deadline. */
void client_request_done(struct client *client);
/*
 * Call gone(arg, ...) once, if the client goes away before
 * client_unwatch().  The socket is watched only after a short delay, so a
 * fan-out that ends in a few milliseconds costs no system call.
 */
void client_watch(struct client *client, client_gone_fn gone, void *arg);
/* Stop watching the socket (evhttp reads it while it writes a reply),
 * but still call gone when the connection is freed. */
void client_quiet(struct client *client);
void client_unwatch(struct client *client);
/* Cut the connection now; evhttp frees it (and calls gone, freed). */
void client_abort(struct client *client);

#endif
