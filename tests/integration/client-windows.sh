#!/bin/bash
# client-windows.sh - the interactive client's windows (issue 18), driven
# in tmux as a user would: three conversations in three windows, each
# with its own messages; the activity list; Alt-N, Alt-Left/Right and
# /win; scrollback with PgUp/PgDn; Tab completion; a resize while typing;
# delivery states on the line (sent, stored, delivered, not delivered);
# colours, and none with NO_COLOR.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client-windows.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 150 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh
. tests/lib/tmux.sh

START=$(now_us)
tmux_init
ESC=$(printf '\033')

dstart || { fail "secmsgd starts"; exit 1; }
conf=$(client_conf alice)
# The state of version 2 is the client's own: alice's goes in $DDIR.
mkdir -p "$DDIR/cstate/alice"
tmux_run 100x30 "$CLIENT" -c "$conf" --state-dir "$DDIR/cstate/alice" alice
pane_expect "Logged in as alice" "the interactive client logs in"
pane_expect "^\[[0-9:]{5}\] \[1:status\]" "the status bar shows window 1, the status window"

# ---- a window per conversation, opened by a request ----
cv_start bob bob
cv_start carol carol
cl_start dave dave --protocol-version 1
for u in bob carol dave; do expect "$u" "^ready${TAB}$u\$" "$u (batch) logs in"; done
# The user looks at another tmux window: the request rings the bell, and
# tmux flags alice's window.
"${TMX[@]}" new-window -d -t t:1 "sleep 100"
"${TMX[@]}" select-window -t t:1
cl_cmd bob "talk alice"
pane_expect "bob asks to talk \(window 2\)" "bob's request is said in the window shown, with its window"
check "the request rang the bell: tmux flags the client's window" \
	[ "$("${TMX[@]}" display -p -t t:0 '#{window_bell_flag}')" = 1 ]
title=$("${TMX[@]}" display -p -t "$PANE" '#{pane_title}')
check "the terminal's title has the activity: 'secmsg alice [2!]' ($title)" \
	[ "$title" = "secmsg alice [2!]" ]
"${TMX[@]}" select-window -t t:0
pane_expect "\[Act: 2!\]" "the activity list marks window 2 with ! (a request)"
keys "/accept bob"
enter
pane_expect "^\[[0-9:]{5}\] \[2:bob\]" "/accept bob shows bob's window"
pane_expect "Chat with bob established" "bob's window shows the chat"
cl_cmd carol "talk alice"
pane_expect "\[Act: 3!\]" "carol's request: window 3 in the activity list"
keys "/accept carol"
enter
pane_expect "\[3:carol\]" "/accept carol shows window 3"
cl_cmd dave "talk alice"
pane_wait "dave asks to talk"
keys "/accept dave"
enter
pane_expect "\[4:dave\]" "/accept dave shows window 4"
expect dave "^chat${TAB}alice" "dave: chat alice"

cl_cmd bob "send alice for alice from bob"
# In this order (the history lists bob's first after a restart).
pane_wait "\[Act: 2\]"
cl_cmd carol "send alice carol writes too"
pane_expect "\[Act: 2,3\]" "messages to hidden windows: Act: 2,3 (no ! for plain messages)"
check "neither message shows in dave's window" \
	eval '! pane | grep -q -E "from bob|carol writes"'
cl_cmd dave "send alice dave here"
pane_expect "<dave> dave here" "dave's message shows in his window, the one shown"

key M-2
pane_expect "\[2:bob\]" "Alt-2 shows bob's window"
pane_expect "<bob> for alice from bob" "bob's window holds bob's message"
check "bob's window holds neither carol's nor dave's" \
	eval '! pane | grep -q -E "carol writes|dave here"'
pane_expect "\[Act: 3\]" "window 2 seen: the activity list is 3"
key M-Right
pane_expect "\[3:carol\]" "Alt-Right shows window 3"
pane_expect "<carol> carol writes too" "carol's window holds carol's message"
check "carol's window holds neither bob's nor dave's" \
	eval '! pane | grep -q -E "from bob|dave here"'
