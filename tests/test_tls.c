/*
 * tls.c's pure parts (reasons, RFC 3339 text, days left) and the trust
 * built from files: every file error names its file and says what is
 * wrong, and two trusts are equal exactly when their bytes are.  The
 * handshakes themselves are covered by tests/integration/test_tls.py
 * against nginx.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls.h"
#include "check_run.h"

START_TEST(verify_errors_map_to_reasons)
{
	ck_assert_int_eq(tls_reason_of(X509_V_ERR_CERT_HAS_EXPIRED, true),
	    TLS_REASON_EXPIRED);
	ck_assert_int_eq(tls_reason_of(X509_V_ERR_CERT_NOT_YET_VALID, true),
	    TLS_REASON_NOT_YET_VALID);
	ck_assert_int_eq(
	    tls_reason_of(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, true),
	    TLS_REASON_UNTRUSTED);
	ck_assert_int_eq(
	    tls_reason_of(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, true),
	    TLS_REASON_UNTRUSTED);
	ck_assert_int_eq(
	    tls_reason_of(X509_V_ERR_CERT_SIGNATURE_FAILURE, false),
	    TLS_REASON_UNTRUSTED);
	/* a good chain that libcurl refused: its host name check */
	ck_assert_int_eq(tls_reason_of(X509_V_OK, true), TLS_REASON_HOSTNAME);
	/* nothing about the certificate: the handshake itself */
	ck_assert_int_eq(tls_reason_of(X509_V_OK, false), TLS_REASON_HANDSHAKE);
}
END_TEST

START_TEST(reasons_have_the_api_names)
{
	static const char *const want[] = {NULL, "expired", "not_yet_valid",
	    "untrusted", "hostname", "handshake"};
	int i;

	ck_assert_ptr_null(tls_reason_name(TLS_REASON_NONE));
	for (i = 1; i < TLS_REASON_COUNT; i++)
		ck_assert_str_eq(tls_reason_name(i), want[i]);
	ck_assert_str_eq(tls_reason_name(TLS_REASON_COUNT + 3), "handshake");
}
END_TEST

static void
assert_time(int64_t t, const char *want)
{
	char buf[TLS_TIME_TEXT];

	tls_time_text(t, buf);
	ck_assert_str_eq(buf, want);
}

START_TEST(times_are_rfc3339_utc)
{
	char buf[TLS_TIME_TEXT], want[64];
	struct tm tm;
	time_t t;
	int i;

	assert_time(0, "1970-01-01T00:00:00Z");
	assert_time(-1, "1969-12-31T23:59:59Z");
	assert_time(951782400, "2000-02-29T00:00:00Z");
	assert_time(1700000000, "2023-11-14T22:13:20Z");
	assert_time(4102444799, "2099-12-31T23:59:59Z");
	assert_time(INT64_C(253402300799), "9999-12-31T23:59:59Z");
	/* what no certificate can say is clamped to what RFC 3339 can */
	assert_time(INT64_C(253402300800), "9999-12-31T23:59:59Z");
	assert_time(INT64_MAX, "9999-12-31T23:59:59Z");
	assert_time(INT64_MIN, "0000-01-01T00:00:00Z");
	/* and agrees with the C library wherever that works */
	srand(7);
	for (i = 0; i < 20000; i++) {
		t = (time_t)((int64_t)rand() * 100 - INT64_C(30000000000));
		gmtime_r(&t, &tm);
		strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
		tls_time_text(t, buf);
		ck_assert_str_eq(buf, want);
	}
}
END_TEST

START_TEST(days_left_round_down)
{
	int64_t now = 1700000000;

	ck_assert_int_eq(tls_days_left(now, now), 0);
	ck_assert_int_eq(tls_days_left(now + 86399, now), 0);
	ck_assert_int_eq(tls_days_left(now + 86400, now), 1);
	ck_assert_int_eq(tls_days_left(now + 5 * 86400 + 43200, now), 5);
	ck_assert_int_eq(tls_days_left(now - 1, now), -1);
	ck_assert_int_eq(tls_days_left(now - 86400, now), -1);
	ck_assert_int_eq(tls_days_left(now - 86401, now), -2);
	ck_assert_int_eq(tls_days_left(now - 35 * 86400, now), -35);
	/* no overflow at the ends */
	ck_assert_int_lt(tls_days_left(INT64_MIN, now), -1000000);
	ck_assert_int_gt(tls_days_left(INT64_MAX, -now), 1000000);
}
END_TEST

/* ------------------------------------------------------ files and trust */

static char dir[] = "/tmp/test_tls.XXXXXX";

static const char *
path(const char *name)
{
	static char buf[8][256];
	static int next;
	char *p = buf[next++ % 8];

	snprintf(p, 256, "%s/%s", dir, name);
	return p;
}

