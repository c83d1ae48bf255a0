/*
 * Unit tests for url.c: the rules every URL meets on every hop, origins,
 * and the lexical host keys the pool schedules by.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"
#include "check_run.h"

/* The verdict on text, the handle freed. */
static enum url_verdict
verdict_of(const char *text)
{
	enum url_verdict v;
	const char *why = NULL;
	CURLU *h = url_parse(text, &v, &why);

	if (h != NULL)
		curl_url_cleanup(h);
	else
		ck_assert_msg(
		    why != NULL && why[0] != '\0', "no reason: %s", text);
	return v;
}

START_TEST(accepts_and_refuses)
{
	char long_url[URL_MAX + 16];

	ck_assert_int_eq(verdict_of("HTTP://Example.COM"), URL_OK);
	ck_assert_int_eq(verdict_of("http://0xa9fea9fe/"), URL_OK);
	ck_assert_int_eq(verdict_of("https://[::1]:8443/p?q#f"), URL_OK);
	ck_assert_int_eq(verdict_of("dict://a/"), URL_UNSUPPORTED);
	ck_assert_int_eq(verdict_of("file:///etc/passwd"), URL_UNSUPPORTED);
	ck_assert_int_eq(verdict_of("a.example"), URL_INVALID);
	ck_assert_int_eq(verdict_of("http://a:b@c/"), URL_INVALID);
	ck_assert_int_eq(verdict_of("http://a@c/"), URL_INVALID);
	ck_assert_int_eq(verdict_of("http://c/\r"), URL_INVALID);
	ck_assert_int_eq(verdict_of("http://c/\nx"), URL_INVALID);
	memcpy(long_url, "http://a/", 9);
	memset(long_url + 9, 'x', URL_MAX);
	long_url[URL_MAX + 9] = '\0';
	ck_assert_int_eq(verdict_of(long_url), URL_INVALID);
	ck_assert_int_eq(verdict_of(NULL), URL_INVALID);
}
END_TEST

static bool
same(const char *a, const char *b)
{
	enum url_verdict v;
	const char *why;
	CURLU *ha = url_parse(a, &v, &why), *hb = url_parse(b, &v, &why);
	bool s;

	ck_assert_ptr_nonnull(ha);
	ck_assert_ptr_nonnull(hb);
	s = url_same_origin(ha, hb);
	curl_url_cleanup(ha);
	curl_url_cleanup(hb);
	return s;
}

START_TEST(origins)
{
	ck_assert(same("http://A.example/x", "HTTP://a.example:80/y?z"));
	ck_assert(same("https://a.example/", "https://a.example:443/"));
	ck_assert(!same("http://a.example/", "https://a.example/"));
	ck_assert(!same("http://a.example/", "http://a.example:8080/"));
	ck_assert(!same("http://a.example/", "http://b.example/"));
}
END_TEST

START_TEST(host_keys)
{
	uint64_t seed = 42;

	ck_assert_uint_eq(url_host_key("http://A.example/x", seed),
	    url_host_key("HTTP://a.example:80/y", seed));
	ck_assert_uint_eq(url_host_key("https://a.example", seed),
	    url_host_key("https://a.example:443/?q", seed));
	ck_assert_uint_ne(url_host_key("http://a.example/", seed),
	    url_host_key("https://a.example/", seed));
	ck_assert_uint_ne(url_host_key("http://a.example:81/", seed),
	    url_host_key("http://a.example:82/", seed));
	ck_assert_uint_eq(url_host_key("http://[::1]:8080/", seed),
	    url_host_key("http://[::1]:8080/x", seed));
	/* IPv6 literals: the colons inside the brackets are no port */
	ck_assert_uint_eq(url_host_key("https://[::1]/", seed),
	    url_host_key("https://[::1]:443/a", seed));
	ck_assert_uint_ne(url_host_key("https://[::1]:8443/", seed),
	    url_host_key("https://[::1]/", seed));
	/* no origin to read */
	ck_assert_uint_eq(url_host_key("https://", seed), 0);
	ck_assert_uint_eq(url_host_key("https://[::1/", seed), 0);
	ck_assert_uint_eq(url_host_key("a.example", seed), 0);
	ck_assert_uint_eq(url_host_key("http://u@a.example/", seed), 0);
	ck_assert_uint_eq(url_host_key(NULL, seed), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("url");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, accepts_and_refuses);
	tcase_add_test(tc, origins);
	tcase_add_test(tc, host_keys);
	suite_add_tcase(s, tc);
	return check_run(s);
}
