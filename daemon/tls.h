/*
 * tls: the trust a configuration carries (CA store, client identity),
 * built once and shared by every worker, and the facts of one TLS
 * connection (version, cipher, the leaf certificate, why verification
 * failed).  Knows nothing of HTTP, jansson or libevent; its interface
 * names no OpenSSL type, so that render.c and the tests can include it.
 *
 * Threads: a trust is built on the loop thread and never changed after;
 * workers only read it (OpenSSL's store takes its own lock for lookups).
 * A capture belongs to one worker.
 */
#ifndef FANOUTD_TLS_H
#define FANOUTD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a TLS handshake or verification failed (error.reason). */
enum tls_reason {
	TLS_REASON_NONE = 0,
	TLS_REASON_EXPIRED,
	TLS_REASON_NOT_YET_VALID,
	TLS_REASON_UNTRUSTED,
	TLS_REASON_HOSTNAME,
	TLS_REASON_HANDSHAKE,
	TLS_REASON_COUNT
};

#define TLS_SERIAL_MAX  48 /* 20 octets in hex, a sign, the NUL, room */
#define TLS_TIME_TEXT   21 /* "2025-01-31T12:00:00Z" and the NUL */
#define TLS_NAME_MAX    1024
#define TLS_SAN_MAX     100
#define TLS_VERSION_MAX 16
#define TLS_CIPHER_MAX  64

/* The leaf certificate of a connection, as the API shows it. */
struct tls_cert {
	char *subject; /* RFC 4514, heap, at most TLS_NAME_MAX bytes */
	char *issuer;  /* likewise */
	char *san;     /* nsan NUL-terminated entries back to back, heap */
	size_t nsan;   /* DNS names and IP addresses, at most TLS_SAN_MAX */
	char serial[TLS_SERIAL_MAX]; /* upper-case hex, as openssl prints it */
	int64_t not_before, not_after; /* seconds since the epoch, UTC */
	int64_t days_left; /* whole days to not_after, rounded down */
};

/* What one hop's connection says about TLS (the result's "tls"). */
struct tls_facts {
	bool used;     /* a TLS connection was made or tried */
	bool verified; /* certificate and host name checked, and good */
	bool has_cert; /* cert holds the server's leaf */
	enum tls_reason reason; /* of a failed handshake or verification */
	char version[TLS_VERSION_MAX]; /* "TLSv1.3"; "" when not agreed */
	char cipher[TLS_CIPHER_MAX];   /* "" when not agreed */
	struct tls_cert cert;
};

/* Free the facts' strings and zero them. */
void tls_facts_reset(struct tls_facts *facts);

/* "expired", ...; NULL for TLS_REASON_NONE. */
const char *tls_reason_name(enum tls_reason reason);
/*
 * The reason for a failed TLS connection: verify_error is the first
 * X509_V_ERR_* the chain check met (0: none, or not checked), and
 * peer_failed says libcurl gave CURLE_PEER_FAILED_VERIFICATION (which,
 * with a good chain, means the host name did not match).
 */
enum tls_reason tls_reason_of(long verify_error, bool peer_failed);
/* t as RFC 3339 UTC ("2025-01-31T12:00:00Z"), clamped to years 0-9999. */
void tls_time_text(int64_t t, char buf[TLS_TIME_TEXT]);
/* Whole days from now to t, rounded down (negative once t has passed). */
int64_t tls_days_left(int64_t t, int64_t now);

/* Process-wide set-up, before any thread; 0 or -1. */
int tls_global_init(char *err, size_t errlen);

/* The tls.* keys; "" for a path that is not set. */
struct tls_settings {
	const char *ca_file, *ca_path, *client_cert, *client_key;
};

/* Which setting a failure is about. */
enum tls_key {
	TLS_KEY_DEFAULT, /* libcurl's default bundle (no key names it) */
	TLS_KEY_CA_FILE,
	TLS_KEY_CA_PATH,
	TLS_KEY_CLIENT_CERT,
	TLS_KEY_CLIENT_KEY
};

struct tls_trust;

/*
 * Read every file the settings name (or libcurl's default bundle when
 * neither ca_file nor ca_path is set) into a new trust: the CA store and
 * the client certificate, its chain and key, each checked.  Returns NULL
 * with *key and why saying what is wrong.  On the loop thread; it reads
 * files and may take tens of milliseconds (a system bundle).
 */
struct tls_trust *tls_trust_new(const struct tls_settings *settings,
    enum tls_key *key, char *why, size_t whylen);
/* One more reference (thread-safe); returns trust.  Accepts NULL. */
struct tls_trust *tls_trust_ref(struct tls_trust *trust);
/* Drop a reference (thread-safe); the last one frees.  Accepts NULL. */
void tls_trust_unref(struct tls_trust *trust);
/* Same sources with the same bytes: pooled connections may be kept. */
bool tls_trust_equal(const struct tls_trust *a, const struct tls_trust *b);
/*
 * One line for the start-up log: where the trust comes from.  false when
 * it trusts no CA at all (the line is then a warning).
 */
bool tls_trust_describe(const struct tls_trust *trust, char *buf, size_t len);

/*
 * One worker's view of the handshakes it runs: the leaf certificate and
 * the first verification error, seen by a verify callback even when
 * verification fails.  Only its worker touches it.
 */
struct tls_capture;

struct tls_capture *tls_capture_new(void);
void tls_capture_free(struct tls_capture *capture);
/* Forget the last handshake (before each hop). */
void tls_capture_reset(struct tls_capture *capture);

/*
 * Make a new connection's SSL_CTX (an SSL_CTX *, as libcurl's
 * CURLOPT_SSL_CTX_FUNCTION gives it) use trust: its shared CA store for
 * verification, its client certificate, and a verify callback that
 * records into capture.  trust may be NULL (no CA at all).  0, or -1.
 */
int tls_ctx_setup(
    void *ssl_ctx, const struct tls_trust *trust, struct tls_capture *capture);

/*
 * Fill facts from a connection that is up (an SSL *): version, cipher,
 * the peer's certificate; verified as given.  Returns 0, or -1 out of
 * memory (facts stay partly filled, used is set).
 */
int tls_facts_from_ssl(
    struct tls_facts *facts, const void *ssl, bool verified, int64_t now);
/*
 * Fill facts after a failed handshake, from what capture saw: the leaf
 * if the server sent one, and the reason (verify_on says whether the
 * chain check counted).
 */
void tls_facts_from_failure(struct tls_facts *facts,
    const struct tls_capture *capture, bool verify_on, bool peer_failed,
    int64_t now);

#endif
