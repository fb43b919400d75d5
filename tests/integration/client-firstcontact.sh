#!/bin/bash
# client-firstcontact.sh - first contact with a user who is offline (issue
# 17, doc/first-contact.md) with real secmsg-client --batch processes and
# a real secmsgd keeping requests (request_retention): alice asks bob, who
# has never logged in, sees `waiting bob` and quits; secmsgd is restarted;
# bob logs in, sees the request with its time, accepts (`waiting alice
# accepted`) and quits; alice logs in, gets the acceptance, the exchange
# completes from what her client kept, she writes; bob logs in and reads
# it. Fingerprints are checked as in the live flow. Then, with a retention
# of two seconds, requests that expire reach both sides as the REFUSE and
# END reasons of today: live, and at the next login.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client-firstcontact.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 150 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh

count() { LC_ALL=C grep -cE -- "$2" "$(cl_out "$1")"; }
FA=$(fpr_hex "$SECMSG_PKI/alice.pub")
FB=$(fpr_hex "$SECMSG_PKI/bob.pub")

dstart "request_retention = 7d" alice bob ||
	{ fail "secmsgd starts"; exit 1; }

# ---- alice asks bob, who is offline, and quits ----
t0=$(date +%s)
cv_start alice alice
expect alice "^ready${TAB}alice\$" "alice logs in"
cl_cmd alice "talk bob"
expect alice "^waiting${TAB}bob\$" "alice: her request waits for bob"
check "... and is not refused" [ "$(count alice "^refused")" -eq 0 ]
cl_cmd alice quit
expect_exit alice 0 "alice quits"
check "secmsgd restarted" daemon_restart TERM

# ---- bob logs in, sees it with its time, accepts, quits ----
cv_start bob bob
expect bob "^request${TAB}alice${TAB}[0-9]+\$" "bob: alice's request, kept"
at=$(cl_line bob "^request${TAB}" | cut -f3)
check "... with the time alice asked" [ "$at" -ge "$t0" ] &&
	[ "$at" -le "$(date +%s)" ]
expect bob "^ready${TAB}bob\$" "bob logs in"
cl_cmd bob "accept alice"
expect bob "^waiting${TAB}alice${TAB}accepted\$" \
	"bob: his acceptance waits for alice"
cl_sync bob
expect bob "^users${TAB}" "bob's session answers"
check "... shown once" [ "$(count bob "^request${TAB}")" -eq 1 ]
cl_cmd bob quit
expect_exit bob 0 "bob quits"

# ---- alice logs in: the exchange completes; she writes ----
cv_start alice2 alice
expect alice2 "^chat${TAB}bob${TAB}$FB\$" "alice: chat with bob, bob's key"
expect alice2 "^conversation${TAB}bob${TAB}[0-9]+${TAB}offline\$" \
	"alice: a conversation with bob (offline)"
expect alice2 "^ready${TAB}alice\$" "alice logs in again"
cl_cmd alice2 "send bob hello from first contact"
expect alice2 "^stored${TAB}bob${TAB}1\$" "alice: message 1 stored for bob"
check "known_peers holds bob's key" grep -q "$FB" "$DDIR/known/alice/"*
cl_cmd alice2 quit
expect_exit alice2 0 "alice quits"

# ---- bob logs in and reads it ----
cv_start bob2 bob
expect bob2 "^chat${TAB}alice${TAB}$FA\$" "bob: chat with alice, alice's key"
expect bob2 "^msg${TAB}alice${TAB}1${TAB}hello from first contact\$" \
	"bob reads alice's message"
check "... and no request again" [ "$(count bob2 "^request${TAB}")" -eq 0 ]
cl_cmd bob2 quit
expect_exit bob2 0 "bob quits"
cv_start alice3 alice
expect alice3 "^delivered${TAB}bob${TAB}1\$" "alice: delivered bob 1"
cl_cmd alice3 quit
expect_exit alice3 0 "alice quits"
daemon_term 2>/dev/null

# ---- expiry: two seconds ----
dstart "request_retention = 2s" alice bob ||
	{ fail "secmsgd starts (retention 2 s)"; exit 1; }
cv_start ea alice
expect ea "^ready${TAB}alice\$" "alice logs in"
cl_cmd ea "talk bob"
expect ea "^waiting${TAB}bob\$" "alice: her request waits for bob"
expect ea "^refused${TAB}bob${TAB}expired\$" \
	"alice, online: refused bob expired" 10
cv_start eb bob
expect eb "^ready${TAB}bob\$" "bob logs in"
expect eb "^ended${TAB}alice${TAB}withdrawn\$" \
	"bob: alice's expired request ended (withdrawn)"
check "... never shown as a request" [ "$(count eb "^request${TAB}")" -eq 0 ]

# accepted by bob, then expired while both are away
cl_cmd ea "talk bob"
expect eb "^request${TAB}alice" "bob: alice asks again"
cl_cmd ea quit
expect_exit ea 0 "alice quits"
cl_cmd eb "accept alice"
expect eb "^waiting${TAB}alice${TAB}accepted\$" \
	"bob: his acceptance waits for alice"
cl_cmd eb quit
expect_exit eb 0 "bob quits"
sleep 4
cv_start ea2 alice
expect ea2 "^refused${TAB}bob${TAB}expired\$" \
	"alice, at her login: refused bob expired"
expect ea2 "^ready${TAB}alice\$" "alice logs in"
check "... no chat" [ "$(count ea2 "^chat${TAB}")" -eq 0 ]
cv_start eb2 bob
expect eb2 "^ready${TAB}bob\$" "bob logs in"
# Bob may still have been online when it expired (two seconds): told
# live then, else at this login; once either way (eb's first `ended` was
# for the first request).
check "bob: alice's accepted request ended (withdrawn), once" \
	[ $(($(count eb "^ended${TAB}alice${TAB}withdrawn\$") +
	     $(count eb2 "^ended${TAB}alice${TAB}withdrawn\$"))) -eq 2 ]
# What each kept is gone: a new request starts from nothing.
cl_cmd eb2 "talk alice"
expect ea2 "^request${TAB}bob\$" "alice gets bob's new request (live)"
cl_cmd ea2 "accept bob"
expect eb2 "^chat${TAB}alice${TAB}$FA\$" "bob: chat with alice"
expect ea2 "^chat${TAB}bob${TAB}$FB\$" "alice: chat with bob"
cl_cmd ea2 quit
cl_cmd eb2 quit
expect_exit ea2 0 "alice quits"
expect_exit eb2 0 "bob quits"
[ "$FAILURES" -eq 0 ]
