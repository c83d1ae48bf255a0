/*
 * url: the rules every URL meets before it is fetched, on every hop: it
 * parses (curl_url()), it is http or https, it carries no credentials,
 * no CR, LF or NUL, and it is at most URL_MAX bytes.  The parsed handle
 * is what curl then fetches (CURLOPT_CURLU): a URL is parsed once.
 * Pure: no I/O, no logging; safe on any thread.
 */
#ifndef FANOUTD_URL_H
#define FANOUTD_URL_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#define URL_MAX 8192

enum url_verdict {
	URL_OK,
	URL_INVALID,     /* the API's invalid_url */
	URL_UNSUPPORTED, /* a scheme other than http and https */
};

/*
 * Parse and check url.  Returns the handle (free with curl_url_cleanup),
 * or NULL with *verdict and a static *why.
 */
CURLU *url_parse(const char *url, enum url_verdict *verdict, const char **why);
/* Same scheme, host and port (default ports filled in). */
bool url_same_origin(CURLU *a, CURLU *b);
/* Is the scheme https? */
bool url_is_https(CURLU *url);
/*
 * A hash of the lowercased scheme://host:port of url, read lexically
 * (no curl_url(): this runs on the loop thread for every item), mixed
 * into seed; 0 when the text has no authority to read.  Scheduling keys
 * only: a spelling the parser would normalize differently merely misses.
 */
uint64_t url_host_key(const char *url, uint64_t seed);
/* FNV-1a over len bytes, lowercased, continuing from h. */
uint64_t url_hash_lower(uint64_t h, const char *p, size_t len);

#endif
