/*
 * tls: the trust store built once per configuration, and the facts of
 * each TLS connection.
 *
 * Why a store of our own: libcurl 7.88 (with OpenSSL 3) reads the CA
 * bundle into a new X509_STORE for every connection, and OpenSSL 3
 * decodes a certificate slowly: the 144 certificates of Debian's bundle
 * cost about 45 ms of CPU, against a few for the handshake itself.  So
 * the bundle, the CA directory and the client certificate are read once,
 * on the loop thread, when a configuration is loaded; every connection's
 * SSL_CTX then verifies against that one store, handed to it with
 * SSL_CTX_set1_verify_cert_store() (a reference, no copy).  libcurl is
 * given no CA file or path, so it loads nothing, and its own per-handle
 * store cache is off.  The verify store is used instead of the SSL_CTX's
 * own cert store because libcurl writes flags into the latter after our
 * callback.
 *
 * Memory: a decoded certificate takes about 7 KiB in OpenSSL 3, so the
 * bundle decoded whole would add 1 MiB to an idle daemon.  Every file is
 * read and every certificate decoded (and so checked) when the trust is
 * built, but only its DER bytes are kept, in an index by subject hash
 * (about 1.4 KiB each); a lookup method on the store decodes the CA
 * certificates of a subject the first time a handshake asks for it and
 * adds them to the store, as OpenSSL's own hashed-directory lookup does
 * with files, under the store's lock.  The CA directory is read when the
 * trust is built, never during a handshake.
 *
 * Facts: a verify callback, installed on each SSL_CTX, sees the leaf
 * even when verification fails, and the first error; a capture (one per
 * worker) keeps both for the failed hop.  A connection that is up is
 * described from its SSL * (tls_facts_from_ssl), which also serves
 * reused connections, where no handshake runs.
 *
 * Pure but for reading the files the settings name; never logs.
 */
#include <sys/stat.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls.h"

/* A CA bundle is a few hundred KiB; refuse to slurp anything huge. */
#define TLS_FILE_MAX (16 * 1024 * 1024)
#define TLS_DAY      86400

/* One CA certificate, as DER until a handshake asks for its subject. */
struct tls_ca {
	unsigned long hash; /* X509_NAME_hash_ex() of its subject */
	int len;
	unsigned char *der;
};

/* The CA certificates of a store, by subject hash; its lookup owns it. */
struct tls_cas {
	struct tls_ca *v;
	size_t n, cap;
};

struct tls_trust {
	atomic_int refs;
	X509_STORE *store; /* with a lookup over the CA index, no objects */
	X509 *client_cert; /* NULL: no client certificate */
	STACK_OF(X509) * client_chain; /* what follows it in its file */
	EVP_PKEY *client_key;
	struct tls_cas *cas; /* being built; then the store's lookup owns it */
	int ncerts;          /* distinct CA certificates */
	unsigned char digest[EVP_MAX_MD_SIZE]; /* sources and their bytes */
	unsigned digest_len;
	char *source; /* for the log: where the CA certificates came from */
};

struct tls_capture {
	X509 *leaf;        /* the server's certificate, once seen */
	long verify_error; /* the first X509_V_ERR_* met, 0 none */
};

static int tls_ctx_index = -1;
static X509_LOOKUP_METHOD *tls_lookup_method;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static const char *const tls_reason_names[TLS_REASON_COUNT] = {
    [TLS_REASON_NONE] = NULL,
    [TLS_REASON_EXPIRED] = "expired",
    [TLS_REASON_NOT_YET_VALID] = "not_yet_valid",
    [TLS_REASON_UNTRUSTED] = "untrusted",
    [TLS_REASON_HOSTNAME] = "hostname",
    [TLS_REASON_HANDSHAKE] = "handshake",
};

const char *
tls_reason_name(enum tls_reason reason)
{
	if ((unsigned)reason >= TLS_REASON_COUNT)
		return "handshake";
	return tls_reason_names[reason];
}

enum tls_reason
tls_reason_of(long verify_error, bool peer_failed)
{
	switch (verify_error) {
	case X509_V_OK:
		/* A good chain that libcurl still refused: its host check. */
		return peer_failed ? TLS_REASON_HOSTNAME : TLS_REASON_HANDSHAKE;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return TLS_REASON_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return TLS_REASON_NOT_YET_VALID;
	default:
		/* Self-signed, unknown issuer, bad signature, not a CA...:
		 * nothing the store trusts vouches for this certificate. */
		return TLS_REASON_UNTRUSTED;
	}
}

