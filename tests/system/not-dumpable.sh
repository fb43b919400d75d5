#!/bin/bash
# not-dumpable.sh - secmsgd and secmsg-client make themselves non-dumpable
# (doc/SECURITY.md §7.13 and §9 W5: prctl(PR_SET_DUMPABLE, 0) first thing
# in both main()s), so that neither a core dump nor a ptrace by the same
# user can read the server key, the user's key or the ratchet states.
#
# The kernel makes /proc/PID/* of a non-dumpable process owned by root.
# So both programs run here as nobody (setpriv), the daemon with a copy of
# the test PKI, the client logged in to it in batch mode, and the owner of
# their /proc/PID/status must be root; a plain `sleep` run the same way
# shows nobody (the check can tell the two apart).
#
# Needs root and setpriv. Uses $SECMSG_RELEASE (default build) and
# $SECMSG_PKI. One "PASS: what" or "FAIL: what" line per check; a few
# seconds; everything it starts is killed on every exit path.
set -u
cd "$(dirname "$0")/../.." || exit 1
REL=$(realpath "${SECMSG_RELEASE:-build}")
PKI=${SECMSG_PKI:-$REL/pki}
FAILURES=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }

if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null; then
	fail "not-dumpable: needs root and setpriv"
	exit 1
fi
for p in secmsgd secmsg-client; do
	[ -x "$REL/$p" ] || { fail "not-dumpable: $REL/$p is not built"; exit 1; }
done
if ! tests/lib/mkpki.sh "$PKI" >/dev/null; then
	fail "not-dumpable: cannot make the test PKI in $PKI"
	exit 1
fi
PKI=$(realpath "$PKI")
NOBODY=$(id -u nobody)

D=$(mktemp -d /tmp/secmsg-dump-XXXXXX)
PIDS=()
FD=
cleanup() {
	local p
	[ -n "$FD" ] && exec {FD}>&-
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for _ in $(seq 1 50); do
		p=
		for q in "${PIDS[@]}"; do kill -0 "$q" 2>/dev/null && p=1; done
		[ -z "$p" ] && break
		sleep 0.1
	done
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$D"
}
trap cleanup EXIT
# An array, not a function: "$AS_NOBODY ... &" must leave $! the PID of
# the program itself (a function would run in a subshell of root's).
AS_NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all)
# until_true SECONDS CMD...
until_true() {
	local end=$(($(date +%s) + $1))
	shift
	while ! "$@" 2>/dev/null; do
		[ "$(date +%s)" -ge $end ] && return 1
		sleep 0.1
	done
}
owner() { stat -c %u "/proc/$1/status" 2>/dev/null; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$D/users" "$D/keys" "$D/known"
install -m 0644 "$PKI/server.pem" "$PKI/ca.pem" "$D/"
install -m 0600 "$PKI/server.key" "$D/server.key"
install -m 0644 "$PKI/alice.pub" "$D/users/alice.pem"
install -m 0600 "$PKI/alice.key" "$D/keys/alice.key"
cat >"$D/secmsgd.conf" <<EOF
[server]
listen = 127.0.0.1:$PORT
workers = 1
certificate = $D/server.pem
private_key = $D/server.key
users_dir = $D/users
control_socket = $D/control
state_dir = $D/state
admin_group =
EOF
cat >"$D/client.conf" <<EOF
[client]
server = 127.0.0.1:$PORT
server_name = localhost
ca = $D/ca.pem
keys_dir = $D/keys
known_peers_dir = $D/known
EOF
chown -R nobody "$D"
chmod 0755 "$D"

# The control: the same setpriv, a program that does not change itself.
"${AS_NOBODY[@]}" sleep 30 &
PIDS+=($!)
ctl=$!
until_true 5 [ "$(owner $ctl)" = "$NOBODY" ]
if [ "$(owner $ctl)" = "$NOBODY" ]; then
	pass "a plain program run as nobody has /proc/PID owned by nobody (uid $NOBODY)"
else
	fail "a plain program run as nobody has /proc/PID owned by nobody (got '$(owner $ctl)')"
fi

"${AS_NOBODY[@]}" "$REL/secmsgd" -c "$D/secmsgd.conf" >"$D/secmsgd.log" 2>&1 &
PIDS+=($!)
dpid=$!
if ! until_true 10 grep -q 'secmsgd started' "$D/secmsgd.log"; then
	fail "secmsgd started as nobody"
	tail -5 "$D/secmsgd.log"
	exit 1
fi
if [ "$(owner $dpid)" = 0 ]; then
	pass "secmsgd (running as nobody) is not dumpable: /proc/$dpid owned by root"
else
	fail "secmsgd (running as nobody) is not dumpable: /proc/$dpid owned by uid '$(owner $dpid)'"
fi

mkfifo "$D/in"
"${AS_NOBODY[@]}" "$REL/secmsg-client" -b -c "$D/client.conf" alice <"$D/in" >"$D/alice.out" 2>"$D/alice.err" &
PIDS+=($!)
cpid=$!
exec {FD}>"$D/in"
if ! until_true 10 grep -q $'^ready\talice$' "$D/alice.out"; then
	fail "secmsg-client logged in as nobody"
	cat "$D/alice.err"
	exit 1
fi
if [ "$(owner $cpid)" = 0 ]; then
	pass "secmsg-client (running as nobody, logged in) is not dumpable: /proc/$cpid owned by root"
else
	fail "secmsg-client (running as nobody, logged in) is not dumpable: /proc/$cpid owned by uid '$(owner $cpid)'"
fi
[ "$FAILURES" -eq 0 ]
