noinst_LIBRARIES += daemon/libfanoutd.a
daemon_libfanoutd_a_SOURCES = \
	daemon/clock.c daemon/clock.h \
	daemon/batch.c daemon/batch.h \
	daemon/call.c daemon/call.h \
	daemon/expect.c daemon/expect.h \
	daemon/client.c daemon/client.h \
	daemon/fanout.c daemon/fanout.h \
	daemon/fields.c daemon/fields.h \
	daemon/config.c daemon/config.h \
	daemon/config_compat.c daemon/config_compat.h \
	daemon/fetch.c daemon/fetch.h \
	daemon/log.c daemon/log.h \
	daemon/metrics.c daemon/metrics.h \
	daemon/policy.c daemon/policy.h \
	daemon/pool.c daemon/pool.h \
	daemon/probe.c daemon/probe.h \
	daemon/render.c daemon/render.h \
	daemon/request.c daemon/request.h \
	daemon/server.c daemon/server.h \
	daemon/summary.c daemon/summary.h \
	daemon/tls.c daemon/tls.h \
	daemon/url.c daemon/url.h
DAEMON_DEPS_CFLAGS = $(LIBEVENT_CFLAGS) $(CURL_CFLAGS) $(OPENSSL_CFLAGS) \
	$(LIBCONFIG_CFLAGS) $(JANSSON_CFLAGS) $(PCRE2_CFLAGS) $(SYSTEMD_CFLAGS)
daemon_libfanoutd_a_CFLAGS = $(AM_CFLAGS) $(DAEMON_DEPS_CFLAGS)

FANOUTD_LIBS = daemon/libfanoutd.a $(LIBEVENT_LIBS) $(CURL_LIBS) \
	$(OPENSSL_LIBS) $(LIBCONFIG_LIBS) $(JANSSON_LIBS) $(PCRE2_LIBS) \
	$(SYSTEMD_LIBS) -lm

sbin_PROGRAMS += daemon/fanoutd
daemon_fanoutd_SOURCES = daemon/main.c
daemon_fanoutd_CFLAGS = $(daemon_libfanoutd_a_CFLAGS)
daemon_fanoutd_LDADD = $(FANOUTD_LIBS)