check "nothing unread: no activity list" eval '! pane | grep -q "Act:"'
last_expect "^to carol> ?\$" "the prompt names the window's peer"
keys "/win 4"
enter
pane_expect "\[4:dave\]" "/win 4 shows dave's window"
key M-Left
pane_expect "\[3:carol\]" "Alt-Left goes back to window 3"
keys "typed in carol's window"
enter
expect carol "^msg${TAB}alice${TAB}[0-9]+${TAB}typed in carol's window\$" \
	"plain text in carol's window goes to carol"
pane_expect "<alice> typed in carol's window \((sent|delivered)\)" "the line shows in carol's window with its state"
pane_expect "<alice> typed in carol's window \(delivered\)" "carol's receipt turns it to delivered"
keys "/win 9"
enter
pane_expect "there is no window 9" "/win 9: there is no window 9"

# ---- small things a person meets (issue 18, item 8) ----
n=$(cl_lines carol)
keys "    "
enter
keys "after the blank line"
enter
expect_none carol "^msg${TAB}alice${TAB}[0-9]+${TAB} *\$" \
	"a line of spaces is not sent" "$n" "^msg${TAB}alice${TAB}[0-9]+${TAB}after the blank line\$"
keys "/talk alice"
enter
pane_expect "alice: you cannot talk to yourself" "/talk alice (oneself): refused at once, in words"
check "and the client did not say it asked first" eval '! pane | grep -q "asked alice to talk"'
cl_start erin erin
expect erin "^ready${TAB}erin\$" "erin (batch) logs in"
cl_cmd erin "talk alice"
pane_expect "erin asks to talk" "erin's request is said"
keys "/refuse erin"
enter
pane_expect "refused erin's request" "/refuse says what it did"
expect erin "^refused${TAB}alice${TAB}declined\$" "erin: refused alice declined"
keys "/refuse erin"
enter
pane_expect "erin has not asked to talk" "/refuse again: erin has not asked"
cl_cmd erin quit
expect_exit erin 0 "erin quits: exit 0"
LONG=$(printf 'x%.0s' $(seq 4100))
keys "$LONG"
enter
pane_expect "Too long to send: 4100 bytes, at most 4096" "a line over the limit: the limit said in bytes"
last_expect "xxxxxxxxxx\$" "the line over the limit is back in the input, to be shortened"
key C-u
last_expect "^to carol> ?\$" "Ctrl-U clears it"
key C-d
pane_expect "Leaving ends your chats with dave: Ctrl-D again or /quit to leave" \
	"Ctrl-D with a chat open (dave's, version 1): the client asks first"
check "and it is still running" eval '! pane | grep -q "^\[exit"'

# ---- scrollback ----
key M-2
pane_wait "\[2:bob\]"
for i in $(seq -w 1 40); do cl_cmd bob "send alice scroll line $i"; done
pane_expect "<bob> scroll line 40" "40 lines from bob: the last shows"
check "the first lines have scrolled off" eval '! pane | grep -q "scroll line 01"'
key PPage
pane_expect "scrolled back: PgDn" "PgUp: the status bar says the view is scrolled back"
check "PgUp shows earlier lines, not the last" \
	eval 'pane | grep -q "scroll line 1[0-9]" && ! pane | grep -q "scroll line 40"'
cl_cmd bob "send alice arrives while scrolled back"
expect bob "^delivered${TAB}alice${TAB}.*" "bob's line arrives while alice looks back"
sleep 0.3
check "a new line does not move the scrolled-back view" \
	eval '! pane | grep -q "arrives while scrolled back"'
key PPage
key PPage
pane_expect "<bob> for alice from bob" "PgUp again reaches the top of bob's window"
key NPage
key NPage
key NPage
pane_expect "arrives while scrolled back" "PgDn back to the end shows the newest line"
pane_gone "scrolled back: PgDn" 2 && pass "back at the end: the status bar no longer says scrolled back" ||
	fail "back at the end: the status bar no longer says scrolled back"

