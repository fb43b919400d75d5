#!/bin/bash
# client-keychange-tmux.sh - a peer's key changes, seen in the interactive
# client's windows (issue 18): the warning in red in the peer's window,
# every command that would reach the peer held back with the advice in
# words (/fingerprint, /trust, with the slash), /fingerprint showing the
# recorded and the new key side by side, and a chat again after /trust;
# the safety number, /verify and the verified mark in the status bar,
# lost with the key. Version 1's rules, as client-keychange.sh (which
# checks batch mode); then, at version 2, the other side: bob, whose key
# changed, told in words in his own window why alice's client stopped.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client-keychange-tmux.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 110 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh
. tests/lib/tmux.sh
CL_PROTO=1

START=$(now_us)
tmux_init
ESC=$(printf '\033')
FA=$(fpr_hex "$SECMSG_PKI/alice.pub")
FB=$(fpr_hex "$SECMSG_PKI/bob.pub")
FD=$(fpr_hex "$SECMSG_PKI/dave.pub")
# The first two groups of a fingerprint as the client shows it.
g2() { echo "${1:0:4} ${1:4:4}"; }
# The safety number of two fingerprints, computed here independently of
# the client (secmsg-client(1), /fingerprint).
safety() {
	python3 - "$1" "$2" <<'PY'
import hashlib, sys
lo, hi = sorted(sys.argv[1:3])
d = b"".join(hashlib.sha256(b"secmsg safety number %d" % i + lo.encode() +
                            hi.encode()).digest() for i in (1, 2))
print(" ".join("%05d" % (int.from_bytes(d[5*i:5*i+5], "big") % 100000)
               for i in range(12)))
PY
}

dstart || { fail "secmsgd starts"; exit 1; }
conf=$(client_conf alice)
tmux_run 160x40 "$CLIENT" -c "$conf" alice
pane_expect "Logged in as alice" "alice logs in (interactive)"
cl_start bob bob
expect bob "^ready${TAB}bob\$" "bob (batch) logs in"
keys "/talk bob"
enter
expect bob "^request${TAB}alice\$" "bob gets alice's request"
cl_cmd bob "accept alice"
pane_expect "Chat with bob established" "alice: chat with bob, his first key recorded"

# ---- the safety number, /verify ----
keys "/fingerprint bob"
enter
SN=$(safety "$FA" "$FB")
pane_expect "Safety number with bob: $SN" "/fingerprint bob shows the safety number both sides compute ($SN)"
keys "/verify bob"
enter
pane_expect "bob is verified \(with this key\)" "/verify bob marks bob verified"
pane_expect "\[2:bob verified\]" "the status bar says bob's window is verified"
check "the mark is kept with bob's key" grep -q "^bob $FB\$" "$DDIR/known/alice/alice.verified"

# ---- bob's key changes on the server ----
cp "$SECMSG_PKI/dave.pub" "$DDIR/users/bob.pem"
kill -HUP "$DPID"
expect bob "^bye${TAB}removed${TAB}" "bob's old session ends"
expect_exit bob 1 "bob's old client exits"
mkdir -p "$CL_DIR/bobkeys"
cp "$SECMSG_PKI/dave.key" "$CL_DIR/bobkeys/bob.key"
cl_start bob2 bob -k "$CL_DIR/bobkeys"
expect bob2 "^ready${TAB}bob\$" "bob logs in with his new key"

keys "/talk bob"
enter
expect bob2 "^request${TAB}alice\$" "bob gets alice's request"
cl_cmd bob2 "accept alice"
pane_expect "WARNING: bob's key has CHANGED" "alice's window for bob shows the warning"
pane_gone "bob verified" 2 && pass "a new key is not verified: the status bar says so no more" ||
	fail "a new key is not verified: the status bar says so no more"
keys "/verify bob"
enter
pane_expect "bob's key has changed: /fingerprint bob first" "/verify bob is refused while the new key waits"
check "the warning is red" \
	eval 'pane_e | grep -q -E "${ESC}\\[31m(${ESC}\\[[0-9;]*m)*[0-9:]{5} *WARNING|WARNING.*" &&
	      pane_e | grep "WARNING: bob" | grep -q "${ESC}\\[31m"'
pane_expect "recorded: $(g2 "$FB")" "the warning shows the recorded key"
pane_expect "now: +$(g2 "$FD")" "... and the new one"

