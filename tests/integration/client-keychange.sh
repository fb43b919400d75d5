#!/bin/bash
# client-keychange.sh - a user's key changes on the server (SIGHUP reload):
# the peer who knew the old key gets keychange, sends nothing to the user
# until trust, and then talks again with the new key. Twice: as the
# requester, then (after a restart, known peers read back from the file)
# as the accepting side. Then at version 2: the user whose key changed
# is told why (`ended PEER keychanged`), on either side.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client-keychange.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 110 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh
# Version 1's rules (chats end with a connection, END 2, a new key starts
# afresh): these clients offer version 1, as a client of before version 2
# would, against today's server. client-conv.sh checks version 2.
CL_PROTO=1

START=$(now_us)
FA=$(fpr_hex "$SECMSG_PKI/alice.pub")
FB=$(fpr_hex "$SECMSG_PKI/bob.pub")
FD=$(fpr_hex "$SECMSG_PKI/dave.pub")
KNOWN=

reloads() { grep -c "reloaded" "$DDIR/secmsgd.log"; }

# rekey_bob KEY: bob's enrolled key becomes KEY.pub (SIGHUP); waits for
# the reload; n0 is the count of reloads before it.
rekey_bob() {
	n0=$(reloads)
	cp "$SECMSG_PKI/$1.pub" "$DDIR/users/bob.pem"
	kill -HUP "$DPID"
	for _ in $(seq 1 200); do
		[ "$(reloads)" -gt "$n0" ] && break
		sleep 0.05
	done
}

dstart || { fail "secmsgd starts"; exit 1; }
KNOWN=$DDIR/known/alice/alice

# ---- a first chat: alice records bob's key ----
cl_start alice alice
cl_start bob bob
expect alice "^ready${TAB}alice\$" "alice logs in"
expect bob "^ready${TAB}bob\$" "bob logs in with his own key"
cl_cmd alice "talk bob"
expect bob "^request${TAB}alice\$" "bob gets request alice"
cl_cmd bob "accept alice"
expect alice "^chat${TAB}bob${TAB}$FB\$" "alice: chat bob with bob's first key"
cl_cmd alice "send bob before the change"
expect bob "^msg${TAB}alice${TAB}1${TAB}before the change\$" "bob gets alice's message"
expect alice "^delivered${TAB}bob${TAB}1\$" "alice: delivered bob 1"
cl_cmd alice "end bob"
expect bob "^ended${TAB}alice${TAB}left\$" "alice ends the chat"
check "alice's known peers file holds bob's first fingerprint" \
	grep -q "^bob .*$FB" "$KNOWN"

# ---- bob's key changes on the server ----
rekey_bob dave
check "secmsgd reloads on SIGHUP" [ "$(reloads)" -gt "$n0" ]
expect bob "^bye${TAB}removed${TAB}" "bob's old session ends: bye removed"
expect_exit bob 1 "bob's old client exits 1 after bye"

# The old key no longer logs in; the new one does.
cl_start oldbob bob
expect_exit oldbob 3 "bob's old key is refused after the reload: exit 3"
check "... with the message that the server refused our credentials" \
	grep -q "refused our credentials" "$(cl_err oldbob)"
mkdir -p "$CL_DIR/bobkeys"
cp "$SECMSG_PKI/dave.key" "$CL_DIR/bobkeys/bob.key"
cl_start bob2 bob -k "$CL_DIR/bobkeys"
expect bob2 "^ready${TAB}bob\$" "bob logs in again with his new key"

# ---- alice talks to bob: keychange, and nothing is sent ----
cl_cmd alice "talk bob"
expect bob2 "^request${TAB}alice\$" "bob gets alice's request"
cl_cmd bob2 "accept alice"
expect alice "^keychange${TAB}bob${TAB}$FB${TAB}$FD\$" \
	"alice: keychange bob OLD NEW with the old and the new fingerprint"
