#!/bin/bash
# client-tmux.sh - the interactive client in a terminal (tmux): an incoming
# message is printed above a half-typed line, which stays intact and is
# sent once completed; the history holds commands, never chat text; and
# plain text goes to the chat the user last picked, never silently to
# another (issue 13 §6): a chat asked for (/talk) or accepted (/accept)
# becomes the current one, /msg sends one line to a named chat, and when
# the current chat ends the client says that none is current now. Each
# chat has its window (issue 18): what these steps check happens in the
# window shown, and a line sent shows once, its delivery state on it.
# client-windows.sh tests the windows themselves.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client-tmux.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 110 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh
. tests/lib/tmux.sh

START=$(now_us)
tmux_init
FA=$(fpr_hex "$SECMSG_PKI/alice.pub")
FB=$(fpr_hex "$SECMSG_PKI/bob.pub")

dstart || { fail "secmsgd starts"; exit 1; }
conf=$(client_conf alice)

# The tmux server starts before any batch client, so it holds none of
# their input pipes.
tmux_run 100x30 "$CLIENT" -c "$conf" alice
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
pane_expect "^[0-9]{2}:[0-9]{2} <alice> hello world \(delivered\)\$" \
	"alice's line shows once, timed, and its state turns to delivered on the line itself"
check "the sent line is not repeated (no extra 'to bob' or 'delivered' lines)" \
	[ "$(pane | grep -c "hello world")" -eq 1 ]
# A partial line would have gone out before the whole one, as message 1.
expect_none bob "^msg${TAB}alice${TAB}.*wor\$" "bob got no partial line" 0 \
	"^msg${TAB}alice${TAB}1${TAB}hello world\$"

# ---- the history holds commands, never chat text (issue 13 §4) ----
key Up
last_expect "^to bob> /talk bob\$" "Up recalls the last command (/talk bob), not the chat line sent after it"
key Down
last_expect "^to bob> ?\$" "Down returns to an empty input line"
keys "/talk bob"
enter
pane_expect "A chat or request with bob exists already" \
	"/talk bob while the chat exists: the client says so in words"

# ---- a chat asked for becomes the current one (issue 13 §6) ----
cl_start carol carol
cl_start dave dave
expect carol "^ready${TAB}carol\$" "carol (batch) logs in"
expect dave "^ready${TAB}dave\$" "dave (batch) logs in"
keys "/talk carol"
enter
expect carol "^request${TAB}alice\$" "/talk carol: carol gets request alice"
last_expect "^to carol> ?\$" "the prompt names the chat just asked for: to carol>"
keys "too early for carol"
enter
pane_expect "carol has not accepted yet" "a line before carol accepts goes nowhere: she has not accepted yet"
cl_cmd carol "accept alice"
expect carol "^chat${TAB}alice${TAB}$FA\$" "carol: chat alice"
pane_expect "Chat with carol established" "alice's terminal shows the chat with carol"
keys "hi carol, thanks for accepting"
enter
expect carol "^msg${TAB}alice${TAB}1${TAB}hi carol, thanks for accepting\$" \
	"chatting with bob, /talk carol, carol accepts: the next plain line goes to carol"
keys "/msg bob one line for bob"
enter
expect bob "^msg${TAB}alice${TAB}2${TAB}one line for bob\$" \
	"/msg bob sends one line to bob while carol is current (bob's message 2: the line for carol did not go to him)"
last_expect "^to carol> ?\$" "/msg leaves the current chat as it was"
key Up
last_expect "^to carol> /talk carol\$" "Up recalls /talk carol: neither /msg nor plain text entered the history"
key Down

# ---- a chat accepted becomes the current one ----
cl_cmd dave "talk alice"
pane_expect "dave asks to talk" "dave's request is shown"
keys "/accept dave"
enter
expect dave "^chat${TAB}alice${TAB}$FA\$" "alice accepts: dave gets chat alice"
last_expect "^to dave> ?\$" "the prompt names the chat just accepted: to dave>"
keys "hi dave, accepted"
enter
expect dave "^msg${TAB}alice${TAB}1${TAB}hi dave, accepted\$" \
	"carol current, /accept dave: the next plain line goes to dave"
keys "/msg carol one more for carol"
enter
expect carol "^msg${TAB}alice${TAB}2${TAB}one more for carol\$" \
	"carol's next message is 2: the line for dave did not go to her"

# ---- the current chat ends while others are open ----
cl_cmd dave "end alice"
pane_expect "dave left the chat" "dave leaves: alice's terminal says so"
pane_expect "No current chat now" "the client says that no chat is current now"
last_expect "^> ?\$" "the prompt names no chat"
keys "a reply nobody should get"
enter
pane_expect "no current chat" "a plain line with no current chat is refused"
keys "/msg bob marker for bob"
enter
keys "/msg carol marker for carol"
enter
expect bob "^msg${TAB}alice${TAB}3${TAB}marker for bob\$" \
	"bob's next message is 3: the line typed after dave left did not go to him"
expect carol "^msg${TAB}alice${TAB}3${TAB}marker for carol\$" \
	"carol's next message is 3: nor to carol"
keys "/to carol"
enter
last_expect "^to carol> ?\$" "/to carol makes carol current again"
keys "back to carol"
enter
expect carol "^msg${TAB}alice${TAB}4${TAB}back to carol\$" "plain text goes to carol after /to carol"

keys "/quit"
enter
pane_expect "^\[exit 0\]" "/quit: the interactive client exits 0"
# Version 2: the conversations outlast alice's session; her peers are
# told she went offline.
expect bob "^presence${TAB}alice${TAB}offline\$" "bob is told alice went offline (the conversation lasts)"
expect carol "^presence${TAB}alice${TAB}offline\$" "carol is told alice went offline (the conversation lasts)"
check "no batch client got a line meant for another" \
	eval '! grep -q -E "thanks for accepting|nobody should get|accepted\$" "$(cl_out bob)" &&
	      ! grep -q -E "nobody should get|hi dave" "$(cl_out carol)"'
for u in bob carol dave; do cl_cmd "$u" quit; done
expect_exit bob 0 "bob quits: exit 0"
expect_exit carol 0 "carol quits: exit 0"
expect_exit dave 0 "dave quits: exit 0"
check "no sanitizer report in alice's terminal" \
	eval '! pane | grep -q -E "Sanitizer|runtime error"'
"${TMX[@]}" kill-server 2>/dev/null
daemon_stop && pass "secmsgd exits 0"
echo "client-tmux.sh took $(( ($(now_us) - START) / 1000 )) ms"
[ "$FAILURES" -eq 0 ]