# ---- Tab completion ----
keys "/ta"
key Tab
last_expect "^to bob> /talk ?\$" "Tab completes /ta to /talk"
keys "ca"
key Tab
last_expect "^to bob> /talk carol ?\$" "Tab completes a peer's name after /talk"
key C-u
keys "/msg d"
key Tab
last_expect "^to bob> /msg dave ?\$" "Tab completes a name after /msg"
key C-u
keys "/e"
key Tab
pane_expect "/end +/exit|/end" "Tab on /e completes or lists"
key C-u

# ---- a resize while typing ----
keys "a half-typed line that will be wrapped differently"
last_expect "a half-typed line that will be wrapped differently\$" "a long half-typed line"
"${TMX[@]}" resize-window -t t -x 60 -y 20
sleep 0.5
last_expect "wrapped differently\$" "narrower: the input line still ends at the cursor"
check "after the resize the half-typed text shows once" \
	[ "$(pane | grep -c "half-typed")" -le 1 ]
pane_expect "^\[[0-9:]{5}\] \[2:bob\]" "the status bar is redrawn at the new size"
"${TMX[@]}" resize-window -t t -x 100 -y 30
sleep 0.5
last_expect "^to bob> a half-typed line that will be wrapped differently\$" \
	"wider again: the whole line, intact"
keys " and sent"
enter
expect bob "^msg${TAB}alice${TAB}[0-9]+${TAB}a half-typed line that will be wrapped differently and sent\$" \
	"the line edited across the resizes reaches bob whole"

# ---- wide characters edit as before; Ctrl-C drops the line ----
keys "héllo 日本 wörld"
key Left Left Left Left Left
keys "X"
last_expect "^to bob> héllo 日本 Xwörld\$" "a line with accents and wide characters, edited in the middle"
cur=$("${TMX[@]}" display-message -p -t "$PANE" '#{cursor_x}')
# "to bob> " 8 + "héllo " 6 + "日本 " 5 (two columns each) + "X" 1
check "the cursor stands after the X, counting wide characters as two columns ($cur)" \
	[ "$cur" = 20 ]
enter
expect bob "^msg${TAB}alice${TAB}[0-9]+${TAB}héllo 日本 Xwörld\$" "bob gets the edited line whole"
pane_expect "<alice> héllo 日本 Xwörld \((sent|delivered)\)" "alice's window shows it"
keys "a line to drop"
key C-c
last_expect "^to bob> ?\$" "Ctrl-C drops the line being typed"
n=$(cl_lines bob)
keys "after the dropped line"
enter
expect_none bob "a line to drop" "the dropped line was not sent" "$n" \
	"^msg${TAB}alice${TAB}[0-9]+${TAB}after the dropped line\$"

# ---- colours ----
# tmux writes each attribute apart: the colour, then others, then <bob>.
SGR="${ESC}\\[[0-9;]*m"
COLOURED="${ESC}\\[([0-9]+;)*[34][0-7]m"
check "the sender's name has a colour" \
	eval 'pane_e | grep -q -E "${ESC}\\[3[0-7]m($SGR)*<bob>"'
check "the status bar has a colour" \
	eval 'pane_e | grep -q -E "${ESC}\\[4[0-7]m($SGR)*\\[[0-9:]{5}\\] \\[2:bob\\]"'

# ---- stored, delivered, not delivered ----
cl_cmd carol quit
expect_exit carol 0 "carol quits (the conversation lasts)"
key M-3
pane_wait "\[3:carol\]"
pane_expect "carol is offline" "carol's window says she is offline"
keys "waiting for carol"
enter
pane_expect "<alice> waiting for carol \(stored\)" "a line to carol offline: stored"
cv_start carol carol
expect carol "^msg${TAB}alice${TAB}[0-9]+${TAB}waiting for carol\$" "carol back: she gets the stored line"
pane_expect "<alice> waiting for carol \(delivered\)" "then it turns to delivered"
# dave's chat is of version 1: a line whose receipt never comes before the
# chat ends is not delivered.
kill -STOP "${CL_PID[dave]}"
keys "/win 4"
enter
keys "dave will never see this"
enter
pane_expect "<alice> dave will never see this \(sent\)" "a line to a stopped dave: sent"
kill -KILL "${CL_PID[dave]}"
pane_expect "<alice> dave will never see this \(not delivered\)" \
	"dave's chat ends before the receipt: not delivered, on the line"

