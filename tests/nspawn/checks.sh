#!/bin/bash
# The checks of the installed fanoutd units under a real systemd.  Runs as
# root inside the booted container (fanoutd-checks.service), after
# multi-user.target, with fanoutd.socket enabled and fanoutd.service not
# started.  Writes one line per check into DIR/results:
#
#   PASS nspawn.NAME
#   FAIL nspawn.NAME: reason
#
# then "DONE", and the container's journal into DIR/journal.txt.  Checks
# run in order and share the one service; each that needs the daemon
# starts it when an earlier one left it stopped.  Every wait has a timeout.
set -u

OUT=${1:?usage: checks.sh RESULTS-DIR}
RESULTS=$OUT/results
HERE=$(cd "$(dirname "$0")" && pwd)
CONF=/etc/fanoutd.conf
SBIN=/usr/sbin/fanoutd
BASE=http://127.0.0.1:8080
UNIT=fanoutd.service
DROPIN=/run/systemd/system/$UNIT.d
TMP=$(mktemp -d)
UPSTREAM_PID=
WHY=

: >"$RESULTS"
cp "$CONF" "$TMP/fanoutd.conf.orig"

# check NAME FUNCTION: a function returns 0, or sets WHY and returns 1.
check() {
	WHY=
	if "$2"; then
		echo "PASS nspawn.$1" >>"$RESULTS"
	else
		echo "FAIL nspawn.$1: ${WHY:-no reason given}" >>"$RESULTS"
	fi
}

# want WHAT EXPECTED ACTUAL
want() {
	[ "$2" = "$3" ] && return 0
	WHY="$1: expected '$2', got '$3'"
	return 1
}

prop() { systemctl show -p "$2" --value "$1"; }

# wait_until SECONDS COMMAND...: poll every 0.1 s.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.1
	done
}

state_is() { [ "$(prop "$1" ActiveState)" = "$2" ]; }

# get PATH: the HTTP status of GET PATH on the daemon ("000": no answer).
get() {
	curl -sS -m 10 -o "$TMP/body" -w '%{http_code}' "$BASE$1" \
		2>"$TMP/curl.err" || true
}

# fetch_n N: POST /fetch with N upstream URLs; prints the HTTP status.
fetch_n() {
	local i urls=""
	for ((i = 0; i < $1; i++)); do
		urls+="${urls:+,}\"http://127.0.0.1:$UPSTREAM_PORT/status/200\""
	done
	curl -sS -m 15 -o "$TMP/body" -w '%{http_code}' \
		-H 'Content-Type: application/json' --data-binary "[$urls]" \
		"$BASE/fetch" 2>"$TMP/curl.err" || true
}

cursor() { journalctl -n 0 --show-cursor -q | sed -n 's/^-- cursor: //p'; }

# journal_since CURSOR: the messages of fanoutd.service since CURSOR.
journal_since() {
	journalctl -q -u "$UNIT" --after-cursor="$1" -o cat --no-pager
}

journal_has() { journal_since "$1" | grep -qF -- "$2"; }

ensure_running() {
	state_is "$UNIT" active && return 0
	systemctl reset-failed "$UNIT" 2>/dev/null
	systemctl start "$UNIT" || { WHY="systemctl start $UNIT failed"; return 1; }
}

start_upstream() {
	local portfile=$TMP/upstream.port
	"$HERE/upstream" --port 0 --portfile "$portfile" \
		>"$TMP/upstream.log" 2>&1 &
	UPSTREAM_PID=$!
	wait_until 10 test -s "$portfile" || return 1
	UPSTREAM_PORT=$(cat "$portfile")
}

# ------------------------------------------------------------------ checks

# The socket is listening at boot and the service is not running; the
# first connection starts it, and it serves the passed socket.
c_socket_activation() {
	local c
	c=$(cursor)
	want "fanoutd.socket at boot" active "$(prop fanoutd.socket ActiveState)" ||
		return 1
	want "$UNIT at boot" inactive "$(prop $UNIT ActiveState)" || return 1
	want "GET /healthz through the socket" 200 "$(get /healthz)" ||
		{ WHY+=" ($(cat "$TMP/curl.err"))"; return 1; }
	want "$UNIT after the first connection" active \
		"$(prop $UNIT ActiveState)" || return 1
	want "TriggeredBy" fanoutd.socket "$(prop $UNIT TriggeredBy)" || return 1
	wait_until 5 journal_has "$c" "passed socket" ||
		{ WHY="no 'passed socket' line: $(journal_since "$c" | tail -3)"; return 1; }
}

