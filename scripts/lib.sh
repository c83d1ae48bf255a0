# Shared set-up for scripts/run, scripts/test and scripts/bench: install
# what is missing (Debian 12, apt-get), bootstrap autotools, build.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=$(nproc 2>/dev/null || echo 2)

# Build dependencies (scripts/run), by Debian package name.  check is only
# for make check, but build/ is shared with scripts/test, whose configure
# must find it.
PACKAGES=(gcc make autoconf automake pkg-config libevent-dev
	libcurl4-openssl-dev libssl-dev libconfig-dev libjansson-dev libpcre2-dev
	check libsystemd-dev ca-certificates)
# What the test suite drives: the client (curl, jq), the integration
# suite (python3), systemd's tools, strace, nginx, promtool, the style
# gate (clang-format), and the boot test's debootstrap and systemd-nspawn
# (systemd-container).
TEST_PACKAGES=(python3 curl jq systemd strace nginx prometheus clang-format
	debootstrap systemd-container)

log() { printf '==> %s\n' "$*" >&2; }

# While packages install, a policy-rc.d that exits 101 keeps their
# scripts from starting services (nginx and prometheus are tools for the
# tests, not services to run).  The test suite points it elsewhere.
POLICY_RC=${FANOUTD_POLICY_RC:-/usr/sbin/policy-rc.d}

# apt_install SUDO PACKAGE...
apt_install() {
	local sudo=$1
	shift
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "$@" >/dev/null
}

ensure_packages() {
	local missing=() p sudo=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	log "installing: ${missing[*]}"
	$sudo apt-get update -qq
	if [ -e "$POLICY_RC" ]; then # someone else's: leave it alone
		apt_install "$sudo" "${missing[@]}"
		return 0
	fi
	# Ours goes on every way out of the subshell (a failed install that
	# set -e turns into an exit, a signal), or apt would never start a
	# service on this machine again.  The subshell's status is the
	# install's, so set -e still stops the caller when it fails.
	(
		trap '$sudo rm -f -- "$POLICY_RC"' EXIT
		printf '#!/bin/sh\nexit 101\n' | $sudo tee "$POLICY_RC" >/dev/null
		$sudo chmod 755 "$POLICY_RC"
		apt_install "$sudo" "${missing[@]}"
	)
}

bootstrap() {
	if [ ! -x "$TOP/configure" ] || [ "$TOP/configure.ac" -nt "$TOP/configure" ]; then
		log "autoreconf"
		if ! (cd "$TOP" && autoreconf -fi) >"$TOP/autoreconf.log" 2>&1; then
			cat "$TOP/autoreconf.log" >&2
			exit 1
		fi
	fi
}

# build DIR [configure args...]: an out-of-tree build in $TOP/DIR.
build() {
	local name=$1 dir="$TOP/$1"
	shift
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ] || [ "$(cat "$dir/.args" 2>/dev/null)" != "$*" ]; then
		log "configure $* (in $name)"
		(cd "$dir" && "$TOP/configure" -q "$@")
		printf '%s' "$*" >"$dir/.args"
	fi
	log "make (in $name)"
	make -C "$dir" -s -j"$JOBS" >/dev/null
}

setup() {
	ensure_packages "${PACKAGES[@]}" "$@"
	bootstrap
	build build
}