keys "/quit"
enter
pane_expect "^\[exit 0\]" "/quit: exit 0"

# ---- NO_COLOR ----
tmux_run 100x30 env NO_COLOR=1 "$CLIENT" -c "$conf" \
	--state-dir "$DDIR/cstate/alice" alice
pane_expect "Logged in as alice" "alice again, with NO_COLOR=1"
# ---- the history at rest: shown again after a restart ----
key M-2
pane_expect "\[2:bob\]" "bob's window is window 2 again (the history opened it)"
pane_expect "the lines above are from the history on this machine" \
	"the history is marked as such"
pane_expect "<bob> arrives while scrolled back" "bob's last messages are shown again after the restart"
pane_expect "<alice> a half-typed line that will be wrapped differently and sent \(delivered\)" \
	"alice's own line comes back with its delivery state"
check "the history file holds no chat text in the clear" \
	eval '! grep -q -a "arrives while scrolled back" "$DDIR/cstate/alice/alice.history"'
cl_cmd bob "send alice in plain letters"
pane_expect "<bob> in plain letters" "bob's message shows"
check "NO_COLOR: no colour on the screen" \
	eval '! pane_e | grep -q -E "$COLOURED"'
check "NO_COLOR: the status bar is in reverse video instead" \
	eval 'pane_e | grep -q -E "${ESC}\\[7m($SGR)*\\[[0-9:]{5}\\] \\[2:bob\\]"'
keys "/forget bob"
enter
pane_expect "bob's history is erased from this machine" "/forget bob says so"
pane_gone "in plain letters" 2 && pass "/forget bob empties bob's window" ||
	fail "/forget bob empties bob's window"
keys "/quit"
enter
pane_expect "^\[exit 0\]" "/quit: exit 0"

# ---- color = no (--color no), and xterm's title ----
# xterm's terminfo entries have no status line, only the XT flag: the
# client sets the title with xterm's OSC 2 (which tmux takes as the
# pane's title).
"${TMX[@]}" set-option -g default-terminal xterm-256color 2>/dev/null
tmux_run 100x30 env TERM=xterm-256color "$CLIENT" -c "$conf" --color no \
	--state-dir "$DDIR/cstate/alice" alice
pane_expect "Logged in as alice" "alice again, with --color no"
title=$("${TMX[@]}" display -p -t "$PANE" '#{pane_title}')
check "TERM=xterm-256color: the title is set by OSC 2 ($title)" \
	eval '[[ "$title" == "secmsg alice"* ]]'
cl_cmd bob "send alice no colours asked"
keys "/to bob"
enter
pane_expect "<bob> no colours asked" "bob's message shows"
check "after /forget bob and a restart, bob's window holds none of the old lines" \
	eval '! pane | grep -q -E "in plain letters|arrives while scrolled back|the lines above are from the history"'
key M-2
pane_expect "\[2:carol\]" "carol's window comes first now (bob's history is gone)"
pane_expect "<carol> carol writes too" "carol's history stays after bob's is forgotten"
check "--color no: no colour on the screen" \
	eval '! pane_e | grep -q -E "$COLOURED"'
keys "/quit"
enter
pane_expect "^\[exit 0\]" "/quit: exit 0"

for u in bob carol; do cl_cmd "$u" quit; done
expect_exit bob 0 "bob quits: exit 0"
expect_exit carol 0 "carol quits: exit 0"
check "no sanitizer report in alice's terminal" \
	eval '! pane | grep -q -E "Sanitizer|runtime error"'
"${TMX[@]}" kill-server 2>/dev/null
daemon_stop && pass "secmsgd exits 0"
echo "client-windows.sh took $(( ($(now_us) - START) / 1000 )) ms"
[ "$FAILURES" -eq 0 ]
