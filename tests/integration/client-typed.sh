#!/bin/bash
# client-typed.sh - the delivery state "typed" (issue 18) with real
# secmsg-client --batch processes and a real secmsgd: alice, in a
# conversation with bob, types two lines while secmsgd is stopped; they
# show `typed`, go at the reconnection (`sent`), bob gets each once and
# alice's receipts come (`delivered`). A line typed with no connection
# survives alice's client killed with SIGKILL (it waits in the outbox of
# her state file) and goes at her next login. Text to someone without a
# conversation is still refused while reconnecting. Then the same in the
# windows, in tmux: carol's two lines show "(typed)" on their line while
# secmsgd is stopped, and turn to "(delivered)" after it is back.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client-typed.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 120 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh
. tests/lib/tmux.sh

count() { LC_ALL=C grep -cE -- "$2" "$(cl_out "$1")"; }

dstart "" alice bob carol || { fail "secmsgd starts"; exit 1; }
cv_start alice alice
cv_start bob bob
expect alice "^ready${TAB}alice\$" "alice logs in (version 2)"
expect bob "^ready${TAB}bob\$" "bob logs in"
cl_cmd alice "talk bob"
expect bob "^request${TAB}alice\$" "bob gets alice's request"
cl_cmd bob "accept alice"
expect alice "^conversation${TAB}bob${TAB}[0-9]+${TAB}online\$" "a conversation"
expect bob "^conversation${TAB}alice${TAB}[0-9]+${TAB}online\$" "bob has it too"
cl_cmd alice "send bob before the stop"
expect bob "^msg${TAB}alice${TAB}1${TAB}before the stop\$" "bob gets alice's 1"
expect alice "^delivered${TAB}bob${TAB}1\$" "alice: delivered bob 1"
check "a message sent at once never shows typed" \
	[ "$(count alice "^typed${TAB}")" -eq 0 ]

# ---- secmsgd stopped: alice types two lines ----
daemon_term
check "secmsgd stops (SIGTERM): exit 0" [ $? -eq 0 ]
expect alice "^reconnecting${TAB}[0-9]+\$" "alice: reconnecting"
cl_cmd alice "send bob typed while away one"
cl_cmd alice "send bob typed while away two"
cl_cmd alice "send carol no conversation with carol"
expect alice "^typed${TAB}bob${TAB}2\$" "alice's 2 shows typed"
expect alice "^typed${TAB}bob${TAB}3\$" "alice's 3 shows typed"
expect alice "^error${TAB}0${TAB}.*not connected to the server" \
	"text to carol (no conversation) is refused while reconnecting"
check "nothing typed is said sent before the server is back" \
	[ "$(count alice "^sent${TAB}bob${TAB}[23]\$")" -eq 0 ]

daemon_restart || { fail "secmsgd starts again"; exit 1; }
expect_count alice "^ready${TAB}alice\$" 2 "alice logs in again by herself"
expect alice "^sent${TAB}bob${TAB}2\$" "alice's 2 moves on to sent"
expect alice "^sent${TAB}bob${TAB}3\$" "alice's 3 moves on to sent"
expect bob "^msg${TAB}alice${TAB}2${TAB}typed while away one\$" "bob gets alice's 2"
expect bob "^msg${TAB}alice${TAB}3${TAB}typed while away two\$" "bob gets alice's 3"
expect alice "^delivered${TAB}bob${TAB}2\$" "alice: delivered bob 2"
expect alice "^delivered${TAB}bob${TAB}3\$" "alice: delivered bob 3"
cl_cmd alice "send bob after the restart"
expect bob "^msg${TAB}alice${TAB}4${TAB}after the restart\$" "bob gets alice's 4"
for i in 2 3 4; do
	check "bob got alice's $i once" \
		[ "$(count bob "^msg${TAB}alice${TAB}$i${TAB}")" -eq 1 ]
done
check "typed came before sent (alice's 2)" \
	[ "$(grep -n "^typed${TAB}bob${TAB}2\$" "$(cl_out alice)" | cut -d: -f1)" -lt \
	  "$(grep -n "^sent${TAB}bob${TAB}2\$" "$(cl_out alice)" | cut -d: -f1)" ]

# ---- a typed line survives alice's client killed ----
daemon_term
expect_count alice "^reconnecting${TAB}[0-9]+\$" 2 "alice: reconnecting again"
cl_cmd alice "send bob typed then killed"
expect alice "^typed${TAB}bob${TAB}5\$" "alice's 5 shows typed"
kill -KILL "${CL_PID[alice]}"
cl_wait alice
daemon_restart || { fail "secmsgd starts again"; exit 1; }
cv_start alice2 alice
expect alice2 "^ready${TAB}alice\$" "alice starts again"
expect bob "^msg${TAB}alice${TAB}5${TAB}typed then killed\$" \
	"bob gets alice's 5, sent from her state file's outbox"
expect alice2 "^delivered${TAB}bob${TAB}5\$" "alice: delivered bob 5"
cl_sync bob
wait_count bob "^users${TAB}" 1 >/dev/null
check "bob got alice's 5 once" \
	[ "$(count bob "^msg${TAB}alice${TAB}5${TAB}")" -eq 1 ]
cl_cmd alice2 quit
expect_exit alice2 0 "alice quits: exit 0"

# ---- the same in the windows: carol, interactive in tmux, with bob ----
tmux_init
conf=$(client_conf carol)
mkdir -p "$DDIR/cstate/carol"
tmux_run 100x30 "$CLIENT" -c "$conf" --state-dir "$DDIR/cstate/carol" \
	--reconnect 300ms carol
pane_expect "Logged in as carol" "carol (interactive) logs in"
cl_cmd bob "talk carol"
pane_wait "bob asks to talk"
keys "/accept bob"
enter
expect bob "^conversation${TAB}carol${TAB}[0-9]+${TAB}online\$" \
	"bob: a conversation with carol"
keys "said at once"
enter
pane_expect "<carol> said at once \(delivered\)" "a line sent at once: delivered"
daemon_term
pane_expect "reconnecting" "carol's window says reconnecting"
keys "first line while away"
enter
keys "second line while away"
enter
pane_expect "<carol> first line while away \(typed\)" "the first line shows (typed)"
pane_expect "<carol> second line while away \(typed\)" "the second line shows (typed)"
check "no error for lines typed while reconnecting" \
	eval '! pane | grep -q "not connected"'
daemon_restart || { fail "secmsgd starts again"; exit 1; }
pane_expect "<carol> first line while away \(delivered\)" \
	"after the reconnection the first line turns to delivered"
pane_expect "<carol> second line while away \(delivered\)" \
	"... and the second"
expect bob "^msg${TAB}carol${TAB}3${TAB}second line while away\$" \
	"bob gets carol's lines"
cl_sync bob
wait_count bob "^users${TAB}" 2 >/dev/null
for i in 2 3; do
	check "bob got carol's $i once" \
		[ "$(count bob "^msg${TAB}carol${TAB}$i${TAB}")" -eq 1 ]
done
check "each line shows once in carol's window" \
	[ "$(pane | grep -c "line while away")" -eq 2 ]
keys "/quit"
enter
pane_expect "\[exit 0\]" "carol quits: exit 0"
cl_cmd bob quit
expect_exit bob 0 "bob quits: exit 0"
[ "$FAILURES" -eq 0 ]
