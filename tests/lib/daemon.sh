# daemon.sh - start and stop a real secmsgd for shell tests (source it).
#
#   . tests/lib/daemon.sh
#   daemon_start [EXTRA_LIMITS_LINES]   # sets PORT, DDIR, DCONF, DCTL, DPID
#   client_conf USER                    # prints the path of a client.conf for USER
#   daemon_stop                         # SIGTERM, wait, check exit 0
#   daemon_term                         # SIGTERM, wait: its status; the
#                                       # directory stays (daemon_restart)
#   pass "what" / fail "what"           # the PASS:/FAIL: lines tests/run.sh counts
#
# Uses $SECMSG_BUILD (binaries) and $SECMSG_PKI (fixtures from mkpki.sh).

: "${SECMSG_BUILD:=build}"
: "${SECMSG_PKI:=$SECMSG_BUILD/pki}"
SECMSG_BUILD=$(realpath "$SECMSG_BUILD")
SECMSG_PKI=$(realpath "$SECMSG_PKI")
FAILURES=0

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
check() { # check "what" command...
	local what=$1; shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# daemon_start [extra lines for [limits]] [users...]
daemon_start() {
	local extra=${1:-} u
	shift || true
	local users=${*:-alice bob carol dave erin}
	DDIR=$(mktemp -d /tmp/secmsg-sh-XXXXXX)
	PORT=$(free_port)
	DCONF=$DDIR/secmsgd.conf
	DCTL=$DDIR/control
	mkdir -p "$DDIR/users"
	for u in $users; do cp "$SECMSG_PKI/$u.pub" "$DDIR/users/$u.pem"; done
	cat >"$DCONF" <<CONF
[server]
listen = 127.0.0.1:$PORT
workers = 2
certificate = $SECMSG_PKI/server.pem
private_key = $SECMSG_PKI/server.key
users_dir = $DDIR/users
control_socket = $DCTL
state_dir = $DDIR/state
admin_group =
log_level = debug
[limits]
$extra
CONF
	: >"$DDIR/secmsgd.log"
	daemon_restart
}

# daemon_restart [SIGNAL]: end secmsgd with SIGNAL first if given (KILL: a
# crash, TERM: a stop); start it again on $DDIR and $DCONF (its log goes
# on) and wait (10 s at most) until it listens.
daemon_restart() {
	if [ -n "${1:-}" ]; then
		kill -"$1" "$DPID"
		wait "$DPID" 2>/dev/null
	fi
	"$SECMSG_BUILD/secmsgd" -c "$DCONF" >>"$DDIR/secmsgd.log" 2>&1 &
	DPID=$!
	local i
	for i in $(seq 1 500); do
		if [ -S "$DCTL" ] && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
			return 0
		fi
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.02
	done
	echo "secmsgd did not start; log:" >&2
	tail -20 "$DDIR/secmsgd.log" >&2
	return 1
}

# client_conf USER: a client.conf pointing at the test daemon; keys in $DDIR/keys.
# With CL_PROTO set, the client offers that protocol version (a script of
# version 1's rules sets 1: a version 1 client against today's server).
client_conf() {
	local u=$1
	mkdir -p "$DDIR/keys" "$DDIR/known/$u"
	[ -f "$DDIR/keys/$u.key" ] || cp "$SECMSG_PKI/$u.key" "$DDIR/keys/$u.key"
	cat >"$DDIR/$u.conf" <<CONF
[client]
server = 127.0.0.1:$PORT
server_name = localhost
ca = $SECMSG_PKI/ca.pem
keys_dir = $DDIR/keys
known_peers_dir = $DDIR/known/$u
${CL_PROTO:+protocol_version = $CL_PROTO}
CONF
	echo "$DDIR/$u.conf"
}

daemon_term() {
	kill -TERM "$DPID" 2>/dev/null
	wait "$DPID"
	local st=$?
	DPID=
	return $st
}

daemon_stop() {
	local i st
	[ -n "${DPID:-}" ] || return 0
	kill -TERM "$DPID" 2>/dev/null
	for i in $(seq 1 500); do
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.02
	done
	if kill -0 "$DPID" 2>/dev/null; then
		kill -KILL "$DPID"
		fail "secmsgd stopped within 10 s (log in $DDIR)"
	fi
	wait "$DPID"; st=$?
	DPID=
	if [ "$st" -ne 0 ]; then
		fail "secmsgd exited $st (log in $DDIR/secmsgd.log)"
		tail -20 "$DDIR/secmsgd.log"
		return 1
	fi
	[ -n "${SECMSG_KEEP:-}" ] || rm -rf "$DDIR"
}

# Always stop the daemon, also when the test fails or is interrupted.
trap 'daemon_stop >/dev/null 2>&1' EXIT