expect bob2 "^ended${TAB}alice${TAB}left\$" "alice stops the attempt: bob gets ended alice left"
# The gate's own refusal, for each command that would send to bob.
GATE="^error${TAB}0${TAB}bob's key has changed; check its fingerprint and use trust bob first${TAB}"
cl_cmd alice "send bob must not be sent"
cl_cmd alice "talk bob"
expect_count alice "$GATE" 2 "alice: send and talk to bob are refused by the key-change gate until trust"
check "each refusal names its command (send bob, then talk bob)" \
	[ "$(grep "$GATE" "$(cl_out alice)" | cut -f4 | tr '\n' ,)" = "send bob,talk bob," ]
# bob asks; alice cannot accept either.
cl_cmd bob2 "talk alice"
expect alice "^request${TAB}bob\$" "bob asks alice to talk: alice gets request bob"
cl_cmd alice "accept bob"
expect_count alice "$GATE" 3 "alice: accept bob is refused by the key-change gate until trust"
expect alice "${GATE}accept bob\$" "the third refusal names accept bob"
check "every error alice got was the gate's (3 of 3)" \
	[ "$(grep -c "^error" "$(cl_out alice)")" -eq 3 ]
# Declining is allowed: alice's REFUSE reaches bob after anything her
# refused commands could have sent him.
cl_cmd alice "refuse bob"
expect_none bob2 "^(chat|msg)${TAB}" "bob's client shows no chat and no message from alice before trust" \
	0 "^refused${TAB}alice${TAB}declined\$"
check "alice shows no chat with bob's new key before trust, and sent nothing more" \
	[ "$(grep -c "^chat${TAB}bob" "$(cl_out alice)")" -eq 1 -a \
	  "$(grep -c "^sent${TAB}bob" "$(cl_out alice)")" -eq 1 ]
check "the known peers file still holds bob's old fingerprint" \
	eval 'grep -q "^bob .*$FB" "$KNOWN" && ! grep -q "$FD" "$KNOWN"'

# ---- trust, then talk again ----
lines=$(wc -l <"$(cl_out alice)")
cl_cmd alice "trust bob"
cl_cmd alice "list"
expect alice "^users${TAB}bob\$" "alice's list after trust: users bob"
check "trust prints no event line (only the users reply follows)" \
	[ "$(wc -l <"$(cl_out alice)")" -eq $((lines + 1)) ]
check "the known peers file now holds bob's new fingerprint" \
	eval 'grep -q "^bob .*$FD" "$KNOWN" && ! grep -q "$FB" "$KNOWN"'
cl_cmd alice "talk bob"
expect_count bob2 "^request${TAB}alice\$" 2 "bob gets alice's new request"
cl_cmd bob2 "accept alice"
expect alice "^chat${TAB}bob${TAB}$FD\$" "after trust: alice: chat bob with bob's new fingerprint"
expect bob2 "^chat${TAB}alice${TAB}$FA\$" "bob: chat alice"
cl_cmd alice "send bob after the trust"
cl_cmd bob2 "send alice welcome back"
expect bob2 "^msg${TAB}alice${TAB}1${TAB}after the trust\$" "bob gets alice's message after trust"
expect alice "^msg${TAB}bob${TAB}1${TAB}welcome back\$" "alice gets bob's message after trust"
expect alice "^delivered${TAB}bob${TAB}1\$" "alice: delivered bob 1 (new chat)"
expect bob2 "^delivered${TAB}alice${TAB}1\$" "bob: delivered alice 1"
check "the refused text was never delivered to bob" \
	[ "$(grep -c "must not be sent" "$(cl_out bob2)")" -eq 0 ]

cl_cmd alice quit
expect_exit alice 0 "alice quits: exit 0"

# ---- the accepting side, after a restart: bob's key changes back ----
rekey_bob bob
expect bob2 "^bye${TAB}removed${TAB}" "second reload: bob's session with the new key ends"
expect_exit bob2 1 "bob's client exits 1 after bye"
cl_start alice3 alice
cl_start bob3 bob
expect alice3 "^ready${TAB}alice\$" "alice logs in again (known peers read from the file)"
expect bob3 "^ready${TAB}bob\$" "bob logs in with his first key again"
cl_cmd bob3 "talk alice"
expect alice3 "^request${TAB}bob\$" "alice gets bob's request"
cl_cmd alice3 "accept bob"
expect alice3 "^keychange${TAB}bob${TAB}$FD${TAB}$FB\$" \
	"accepting side: keychange bob OLD NEW when bob's confirmation brings the other key"
