#!/bin/sh
# Install the Debian packages secmsg needs to build and test, if missing.
# Instant when everything is present.
set -eu

PKGS="build-essential pkg-config libssl-dev openssl libsystemd-dev
libiniparser-dev libjansson-dev libreadline-dev libcmocka-dev
jq tmux mandoc clang-format procps psmisc systemd systemd-container
iproute2 util-linux valgrind clang libclang-rt-14-dev prometheus"

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
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