# Type=notify: the unit is active only once the daemon says READY=1.  As
# a control, the same daemon without NOTIFY_SOCKET serves requests but
# stays "activating" until the start times out.
c_notify() {
	want Type notify "$(prop $UNIT Type)" || return 1
	want NotifyAccess main "$(prop $UNIT NotifyAccess)" || return 1
	systemctl stop "$UNIT"
	mkdir -p "$DROPIN"
	cat >"$DROPIN/50-no-ready.conf" <<-EOF
		[Service]
		ExecStart=
		ExecStart=/usr/bin/env -u NOTIFY_SOCKET $SBIN -c $CONF
		TimeoutStartSec=3
		Restart=no
	EOF
	systemctl daemon-reload
	systemctl start --no-block "$UNIT"
	wait_until 10 test "$(get /healthz)" = 200 ||
		{ WHY="the daemon without NOTIFY_SOCKET did not serve"; return 1; }
	want "state while serving without READY=1" activating \
		"$(prop $UNIT ActiveState)" || return 1
	wait_until 15 state_is "$UNIT" failed ||
		{ WHY="no failure without READY=1: $(prop $UNIT ActiveState)"; return 1; }
	want "Result without READY=1" timeout "$(prop $UNIT Result)" || return 1
	rm -r "$DROPIN"
	systemctl daemon-reload
	systemctl reset-failed "$UNIT"
	systemctl start "$UNIT" || { WHY="systemctl start failed"; return 1; }
	# start returned: READY=1 arrived, so the daemon must answer at once.
	want "state after start" active "$(prop $UNIT ActiveState)" || return 1
	want "GET /healthz right after start" 200 "$(get /healthz)"
}

# The running daemon: a dynamic user, no capabilities, no new privileges,
# a seccomp filter, on every thread.
c_sandbox() {
	local pid uid f task st
	ensure_running || return 1
	pid=$(prop $UNIT MainPID)
	[ "$pid" -gt 0 ] 2>/dev/null || { WHY="MainPID '$pid'"; return 1; }
	want DynamicUser yes "$(prop $UNIT DynamicUser)" || return 1
	st=/proc/$pid/status
	uid=$(awk '/^Uid:/ { print $2 }' "$st")
	[ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ] ||
		{ WHY="uid $uid is not a dynamic user's (61184-65519)"; return 1; }
	want "uids (real, effective, saved, fs)" "$uid $uid $uid $uid" \
		"$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "$st")" || return 1
	! grep -q "^[^:]*:[^:]*:$uid:" /etc/passwd ||
		{ WHY="uid $uid is a static user of /etc/passwd"; return 1; }
	for task in /proc/"$pid"/task/*; do
		st=$task/status
		for f in CapInh CapPrm CapEff CapBnd CapAmb; do
			want "$f of task ${task##*/}" 0000000000000000 \
				"$(awk -v f="$f:" '$1 == f { print $2 }' "$st")" || return 1
		done
		want "NoNewPrivs of task ${task##*/}" 1 \
			"$(awk '$1 == "NoNewPrivs:" { print $2 }' "$st")" || return 1
		want "Seccomp mode of task ${task##*/}" 2 \
			"$(awk '$1 == "Seccomp:" { print $2 }' "$st")" || return 1
		[ "$(awk '$1 == "Seccomp_filters:" { print $2 }' "$st")" -ge 1 ] ||
			{ WHY="no seccomp filter on task ${task##*/}"; return 1; }
	done
}

# A fan-out to an upstream on the container's loopback.
c_fanout() {
	local hits
	ensure_running || return 1
	start_upstream || { WHY="upstream did not start: $(cat "$TMP/upstream.log")"; return 1; }
	curl -sS -m 15 -o "$TMP/body" -H 'Content-Type: application/json' \
		--data-binary "[\"http://127.0.0.1:$UPSTREAM_PORT/status/200\",
		  \"http://127.0.0.1:$UPSTREAM_PORT/delay/100\",
		  \"http://127.0.0.1:$UPSTREAM_PORT/status/404\"]" \
		"$BASE/fetch" 2>"$TMP/curl.err" ||
		{ WHY="POST /fetch: $(cat "$TMP/curl.err")"; return 1; }
	want "statuses" "200 200 404" \
		"$(jq -r '[.results[].status] | map(tostring) | join(" ")' "$TMP/body")" ||
		{ WHY+=" in $(head -c 400 "$TMP/body")"; return 1; }
	want "summary ok/failed" "2/1" \
		"$(jq -r '"\(.summary.ok)/\(.summary.failed)"' "$TMP/body")" || return 1
	hits=$(curl -sS -m 5 "http://127.0.0.1:$UPSTREAM_PORT/hits" | jq .hits)
	want "requests the upstream saw" 3 "$hits"
}

# systemctl reload with a good file: the new config serves, same process.
c_reload_good() {
	local pid c
	ensure_running || return 1
	pid=$(prop $UNIT MainPID)
	want "3 URLs before the reload" 200 "$(fetch_n 3)" || return 1
	sed -i 's/^\( *max_urls = \)[0-9]*;/\12;/' "$CONF"
	grep -q 'max_urls = 2;' "$CONF" || { WHY="could not edit $CONF"; return 1; }
	c=$(cursor)
	systemctl reload "$UNIT" 2>"$TMP/reload.err" ||
		{ WHY="systemctl reload failed: $(cat "$TMP/reload.err")"; return 1; }
	wait_until 10 test "$(fetch_n 3)" = 413 ||
		{ WHY="max_urls = 2 not in effect: 3 URLs got $(fetch_n 3)"; return 1; }
	want "2 URLs after the reload" 200 "$(fetch_n 2)" || return 1
	want "MainPID after the reload" "$pid" "$(prop $UNIT MainPID)" || return 1
	wait_until 5 journal_has "$c" "reloaded $CONF" ||
		{ WHY="no 'reloaded' line"; return 1; }
}

