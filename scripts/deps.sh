#!/bin/sh
# Install the Debian packages secmsg needs, if missing. Instant when
# everything is present.
#
#   scripts/deps.sh [build|bench|check]   install what SET needs (default
#                                         check: everything make check uses)
#   scripts/deps.sh --check               install nothing: exit 1, naming the
#                                         missing build dependencies and the
#                                         apt-get command, if the programs
#                                         cannot be built here
#
# build is what `make` and `make demo` need, bench adds jq for make bench,
# check adds the test tools. Installing needs root; otherwise it stops
# with the apt-get command to run. make demo, make bench and make check
# install (the Makefile then builds in a sub-make, which reads the
# pkg-config flags once the libraries are there); make and make install
# only check (an administrator's build should not change the system's
# packages).
set -eu

BUILD="build-essential pkg-config libssl-dev openssl libsystemd-dev
libiniparser-dev libjansson-dev libreadline-dev libncurses-dev libsqlite3-dev"
BENCH="$BUILD jq"
CHECK="$BENCH libcmocka-dev tmux mandoc procps psmisc systemd
systemd-container iproute2 util-linux valgrind clang libclang-rt-14-dev
dpkg-dev debhelper lintian prometheus"

# What the compile and link of the programs need, found the way the
# Makefile finds it (pkg-config; iniparser has no .pc file), so that
# libraries installed by other means than dpkg count too. Prints the
# Debian packages that would provide what is missing.
missing_for_build() {
	m=""
	command -v "${CC:-cc}" >/dev/null 2>&1 || m="$m build-essential"
	if ! command -v "${PKG_CONFIG:-pkg-config}" >/dev/null 2>&1; then
		m="$m pkg-config libssl-dev libsystemd-dev libjansson-dev libreadline-dev libncurses-dev libsqlite3-dev"
	else
		for pair in libcrypto:libssl-dev libsystemd:libsystemd-dev \
			jansson:libjansson-dev readline:libreadline-dev \
			ncursesw:libncurses-dev \
			sqlite3:libsqlite3-dev; do
			"${PKG_CONFIG:-pkg-config}" --exists "${pair%%:*}" ||
				m="$m ${pair#*:}"
		done
	fi
	[ -e /usr/include/iniparser/iniparser.h ] ||
		[ -e /usr/include/iniparser.h ] || m="$m libiniparser-dev"
	echo "$m"
}

if [ "${1:-}" = --check ]; then
	missing=$(missing_for_build)
	[ -z "$missing" ] && exit 0
	echo "secmsg: missing build dependencies:$missing" >&2
	echo "secmsg: install them (as root) with:" >&2
	echo "    apt-get install$missing" >&2
	echo "secmsg: or run make demo or make check as root, which install them" >&2
	exit 1
fi

case ${1:-check} in
build) PKGS=$BUILD ;;
bench) PKGS=$BENCH ;;
check) PKGS=$CHECK ;;
*) echo "usage: $0 [build|bench|check] | --check" >&2; exit 2 ;;
esac

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing" >&2
	echo "deps: run as root, or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Without a network the package lists already there may still do (the
# packages themselves may be in apt's cache).
apt-get update -qq || echo "deps: apt-get update failed; trying with the package lists there are" >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