static void
write_file(const char *name, const void *data, size_t len)
{
	FILE *f = fopen(path(name), "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* A self-signed P-256 certificate for cn, its PEM and its key's PEM. */
static void
make_cert(const char *cn, const char *cert_name, const char *key_name)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name = X509_get_subject_name(x);
	FILE *f;

	ck_assert(key != NULL && x != NULL);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 0x2001);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(
	    name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, key);
	ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
	ck_assert_ptr_nonnull(f = fopen(path(cert_name), "w"));
	PEM_write_X509(f, x);
	fclose(f);
	ck_assert_ptr_nonnull(f = fopen(path(key_name), "w"));
	PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(key);
}

static void
setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
	make_cert("ca one", "one.pem", "one-key.pem");
	make_cert("ca two", "two.pem", "two-key.pem");
	write_file("empty.pem", "", 0);
	write_file("text.pem", "this is not a certificate\n", 26);
	write_file("der.pem", "\x30\x82\x01\x0a\x02\x82", 6);
	write_file("damaged.pem",
	    "-----BEGIN CERTIFICATE-----\nAAAA!!!!\n"
	    "-----END CERTIFICATE-----\n",
	    62);
	ck_assert_int_eq(mkdir(path("hashed"), 0700), 0);
	ck_assert_int_eq(mkdir(path("unhashed"), 0700), 0);
	ck_assert_int_eq(
	    symlink(path("one.pem"), path("hashed/0a1b2c3d.0")), 0);
	ck_assert_int_eq(symlink(path("one.pem"), path("unhashed/one.pem")), 0);
}

static void
teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
	memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
}

static struct tls_trust *
trust(const char *ca_file, const char *ca_path, const char *cert,
    const char *key, enum tls_key *bad, char *why, size_t whylen)
{
	struct tls_settings s = {ca_file, ca_path, cert, key};

	why[0] = '\0';
	return tls_trust_new(&s, bad, why, whylen);
}

/* The build fails on key, and its reason holds want. */
static void
assert_refused(const char *ca_file, const char *ca_path, const char *cert,
    const char *key, enum tls_key want_key, const char *want)
{
	enum tls_key bad = TLS_KEY_DEFAULT;
	char why[512];

	ck_assert_ptr_null(
	    trust(ca_file, ca_path, cert, key, &bad, why, sizeof(why)));
	ck_assert_int_eq(bad, want_key);
	ck_assert_msg(
	    strstr(why, want) != NULL, "\"%s\" lacks \"%s\"", why, want);
}

START_TEST(bad_ca_files_are_refused_with_their_reason)
{
	assert_refused(path("missing.pem"), "", "", "", TLS_KEY_CA_FILE,
	    "missing.pem: No such file or directory");
	assert_refused(path("empty.pem"), "", "", "", TLS_KEY_CA_FILE,
	    "empty.pem: is empty");
	assert_refused(path("text.pem"), "", "", "", TLS_KEY_CA_FILE,
	    "text.pem: holds no PEM certificate");
	assert_refused(path("der.pem"), "", "", "", TLS_KEY_CA_FILE,
	    "der.pem: is not PEM (DER?");
	assert_refused(path("damaged.pem"), "", "", "", TLS_KEY_CA_FILE,
	    "damaged.pem: certificate 1 is damaged");
	assert_refused(dir, "", "", "", TLS_KEY_CA_FILE, "not a regular file");
	assert_refused("", path("unhashed"), "", "", TLS_KEY_CA_PATH,
	    "holds no hashed certificate file (run openssl rehash");
	assert_refused("", path("nodir"), "", "", TLS_KEY_CA_PATH,
	    "nodir: No such file or directory");
	/* the file is named even when the directory is fine */
	assert_refused(path("empty.pem"), path("hashed"), "", "",
	    TLS_KEY_CA_FILE, "is empty");
}
END_TEST

START_TEST(bad_client_identities_are_refused)
{
	assert_refused(path("one.pem"), "", path("one.pem"),
	    path("two-key.pem"), TLS_KEY_CLIENT_KEY,
	    "does not match the certificate");
	/* a certificate file without a key, and no key file */
	assert_refused(path("one.pem"), "", path("one.pem"), "",
	    TLS_KEY_CLIENT_CERT, "holds no PEM private key");
	assert_refused(path("one.pem"), "", path("one-key.pem"),
	    path("one-key.pem"), TLS_KEY_CLIENT_CERT,
	    "holds no PEM certificate");
	assert_refused(path("one.pem"), "", path("one.pem"), path("text.pem"),
	    TLS_KEY_CLIENT_KEY, "text.pem: holds no PEM private key");
}
END_TEST

