/*
 * summary: the running counts of a fan-out's answer ("summary"): total,
 * ok and failed, status and error counts, the earliest certificate
 * expiry.  Pure: no I/O, no logging; one summary belongs to one batch,
 * on the loop thread.
 */
#ifndef FANOUTD_SUMMARY_H
#define FANOUTD_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch.h"

/*
 * A zeroed struct is an empty summary.  Distinct statuses are kept in a
 * short sorted list while they fit, so that a small fan-out needs no
 * table of every status; after that in status_table, which
 * summary_reserve() allocates up front.
 *
 * Statuses 1..999 are counted: curl reports any three-digit status.
 */
#define SUMMARY_STATUS_MAX    1000
#define SUMMARY_STATUS_INLINE 8

struct summary_status {
	int status;
	size_t count;
};

struct summary {
	size_t total, ok, failed;
	size_t error_counts[FETCH_E_COUNT];
	size_t nstatuses; /* used entries of statuses, ascending */
	struct summary_status statuses[SUMMARY_STATUS_INLINE];
	size_t *status_table; /* heap, SUMMARY_STATUS_MAX counts, or NULL */
	double elapsed_ms;
	bool has_cert_expiry;         /* some result had a certificate */
	int64_t earliest_cert_expiry; /* the smallest not_after among them */
};

/* Make room for the statuses of n results; 0, or -1 out of memory. */
int summary_reserve(struct summary *summary, size_t n);
/*
 * Count one result.  Without summary_reserve() a status beyond the
 * inline list needs an allocation, and is not counted if that fails.
 */
void summary_add(struct summary *summary, const struct fetch_result *result);
/* Free the status table and zero the summary. */
void summary_reset(struct summary *summary);

#endif
