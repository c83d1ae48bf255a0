/*
 * fetch.c's pure parts: turning curl's cumulative marks into phases,
 * CURLcode to API error code, and the ok rule.  Transfers themselves are
 * covered by the integration suite against tests/upstream.
 */
#include <check.h>
#include <string.h>

#include "fetch.h"
#include "check_run.h"

#define EPS 1e-9

START_TEST(phases_are_differences_of_marks)
{
	/* dns 1 ms, connect 2 ms, tls 3 ms, request sent at 6.5 ms,
	 * first byte at 10.5 ms, last at 12 ms. */
	struct fetch_marks m = {1000, 3000, 6000, 6500, 10500, 12000, 0, false};
	struct fetch_timing t = {0};

	fetch_timing_add(&t, &m);
	ck_assert_double_eq_tol(t.dns, 1.0, EPS);
	ck_assert_double_eq_tol(t.connect, 2.0, EPS);
	ck_assert_double_eq_tol(t.tls, 3.0, EPS);
	ck_assert_double_eq_tol(t.ttfb, 4.0, EPS);
	ck_assert_double_eq_tol(t.transfer, 1.5, EPS);
	ck_assert_double_eq_tol(t.total, 12.0, EPS);
}
END_TEST

START_TEST(plain_http_has_no_tls_phase)
{
	struct fetch_marks m = {100, 300, 0, 310, 2310, 2400, 0, false};
	struct fetch_timing t = {0};

	fetch_timing_add(&t, &m);
	ck_assert_double_eq_tol(t.tls, 0.0, EPS);
	ck_assert_double_eq_tol(t.connect, 0.2, EPS);
	ck_assert_double_eq_tol(t.ttfb, 2.0, EPS);
	ck_assert_double_eq_tol(t.transfer, 0.09, EPS);
}
END_TEST

START_TEST(reused_connection_and_missing_marks_clamp_at_zero)
{
	/* No lookup, no connect; and a failed transfer that never saw a
	 * first byte. */
	struct fetch_marks m = {0, 0, 0, 50, 0, 900, 0, false};
	struct fetch_timing t = {0};

	fetch_timing_add(&t, &m);
	ck_assert_double_eq_tol(t.dns, 0.0, EPS);
	ck_assert_double_eq_tol(t.connect, 0.0, EPS);
	ck_assert_double_eq_tol(t.ttfb, 0.0, EPS);
	ck_assert_double_eq_tol(t.transfer, 0.0, EPS);
	ck_assert_double_eq_tol(t.total, 0.9, EPS);
}
END_TEST

START_TEST(out_of_order_marks_never_go_negative)
{
	struct fetch_marks m = {5000, 4000, 3000, 2000, 1000, 500, 0, false};
	struct fetch_timing t = {0};

	fetch_timing_add(&t, &m);
	ck_assert(t.dns >= 0 && t.connect >= 0 && t.tls >= 0);
	ck_assert(t.ttfb >= 0 && t.transfer >= 0 && t.total >= 0);
	ck_assert_double_eq_tol(t.connect, 0.0, EPS);
}
END_TEST

START_TEST(hops_add_up)
{
	struct fetch_marks hop1 = {1000, 2000, 0, 2100, 3100, 3200, 0, false};
	struct fetch_marks hop2 = {0, 0, 0, 100, 1100, 1300, 0, false};
	struct fetch_timing t = {0};

	fetch_timing_add(&t, &hop1);
	fetch_timing_add(&t, &hop2);
	ck_assert_double_eq_tol(t.total, 4.5, EPS);
	ck_assert_double_eq_tol(t.ttfb, 2.0, EPS);
	ck_assert_double_eq_tol(t.dns, 1.0, EPS);
}
END_TEST

/*
 * Issue 10, item 5: curl marks no connect and no handshake when the
 * handshake fails; the TCP connect ends, and the tls phase begins, when
 * fanoutd saw the handshake begin (tls_start), and the rest is tls.
 */