START_TEST(good_files_make_a_trust)
{
	struct tls_trust *a, *b;
	enum tls_key bad;
	char why[512], line[512], cmd[800];

	a = trust(path("one.pem"), "", path("one.pem"), path("one-key.pem"),
	    &bad, why, sizeof(why));
	ck_assert_msg(a != NULL, "%s", why);
	tls_trust_describe(a, line, sizeof(line));
	ck_assert_msg(strstr(line, "trusting 1 CA certificate from ") &&
	                  strstr(line, "one.pem; client certificate ") &&
	                  strstr(line, "ca one"),
	    "%s", line);
	tls_trust_unref(a);

	/* certificate and key in one file, as curl --cert takes them */
	snprintf(cmd, sizeof(cmd), "cat '%s' '%s' >'%s'", path("one.pem"),
	    path("one-key.pem"), path("both.pem"));
	ck_assert_int_eq(system(cmd), 0);
	a = trust(
	    path("two.pem"), "", path("both.pem"), "", &bad, why, sizeof(why));
	ck_assert_msg(a != NULL, "%s", why);
	tls_trust_unref(a);

	/* a certificate twice is one certificate; two are two */
	snprintf(cmd, sizeof(cmd), "cat '%s' '%s' '%s' >'%s'", path("one.pem"),
	    path("two.pem"), path("one.pem"), path("dup.pem"));
	ck_assert_int_eq(system(cmd), 0);
	a = trust(path("dup.pem"), "", "", "", &bad, why, sizeof(why));
	ck_assert_msg(a != NULL, "%s", why);
	tls_trust_describe(a, line, sizeof(line));
	ck_assert_msg(
	    strstr(line, "trusting 2 CA certificates from "), "%s", line);
	tls_trust_unref(a);

	/* a hashed directory */
	a = trust("", path("hashed"), "", "", &bad, why, sizeof(why));
	ck_assert_msg(a != NULL, "%s", why);
	b = trust(
	    path("hashed/0a1b2c3d.0"), "", "", "", &bad, why, sizeof(why));
	ck_assert_msg(b != NULL, "%s", why);
	tls_trust_unref(a);
	tls_trust_unref(b);
}
END_TEST

/* A reload keeps pooled connections only when the bytes are the same. */
START_TEST(trusts_are_equal_when_their_bytes_are)
{
	struct tls_trust *a, *b, *c;
	enum tls_key bad;
	char why[512], cmd[600];

	a = trust(path("one.pem"), "", "", "", &bad, why, sizeof(why));
	b = trust(path("one.pem"), "", "", "", &bad, why, sizeof(why));
	ck_assert(a != NULL && b != NULL);
	ck_assert(tls_trust_equal(a, b));
	ck_assert(tls_trust_equal(NULL, NULL));
	ck_assert(!tls_trust_equal(a, NULL));
	/* the same path, other bytes: a rotated CA */
	snprintf(
	    cmd, sizeof(cmd), "cp '%s' '%s'", path("two.pem"), path("one.pem"));
	ck_assert_int_eq(system(cmd), 0);
	c = trust(path("one.pem"), "", "", "", &bad, why, sizeof(why));
	ck_assert_ptr_nonnull(c);
	ck_assert(!tls_trust_equal(a, c));
	ck_assert_ptr_eq(tls_trust_ref(b), b);
	tls_trust_unref(b);
	tls_trust_unref(a);
	tls_trust_unref(b);
	tls_trust_unref(c);
	tls_trust_unref(NULL);
}
END_TEST

/* Nothing named: libcurl's own default bundle, whatever it is here. */
START_TEST(no_ca_setting_means_libcurls_default)
{
	struct tls_trust *t;
	enum tls_key bad;
	char why[512], line[512];

	t = trust("", "", "", "", &bad, why, sizeof(why));
	if (t == NULL) {
		ck_assert_int_eq(bad, TLS_KEY_DEFAULT);
		return; /* a machine without a bundle: the reason says so */
	}
	tls_trust_describe(t, line, sizeof(line));
	ck_assert_msg(strstr(line, "(libcurl's default)") != NULL, "%s", line);
	tls_trust_unref(t);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("tls");
	TCase *pure = tcase_create("pure"), *files = tcase_create("files");

	tcase_add_test(pure, verify_errors_map_to_reasons);
	tcase_add_test(pure, reasons_have_the_api_names);
	tcase_add_test(pure, times_are_rfc3339_utc);
	tcase_add_test(pure, days_left_round_down);
	tcase_add_checked_fixture(files, setup, teardown);
	tcase_set_timeout(files, 60);
	tcase_add_test(files, bad_ca_files_are_refused_with_their_reason);
	tcase_add_test(files, bad_client_identities_are_refused);
	tcase_add_test(files, good_files_make_a_trust);
	tcase_add_test(files, trusts_are_equal_when_their_bytes_are);
	tcase_add_test(files, no_ca_setting_means_libcurls_default);
	suite_add_tcase(s, pure);
	suite_add_tcase(s, files);
	return check_run(s);
}
