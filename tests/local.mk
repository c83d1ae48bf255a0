# Unit tests (check) link the daemon's own objects.
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

# Every unit test is tests/test_NAME.c alone (automake's default source),
# built with the daemon's flags and linked with its objects and check: the
# defaults below, which the programs with flags of their own (the daemon,
# the upstream) do not take.
AM_CPPFLAGS = -I$(srcdir)/daemon $(DAEMON_DEPS_CFLAGS) $(CHECK_CFLAGS)
LDADD = $(UNIT_LDADD)
noinst_HEADERS = tests/check_run.h tests/test_sink.h

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