expect bob3 "^ended${TAB}alice${TAB}left\$" "bob gets ended alice left"
na=$(cl_lines alice3)
nb=$(cl_lines bob3)
cl_cmd bob3 "send alice are you there"
expect bob3 "^error${TAB}0${TAB}no chat with alice${TAB}send alice\$" "bob's send is refused: alice stopped the chat"
# bob's next request reaches alice after anything his send could have.
cl_cmd bob3 "talk alice"
expect_none alice3 "^(chat|msg)${TAB}bob" "alice shows no chat and no message from bob" \
	"$na" "^request${TAB}bob\$"
cl_cmd alice3 "trust bob"
cl_cmd alice3 "accept bob"
expect alice3 "^chat${TAB}bob${TAB}$FB\$" "after trust: chat bob with bob's first key again"
# Anything alice had sent bob before trust would have come before this chat.
expect_none bob3 "^(msg|delivered)${TAB}" "alice sent bob nothing: no msg and no receipt" \
	"$nb" "^chat${TAB}alice${TAB}"
cl_cmd bob3 "send alice hello again"
expect alice3 "^msg${TAB}bob${TAB}1${TAB}hello again\$" "alice gets bob's message"
expect bob3 "^delivered${TAB}alice${TAB}1\$" "bob: delivered alice 1 (after the second trust)"
cl_cmd alice3 quit
cl_cmd bob3 quit
expect_exit alice3 0 "alice quits: exit 0 (after restart)"
expect_exit bob3 0 "bob quits: exit 0"
# ---- version 2: the user whose key changed is told why ----
# alice's client stops with REFUSE 7 and bob's gets END 6: `ended alice
# keychanged`, whichever side asked, and no error line (issue 18).
rekey_bob dave
cv_start alice4 alice
cv_start bob4 bob -k "$CL_DIR/bobkeys"
expect alice4 "^ready${TAB}alice\$" "version 2: alice logs in"
expect bob4 "^ready${TAB}bob\$" "version 2: bob logs in with his new key again"
cl_cmd alice4 "talk bob"
expect bob4 "^request${TAB}alice\$" "version 2: bob gets alice's request"
cl_cmd bob4 "accept alice"
expect alice4 "^keychange${TAB}bob${TAB}$FB${TAB}$FD\$" "version 2: alice: keychange bob"
expect bob4 "^ended${TAB}alice${TAB}keychanged\$" \
	"version 2, alice asked: bob is told alice's client does not know his key"
# bob asks; alice's client afresh (the gate of a key change is per run).
cl_cmd alice4 quit
expect_exit alice4 0 "version 2: alice quits"
cv_start alice5 alice
expect alice5 "^ready${TAB}alice\$" "version 2: alice logs in again"
cl_cmd bob4 "talk alice"
expect alice5 "^request${TAB}bob\$" "version 2: alice gets bob's request"
cl_cmd alice5 "accept bob"
expect alice5 "^keychange${TAB}bob${TAB}$FB${TAB}$FD\$" \
	"version 2, bob asked: alice: keychange bob at his confirmation"
expect_count bob4 "^ended${TAB}alice${TAB}keychanged\$" 2 \
	"version 2, bob asked: bob is told too (the conversation he began is over)"
cl_sync bob4
expect bob4 "^users${TAB}" "bob's list answers after it"
check "bob got no error line (no 'no such chat or request')" \
	eval '! grep -q "^error" "$(cl_out bob4)"'
check "bob's client still knows alice's key and nothing else changed for it" \
	eval '! grep -q "^keychange" "$(cl_out bob4)"'
cl_cmd alice5 quit
cl_cmd bob4 quit
expect_exit alice5 0 "version 2: alice quits"
expect_exit bob4 0 "version 2: bob quits"
check "no client wrote a sanitizer report" \
	[ -z "$(grep -l -E 'Sanitizer|runtime error' "$CL_DIR"/*.err 2>/dev/null)" ]
daemon_stop && pass "secmsgd exits 0"
echo "client-keychange.sh took $(( ($(now_us) - START) / 1000 )) ms"
[ "$FAILURES" -eq 0 ]
