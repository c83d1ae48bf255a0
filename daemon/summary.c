/*
 * summary: counts as results settle.  Distinct statuses go into a short
 * sorted list while they fit, and into a table of every status once
 * they do not (allocated up front for a batch big enough to need it), so
 * a one-URL fan-out allocates nothing here.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "summary.h"

int
summary_reserve(struct summary *s, size_t n)
{
	size_t i;

	if (n <= SUMMARY_STATUS_INLINE || s->status_table != NULL)
		return 0;
	s->status_table = calloc(SUMMARY_STATUS_MAX, sizeof(size_t));
	if (s->status_table == NULL)
		return -1;
	for (i = 0; i < s->nstatuses; i++)
		s->status_table[s->statuses[i].status] = s->statuses[i].count;
	s->nstatuses = 0;
	return 0;
}

/* Count status in the sorted inline list, or in the table once full. */
static void
summary_add_status(struct summary *s, int status)
{
	size_t i;

	if (s->status_table != NULL) {
		s->status_table[status]++;
		return;
	}
	for (i = 0; i < s->nstatuses && s->statuses[i].status < status; i++)
		;
	if (i < s->nstatuses && s->statuses[i].status == status) {
		s->statuses[i].count++;
		return;
	}
	if (s->nstatuses == SUMMARY_STATUS_INLINE) {
		if (summary_reserve(s, SUMMARY_STATUS_INLINE + 1) == 0)
			s->status_table[status]++;
		return;
	}
	memmove(&s->statuses[i + 1], &s->statuses[i],
	    (s->nstatuses - i) * sizeof(s->statuses[0]));
	s->statuses[i].status = status;
	s->statuses[i].count = 1;
	s->nstatuses++;
}

void
summary_add(struct summary *s, const struct fetch_result *r)
{
	s->total++;
	if (fetch_result_ok(r))
		s->ok++;
	else
		s->failed++;
	if (r->status > 0 && r->status < SUMMARY_STATUS_MAX)
		summary_add_status(s, (int)r->status);
	/* render names an unknown error "other", so count it as that */
	if ((unsigned)r->error >= FETCH_E_COUNT)
		s->error_counts[FETCH_E_OTHER]++;
	else if (r->error != FETCH_OK)
		s->error_counts[r->error]++;
	if (r->tls.used && r->tls.has_cert &&
	    (!s->has_cert_expiry ||
	        r->tls.cert.not_after < s->earliest_cert_expiry)) {
		s->has_cert_expiry = true;
		s->earliest_cert_expiry = r->tls.cert.not_after;
	}
}

void
summary_reset(struct summary *s)
{
	free(s->status_table);
	memset(s, 0, sizeof(*s));
}