START_TEST(a_failed_handshake_has_connect_and_tls_phases)
{
	struct fetch_marks m = {200, 0, 0, 0, 0, 9200, 1200, false};
	struct fetch_timing t = {0};

	fetch_timing_add(&t, &m);
	ck_assert_double_eq_tol(t.dns, 0.2, EPS);
	ck_assert_double_eq_tol(t.connect, 1.0, EPS);
	ck_assert_double_eq_tol(t.tls, 8.0, EPS);
	ck_assert_double_eq_tol(t.ttfb, 0.0, EPS);
	ck_assert_double_eq_tol(t.total, 9.2, EPS);
}
END_TEST

/*
 * fanoutd's moment comes from its own clock: one past curl's total (a
 * stall between the marks) still leaves phases that add up to the total.
 */
START_TEST(a_handshake_noted_after_the_total_is_clamped)
{
	struct fetch_marks m = {200, 0, 0, 0, 0, 6900, 10000, false};
	struct fetch_timing t = {0};

	fetch_timing_add(&t, &m);
	ck_assert_double_eq_tol(t.dns + t.connect + t.tls, t.total, EPS);
	ck_assert_double_eq_tol(t.connect, 6.7, EPS);
	ck_assert_double_eq_tol(t.tls, 0.0, EPS);
}
END_TEST

/* A completed handshake keeps curl's own marks. */
START_TEST(a_completed_handshake_uses_curls_marks)
{
	struct fetch_marks m = {
	    200, 1200, 9200, 9300, 10300, 10400, 1250, false};
	struct fetch_timing t = {0};

	fetch_timing_add(&t, &m);
	ck_assert_double_eq_tol(t.connect, 1.0, EPS);
	ck_assert_double_eq_tol(t.tls, 8.0, EPS);
}
END_TEST

/*
 * The README's promise: a reused connection has no dns (curl still marks
 * a lookup for it), no connect and no tls phase, exactly 0.
 */
START_TEST(a_reused_connection_has_no_dns_connect_or_tls)
{
	struct fetch_marks m = {15, 30, 31, 40, 540, 600, 0, true};
	struct fetch_timing t = {0};

	fetch_timing_add(&t, &m);
	ck_assert(t.dns == 0.0 && t.connect == 0.0 && t.tls == 0.0);
	ck_assert_double_eq_tol(t.ttfb, 0.5, EPS);
	ck_assert_double_eq_tol(t.transfer, 0.06, EPS);
	ck_assert_double_eq_tol(t.total, 0.6, EPS);
}
END_TEST

static uint64_t
key_of(const char *url, bool verify)
{
	struct fetch_spec spec = {0};

	spec.url = (char *)url;
	spec.verify_tls = verify;
	return fetch_affinity(&spec);
}

/*
 * The pool's keys: the affinity is the origin (url_host_key, tested in
 * test_url) and whether it is verified, for the connection reused; the
 * per-host cap's key is the origin alone.
 */
START_TEST(affinity_keys_name_the_origin_and_its_verification)
{
	uint64_t a = key_of("https://api.example:8443/x?y#z", true);
	struct fetch_spec bad = {.url = NULL}, v = {0}, n = {0};

	ck_assert_uint_ne(a, 0);
	ck_assert_uint_eq(a, key_of("HTTPS://API.Example:8443/other", true));
	ck_assert_uint_ne(a, key_of("https://api.example:8444/x", true));
	ck_assert_uint_ne(a, key_of("https://api.example:8443/x", false));
	ck_assert_uint_eq(key_of("not a url", true), 0);
	ck_assert_uint_eq(fetch_affinity(&bad), 0);
	v.url = n.url = (char *)"https://api.example:8443/x";
	v.verify_tls = true;
	ck_assert_uint_ne(fetch_host_key(&v), 0);
	ck_assert_uint_eq(fetch_host_key(&v), fetch_host_key(&n));
	ck_assert_uint_eq(fetch_host_key(&bad), 0);
}
END_TEST

