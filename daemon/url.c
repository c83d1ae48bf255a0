/*
 * url: checked URLs.  curl_url() is the parser, with
 * CURLU_NON_SUPPORT_SCHEME so that file:// parses and is reported as an
 * unsupported scheme rather than an invalid URL, and without
 * CURLU_GUESS_SCHEME: a URL without a scheme is invalid, never silently
 * http.  The checks that curl_url() does not make (length, control
 * bytes, credentials) come first or after.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "url.h"

/* True when the URL holds a user name, password or login options. */
static bool
url_has_userinfo(CURLU *h)
{
	static const CURLUPart parts[] = {
	    CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS};
	char *part;
	size_t i;

	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (curl_url_get(h, parts[i], &part, 0) == CURLUE_OK) {
			curl_free(part);
			return true;
		}
	}
	return false;
}

/* The scheme is one of http and https; *https says which. */
static bool
url_scheme_ok(CURLU *h, bool *https)
{
	char *scheme;
	bool ok;

	if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
		return false;
	*https = strcasecmp(scheme, "https") == 0;
	ok = *https || strcasecmp(scheme, "http") == 0;
	curl_free(scheme);
	return ok;
}

CURLU *
url_parse(const char *url, enum url_verdict *verdict, const char **why)
{
	size_t len = url != NULL ? strlen(url) : 0;
	CURLUcode rc;
	bool https;
	CURLU *h;

	*verdict = URL_INVALID;
	if (url == NULL) {
		*why = "no URL";
		return NULL;
	}
	if (len > URL_MAX) {
		*why = "URL is longer than 8192 bytes";
		return NULL;
	}
	if (strpbrk(url, "\r\n") != NULL) {
		*why = "URL contains CR or LF";
		return NULL;
	}
	if ((h = curl_url()) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	rc = curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (rc != CURLUE_OK)
		*why = curl_url_strerror(rc);
	else if (!url_scheme_ok(h, &https)) {
		*verdict = URL_UNSUPPORTED;
		*why = "only http and https URLs are fetched";
	} else if (url_has_userinfo(h))
		*why = "URL contains user credentials";
	else {
		*verdict = URL_OK;
		*why = NULL;
		return h;
	}
	curl_url_cleanup(h);
	return NULL;
}

bool
url_same_origin(CURLU *a, CURLU *b)
{
	static const CURLUPart parts[] = {
	    CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
	bool same = true;
	size_t i;

	for (i = 0; same && i < sizeof(parts) / sizeof(parts[0]); i++) {
		char *pa = NULL, *pb = NULL;

		curl_url_get(a, parts[i], &pa, CURLU_DEFAULT_PORT);
		curl_url_get(b, parts[i], &pb, CURLU_DEFAULT_PORT);
		same = pa != NULL && pb != NULL && strcasecmp(pa, pb) == 0;
		curl_free(pa);
		curl_free(pb);
	}
	return same;
}

bool
url_is_https(CURLU *url)
{
	bool https = false;

	return url_scheme_ok(url, &https) && https;
}

uint64_t
url_hash_lower(uint64_t h, const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32
		                                                : p[i]);
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

uint64_t
url_host_key(const char *u, uint64_t h)
{
	const char *auth, *end, *port = NULL, *p;
	size_t scheme;

	if (u == NULL ||
	    (scheme = strspn(u, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
	                        "qrstuvwxyz0123456789+-.")) == 0 ||
	    strncmp(u + scheme, "://", 3) != 0)
		return 0;
	auth = u + scheme + 3;
	end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL || end == auth)
		return 0; /* invalid anyway */
	p = *auth == '[' ? memchr(auth, ']', (size_t)(end - auth)) : auth;
	if (p == NULL)
		return 0;
	for (; p < end && port == NULL; p++)
		if (*p == ':')
			port = p;
	h = url_hash_lower(h, u, scheme);
	h = url_hash_lower(
	    h, auth, (size_t)((port != NULL ? port : end) - auth));
	if (port != NULL && port + 1 < end)
		return url_hash_lower(h, port, (size_t)(end - port));
	/* the default port, as if it were written */
	if (scheme == 5 && strncasecmp(u, "https", 5) == 0)
		return url_hash_lower(h, ":443", 4);
	return url_hash_lower(h, ":80", 3);
}
