# Unit tests (check) link the daemon's own objects.
UNIT_CFLAGS = $(daemon_libfanoutd_a_CFLAGS) $(CHECK_CFLAGS) -I$(srcdir)/daemon
UNIT_LDADD = $(FANOUTD_LIBS) $(CHECK_LIBS)

UNIT_TESTS = tests/test_config tests/test_policy tests/test_request \
	tests/test_render tests/test_fetch tests/test_pool tests/test_metrics \
	tests/test_expect tests/test_tls tests/test_url tests/test_probe
# `make distcheck INTEGRATION_TESTS=` runs only the unit tests in the
# tarball (scripts/test runs the integration suite on the tree itself).
INTEGRATION_TESTS = tests/integration/run.py
check_PROGRAMS += tests/upstream
if HAVE_CHECK
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS) $(INTEGRATION_TESTS)
else
# Without the check library the daemon builds but the suite cannot: make
# check stops here, before any test runs, instead of passing on less.
check_SCRIPTS = no-check-library
no-check-library:
	@echo "make check: the unit tests need the check library" \
		"(Debian: apt-get install check), which configure did not" \
		"find; install it and run configure again" >&2
	@exit 1
endif

tests_test_config_SOURCES = tests/test_config.c
tests_test_config_CFLAGS = $(UNIT_CFLAGS)
tests_test_config_LDADD = $(UNIT_LDADD)
tests_test_policy_SOURCES = tests/test_policy.c
tests_test_policy_CFLAGS = $(UNIT_CFLAGS)
tests_test_policy_LDADD = $(UNIT_LDADD)
tests_test_request_SOURCES = tests/test_request.c
tests_test_request_CFLAGS = $(UNIT_CFLAGS)
tests_test_request_LDADD = $(UNIT_LDADD)
tests_test_render_SOURCES = tests/test_render.c
tests_test_render_CFLAGS = $(UNIT_CFLAGS)
tests_test_render_LDADD = $(UNIT_LDADD)
tests_test_fetch_SOURCES = tests/test_fetch.c
tests_test_fetch_CFLAGS = $(UNIT_CFLAGS)
tests_test_fetch_LDADD = $(UNIT_LDADD)
tests_test_pool_SOURCES = tests/test_pool.c
tests_test_pool_CFLAGS = $(UNIT_CFLAGS)
tests_test_pool_LDADD = $(UNIT_LDADD)
tests_test_expect_SOURCES = tests/test_expect.c
tests_test_expect_CFLAGS = $(UNIT_CFLAGS)
tests_test_expect_LDADD = $(UNIT_LDADD)
tests_test_metrics_SOURCES = tests/test_metrics.c
tests_test_metrics_CFLAGS = $(UNIT_CFLAGS)
tests_test_metrics_LDADD = $(UNIT_LDADD)
tests_test_url_SOURCES = tests/test_url.c
tests_test_url_CFLAGS = $(UNIT_CFLAGS)
tests_test_url_LDADD = $(UNIT_LDADD)
tests_test_probe_SOURCES = tests/test_probe.c
tests_test_probe_CFLAGS = $(UNIT_CFLAGS)
tests_test_probe_LDADD = $(UNIT_LDADD)
tests_test_tls_SOURCES = tests/test_tls.c
tests_test_tls_CFLAGS = $(UNIT_CFLAGS)
tests_test_tls_LDADD = $(UNIT_LDADD)

# The upstream test server: plain libevent, no daemon code.
tests_upstream_SOURCES = tests/upstream.c
tests_upstream_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
tests_upstream_LDADD = $(LIBEVENT_LIBS)

TEST_EXTENSIONS = .py
PY_LOG_COMPILER = python3
AM_TESTS_ENVIRONMENT = \
	FANOUTD_BIN=$(abs_top_builddir)/daemon/fanoutd; \
	UPSTREAM_BIN=$(abs_top_builddir)/tests/upstream; \
	FANOUTD_SRCDIR=$(abs_top_srcdir); \
	export FANOUTD_BIN UPSTREAM_BIN FANOUTD_SRCDIR;
# check's own fork mode hides sanitizer exit codes less well than no fork.
AM_TESTS_ENVIRONMENT += CK_DEFAULT_TIMEOUT=30; export CK_DEFAULT_TIMEOUT;

EXTRA_DIST += tests/integration
