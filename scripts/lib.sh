# Shared set-up for scripts/run, scripts/test and scripts/bench: install
# what is missing (Debian 12, apt-get), bootstrap autotools, build.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=$(nproc 2>/dev/null || echo 2)

# Build dependencies (scripts/run), by Debian package name.  check is only
# for make check, but build/ is shared with scripts/test, whose configure
# must find it.
PACKAGES=(gcc make autoconf automake pkg-config libevent-dev
	libcurl4-openssl-dev libconfig-dev libjansson-dev check libsystemd-dev
	ca-certificates)
# What the test suite drives: the client (curl, jq), the integration
# suite (python3), systemd's tools, strace, nginx, promtool, the style
# gate (clang-format), and the boot test's debootstrap and systemd-nspawn
# (systemd-container).
TEST_PACKAGES=(python3 curl jq systemd strace nginx prometheus clang-format
	debootstrap systemd-container)

log() { printf '==> %s\n' "$*" >&2; }

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
	# nginx and prometheus are tools for the tests, not services to run:
	# policy-rc.d 101 keeps their packages from starting them.
	local policy=/usr/sbin/policy-rc.d made=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
		$sudo chmod 755 "$policy"
		made=1
	fi
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
	[ -n "$made" ] && $sudo rm -f "$policy"
	return 0
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
