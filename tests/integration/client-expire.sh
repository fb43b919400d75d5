#!/bin/bash
# client-expire.sh - a stored message that expires unread is reported to
# its sender (issue 17), with real secmsg-client --batch processes and a
# real secmsgd whose retention is a few seconds (SECMSG_TEST_HOOKS
# retention=N): alice, online, sees `expired` for her message to bob at
# once; one that expires while she is away waits for her next login (on
# disk: secmsgd is restarted meanwhile); bob never gets either; the
# journal line names the expiry.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client-expire.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 120 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh

count() { LC_ALL=C grep -cE -- "$2" "$(cl_out "$1")"; }

export SECMSG_TEST_HOOKS=retention=3
dstart "" alice bob || { fail "secmsgd starts"; exit 1; }
cv_away alice bob

# ---- alice online: told at once ----
t0=$(date +%s)
cl_cmd alice "send bob never read"
expect alice "^stored${TAB}bob${TAB}1\$" "alice: message 1 stored"
expect alice "^expired${TAB}bob${TAB}1${TAB}[0-9]+\$" \
	"alice: message 1 expired unread (told at once)" 10
at=$(cl_line alice "^expired${TAB}" | cut -f4)
check "... with the time it was stored" [ "$at" -ge "$t0" ] &&
	[ "$at" -le "$(date +%s)" ]

# ---- alice away: held for her next login, across a restart ----
cl_cmd alice "send bob also never read"
expect alice "^stored${TAB}bob${TAB}2\$" "alice: message 2 stored"
cl_cmd alice quit
expect_exit alice 0 "alice quits"
sleep 5
check "secmsgd restarted" daemon_restart TERM
cv_start alice2 alice
expect alice2 "^ready${TAB}alice\$" "alice logs in again"
expect alice2 "^expired${TAB}bob${TAB}0${TAB}[0-9]+\$" \
	"alice: a message to bob expired while she was away (id unknown to this run)"
cl_sync alice2
expect alice2 "^users${TAB}" "alice's session answers"
check "... once" [ "$(count alice2 "^expired${TAB}")" -eq 1 ]
cl_cmd alice2 quit
expect_exit alice2 0 "alice quits"
cv_start alice3 alice
expect alice3 "^ready${TAB}alice\$" "alice logs in a third time"
cl_sync alice3
expect alice3 "^users${TAB}" "alice's third session answers"
check "... and is not told again" [ "$(count alice3 "^expired${TAB}")" -eq 0 ]

cv_start bob2 bob
expect bob2 "^ready${TAB}bob\$" "bob logs in again"
cl_sync bob2
expect bob2 "^users${TAB}" "bob's session answers"
check "bob never gets the expired messages" [ "$(count bob2 "^msg${TAB}")" -eq 0 ]
check "the journal line names the expiry" \
	grep -q "stored messages expired unread" "$DDIR/secmsgd.log"
cl_cmd bob2 quit
cl_cmd alice3 quit
expect_exit bob2 0 "bob quits"
expect_exit alice3 0 "alice quits"
[ "$FAILURES" -eq 0 ]