/* Civil date of a day count since 1970-01-01 (Howard Hinnant's method). */
static void
tls_civil(int64_t days, int64_t *y, int *m, int *d)
{
	int64_t z = days + 719468, era, doe, yoe, doy, mp;

	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z, in epoch seconds. */
#define TLS_TIME_MIN (-INT64_C(62167219200))
#define TLS_TIME_MAX INT64_C(253402300799)

void
tls_time_text(int64_t t, char buf[TLS_TIME_TEXT])
{
	char text[64];
	int64_t days, secs, y;
	int m, d;

	if (t < TLS_TIME_MIN)
		t = TLS_TIME_MIN;
	if (t > TLS_TIME_MAX)
		t = TLS_TIME_MAX;
	days = t >= 0 ? t / TLS_DAY : -((-t + TLS_DAY - 1) / TLS_DAY);
	secs = t - days * TLS_DAY;
	tls_civil(days, &y, &m, &d);
	/* 20 characters for every value the clamps let through */
	snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y,
	    m, d, (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
	memcpy(buf, text, TLS_TIME_TEXT - 1);
	buf[TLS_TIME_TEXT - 1] = '\0';
}

int64_t
tls_days_left(int64_t t, int64_t now)
{
	int64_t s;

	/* Saturate rather than overflow on absurd dates. */
	if (now > 0 && t < INT64_MIN + now)
		return INT64_MIN / TLS_DAY;
	if (now < 0 && t > INT64_MAX + now)
		return INT64_MAX / TLS_DAY;
	s = t - now;
	return s >= 0 ? s / TLS_DAY : -((-(s + 1)) / TLS_DAY) - 1;
}

void
tls_facts_reset(struct tls_facts *f)
{
	free(f->cert.subject);
	free(f->cert.issuer);
	free(f->cert.san);
	memset(f, 0, sizeof(*f));
}

static void tls_once_init(void);

int
tls_global_init(char *err, size_t errlen)
{
	pthread_once(&tls_once, tls_once_init);
	if (tls_ctx_index < 0 || tls_lookup_method == NULL) {
		snprintf(err, errlen,
		    "cannot set up OpenSSL (an SSL_CTX "
		    "ex_data index, a lookup method)");
		return -1;
	}
	return 0;
}

/* --------------------------------------------------------- reading files */

/* The text of OpenSSL's last error, or fallback; clears the queue. */
static void
tls_ssl_error(char *why, size_t whylen, const char *fallback)
{
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		snprintf(why, whylen, "%s (%s)", fallback,
		    ERR_reason_error_string(e) != NULL
		        ? ERR_reason_error_string(e)
		        : "unknown OpenSSL error");
	else
		snprintf(why, whylen, "%s", fallback);
	ERR_clear_error();
}

/*
 * The bytes of a regular file, at most TLS_FILE_MAX.  O_NONBLOCK keeps
 * the open of a FIFO from hanging the loop thread.  0, or -1 with why.
 */
static int
tls_file_read(
    const char *path, char **out, size_t *outlen, char *why, size_t whylen)
{
	const char *problem = NULL;
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)) ==
	        -1 ||
	    fstat(fd, &st) == -1)
		problem = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		problem = "not a regular file";
	else if (st.st_size > TLS_FILE_MAX)
		problem = "larger than 16 MiB";
	else if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		problem = strerror(ENOMEM);
	while (problem == NULL && len < (size_t)st.st_size) {
		if ((n = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
			len += (size_t)n;
		else if (n == 0 || errno != EINTR)
			break; /* a file that shrank is read as it is now */
	}
	if (fd != -1)
		close(fd);
	if (problem != NULL) {
		snprintf(why, whylen, "%s: %s", path, problem);
		return -1;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

/* Why bytes that hold no PEM block are not what was asked for. */
static void
tls_not_pem(const char *path, const char *buf, size_t len, const char *what,
    char *why, size_t whylen)
{
	if (len == 0)
		snprintf(why, whylen, "%s: is empty", path);
	else if ((unsigned char)buf[0] == 0x30)
		snprintf(why, whylen,
		    "%s: is not PEM (DER? convert it with openssl x509 "
		    "-inform DER)",
		    path);
	else
		snprintf(why, whylen, "%s: holds no PEM %s", path, what);
}

/*
 * Each certificate of PEM bytes in turn, given to take (which owns it,
 * and returns 0 or -1), so that a bundle is never decoded whole at once:
 * its peak would stay in the heap.  Returns how many, or -1 with why.
 */
static int
tls_pem_each(const char *path, const char *buf, size_t len,
    int (*take)(X509 *x, void *arg), void *arg, char *why, size_t whylen)
{
	BIO *bio = BIO_new_mem_buf(buf, (int)len);
	unsigned long e;
	int n = 0;
	X509 *x;

	if (bio == NULL) {
		snprintf(why, whylen, "%s: out of memory", path);
		return -1;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (take(x, arg) == -1) {
			tls_ssl_error(why, whylen, "out of memory");
			n = -1;
			break;
		}
		n++;
	}
	/* The loop ends at the end of the input ("no start line": no more
	 * blocks), or at a block that does not decode. */
	e = ERR_peek_last_error();
	if (n >= 0 && (ERR_GET_LIB(e) != ERR_LIB_PEM ||
	                  ERR_GET_REASON(e) != PEM_R_NO_START_LINE)) {
		snprintf(why, whylen, "%s: certificate %d", path, n + 1);
		tls_ssl_error(
		    why + strlen(why), whylen - strlen(why), " is damaged");
		n = -1;
	} else if (n == 0)
		tls_not_pem(path, buf, len, "certificate", why, whylen);
	ERR_clear_error();
	BIO_free(bio);
	return n > 0 ? n : -1;
}

static int
tls_take_push(X509 *x, void *arg)
{
	if (sk_X509_push(arg, x))
		return 0;
	X509_free(x);
	return -1;
}

/* The certificates of PEM bytes, in order; NULL with why on error. */
static STACK_OF(X509) * tls_pem_certs(const char *path, const char *buf,
                            size_t len, char *why, size_t whylen)
{
	STACK_OF(X509) *certs = sk_X509_new_null();

	if (certs == NULL) {
		snprintf(why, whylen, "%s: out of memory", path);
		return NULL;
	}
	if (tls_pem_each(path, buf, len, tls_take_push, certs, why, whylen) ==
	    -1) {
		sk_X509_pop_free(certs, X509_free);
		return NULL;
	}
	return certs;
}

/* ------------------------------------------------------------ the trust */

/* What a build collects before it becomes a trust. */
struct tls_build {
	struct tls_trust *t;
	EVP_MD_CTX *md;
	char *why;
	size_t whylen;
};

/* Feed a labelled piece into the trust's digest. */
static void
tls_digest(struct tls_build *b, const char *label, const void *p, size_t n)
{
	uint64_t len = n;

	EVP_DigestUpdate(b->md, label, strlen(label) + 1);
	EVP_DigestUpdate(b->md, &len, sizeof(len));
	EVP_DigestUpdate(b->md, p, n);
}

/* Keep x in the index as its subject hash and DER; 0 or -1. */
static int
tls_cas_add(struct tls_cas *cas, X509 *x)
{
	struct tls_ca *grown, ca = {0};
	int ok = 0;

	ca.hash = X509_NAME_hash_ex(X509_get_subject_name(x), NULL, NULL, &ok);
	if (!ok || (ca.len = i2d_X509(x, &ca.der)) <= 0)
		return -1;
	if (cas->n == cas->cap) {
		cas->cap = cas->cap == 0 ? 16 : cas->cap * 2;
		if ((grown = realloc(cas->v, cas->cap * sizeof(*grown))) ==
		    NULL) {
			OPENSSL_free(ca.der);
			return -1;
		}
		cas->v = grown;
	}
	cas->v[cas->n++] = ca;
	return 0;
}

static void
tls_cas_free(struct tls_cas *cas)
{
	size_t i;

	if (cas == NULL)
		return;
	for (i = 0; i < cas->n; i++)
		OPENSSL_free(cas->v[i].der);
	free(cas->v);
	free(cas);
}

static int
tls_ca_cmp(const void *pa, const void *pb)
{
	const struct tls_ca *a = pa, *b = pb;

	if (a->hash != b->hash)
		return a->hash < b->hash ? -1 : 1;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->der, b->der, (size_t)a->len);
}

/* Sort by hash and drop repeated certificates; the count left. */
static size_t
tls_cas_finish(struct tls_cas *cas)
{
	size_t i, n = 0;

	if (cas->n > 0)
		qsort(cas->v, cas->n, sizeof(*cas->v), tls_ca_cmp);
	for (i = 0; i < cas->n; i++) {
		if (n > 0 && tls_ca_cmp(&cas->v[n - 1], &cas->v[i]) == 0)
			OPENSSL_free(cas->v[i].der);
		else
			cas->v[n++] = cas->v[i];
	}
	return cas->n = n;
}

/* The first entry of hash in the sorted index, or cas->n. */
static size_t
tls_cas_find(const struct tls_cas *cas, unsigned long hash)
{
	size_t lo = 0, hi = cas->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (cas->v[mid].hash < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The certificate the store now holds for name, lent to ret: OpenSSL's
 * own lookups return what they added without a reference of their own
 * (the caller takes one), and the store never drops a certificate, so it
 * outlives the lookup.  The store's, not the one decoded here: another
 * worker may have added the same one first.
 */
static int
tls_lookup_lend(X509_STORE *store, const X509_NAME *name, X509_OBJECT *ret)
{
	X509_OBJECT *obj;
	X509 *x = NULL;

	if (!X509_STORE_lock(store))
		return 0;
	obj = X509_OBJECT_retrieve_by_subject(
	    X509_STORE_get0_objects(store), X509_LU_X509, name);
	if (obj != NULL)
		x = X509_OBJECT_get0_X509(obj);
	X509_STORE_unlock(store);
	if (x == NULL || !X509_OBJECT_set1_X509(ret, x))
		return 0;
	X509_free(x); /* set1's reference: ret borrows the store's */
	return 1;
}

/*
 * The store's lookup: a handshake asks for the CA certificates of a
 * subject the store has not seen yet.  Each one of the index with that
 * subject is decoded and added to the store (a repeat added by another
 * worker meanwhile is ignored by OpenSSL).  Called by OpenSSL without the
 * store's lock held, on any worker; the index is only read.
 */
static int
tls_lookup_subject(X509_LOOKUP *lu, X509_LOOKUP_TYPE type,
    const X509_NAME *name, X509_OBJECT *ret)
{
	const struct tls_cas *cas = X509_LOOKUP_get_method_data(lu);
	X509_STORE *store = X509_LOOKUP_get_store(lu);
	const unsigned char *p;
	unsigned long hash;
	bool found = false;
	size_t i;
	int ok = 0;
	X509 *x;

	if (type != X509_LU_X509 || cas == NULL || store == NULL)
		return 0;
	hash = X509_NAME_hash_ex(name, NULL, NULL, &ok);
	for (i = tls_cas_find(cas, hash);
	     ok && i < cas->n && cas->v[i].hash == hash; i++) {
		p = cas->v[i].der;
		if ((x = d2i_X509(NULL, &p, cas->v[i].len)) == NULL)
			continue;
		if (X509_NAME_cmp(X509_get_subject_name(x), name) == 0) {
			/* OpenSSL fills a certificate's extension cache on
			 * first use; do it before the store shares it, or two
			 * workers race on it (ThreadSanitizer saw them). */
			X509_check_purpose(x, -1, 0);
			X509_STORE_add_cert(store, x);
			found = true;
		}
		X509_free(x);
	}
	ERR_clear_error();
	return found && tls_lookup_lend(store, name, ret);
}

static void
tls_lookup_free(X509_LOOKUP *lu)
{
	tls_cas_free(X509_LOOKUP_get_method_data(lu));
}

static void
tls_once_init(void)
{
	X509_LOOKUP_METHOD *m = X509_LOOKUP_meth_new("fanoutd CA index");

	tls_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (m != NULL &&
	    (!X509_LOOKUP_meth_set_get_by_subject(m, tls_lookup_subject) ||
	        !X509_LOOKUP_meth_set_free(m, tls_lookup_free))) {
		X509_LOOKUP_meth_free(m);
		m = NULL;
	}
	tls_lookup_method = m;
}

static int
tls_take_index(X509 *x, void *arg)
{
	int rc = tls_cas_add(arg, x);

	X509_free(x);
	return rc;
}

/* Index every certificate of one PEM file (each decoded: checked). */
static int
tls_add_ca_file(struct tls_build *b, const char *path)
{
	size_t len;
	char *buf;
	int n;

	if (tls_file_read(path, &buf, &len, b->why, b->whylen) == -1)
		return -1;
	tls_digest(b, path, buf, len);
	n = tls_pem_each(
	    path, buf, len, tls_take_index, b->t->cas, b->why, b->whylen);
	free(buf);
	return n > 0 ? 0 : -1;
}

/* "1a2b3c4d.0": the names openssl rehash gives, the ones a lookup reads. */
static bool
tls_hashed_name(const char *name)
{
	int i;

	for (i = 0; i < 8; i++)
		if (!isxdigit((unsigned char)name[i]) ||
		    isupper((unsigned char)name[i]))
			return false;
	if (name[8] != '.' || !isdigit((unsigned char)name[9]))
		return false;
	for (i = 10; name[i] != '\0'; i++)
		if (!isdigit((unsigned char)name[i]))
			return false;
	return true;
}

static int
tls_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The hashed names in dir, sorted; NULL with why on error. */
static char **
tls_dir_names(const char *dir, size_t *count, char *why, size_t whylen)
{
	char **names = NULL, **grown;
	size_t n = 0, cap = 0;
	struct dirent *e;
	DIR *d;

	if ((d = opendir(dir)) == NULL) {
		snprintf(why, whylen, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	while ((e = readdir(d)) != NULL) {
		if (!tls_hashed_name(e->d_name))
			continue;
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			if ((grown = realloc(names, cap * sizeof(*names))) ==
			    NULL)
				break;
			names = grown;
		}
		if ((names[n] = strdup(e->d_name)) == NULL)
			break;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), tls_name_cmp);
	*count = n;
	return names != NULL ? names : calloc(1, sizeof(*names));
}

/*
 * Every certificate of a hashed directory (openssl rehash), read now
 * rather than looked up by hash during handshakes: the store is complete
 * once built, and a worker never reads a file or writes the store.
 */
static int
tls_add_ca_path(struct tls_build *b, const char *dir)
{
	char path[4096];
	size_t n = 0, i;
	char **names = tls_dir_names(dir, &n, b->why, b->whylen);
	int rc = 0;

	if (names == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (rc == 0 && tls_add_ca_file(b, path) == -1)
			rc = -1;
		free(names[i]);
	}
	free(names);
	if (rc == 0 && n == 0) {
		snprintf(b->why, b->whylen,
		    "%s: holds no hashed certificate file (run openssl rehash "
		    "on it)",
		    dir);
		rc = -1;
	}
	return rc;
}

/*
 * Fill the extension cache of certificates every worker's connections
 * will share, while only this thread sees them (see tls_lookup_subject).
 */
static void
tls_warm_certs(X509 *x, STACK_OF(X509) * chain)
{
	int i;

	X509_check_purpose(x, -1, 0);
	for (i = 0; i < sk_X509_num(chain); i++)
		X509_check_purpose(sk_X509_value(chain, i), -1, 0);
	ERR_clear_error();
}

/* No passphrase prompt, ever: an encrypted key fails to load. */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* The private key of a PEM file; NULL with why. */
static EVP_PKEY *
tls_pem_key(const char *path, char *why, size_t whylen)
{
	EVP_PKEY *key = NULL;
	size_t len;
	char *buf;
	BIO *bio;

	if (tls_file_read(path, &buf, &len, why, whylen) == -1)
		return NULL;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL)
		key =
		    PEM_read_bio_PrivateKey(bio, NULL, tls_no_passphrase, NULL);
	if (key == NULL && strstr(buf, "PRIVATE KEY-----") == NULL)
		tls_not_pem(path, buf, len, "private key", why, whylen);
	else if (key == NULL)
		snprintf(why, whylen, "%s: the private key %s", path,
		    strstr(buf, "ENCRYPTED") != NULL
		        ? "is encrypted (fanoutd takes unencrypted keys)"
		        : "cannot be read");
	ERR_clear_error();
	BIO_free(bio);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return key;
}

/*
 * The client certificate (the first of cert_path; the rest are its
 * chain) and its key (from key_path, or else from cert_path itself).
 */
static int
tls_add_client(
    struct tls_build *b, const struct tls_settings *s, enum tls_key *key)
{
	const char *key_path =
	    s->client_key[0] != '\0' ? s->client_key : s->client_cert;
	struct tls_trust *t = b->t;
	STACK_OF(X509) * certs;
	size_t len;
	char *buf;

	*key = TLS_KEY_CLIENT_CERT;
	if (tls_file_read(s->client_cert, &buf, &len, b->why, b->whylen) == -1)
		return -1;
	tls_digest(b, "client_cert", buf, len);
	certs = tls_pem_certs(s->client_cert, buf, len, b->why, b->whylen);
	free(buf);
	if (certs == NULL)
		return -1;
	t->client_cert = sk_X509_shift(certs);
	t->client_chain = certs;
	tls_warm_certs(t->client_cert, certs);
	*key =
	    s->client_key[0] != '\0' ? TLS_KEY_CLIENT_KEY : TLS_KEY_CLIENT_CERT;
	if ((t->client_key = tls_pem_key(key_path, b->why, b->whylen)) == NULL)
		return -1;
	tls_digest(b, "client_key", key_path, strlen(key_path));
	if (X509_check_private_key(t->client_cert, t->client_key) != 1) {
		ERR_clear_error();
		snprintf(b->why, b->whylen,
		    "%s: the private key does not match the certificate in %s",
		    key_path, s->client_cert);
		return -1;
	}
	return 0;
}

/* libcurl's own default: its CA bundle, else its CA directory. */
static int
tls_default_ca(char **file, char **dir, char *why, size_t whylen)
{
	char *f = NULL, *d = NULL;
	CURL *h;

	/* Counted: balanced here whether or not fetch.c has set curl up. */
	*file = *dir = NULL;
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
		snprintf(why, whylen, "cannot set up libcurl");
		return -1;
	}
	if ((h = curl_easy_init()) == NULL) {
		curl_global_cleanup();
		snprintf(why, whylen, "cannot set up libcurl");
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_CAINFO, &f);
	curl_easy_getinfo(h, CURLINFO_CAPATH, &d);
	if (f != NULL && f[0] != '\0')
		*file = strdup(f);
	else if (d != NULL && d[0] != '\0')
		*dir = strdup(d);
	curl_easy_cleanup(h);
	curl_global_cleanup();
	if (*file == NULL && *dir == NULL) {
		snprintf(why, whylen,
		    "libcurl has no default CA bundle: set tls.ca_file");
		return -1;
	}
	return 0;
}

/* The CA certificates: ca_file and ca_path, or libcurl's default. */
static int
tls_add_cas(
    struct tls_build *b, const struct tls_settings *s, enum tls_key *key)
{
	char *file = NULL, *dir = NULL, src[4200];
	int rc = 0;

	if (s->ca_file[0] == '\0' && s->ca_path[0] == '\0') {
		*key = TLS_KEY_DEFAULT;
		if (tls_default_ca(&file, &dir, b->why, b->whylen) == -1)
			return -1;
		/*
		 * A host without ca-certificates still serves http targets:
		 * the default that is not there trusts nothing (every https
		 * target fails verification), and start-up says so.
		 */
		if (access(file != NULL ? file : dir, F_OK) == -1 &&
		    errno == ENOENT)
			snprintf(src, sizeof(src),
			    "libcurl's default %s is missing (install "
			    "ca-certificates, or set tls.ca_file)",
			    file != NULL ? file : dir);
		else {
			rc = file != NULL ? tls_add_ca_file(b, file)
			                  : tls_add_ca_path(b, dir);
			snprintf(src, sizeof(src), "%s (libcurl's default)",
			    file != NULL ? file : dir);
		}
		free(file);
		free(dir);
	} else {
		if (s->ca_file[0] != '\0') {
			*key = TLS_KEY_CA_FILE;
			rc = tls_add_ca_file(b, s->ca_file);
		}
		if (rc == 0 && s->ca_path[0] != '\0') {
			*key = TLS_KEY_CA_PATH;
			rc = tls_add_ca_path(b, s->ca_path);
		}
		snprintf(src, sizeof(src), "%s%s%s", s->ca_file,
		    s->ca_file[0] != '\0' && s->ca_path[0] != '\0' ? " and "
		                                                   : "",
		    s->ca_path);
	}
	if (rc == 0 && (b->t->source = strdup(src)) == NULL)
		rc = -1;
	return rc;
}

static void
tls_trust_free(struct tls_trust *t)
{
	if (t == NULL)
		return;
	tls_cas_free(t->cas);
	X509_STORE_free(t->store);
	X509_free(t->client_cert);
	sk_X509_pop_free(t->client_chain, X509_free);
	EVP_PKEY_free(t->client_key);
	free(t->source);
	free(t);
}

/*
 * The flags libcurl itself gives a store it verifies with: issuers from
 * the store first, and any certificate in it may end a chain (curl
 * --cacert with an intermediate works the same way here).
 */
static int
tls_store_new(struct tls_trust *t)
{
	pthread_once(&tls_once, tls_once_init);
	if (tls_lookup_method == NULL ||
	    (t->cas = calloc(1, sizeof(*t->cas))) == NULL ||
	    (t->store = X509_STORE_new()) == NULL)
		return -1;
	X509_STORE_set_flags(
	    t->store, X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN);
	return 0;
}

/* The index, complete, becomes the store's lookup's (which frees it). */
static int
tls_store_index(struct tls_trust *t)
{
	X509_LOOKUP *lu;

	t->ncerts = (int)tls_cas_finish(t->cas);
	if ((lu = X509_STORE_add_lookup(t->store, tls_lookup_method)) == NULL ||
	    !X509_LOOKUP_set_method_data(lu, t->cas))
		return -1;
	t->cas = NULL;
	return 0;
}

struct tls_trust *
tls_trust_new(
    const struct tls_settings *s, enum tls_key *key, char *why, size_t whylen)
{
	struct tls_build b = {.why = why, .whylen = whylen};
	int rc = -1;

	*key = TLS_KEY_DEFAULT;
	snprintf(why, whylen, "out of memory");
	if ((b.t = calloc(1, sizeof(*b.t))) == NULL)
		return NULL;
	atomic_init(&b.t->refs, 1);
	if ((b.md = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(b.md, EVP_sha256(), NULL) == 1 &&
	    tls_store_new(b.t) == 0 && tls_add_cas(&b, s, key) == 0 &&
	    tls_store_index(b.t) == 0 &&
	    (s->client_cert[0] == '\0' || tls_add_client(&b, s, key) == 0) &&
	    EVP_DigestFinal_ex(b.md, b.t->digest, &b.t->digest_len) == 1)
		rc = 0;
	EVP_MD_CTX_free(b.md);
	ERR_clear_error();
	if (rc == -1) {
		tls_trust_free(b.t);
		return NULL;
	}
	return b.t;
}

struct tls_trust *
tls_trust_ref(struct tls_trust *t)
{
	if (t != NULL)
		atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	return t;
}

void
tls_trust_unref(struct tls_trust *t)
{
	if (t != NULL &&
	    atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		tls_trust_free(t);
}

bool
tls_trust_equal(const struct tls_trust *a, const struct tls_trust *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return a->digest_len == b->digest_len &&
	       memcmp(a->digest, b->digest, a->digest_len) == 0;
}

bool
tls_trust_describe(const struct tls_trust *t, char *buf, size_t len)
{
	char subject[256] = "";

	if (t == NULL || t->ncerts == 0) {
		snprintf(buf, len,
		    "tls: no CA certificates%s%s: https targets fail "
		    "verification",
		    t != NULL ? ": " : "", t != NULL ? t->source : "");
		return false;
	}
	if (t->client_cert != NULL)
		X509_NAME_oneline(X509_get_subject_name(t->client_cert),
		    subject, sizeof(subject));
	snprintf(buf, len, "tls: trusting %d CA certificate%s from %s%s%s",
	    t->ncerts, t->ncerts == 1 ? "" : "s", t->source,
	    t->client_cert != NULL ? "; client certificate " : "", subject);
	return true;
}

/* ---------------------------------------------------- handshake capture */

struct tls_capture *
tls_capture_new(void)
{
	return calloc(1, sizeof(struct tls_capture));
}

void
tls_capture_reset(struct tls_capture *c)
{
	if (c == NULL)
		return;
	X509_free(c->leaf);
	c->leaf = NULL;
	c->verify_error = 0;
}

void
tls_capture_free(struct tls_capture *c)
{
	tls_capture_reset(c);
	free(c);
}

/*
 * Called by OpenSSL for each certificate of the chain, in the worker's
 * handshake; it changes no verdict, it only takes notes.  The target
 * certificate is the leaf, at every depth.
 */
static int
tls_verify_cb(int ok, X509_STORE_CTX *sctx)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(
	    sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_capture *c;
	X509 *leaf;

	if (ssl == NULL || (c = SSL_CTX_get_ex_data(
	                        SSL_get_SSL_CTX(ssl), tls_ctx_index)) == NULL)
		return ok;
	if (c->leaf == NULL &&
	    (leaf = X509_STORE_CTX_get0_cert(sctx)) != NULL &&
	    X509_up_ref(leaf))
		c->leaf = leaf;
	if (!ok && c->verify_error == 0)
		c->verify_error = X509_STORE_CTX_get_error(sctx);
	return ok;
}

int
tls_ctx_setup(void *ssl_ctx, const struct tls_trust *t, struct tls_capture *c)
{
	SSL_CTX *ctx = ssl_ctx;

	if (c != NULL && tls_ctx_index >= 0)
		SSL_CTX_set_ex_data(ctx, tls_ctx_index, c);
	SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), tls_verify_cb);
	if (t == NULL)
		return 0;
	/* A reference to the shared store, never a copy; never written. */
	if (!SSL_CTX_set1_verify_cert_store(ctx, t->store))
		return -1;
	if (t->client_cert != NULL &&
	    (SSL_CTX_use_certificate(ctx, t->client_cert) != 1 ||
	        SSL_CTX_use_PrivateKey(ctx, t->client_key) != 1 ||
	        (sk_X509_num(t->client_chain) > 0 &&
	            SSL_CTX_set1_chain(ctx, t->client_chain) != 1))) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* ----------------------------------------------------- certificate facts */

/* RFC 4514, UTF-8 kept as it is, at most TLS_NAME_MAX bytes; heap. */
static char *
tls_name_text(const X509_NAME *name)
{
	unsigned long flags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *text = NULL;
	long len;

	if (bio == NULL)
		return NULL;
	if (X509_NAME_print_ex(bio, name, 0, flags) >= 0 &&
	    (len = BIO_get_mem_data(bio, &data)) >= 0)
		text = strndup(data != NULL ? data : "",
		    len > TLS_NAME_MAX ? TLS_NAME_MAX : (size_t)len);
	BIO_free(bio);
	return text;
}

/* One SAN entry (a DNS name or an address) as text into out (256). */
static bool
tls_san_entry(const GENERAL_NAME *g, char *out, size_t outlen)
{
	const ASN1_STRING *s;
	int len;

	if (g->type == GEN_DNS) {
		s = g->d.dNSName;
		len = ASN1_STRING_length(s);
		snprintf(out, outlen, "%.*s", len < 0 ? 0 : len,
		    (const char *)ASN1_STRING_get0_data(s));
		return out[0] != '\0';
	}
	if (g->type != GEN_IPADD)
		return false;
	s = g->d.iPAddress;
	len = ASN1_STRING_length(s);
	return (len == 4 || len == 16) &&
	       inet_ntop(len == 4 ? AF_INET : AF_INET6,
	           ASN1_STRING_get0_data(s), out, (socklen_t)outlen) != NULL;
}

/* The DNS names and addresses of the SAN extension, in order. */
static int
tls_san(struct tls_cert *c, X509 *x)
{
	GENERAL_NAMES *gens =
	    X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	size_t used = 0, cap = 0, n;
	char entry[256], *grown;
	int i, rc = 0;

	for (i = 0; i < sk_GENERAL_NAME_num(gens) && c->nsan < TLS_SAN_MAX;
	     i++) {
		if (!tls_san_entry(
		        sk_GENERAL_NAME_value(gens, i), entry, sizeof(entry)))
			continue;
		n = strlen(entry) + 1;
		if (used + n > cap) {
			cap = (used + n) * 2;
			if ((grown = realloc(c->san, cap)) == NULL) {
				rc = -1;
				break;
			}
			c->san = grown;
		}
		memcpy(c->san + used, entry, n);
		used += n;
		c->nsan++;
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	return rc;
}

/* Seconds since the epoch of an ASN1_TIME; 0 when it cannot be read. */
static int64_t
tls_asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

static void
tls_serial(struct tls_cert *c, X509 *x)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;

	snprintf(c->serial, sizeof(c->serial), "%s", hex != NULL ? hex : "");
	OPENSSL_free(hex);
	BN_free(bn);
}

/* Everything the API says of a certificate; 0, or -1 out of memory. */
static int
tls_cert_facts(struct tls_cert *c, X509 *x, int64_t now)
{
	tls_serial(c, x);
	c->not_before = tls_asn1_time(X509_get0_notBefore(x));
	c->not_after = tls_asn1_time(X509_get0_notAfter(x));
	c->days_left = tls_days_left(c->not_after, now);
	c->subject = tls_name_text(X509_get_subject_name(x));
	c->issuer = tls_name_text(X509_get_issuer_name(x));
	if (c->subject == NULL || c->issuer == NULL)
		return -1;
	return tls_san(c, x);
}

int
tls_facts_from_ssl(
    struct tls_facts *f, const void *ssl_ptr, bool verified, int64_t now)
{
	const SSL *ssl = ssl_ptr;
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	X509 *peer = SSL_get0_peer_certificate(ssl);

	tls_facts_reset(f);
	f->used = true;
	f->verified = verified;
	snprintf(f->version, sizeof(f->version), "%s", SSL_get_version(ssl));
	snprintf(f->cipher, sizeof(f->cipher), "%s",
	    cipher != NULL ? SSL_CIPHER_get_name(cipher) : "");
	if (peer == NULL)
		return 0;
	f->has_cert = true;
	return tls_cert_facts(&f->cert, peer, now);
}

void
tls_facts_from_failure(struct tls_facts *f, const struct tls_capture *c,
    bool verify_on, bool peer_failed, int64_t now)
{
	tls_facts_reset(f);
	f->used = true;
	f->reason = tls_reason_of(
	    verify_on && c != NULL ? c->verify_error : 0, peer_failed);
	if (c == NULL || c->leaf == NULL)
		return;
	f->has_cert = true;
	if (tls_cert_facts(&f->cert, c->leaf, now) == -1)
		ERR_clear_error(); /* what could be read is kept */
}