START_TEST(curl_codes_map_to_api_codes)
{
	static const struct {
		CURLcode code;
		const char *api;
	} map[] = {
	    {CURLE_URL_MALFORMAT, "invalid_url"},
	    /* schemes are checked before curl sees a URL: this is a reply
	     * curl cannot read (HTTP/0.9, a bad status line) */
	    {CURLE_UNSUPPORTED_PROTOCOL, "other"},
	    {CURLE_WEIRD_SERVER_REPLY, "other"},
	    {CURLE_COULDNT_RESOLVE_HOST, "dns"},
	    {CURLE_COULDNT_CONNECT, "connect"},
	    {CURLE_OPERATION_TIMEDOUT, "timeout"},
	    {CURLE_SSL_CONNECT_ERROR, "tls"},
	    {CURLE_PEER_FAILED_VERIFICATION, "tls"},
	    {CURLE_SSL_CLIENTCERT, "tls"},
	    {CURLE_FILESIZE_EXCEEDED, "too_large"},
	    {CURLE_TOO_MANY_REDIRECTS, "redirect_limit"},
	    {CURLE_ABORTED_BY_CALLBACK, "canceled"},
	    {CURLE_RECV_ERROR, "other"},
	    {CURLE_GOT_NOTHING, "other"},
	};
	size_t i;

	ck_assert_ptr_null(fetch_error_code(fetch_error_from_curl(CURLE_OK)));
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		ck_assert_str_eq(
		    fetch_error_code(fetch_error_from_curl(map[i].code)),
		    map[i].api);
}
END_TEST

START_TEST(every_error_has_a_distinct_code)
{
	int i, j;

	for (i = 1; i < FETCH_E_COUNT; i++) {
		ck_assert_ptr_nonnull(fetch_error_code(i));
		for (j = 1; j < i; j++)
			ck_assert_str_ne(
			    fetch_error_code(i), fetch_error_code(j));
	}
}
END_TEST

START_TEST(ok_means_completed_with_2xx_or_3xx)
{
	struct fetch_result r = {0};

	r.status = 200;
	ck_assert(fetch_result_ok(&r));
	r.status = 399;
	ck_assert(fetch_result_ok(&r));
	r.status = 400;
	ck_assert(!fetch_result_ok(&r));
	r.status = 199;
	ck_assert(!fetch_result_ok(&r));
	r.status = 200;
	fetch_result_set_error(&r, FETCH_E_TOO_LARGE, "too big");
	ck_assert(!fetch_result_ok(&r));
	ck_assert_str_eq(r.message, "too big");
	fetch_result_reset(&r);
	ck_assert_ptr_null(r.message);
	ck_assert_int_eq(r.status, 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("fetch");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, phases_are_differences_of_marks);
	tcase_add_test(tc, plain_http_has_no_tls_phase);
	tcase_add_test(tc, reused_connection_and_missing_marks_clamp_at_zero);
	tcase_add_test(tc, out_of_order_marks_never_go_negative);
	tcase_add_test(tc, hops_add_up);
	tcase_add_test(tc, a_failed_handshake_has_connect_and_tls_phases);
	tcase_add_test(tc, a_handshake_noted_after_the_total_is_clamped);
	tcase_add_test(tc, a_completed_handshake_uses_curls_marks);
	tcase_add_test(tc, a_reused_connection_has_no_dns_connect_or_tls);
	tcase_add_test(tc, affinity_keys_name_the_origin_and_its_verification);
	tcase_add_test(tc, curl_codes_map_to_api_codes);
	tcase_add_test(tc, every_error_has_a_distinct_code);
	tcase_add_test(tc, ok_means_completed_with_2xx_or_3xx);
	suite_add_tcase(s, tc);
	return check_run(s);
}
