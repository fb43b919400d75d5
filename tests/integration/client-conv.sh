#!/bin/bash
# client-conv.sh - conversations (protocol version 2) with real secmsg-client
# --batch processes and a real secmsgd: a conversation that survives (a)
# either client killed with SIGKILL and started again, (b) secmsgd
# restarted, (c) the connection cut mid-record by a proxy; messages before
# and after arrive once, in order, with their receipts; presence; a message
# to a peer offline stored by the server (stored, then delivered at the
# peer's next login, issue 17); `end` for good seen on the other side,
# also when that side was offline (at its next login); a second client of a
# user on the same machine refused (exit 4). Skipped when secmsgd does not
# speak version 2.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client-conv.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 150 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh

W1=cerulean-pangolin
W2=saffron-narwhal
W3=viridian-okapi
W4=magenta-tapir
W5=ochre-quetzal
W6=indigo-caracal
W7=carmine-dugong

# ---- secmsgd with its state in its own directory, started again as it
# was (same port, same database) ----
dstart_conv() {
	if [ -z "${DDIR:-}" ]; then
		dstart "" alice bob carol
	else
		daemon_restart
	fi
}

# ---- a proxy that cuts a connection in the middle of a record: once
# $CUT exists, the next bytes from the server are passed on by half, and
# both sides of that connection are closed ----
CUT=$CL_DIR/cut
cutproxy_start() {
	local pf=$CL_DIR/cutproxy.port
	python3 - "$pf" 127.0.0.1 "$PORT" "$CUT" 2>>"$CL_DIR/proxy.err" <<'PY' &
import os, socket, sys, threading

portfile, host, port, cut = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def close(*socks):
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

def pump(src, dst, from_server):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if from_server and os.path.exists(cut):
                os.unlink(cut)
                dst.sendall(data[:max(1, len(data) // 2)])
                break
            dst.sendall(data)
    except OSError:
        pass
    close(src, dst)

def serve(client):
    try:
        server = socket.create_connection((host, port), timeout=10)
        server.settimeout(None)
    except OSError:
        close(client)
        return
    for a, b, s in ((client, server, False), (server, client, True)):
        threading.Thread(target=pump, args=(a, b, s), daemon=True).start()

lsock = socket.socket()
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", 0))
lsock.listen(16)
with open(portfile + ".tmp", "w") as f:
    f.write(str(lsock.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)
while True:
    c, _ = lsock.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
	bg_track $!
	for _ in $(seq 1 200); do
		[ -s "$pf" ] && break
		sleep 0.05
	done
	CPORT=$(cat "$pf" 2>/dev/null)
	[ -n "$CPORT" ]
}

# count NAME REGEX: how many lines of NAME match.
count() { LC_ALL=C grep -cE -- "$2" "$(cl_out "$1")"; }

# online NAME PEER: NAME's latest word on PEER's presence (its login's
# conversation line or a later presence line) says online.
online() {
	LC_ALL=C grep -E "^(conversation${TAB}$2${TAB}[0-9]+|presence${TAB}$2)${TAB}" \
		"$(cl_out "$1")" | tail -1 | grep -q "${TAB}online\$"
}

# wait_online NAME PEER [SECONDS]: until NAME sees PEER online.
wait_online() {
	local end=$(( $(now_us) + ${3:-$CL_WAIT} * 1000000 ))
	until online "$1" "$2"; do
		[ "$(now_us)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

dstart_conv || { fail "secmsgd starts"; exit 1; }
cv_start probe carol
wait_for probe "^ready${TAB}carol\$" 5 >/dev/null
if ! LC_ALL=C grep -q "^ready${TAB}carol\$" "$(cl_out probe)"; then
	if grep -q "protocol version" "$(cl_err probe)"; then
		echo "SKIP: secmsgd does not speak protocol version 2"
		exit 0
	fi
	fail "a client of version 2 logs in"
	cl_show probe
	exit 1
fi
cl_cmd probe quit
expect_exit probe 0 "a client of version 2 logs in and quits"
cutproxy_start || { fail "the cutting proxy starts"; exit 1; }
VIA=(-s "127.0.0.1:$CPORT" -n localhost)

FA=$(fpr_hex "$SECMSG_PKI/alice.pub")
FB=$(fpr_hex "$SECMSG_PKI/bob.pub")

# ---- a conversation begins ----
cv_start alice alice "${VIA[@]}"
cv_start bob bob
expect alice "^ready${TAB}alice\$" "alice logs in (version 2, through the proxy)"
expect bob "^ready${TAB}bob\$" "bob logs in (version 2)"
cl_cmd alice "talk bob"
expect bob "^request${TAB}alice\$" "bob gets alice's request"
cl_cmd bob "accept alice"
expect alice "^chat${TAB}bob${TAB}$FB\$" "alice: chat bob"
expect bob "^chat${TAB}alice${TAB}$FA\$" "bob: chat alice"
expect alice "^conversation${TAB}bob${TAB}[0-9]+${TAB}online\$" \
	"alice: it is a conversation, bob online"
expect bob "^conversation${TAB}alice${TAB}[0-9]+${TAB}online\$" \
	"bob: it is a conversation, alice online"
cl_cmd alice "send bob $W1 one"
cl_cmd bob "send alice $W2 two"
expect bob "^msg${TAB}alice${TAB}1${TAB}$W1 one\$" "bob gets alice's 1"
expect alice "^msg${TAB}bob${TAB}1${TAB}$W2 two\$" "alice gets bob's 1"
expect alice "^delivered${TAB}bob${TAB}1\$" "alice: delivered bob 1"
expect bob "^delivered${TAB}alice${TAB}1\$" "bob: delivered alice 1"

# ---- (a) bob killed with SIGKILL, started again ----
kill -KILL "${CL_PID[bob]}"
cl_wait bob
expect alice "^presence${TAB}bob${TAB}offline\$" "bob killed: alice gets presence bob offline"
cl_cmd alice "send bob while you were away"
expect alice "^stored${TAB}bob${TAB}2\$" "a message to bob offline: stored by the server"
cv_start bob2 bob
expect bob2 "^ready${TAB}bob\$" "bob starts again"
expect bob2 "^msg${TAB}alice${TAB}2${TAB}while you were away\$" \
	"bob gets the stored message at his login"
expect alice "^delivered${TAB}bob${TAB}2\$" "alice: delivered bob 2 (the stored one)"
expect bob2 "^conversation${TAB}alice${TAB}[0-9]+${TAB}online\$" \
	"bob's conversation with alice is still there (from his state file)"
expect alice "^presence${TAB}bob${TAB}online\$" "alice: presence bob online"
cl_cmd alice "send bob $W3 after the kill"
cl_cmd bob2 "send alice $W4 from the new bob"
expect bob2 "^msg${TAB}alice${TAB}3${TAB}$W3 after the kill\$" \
	"bob gets alice's 3: the ratchet carried on, no new request"
expect alice "^msg${TAB}bob${TAB}2${TAB}$W4 from the new bob\$" \
	"alice gets bob's 2: the TEXT ids carried on too"
expect alice "^delivered${TAB}bob${TAB}3\$" "alice: delivered bob 3"
expect bob2 "^delivered${TAB}alice${TAB}2\$" "bob: delivered alice 2"

# ... and alice killed in turn.
kill -KILL "${CL_PID[alice]}"
cl_wait alice
expect bob2 "^presence${TAB}alice${TAB}offline\$" "alice killed: bob gets presence alice offline"
cv_start alice2 alice "${VIA[@]}"
expect alice2 "^conversation${TAB}bob${TAB}[0-9]+${TAB}online\$" \
	"alice starts again: her conversation with bob is there"
cl_cmd alice2 "send bob $W5 three"
expect bob2 "^msg${TAB}alice${TAB}4${TAB}$W5 three\$" "bob gets alice's 4"
expect alice2 "^delivered${TAB}bob${TAB}4\$" "alice: delivered bob 4"

# ---- a second client of alice on this machine ----
cv_start alice3 alice "${VIA[@]}"
expect_exit alice3 4 "a second client of alice on this machine exits 4"
check "... and says which lock another client holds" \
	grep -q "$DDIR/cstate/alice/alice.lock" "$(cl_err alice3)"

# ---- (b) secmsgd restarted ----
daemon_term
check "secmsgd stops (SIGTERM): exit 0" [ $? -eq 0 ]
expect alice2 "^bye${TAB}shutdown${TAB}" "alice gets bye shutdown"
expect alice2 "^reconnecting${TAB}[0-9]+\$" "alice: reconnecting"
expect bob2 "^reconnecting${TAB}[0-9]+\$" "bob: reconnecting"
dstart_conv || { fail "secmsgd starts again"; exit 1; }
expect_count alice2 "^ready${TAB}alice\$" 2 "alice logs in again by herself"
expect_count bob2 "^ready${TAB}bob\$" 2 "bob logs in again by himself"
expect_count alice2 "^conversation${TAB}bob${TAB}[0-9]+${TAB}" 2 \
	"the server kept the conversation (its database)"
check "bob sees alice online again" wait_online bob2 alice
cl_cmd bob2 "send alice $W6 after the restart"
expect alice2 "^msg${TAB}bob${TAB}3${TAB}$W6 after the restart\$" "alice gets bob's 3"
expect bob2 "^delivered${TAB}alice${TAB}3\$" "bob: delivered alice 3"

# ---- (c) alice's connection cut in the middle of a record ----
off=$(count bob2 "^presence${TAB}alice${TAB}offline\$")
: >"$CUT"
cl_cmd bob2 "send alice lost in the cut"
expect_count alice2 "^reconnecting${TAB}[0-9]+\$" 2 "the cut: alice reconnects"
expect_count alice2 "^ready${TAB}alice\$" 3 "alice logs in again after the cut"
check "the proxy did cut (its trigger is gone)" [ ! -e "$CUT" ]
expect_count bob2 "^presence${TAB}alice${TAB}offline\$" $((off + 1)) \
	"bob: alice went offline at the cut"
check "bob: alice is back online" wait_online bob2 alice
cl_cmd bob2 "send alice $W7 after the cut"
expect alice2 "^msg${TAB}bob${TAB}5${TAB}$W7 after the cut\$" \
	"alice gets bob's 5 (4 was cut: its key is kept, the chat goes on)"
expect bob2 "^delivered${TAB}alice${TAB}5\$" "bob: delivered alice 5"
check "bob's 4 never showed as delivered" [ "$(count bob2 "^delivered${TAB}alice${TAB}4\$")" -eq 0 ]
check "alice sees bob online" wait_online alice2 bob
cl_cmd alice2 "send bob four"
expect bob2 "^msg${TAB}alice${TAB}5${TAB}four\$" "bob gets alice's 5 after the cut"
check "bob got alice's 1 once (before his restart)" \
	[ "$(count bob "^msg${TAB}alice${TAB}1${TAB}")" -eq 1 ]
for i in 2 3 4 5; do
	check "bob got alice's $i once" [ "$(count bob2 "^msg${TAB}alice${TAB}$i${TAB}")" -eq 1 ]
done
for i in 1 2; do
	check "alice got bob's $i once (before her restart)" \
		[ "$(count alice "^msg${TAB}bob${TAB}$i${TAB}")" -eq 1 ]
done
for i in 3 5; do
	check "alice got bob's $i once" [ "$(count alice2 "^msg${TAB}bob${TAB}$i${TAB}")" -eq 1 ]
done
check "alice never got bob's 4 (cut)" [ "$(count alice2 "^msg${TAB}bob${TAB}4${TAB}")" -eq 0 ]
check "bob's messages reached alice in order (3 before 5)" \
	[ "$(grep -n "^msg${TAB}bob${TAB}3${TAB}" "$(cl_out alice2)" | cut -d: -f1)" -lt \
	  "$(grep -n "^msg${TAB}bob${TAB}5${TAB}" "$(cl_out alice2)" | cut -d: -f1)" ]

# ---- the end for good: online ----
cl_cmd alice2 "end bob"
expect bob2 "^ended${TAB}alice${TAB}left\$" "alice ends it: bob gets ended alice left (her kind END checked)"
cl_cmd bob2 "send alice too late"
expect bob2 "^error${TAB}0${TAB}no chat with alice${TAB}send alice\$" "bob can no longer write to alice (error names send alice)"
n=$(cl_lines alice2)
cl_cmd alice2 chats
cl_sync alice2
expect_none alice2 "^conversation${TAB}bob" "alice lists no conversation with bob" \
	"$n" "^users${TAB}"

# ---- the end for good: the other side offline ----
n=$(count bob2 "^conversation${TAB}alice${TAB}")
cl_cmd bob2 "talk alice"
expect_count alice2 "^request${TAB}bob\$" 1 "bob asks alice again"
cl_cmd alice2 "accept bob"
expect_count bob2 "^conversation${TAB}alice${TAB}" $((n + 1)) "a new conversation"
check "... with alice online" online bob2 alice
off=$(count alice2 "^presence${TAB}bob${TAB}offline\$")
cl_cmd bob2 quit
expect_exit bob2 0 "bob quits: exit 0"
expect_count alice2 "^presence${TAB}bob${TAB}offline\$" $((off + 1)) \
	"alice: presence bob offline"
cl_cmd alice2 "end bob"
cv_start bob3 bob
expect bob3 "^ready${TAB}bob\$" "bob logs in again"
expect bob3 "^ended${TAB}alice${TAB}left\$" \
	"bob learns at login that alice ended it while he was away"
cl_cmd bob3 chats
cl_sync bob3
expect_none bob3 "^conversation${TAB}alice" "bob lists no conversation with alice" \
	0 "^users${TAB}"

cl_cmd alice2 quit
cl_cmd bob3 quit
expect_exit alice2 0 "alice quits: exit 0"
expect_exit bob3 0 "bob quits: exit 0"
daemon_term
check "secmsgd exits 0" [ $? -eq 0 ]
[ "$FAILURES" -eq 0 ]
