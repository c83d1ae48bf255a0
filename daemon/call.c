/*
 * call: the bookkeeping of one HTTP request.  A struct call lives on the
 * route's stack, or inside a fan-out for as long as it runs; it borrows
 * evhttp's request and path.
 *
 * The access line is "access client=A method=M path=P status=N urls=N
 * ok=N failed=N elapsed_ms=T id=I", one line per request, whatever ended
 * it.  The path comes from the client: every byte outside printable
 * ASCII, and the space, backslash and double quote, is written as \xHH,
 * so a line cannot be split, forged or made to hide its fields.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "call.h"
#include "client.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "render.h"

static uint64_t call_next_id;
static char call_id_prefix[16]; /* "1f2e-": pid, unique per run */
static size_t call_id_prefix_len;

const char *
call_status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

static const char *
call_method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	default:
		return "OTHER";
	}
}

void
call_make_id(char *buf, size_t len)
{
	char digits[24], *end;

	if (call_id_prefix_len == 0)
		call_id_prefix_len = (size_t)snprintf(call_id_prefix,
		    sizeof(call_id_prefix), "%x-", (unsigned)getpid());
	end = render_uint(digits, ++call_next_id);
	snprintf(buf, len, "%.*s%.*s", (int)call_id_prefix_len, call_id_prefix,
	    (int)(end - digits), digits);
}

/* The client's X-Request-Id when it is short and plain, else our own. */
static void
call_request_id(struct call *c)
{
	const char *given = evhttp_find_header(
	    evhttp_request_get_input_headers(c->req), "X-Request-Id");
	size_t len = given != NULL ? strlen(given) : 0;

	if (len > 0 && len <= CALL_ID_MAX &&
	    strspn(given, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                  "0123456789._-") == len) {
		memcpy(c->id, given, len + 1);
		return;
	}
	call_make_id(c->id, sizeof(c->id));
}

void
call_init(struct call *c, struct evhttp_request *req, struct client *client,
    bool access_log)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct sockaddr *sa = evhttp_connection_get_addr(evcon);
	const char *path =
	    evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));

	memset(c, 0, sizeof(*c));
	c->req = req;
	c->client = client;
	c->access_log = access_log;
	c->start_ns = clock_now_ns();
	c->method = call_method_name(evhttp_request_get_command(req));
	log_escape(path != NULL && path[0] != '\0' ? path : "/", c->path,
	    sizeof(c->path));
	if (sa != NULL && sa->sa_family == AF_INET)
		c->addr.sin = *(const struct sockaddr_in *)sa;
	else if (sa != NULL && sa->sa_family == AF_INET6)
		c->addr.sin6 = *(const struct sockaddr_in6 *)sa;
	call_request_id(c);
}

/* The address as text ("-" when unknown), for log lines. */
static const char *
call_addr_name(const struct sockaddr *sa, char *buf, size_t len)
{
	snprintf(buf, len, "-");
	if (sa != NULL && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    buf, len);
	else if (sa != NULL && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, len);
	return buf;
}

void
call_log(const struct call *c, int status, const struct call_counts *counts)
{
	static const struct call_counts none;
	char addr[INET6_ADDRSTRLEN];

	if (counts == NULL)
		counts = &none;
	metrics_request(status);
	if (!c->access_log)
		return;
	log_info("access client=%s method=%s path=%s status=%d urls=%zu ok=%zu "
	         "failed=%zu elapsed_ms=%.1f id=%s",
	    call_addr_name(&c->addr.sa, addr, sizeof(addr)), c->method, c->path,
	    status, counts->urls, counts->ok, counts->failed,
	    clock_ms_between(c->start_ns, clock_now_ns()), c->id);
}

void
call_log_refused(const struct sockaddr *sa, int status, bool access_log)
{
	char addr[INET6_ADDRSTRLEN], id[CALL_ID_MAX + 1];

	metrics_request(status);
	if (!access_log)
		return;
	call_make_id(id, sizeof(id));
	log_info("access client=%s method=- path=- status=%d urls=0 ok=0 "
	         "failed=0 elapsed_ms=0.0 id=%s",
	    call_addr_name(sa, addr, sizeof(addr)), status, id);
}

void
call_reply(struct call *c, int status, const char *ctype,
    const struct call_counts *counts)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(c->req);

	evhttp_add_header(out, "Content-Type", ctype);
	evhttp_add_header(out, "X-Request-Id", c->id);
	call_log(c, status, counts);
	evhttp_send_reply(c->req, status, call_status_text(status), NULL);
	c->req = NULL; /* evhttp's from here on */
	if (c->client != NULL)
		client_request_done(c->client);
}

void
call_reply_text(struct call *c, int status, const char *ctype, const char *text)
{
	struct evbuffer *body = evhttp_request_get_output_buffer(c->req);

	if (text != NULL)
		evbuffer_add(body, text, strlen(text));
	call_reply(c, status, ctype, NULL);
}

void
call_reply_error(
    struct call *c, int status, const char *code, const char *message)
{
	struct evbuffer *body = evhttp_request_get_output_buffer(c->req);
	char *json = render_error(code, message);

	evbuffer_drain(body, evbuffer_get_length(body));
	/* A newline after the document keeps shells and jq happy. */
	if (json == NULL || evbuffer_add_printf(body, "%s\n", json) < 0) {
		evbuffer_drain(body, evbuffer_get_length(body));
		status = 500;
	}
	free(json);
	call_reply(c, status, "application/json", NULL);
}
