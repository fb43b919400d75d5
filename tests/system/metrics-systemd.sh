#!/bin/bash
# metrics-systemd.sh - GET /health and GET /metrics through the installed
# secmsgd-metrics.socket under a real systemd (issue 15).
#
# `make install` into a container (tests/lib/nspawn.sh); `systemctl enable
# secmsgd` enables the metrics socket too (Also=); with the sockets
# listening and the service idle, GET /health from the host starts it and
# is answered ok; /metrics then passes promtool and counts a login made
# from the host; the service still has no network of its own. Finally,
# with the metrics port taken by another program, the socket unit fails
# and the relay still starts and serves clients (Wants=, not Requires=).
#
# Needs root, systemd-nspawn, overlayfs, promtool (make deps), jq, ss.
# Environment as tests/system/systemd.sh: SECMSG_RELEASE, SECMSG_PKI,
# SECMSG_KEEP.
set -u
cd "$(dirname "$0")/../.." || exit 1
TOP=$PWD
: "${SECMSG_RELEASE:=build}"
REL=$(realpath "$SECMSG_RELEASE")
: "${SECMSG_PKI:=$REL/pki}"

if [ ! -f tests/lib/nspawn.sh ]; then
	echo "FAIL: metrics systemd test: tests/lib/nspawn.sh is missing"
	exit 1
fi
. tests/lib/nspawn.sh
ns_require metrics jq ss promtool python3
ns_setup metrics 180
C=$R/host
mkdir -p "$C/keys" "$C/known"
CLIENT=$REL/secmsg-client

# fetch URL: the body on stdout, exit status 0 for a 200.
fetch() { tests/lib/fetch.py "$1"; }
# free_or PORT: PORT if nothing listens on it here, else a free one.
free_or() {
	if [ -z "$(ss -Hltn "sport = :$1")" ]; then
		echo "$1"
	else
		python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
	fi
}
# listen_on UNIT ADDRESS: a drop-in that moves UNIT's socket.
listen_on() {
	mkdir -p "$R/root/etc/systemd/system/$1.d"
	printf '[Socket]\nListenStream=\nListenStream=%s\n' "$2" \
		>"$R/root/etc/systemd/system/$1.d/port.conf"
}

# ---- installed in a container ----

ns_overlay || exit 1
rm -rf "$R/root/etc/secmsg" "$R/root/etc/systemd/system/"*.wants/secmsgd*
if ! make --no-print-directory -C "$TOP" O="$SECMSG_RELEASE" SAN= DESTDIR="$R/root" \
	PREFIX=/usr install >"$C/install.log" 2>&1; then
	fail "make install DESTDIR=... PREFIX=/usr"
	cat "$C/install.log"
	exit 1
fi
UNITDIR=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null)
UNITDIR=${UNITDIR:-/lib/systemd/system}
if [ -f "$R/root$UNITDIR/secmsgd-metrics.socket" ]; then
	pass "make install puts secmsgd-metrics.socket in $UNITDIR"
else
	fail "make install puts secmsgd-metrics.socket in $UNITDIR"
fi
install -m 0644 "$PKI/server.pem" "$R/root/etc/secmsg/server.pem"
install -m 0600 "$PKI/server.key" "$R/root/etc/secmsg/server.key"
install -m 0644 "$PKI/alice.pub" "$R/root/etc/secmsg/users/alice.pem"
install -m 0600 "$PKI/alice.key" "$C/keys/alice.key"
# The container shares the host's network: move a socket off a busy port.
PORT=$(free_or 10000)
MPORT=$(free_or 10001)
[ "$PORT" = 10000 ] || listen_on secmsgd.socket "$PORT"
[ "$MPORT" = 10001 ] || listen_on secmsgd-metrics.socket "127.0.0.1:$MPORT"
ns_client_conf "$PORT" "$PKI/ca.pem" "$C/keys" "$C/known" >"$C/client.conf"
URL=http://127.0.0.1:$MPORT

ns_boot "secmsg-metrics-$$" || exit 1
E systemd-sysusers >/dev/null
E systemctl daemon-reload
if E systemctl enable secmsgd.service >/dev/null 2>&1 &&
	[ "$(E systemctl is-enabled secmsgd-metrics.socket)" = enabled ]; then
	pass "systemctl enable secmsgd enables secmsgd-metrics.socket (Also=)"
else
	fail "systemctl enable secmsgd enables secmsgd-metrics.socket (Also=)"
fi

# ---- /health starts the idle service ----

E systemctl start secmsgd.socket secmsgd-control.socket secmsgd-metrics.socket
if [ "$(prop ActiveState secmsgd-metrics.socket)" = active ] &&
	[ "$(prop ActiveState)" = inactive ]; then
	pass "secmsgd-metrics.socket listens on 127.0.0.1:$MPORT; secmsgd.service is idle"
else
	fail "secmsgd-metrics.socket listens; secmsgd.service is idle ($(prop ActiveState secmsgd-metrics.socket), $(prop ActiveState))"
fi
health=$(fetch "$URL/health")
if [ "$health" = ok ] && is_running; then
	pass "GET /health through the socket unit starts secmsgd.service from idle and answers ok"
else
	fail "GET /health through the socket unit starts secmsgd.service ('$health', $(prop ActiveState))"
	E journalctl -u secmsgd --no-pager | tail -20
fi
if printf 'quit\n' | timeout 15 "$CLIENT" -c "$C/client.conf" --batch alice \
	>"$C/login.out" 2>&1 &&
	fetch "$URL/metrics" >"$C/scrape" && grep -q '^secmsgd_logins_total 1$' "$C/scrape"; then
	pass "GET /metrics counts alice's login from the host (secmsgd_logins_total 1)"
else
	fail "GET /metrics counts alice's login: $(grep logins_total "$C/scrape" 2>/dev/null) $(cat "$C/login.out")"
fi
out=$(promtool check metrics <"$C/scrape" 2>&1)
if [ $? -eq 0 ] && [ -z "$out" ]; then
	pass "promtool check metrics: the scrape through the socket unit"
else
	fail "promtool check metrics: the scrape through the socket unit: $out"
fi
if [ "$(prop PrivateNetwork)" = yes ] &&
	[ "$(prop RestrictAddressFamilies)" = AF_UNIX ]; then
	pass "the service keeps PrivateNetwork=yes and RestrictAddressFamilies=AF_UNIX"
else
	fail "the service keeps PrivateNetwork=yes and RestrictAddressFamilies=AF_UNIX"
fi

# ---- a metrics port already taken ----

E systemctl stop secmsgd.service secmsgd.socket secmsgd-control.socket secmsgd-metrics.socket
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); print("taken", flush=True)
time.sleep(120)' "$MPORT" >"$C/squatter.out" 2>&1 &
NS_BG_PIDS+=($!)
until_true 10 grep -q taken "$C/squatter.out"
E systemctl start secmsgd-metrics.socket 2>/dev/null
E systemctl start secmsgd.socket secmsgd-control.socket
if [ "$(prop ActiveState secmsgd-metrics.socket)" = failed ] &&
	printf 'quit\n' | timeout 15 "$CLIENT" -c "$C/client.conf" --batch alice \
		>"$C/login2.out" 2>&1 && is_running; then
	pass "with the metrics port taken, secmsgd-metrics.socket fails and the relay still starts and serves"
else
	fail "with the metrics port taken, the relay still starts ($(prop ActiveState secmsgd-metrics.socket), $(prop ActiveState)): $(cat "$C/login2.out")"
	E journalctl -u secmsgd --no-pager | tail -10
fi

[ "$FAILURES" -eq 0 ]