# ---- every way to reach bob is held back, with the advice in words ----
ADVICE="bob's key has changed: compare the new key \\(/fingerprint bob\\) with bob in person or by phone, then /trust bob"
keys "/talk bob"
enter
pane_expect "$ADVICE" "/talk bob: held back, the advice names /fingerprint and /trust"
keys "/msg bob must not be sent"
enter
keys "must not be sent either"
enter
pane_expect "no current chat" "plain text: the chat attempt was stopped, so no chat is current"
cl_cmd bob2 "talk alice"
pane_expect "bob asks to talk" "bob asks alice to talk"
keys "/accept bob"
enter
check "no line says 'use trust' without its slash" eval '! pane | grep -q "use trust bob"'
check "the advice was given for each (talk, msg, accept)" \
	[ "$(pane | grep -c "compare the new key")" -ge 3 ]
keys "/refuse bob"
enter
expect bob2 "^refused${TAB}alice${TAB}declined\$" "declining is allowed"
check "bob got no message" eval '! grep -q "^msg" "$(cl_out bob2)"'

# ---- /fingerprint bob: both keys side by side ----
keys "/fingerprint bob"
enter
pane_expect "bob's key has CHANGED:" "/fingerprint bob says the key changed"
pane_expect "^ *recorded: $(g2 "$FB")" "... shows the recorded key"
pane_expect "^ *new: +$(g2 "$FD")" "... and the new one under it"

# ---- /trust, and a chat again ----
keys "/trust bob"
enter
keys "/talk bob"
enter
expect_count bob2 "^request${TAB}alice\$" 2 "after /trust: bob gets alice's request"
cl_cmd bob2 "accept alice"
pane_expect "Chat with bob established" "a chat with bob's new key"
keys "welcome back"
enter
expect bob2 "^msg${TAB}alice${TAB}1${TAB}welcome back\$" "bob gets alice's message"
keys "/fingerprint bob"
enter
pane_expect "bob's recorded key: $(g2 "$FD")" "/fingerprint bob now shows the new key as the recorded one"
pane_expect "Safety number with bob: $(safety "$FA" "$FD")" "... and the new safety number, to compare again"
check "bob is not verified with the new key" eval '! pane | grep -q "bob verified"'

keys "/quit"
enter
key C-d
pane_expect "^\[exit 0\]" "alice quits: exit 0"
cl_cmd bob2 quit
expect_exit bob2 0 "bob quits: exit 0"
check "no sanitizer report in alice's terminal" \
	eval '! pane | grep -q -E "Sanitizer|runtime error"'

# ---- the other side, at version 2: bob's screen says why ----
# bob's key changes back; alice (batch now) knows the one she trusted.
# bob asks; her client stops at his confirmation and tells the server why
# (REFUSE 7), and bob's screen says in words what happened and what to do.
n0=$(grep -c "reloaded" "$DDIR/secmsgd.log")
cp "$SECMSG_PKI/bob.pub" "$DDIR/users/bob.pem"
kill -HUP "$DPID"
for _ in $(seq 1 200); do
	[ "$(grep -c "reloaded" "$DDIR/secmsgd.log")" -gt "$n0" ] && break
	sleep 0.05
done
CL_PROTO=
cv_start alice2 alice
expect alice2 "^ready${TAB}alice\$" "alice (batch, version 2) logs in"
mkdir -p "$DDIR/cstate/bob"
tmux_run 120x35 "$CLIENT" -c "$(client_conf bob)" --protocol-version 2 \
	--state-dir "$DDIR/cstate/bob" bob
pane_expect "Logged in as bob" "bob logs in with his first key again (interactive)"
keys "/talk alice"
enter
expect alice2 "^request${TAB}bob\$" "alice gets bob's request"
cl_cmd alice2 "accept bob"
expect alice2 "^keychange${TAB}bob${TAB}$FD${TAB}$FB\$" "alice's client: keychange bob"
pane_expect "alice's client stopped the chat: it does not know your new key yet" \
	"bob is told why, in words"
pane_expect "Your key: $(g2 "$FB")" "... with his fingerprint to read to alice"
pane_expect "alice must compare it with you \\(in person or by phone\\), then /trust bob\\." \
	"... what alice must do, and the command she needs"
pane_expect "Tell alice by another channel\\." "... and to tell her by another channel"
check "no protocol error on bob's screen" \
	eval '! pane | grep -q -E "server error|no such chat|ignored"'
keys "/quit"
enter
pane_expect "^\[exit 0\]" "bob quits: exit 0"
cl_cmd alice2 quit
expect_exit alice2 0 "alice quits: exit 0 (version 2)"
check "no sanitizer report in bob's terminal" \
	eval '! pane | grep -q -E "Sanitizer|runtime error"'
"${TMX[@]}" kill-server 2>/dev/null
daemon_stop && pass "secmsgd exits 0"
echo "client-keychange-tmux.sh took $(( ($(now_us) - START) / 1000 )) ms"
[ "$FAILURES" -eq 0 ]
