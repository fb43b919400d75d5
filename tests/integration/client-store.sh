#!/bin/bash
# client-store.sh - messages to a peer offline (issue 17) with real
# secmsg-client --batch processes and a real secmsgd: alice writes to bob
# while he is away and sees `stored`; secmsgd is killed with SIGKILL and
# started again; bob gets the messages at his next login, in order, each
# once (also after a second login); his receipts wait for alice, who is
# away by then, and she sees `delivered` at hers. Over bob's quota alice
# sees `notsent ... quota`. A message secmsgd never took (it was stopped,
# then alice and secmsgd were killed) is sent again from alice's outbox at
# her next login and reaches bob once. A key change (add-user --force)
# and remove-user end the conversations and delete what was stored.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client-store.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 120 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh

count() { LC_ALL=C grep -cE -- "$2" "$(cl_out "$1")"; }

dstart "queue_max_messages = 4" alice bob ||
	{ fail "secmsgd starts"; exit 1; }
cv_away alice bob

# ---- stored while bob is away, across a SIGKILL of secmsgd ----
for i in 1 2 3; do cl_cmd alice "send bob while away $i"; done
for i in 1 2 3; do
	expect alice "^stored${TAB}bob${TAB}$i\$" "alice: message $i stored"
done
check "no message was refused" [ "$(count alice "^(notsent|error)")" -eq 0 ]
cl_cmd alice quit
expect_exit alice 0 "alice quits"
check "secmsgd killed (SIGKILL) and started again" daemon_restart KILL

cv_start bob2 bob
expect bob2 "^ready${TAB}bob\$" "bob logs in again"
for i in 1 2 3; do
	expect bob2 "^msg${TAB}alice${TAB}$i${TAB}while away $i\$" \
		"bob gets stored message $i"
done
check "in order" [ "$(LC_ALL=C grep -E "^msg${TAB}alice" "$(cl_out bob2)" |
	cut -f3 | tr '\n' ' ')" = "1 2 3 " ]
cl_cmd bob2 quit
expect_exit bob2 0 "bob quits (his receipts are stored for alice)"
cv_start bob3 bob
expect bob3 "^ready${TAB}bob\$" "bob logs in a third time"
cl_sync bob3
expect bob3 "^users${TAB}" "bob's third session answers"
check "... and is not shown the messages again" \
	[ "$(count bob3 "^msg${TAB}")" -eq 0 ]

# ---- the receipts, stored for alice ----
cv_start alice2 alice
expect alice2 "^ready${TAB}alice\$" "alice logs in again"
for i in 1 2 3; do
	expect alice2 "^delivered${TAB}bob${TAB}$i\$" "alice: delivered bob $i"
done

# ---- over bob's quota (4 messages) ----
cl_cmd bob3 quit
expect_exit bob3 0 "bob quits"
expect alice2 "^presence${TAB}bob${TAB}offline\$" "alice: bob offline again"
for i in 4 5 6 7 8; do cl_cmd alice2 "send bob over $i"; done
expect alice2 "^notsent${TAB}bob${TAB}8${TAB}quota\$" \
	"the fifth message over bob's quota: notsent quota"
check "the server's ERROR 7 names the message it refused (send bob 8)" \
	[ "$(count alice2 "^error${TAB}7${TAB}.*${TAB}send bob 8\$")" -eq 1 ]
check "the four before it stored" \
	[ "$(count alice2 "^stored${TAB}bob${TAB}[4-7]\$")" -eq 4 ]
cl_cmd alice2 quit
expect_exit alice2 0 "alice quits"
cv_start bob4 bob
expect_count bob4 "^msg${TAB}alice${TAB}[4-7]${TAB}over [4-7]\$" 4 \
	"bob gets the four stored within his quota"
cl_cmd bob4 quit
expect_exit bob4 0 "bob quits"
# His ACK deletes them in a commit of its own: wait for it, or the kill
# below may undo it (and his quota would refuse what comes next).
CTL="$SECMSG_BUILD/secmsgctl -c $DCONF"
queues() { $CTL list-queues --no-legend 2>&1; }
acked() {	# (bob's receipts wait for alice: her queue is not empty)
	for _ in $(seq 1 200); do
		[ -z "$(queues | awk '$1 == "bob"')" ] && return 0
		sleep 0.05
	done
	return 1
}
check "bob's acknowledgement is committed (none for bob in list-queues)" acked