# systemctl reload with a broken file fails, the daemon is not signalled,
# and the config it runs (max_urls = 2, from c_reload_good) keeps serving.
c_reload_broken() {
	local pid c rc=0
	ensure_running || return 1
	pid=$(prop $UNIT MainPID)
	want "3 URLs before" 413 "$(fetch_n 3)" || return 1
	c=$(cursor)
	printf 'this is not a fanoutd config\nlimits = { max_urls = 50; };\n' \
		>"$CONF"
	systemctl reload "$UNIT" 2>"$TMP/reload.err" || rc=$?
	[ "$rc" -ne 0 ] || { WHY="systemctl reload of a broken file exited 0"; return 1; }
	want "state after the failed reload" active "$(prop $UNIT ActiveState)" ||
		return 1
	want "MainPID after the failed reload" "$pid" "$(prop $UNIT MainPID)" ||
		return 1
	want "3 URLs after the failed reload (old max_urls = 2)" 413 \
		"$(fetch_n 3)" || return 1
	want "2 URLs after the failed reload" 200 "$(fetch_n 2)" || return 1
	# The -t check logged the file's error; the daemon never saw SIGHUP.
	wait_until 5 journal_has "$c" "$CONF:1" ||
		{ WHY="no '$CONF:1' error in the journal"; return 1; }
	wait_until 5 journal_has "$c" "path=/fetch status=200 urls=2" ||
		{ WHY="no access line of the last request"; return 1; }
	! journal_has "$c" "reload failed" ||
		{ WHY="the daemon was signalled: it logged 'reload failed'"; return 1; }
	cp "$TMP/fanoutd.conf.orig" "$CONF"
}

# Under the journal: <N> priorities kept, no time prefix in the text.
c_journal() {
	local bad
	journalctl -q -u "$UNIT" -o json --no-pager >"$TMP/journal.json"
	want "priority of the access lines" 6 "$(jq -r \
		'select(._PID != null and (.MESSAGE | type) == "string" and
		 (.MESSAGE | startswith("access "))) | .PRIORITY' \
		"$TMP/journal.json" | sort -u | tr '\n' ' ' | sed 's/ $//')" ||
		return 1
	bad=$(jq -r 'select((.MESSAGE | type) == "string" and
		(.MESSAGE | test("^(<[0-7]>|[0-9]{4}-[0-9]{2}-[0-9]{2}T|fanoutd: )")))
		| .MESSAGE' "$TMP/journal.json" | head -3)
	[ -z "$bad" ] || { WHY="prefixes in journal messages: $bad"; return 1; }
}

# systemctl stop: exit status 0, no signal, no core; then the socket too.
c_stop() {
	local c
	ensure_running || return 1
	c=$(cursor)
	systemctl stop "$UNIT" || { WHY="systemctl stop failed"; return 1; }
	want "state after stop" inactive "$(prop $UNIT ActiveState)" || return 1
	want Result success "$(prop $UNIT Result)" || return 1
	# ExecMainCode 1 is CLD_EXITED (2 killed, 3 dumped core).
	want "ExecMainCode" 1 "$(prop $UNIT ExecMainCode)" || return 1
	want "ExecMainStatus" 0 "$(prop $UNIT ExecMainStatus)" || return 1
	wait_until 5 journal_has "$c" "stopped" ||
		{ WHY="no 'stopped' line from the daemon"; return 1; }
	! journalctl -q -b --no-pager | grep -qiE 'dumped core|core-dump' ||
		{ WHY="a core dump in the journal"; return 1; }
	systemctl stop fanoutd.socket
	want "GET /healthz with the socket stopped" 000 "$(get /healthz)"
}

# When the checks start and end (seconds since the epoch), for the host's
# account of boot, checks and power-off times.
echo "TIME start $(date +%s.%N)" >>"$RESULTS"
check socket_activation c_socket_activation
check notify c_notify
check sandbox c_sandbox
check fanout c_fanout
check reload_good c_reload_good
check reload_broken c_reload_broken
check journal c_journal
check stop c_stop

[ -n "$UPSTREAM_PID" ] && kill "$UPSTREAM_PID" 2>/dev/null
journalctl -b -q --no-pager -o short-iso-precise >"$OUT/journal.txt" 2>&1
rm -rf "$TMP"
echo "TIME end $(date +%s.%N)" >>"$RESULTS"
echo DONE >>"$RESULTS"
