/*
 * server: the HTTP face.  Listeners, evhttp routes, the client gates,
 * and the replies a route decides itself; a POST /fetch is handed to a
 * fan-out (fanout.h).  Everything here runs on the loop thread.
 */
#ifndef FANOUTD_SERVER_H
#define FANOUTD_SERVER_H

#include <stddef.h>

#include <event2/event.h>

/* The most listening sockets served (socket activation may pass several). */
#define SERVER_MAX_LISTEN 16

struct config;
struct pool;
struct server;

/*
 * Serve the nfds listening sockets in fds (socket activation) or, when
 * there are none, bind the config's listen address.  cfg gains a
 * reference.
 */
struct server *server_new(struct event_base *base, struct config *cfg,
    struct pool *pool, const int *fds, size_t nfds, char *err, size_t errlen);
/* New requests use cfg from now on (reload). */
void server_set_config(struct server *server, struct config *cfg);
/* Stop accepting; requests in flight go on. */
void server_stop_accepting(struct server *server);
/* Cancel every fan-out in flight (shutdown deadline). */
void server_cancel_all(struct server *server);
/* Fan-outs in flight. */
size_t server_inflight(const struct server *server);
/* The port the first listening socket is bound to; -1 when unknown. */
int server_port(const struct server *server);
void server_free(struct server *server);

#endif
