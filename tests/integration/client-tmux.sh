#!/bin/bash
# client-tmux.sh - the interactive client in a terminal (tmux): an incoming
# message is printed above a half-typed line, which stays intact and is
# sent once completed.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client-tmux.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 110 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh

START=$(now_us)
if ! command -v tmux >/dev/null; then
	fail "tmux is installed (scripts/deps.sh installs it)"
	exit 1
fi
# A private tmux server (-L), killed and its socket removed at exit.
TMX=(tmux -L "secmsg-test-$$" -f /dev/null)
TSOCK=${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/secmsg-test-$$
CL_EXTRA_CLEANUP='"${TMX[@]}" kill-server 2>/dev/null; rm -f "$TSOCK"'
PANE=t:0.0
FA=$(fpr_hex "$SECMSG_PKI/alice.pub")
FB=$(fpr_hex "$SECMSG_PKI/bob.pub")

pane() { "${TMX[@]}" capture-pane -p -t "$PANE"; }
# The last non-empty line of the pane.
pane_last() { pane | sed '/^[[:space:]]*$/d' | tail -1; }
pane_wait() { # REGEX [SECONDS]
	local end
	end=$(( $(now_us) + ${2:-$CL_WAIT} * 1000000 ))
	while :; do
		pane | grep -qE -- "$1" && return 0
		[ "$(now_us)" -lt "$end" ] || break
		sleep 0.05
	done
	echo "  | waited ${2:-$CL_WAIT} s for the pane to show: $1"
	pane | sed 's/^/  |   /'
	return 1
}
pane_expect() { if pane_wait "$1" "${3:-$CL_WAIT}"; then pass "$2"; else fail "$2"; fi; }
keys() { "${TMX[@]}" send-keys -t "$PANE" -l -- "$1"; }
enter() { "${TMX[@]}" send-keys -t "$PANE" Enter; }

dstart || { fail "secmsgd starts"; exit 1; }
conf=$(client_conf alice)

# The tmux server starts before any batch client, so it holds none of
# their input pipes.
"${TMX[@]}" new-session -d -s t -x 100 -y 30 \
	"'$CLIENT' -c '$conf' alice; echo \"[exit \$?]\"; sleep 100"
pane_expect "Logged in as alice" "the interactive client logs in"
cl_start bob bob
expect bob "^ready${TAB}bob\$" "bob (batch) logs in"

keys "/talk bob"
enter
expect bob "^request${TAB}alice\$" "/talk bob: bob gets request alice"
cl_cmd bob "accept alice"
expect bob "^chat${TAB}alice${TAB}$FA\$" "bob: chat alice"
pane_expect "Chat with bob established" "alice's terminal shows the chat established"
pane_expect "$(echo "$FB" | cut -c1-4)" "alice's terminal shows bob's fingerprint"
pane_expect "^to bob> ?$" "the prompt names the current chat: to bob>"

# A half-typed line, then a message arrives.
keys "hello wor"
pane_wait "^to bob> hello wor\$"
cl_cmd bob "send alice incoming from bob"
pane_expect "<bob> incoming from bob" "bob's message is printed in alice's terminal"
expect bob "^delivered${TAB}alice${TAB}1\$" "bob: delivered alice 1 (alice's client sent a receipt)"
cl_cmd bob "send alice and a second one"
pane_wait "<bob> and a second one"
sleep 0.3
SNAP=$(pane)
echo "$SNAP" | sed '/^[[:space:]]*$/d; s/^/  | /'
msgline=$(echo "$SNAP" | grep -n "<bob> incoming from bob" | head -1 | cut -d: -f1)
msgline2=$(echo "$SNAP" | grep -n "<bob> and a second one" | head -1 | cut -d: -f1)
promptline=$(echo "$SNAP" | grep -n "^to bob> hello wor\$" | tail -1 | cut -d: -f1)
check "the half-typed line is intact on the last line: 'to bob> hello wor'" \
	[ "$(pane_last)" = "to bob> hello wor" ]
check "both messages are printed above the input line, in order" \
	eval '[ "${msgline:-99}" -lt "${msgline2:-0}" ] &&
	      [ "${msgline2:-99}" -lt "${promptline:-0}" ]'
check "the half-typed text appears once (not duplicated or split)" \
	[ "$(echo "$SNAP" | grep -c "hello wor")" -eq 1 ]
cur=$("${TMX[@]}" display-message -p -t "$PANE" '#{cursor_x},#{cursor_y}')
check "the cursor is at the end of the half-typed line ($cur)" \
	[ "$cur" = "17,$((${promptline:-0} - 1))" ]

# Complete the line: bob receives it.
keys "ld"
enter
expect bob "^msg${TAB}alice${TAB}1${TAB}hello world\$" "alice completes the line: bob gets 'hello world'"
pane_expect "delivered to bob" "alice's terminal shows the receipt (delivered to bob)"
expect_none bob "^msg${TAB}alice${TAB}.*wor\$" "bob got no partial line"

keys "/quit"
enter
pane_expect "^\[exit 0\]" "/quit: the interactive client exits 0"
expect bob "^ended${TAB}alice${TAB}left\$" "bob gets ended alice left"
cl_cmd bob quit
expect_exit bob 0 "bob quits: exit 0"
check "no sanitizer report in alice's terminal" \
	eval '! pane | grep -q -E "Sanitizer|runtime error"'
"${TMX[@]}" kill-server 2>/dev/null
daemon_stop && pass "secmsgd exits 0"
echo "client-tmux.sh took $(( ($(now_us) - START) / 1000 )) ms"
[ "$FAILURES" -eq 0 ]
