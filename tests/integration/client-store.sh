#!/bin/bash
# client-store.sh - messages to a peer offline (issue 17) with real
# secmsg-client --batch processes and a real secmsgd: alice writes to bob
# while he is away and sees `stored`; secmsgd is killed with SIGKILL and
# started again; bob gets the messages at his next login, in order, each
# once (also after a second login); his receipts wait for alice, who is
# away by then, and she sees `delivered` at hers. Over bob's quota alice
# sees `notsent ... quota`.
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
check "secmsgd killed (SIGKILL) and started again" dkill

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
check "the four before it stored" \
	[ "$(count alice2 "^stored${TAB}bob${TAB}[4-7]\$")" -eq 4 ]
cl_cmd alice2 quit
expect_exit alice2 0 "alice quits"
[ "$FAILURES" -eq 0 ]