# ---- a message the server never took, kept across a crash of both ----
# secmsgd is stopped, so alice's record waits in its socket; both are
# killed (SIGKILL): the record is gone from the wire, but alice's outbox
# (her state file) has it, and her next login sends it again.
cv_start alice3 alice
expect alice3 "^conversation${TAB}bob${TAB}[0-9]+${TAB}offline\$" \
	"alice logs in, bob offline"
kill -STOP "$DPID"
cl_cmd alice3 "send bob kept across crashes"
sleep 1
kill -KILL "${CL_PID[alice3]}"
check "secmsgd (stopped) killed and started again" daemon_restart KILL
check "alice's record did not reach secmsgd" \
	[ "$(count alice3 "^stored${TAB}")" -eq 0 ]
cv_start alice4 alice
expect alice4 "^stored${TAB}bob${TAB}9\$" \
	"her next login sends it again from the outbox: stored"
cl_cmd alice4 quit
expect_exit alice4 0 "alice quits"
check "stored once" [ "$(count alice4 "^stored${TAB}")" -eq 1 ]
cv_start bob5 bob
expect bob5 "^msg${TAB}alice${TAB}9${TAB}kept across crashes\$" \
	"bob gets the message kept across the crashes"
cl_sync bob5
expect bob5 "^users${TAB}" "bob's session answers"
check "... once" [ "$(count bob5 "^msg${TAB}")" -eq 1 ]
cl_cmd bob5 quit
expect_exit bob5 0 "bob quits"

# ---- a key change and remove-user delete what is stored ----
cv_start alice5 alice
expect alice5 "^conversation${TAB}bob${TAB}[0-9]+${TAB}offline\$" \
	"alice logs in again, bob offline"
cl_cmd alice5 "send bob before his key changes"
expect alice5 "^stored${TAB}bob${TAB}10\$" "stored for bob"
check "list-queues names bob" \
	eval '[ "$(queues | awk "{print \$1, \$2}")" = "bob 1" ]'
check "bob's key changes (add-user --force)" \
	eval '$CTL add-user --force bob "$SECMSG_PKI/dave.pub" >/dev/null'
expect alice5 "^ended${TAB}bob${TAB}removed\$" \
	"alice: the conversation with bob ended by the server"
check "what was stored for bob is deleted" eval '[ -z "$(queues | awk "\$1 == \"bob\"")" ]'
check "carol enrolled" \
	eval '$CTL add-user carol "$SECMSG_PKI/carol.pub" >/dev/null'
cv_start carol carol
expect carol "^ready${TAB}carol\$" "carol logs in"
cl_cmd alice5 "talk carol"
expect carol "^request${TAB}alice\$" "carol gets alice's request"
cl_cmd carol "accept alice"
expect alice5 "^conversation${TAB}carol${TAB}[0-9]+${TAB}online\$" \
	"alice and carol: a conversation"
cl_cmd carol quit
expect_exit carol 0 "carol quits"
expect alice5 "^presence${TAB}carol${TAB}offline\$" "alice: carol offline"
cl_cmd alice5 "send carol before she is removed"
expect alice5 "^stored${TAB}carol${TAB}[0-9]+\$" "stored for carol"
check "list-queues names carol" \
	eval '[ "$(queues | awk "{print \$1, \$2}")" = "carol 1" ]'
check "carol removed (remove-user)" eval '$CTL remove-user carol >/dev/null'
expect alice5 "^ended${TAB}carol${TAB}removed\$" \
	"alice: the conversation with carol ended by the server"
check "what was stored for carol is deleted" eval '[ -z "$(queues | awk "\$1 == \"carol\"")" ]'
cl_cmd alice5 quit
expect_exit alice5 0 "alice quits"
[ "$FAILURES" -eq 0 ]
