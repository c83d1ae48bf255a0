/*
 * config_compat: a pre-lexer that mends, in the config text, what
 * libconfig gets silently wrong, before libconfig sees it.  It walks the
 * text as libconfig's scanner would (strings, the three comment forms,
 * names, numbers), copies it, and:
 *
 * 1. gives an integer literal wider than 32 bits the "L" suffix that
 *    makes libconfig read it as 64 bits, and reports one wider than 64
 *    bits.  Decimal and hexadecimal literals have separate switches:
 *    - Decimal (CONFIG_COMPAT_WIDE_DECIMAL): libconfig 1.5 (Debian 12)
 *      scans {integer} with atoi, so "4294967296" is read as 0 and
 *      "-3000000000" as 1294967296, with no error.  Fixed in 1.6: the
 *      octal-integers pull request (hyperrealm/libconfig #42, merged
 *      2015-12, released in 1.6 on 2015-12-31) reads with strtoll() and
 *      returns an int64 outside INT_MIN..INT_MAX (and a syntax error past
 *      64 bits).  The 1.7 manual says "as of version 1.5" the L is
 *      optional; the 1.5 release tarball's scanner.l still calls atoi.
 *    - Hexadecimal (CONFIG_COMPAT_WIDE_HEX): {hex} is still scanned with
 *      strtoul() into an int in 1.7.3, so "0x100000000" is 0 and
 *      "0x80000000" is negative.  No release is known to fix it: the
 *      1.8 binary-integer pull request (#236) left "detect hex that does
 *      not fit 32 bits" undone, and 1.8's own test data writes wide hex
 *      with an L.  Set the switch to CONFIG_COMPAT_BEFORE(x, y) once a
 *      release x.y is shown to promote wide hex by itself.
 *
 * 2. reports a comment or string still open at the end of the text
 *    (CONFIG_COMPAT_UNCLOSED).  An unclosed block comment makes libconfig
 *    drop the rest of the file without a word: its scanner has no end of
 *    file rule for the comment state, through 1.7.3 at least, and the
 *    ChangeLog up to 1.8.1 names no fix.  An unclosed string does give a
 *    syntax error, but only a bare one at the last line; ours names it.
 *
 * Checked by reading the scanner.l of the 1.5 and 1.7.3 release tarballs
 * (Debian's sources) and the 1.6-era one on GitHub, the ChangeLog to 1.8.1,
 * and by running both releases on the literals above.  When the minimum
 * libconfig in configure.ac reaches a release with every switch at 0,
 * delete this file and its call in config.c.
 *
 * Pure: no logging; problems go to the caller's report function.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>

#include "config_compat.h"

#if !CONFIG_COMPAT_NEEDED

int
config_compat_mend(const char *text, char **mended,
    void (*report)(void *arg, int line, const char *reason), void *arg)
{
	*mended = NULL;
	return 0;
}

#else

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* What a libconfig setting name is made of. */
#define IDENT_CHARS                                                            \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*"
/* Room for one reason. */
#define REASON_MAX 512

/*
 * Length of the string or comment at p, 0 when none starts there.  *open
 * is set when it runs to the end of the text.
 */
static size_t
inert_len(const char *p, bool *open)
{
	const char *q;

	if (*p == '"') {
		for (q = p + 1; *q != '\0' && *q != '"'; q++)
			if (*q == '\\' && q[1] != '\0')
				q++;
		*open = *q == '\0';
		return (size_t)(q - p) + (*q != '\0');
	}
	if (*p == '#' || (p[0] == '/' && p[1] == '/'))
		return strcspn(p, "\n");
	if (p[0] == '/' && p[1] == '*') {
		q = strstr(p + 2, "*/");
		*open = q == NULL;
		return q != NULL ? (size_t)(q + 2 - p) : strlen(p);
	}
	return 0;
}

/* Length of the number-like token at p (sign, digits, letters, dots). */
static size_t
number_len(const char *p)
{
	size_t n = (*p == '-' || *p == '+') ? 1 : 0;
	bool hex = p[n] == '0' && (p[n + 1] == 'x' || p[n + 1] == 'X');

	if (!isdigit((unsigned char)p[n]) &&
	    !(p[n] == '.' && isdigit((unsigned char)p[n + 1])))
		return 0;
	for (; isalnum((unsigned char)p[n]) || p[n] == '.'; n++)
		if (!hex && (p[n] == 'e' || p[n] == 'E') &&
		    (p[n + 1] == '-' || p[n + 1] == '+'))
			n++;
	return n;
}

/*
 * 1 when the token is an integer too wide for 32 bits, 0 when not (or not
 * an integer at all: floats, 64-bit "L" forms and junk pass untouched, and
 * so does every integer of a kind this libconfig reads right), -1 when it
 * does not fit 64 bits either.
 */
static int
integer_too_wide(const char *tok, size_t n)
{
	size_t sign = (*tok == '-' || *tok == '+') ? 1 : 0;
	bool hex = n > sign + 2 && tok[sign] == '0' &&
	           (tok[sign + 1] == 'x' || tok[sign + 1] == 'X');
	size_t skip = sign + (hex ? 2 : 0);
	char buf[64];
	long long v;

	if (!(hex ? CONFIG_COMPAT_WIDE_HEX : CONFIG_COMPAT_WIDE_DECIMAL))
		return 0;
	/* The token ends at a non-alphanumeric byte, so strspn stays in it. */
	if ((hex && sign > 0) ||
	    strspn(tok + skip, hex ? "0123456789abcdefABCDEF" : "0123456789") !=
	        n - skip)
		return 0;
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, tok, n);
	buf[n] = '\0';
	errno = 0;
	v = hex ? (long long)strtoull(buf, NULL, 16) : strtoll(buf, NULL, 10);
	if (errno == ERANGE)
		return -1;
	return hex ? (unsigned long long)v > INT32_MAX
	           : v < INT32_MIN || v > INT32_MAX;
}

/*
 * Copy text into out, token by token: strings and comments as they are,
 * each integer too wide for 32 bits with an L after it.
 */
static void
mend_into(char *o, const char *text,
    void (*report)(void *arg, int line, const char *reason), void *arg)
{
	char reason[REASON_MAX];
	int line = 1, wide;
	bool open = false;
	size_t n;

	while (*text != '\0') {
		wide = 0;
		if ((n = inert_len(text, &open)) > 0 && open &&
		    CONFIG_COMPAT_UNCLOSED)
			report(arg, line,
			    *text == '"' ? "unterminated string"
			                 : "unterminated comment");
		else if (n == 0 &&
		         (isalpha((unsigned char)*text) || *text == '*'))
			n = strspn(text, IDENT_CHARS);
		else if (n == 0 && (n = number_len(text)) > 0)
			wide = integer_too_wide(text, n);
		if (wide == -1) {
			snprintf(reason, sizeof(reason),
			    "integer %.*s does not fit in 64 bits", (int)n,
			    text);
			report(arg, line, reason);
		}
		for (n = n > 0 ? n : 1; n > 0; n--, text++)
			line += (*o++ = *text) == '\n';
		if (wide == 1)
			*o++ = 'L';
	}
	*o = '\0';
}

int
config_compat_mend(const char *text, char **mended,
    void (*report)(void *arg, int line, const char *reason), void *arg)
{
	/* An L follows only a token of ten bytes or more: 2x is plenty. */
	if ((*mended = malloc(strlen(text) * 2 + 1)) == NULL)
		return -1;
	mend_into(*mended, text, report, arg);
	return 0;
}

#endif
