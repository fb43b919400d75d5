#!/bin/bash
# client.sh - real secmsg-client --batch processes against a real secmsgd:
# login, list, talk/accept/refuse, several chats at once, messages both ways
# with receipts, text escaping, end, withdraw, quit, takeover, kick (when
# secmsgctl is built); every byte between the clients and the server goes
# through a recording proxy, and the chat plaintext must not appear in it
# (nor in the daemon's debug log). Then, against a second daemon: request
# expiry, a burst of messages under the default rate limit, the longest
# message, the idle timeout and the keepalive.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 110 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh
# Version 1's rules (chats end with a connection, END 2, a new key starts
# afresh): these clients offer version 1, as a client of before version 2
# would, against today's server. client-conv.sh checks version 2.
CL_PROTO=1

START=$(now_us)
CTL=$SECMSG_BUILD/secmsgctl
# Distinctive plaintexts: none of them may show in the relayed bytes.
W1=zanzibarquokka
W2=periwinklemarmoset
W3=obsidianflamingo
W4=tangerinewombat
W5=ultramarinegecko
W6=vermilionaxolotl

# ---- the daemon, and the recording proxy in front of it ----
dstart "messages_per_second = 200" || { fail "secmsgd starts"; exit 1; }
CAP=$CL_DIR/capture.bin
proxy_start "$CAP" || { fail "the recording proxy starts"; exit 1; }
VIA=(-s "127.0.0.1:$PPORT" -n localhost)

FA=$(fpr_hex "$SECMSG_PKI/alice.pub")
FB=$(fpr_hex "$SECMSG_PKI/bob.pub")
FC=$(fpr_hex "$SECMSG_PKI/carol.pub")
FD=$(fpr_hex "$SECMSG_PKI/dave.pub")
OSSL=$(openssl pkey -pubin -in "$SECMSG_PKI/bob.pub" -outform DER | sha256sum | cut -c1-64)
check "--fingerprint gives SHA-256 of the SPKI (bob: $FB)" \
	[ "$FB" = "$OSSL" -a ${#FA} -eq 64 -a ${#FC} -eq 64 -a ${#FD} -eq 64 ]

# ---- login and list ----
cl_start alice alice "${VIA[@]}"
expect alice "^ready${TAB}alice\$" "alice logs in: ready alice"
cl_cmd alice list
expect alice "^users${TAB}\$" "list with nobody else online: an empty users field"
cl_start bob bob "${VIA[@]}"
cl_start carol carol "${VIA[@]}"
cl_start dave dave "${VIA[@]}"
expect bob "^ready${TAB}bob\$" "bob logs in (ECDSA P-256 key)"
expect carol "^ready${TAB}carol\$" "carol logs in (RSA key)"
expect dave "^ready${TAB}dave\$" "dave logs in"
check "ready is the first line, and the login list prints no users line" \
	[ "$(head -1 "$(cl_out bob)")" = "ready${TAB}bob" -a \
	  "$(grep -c '^users' "$(cl_out bob)")" -eq 0 ]
cl_cmd alice list
wait_count alice "^users" 2
check "alice's list is exactly: users bob,carol,dave" \
	[ "$(grep '^users' "$(cl_out alice)" | tail -1)" = "users${TAB}bob,carol,dave" ]
cl_cmd carol list
expect carol "^users${TAB}alice,bob,dave\$" "carol's list is exactly: users alice,bob,dave"

# ---- refusals: self, offline, unknown, declined ----
cl_cmd alice "talk alice"
expect alice "^refused${TAB}alice${TAB}self\$" "talk to oneself: refused alice self"
cl_cmd alice "talk erin"
expect alice "^refused${TAB}erin${TAB}offline\$" "talk to an enrolled user not online: refused erin offline"
cl_cmd alice "talk nosuchuser"
expect alice "^refused${TAB}nosuchuser${TAB}offline\$" "talk to an unknown user: refused nosuchuser offline"
cl_cmd dave "talk carol"
expect carol "^request${TAB}dave\$" "carol gets dave's request: request dave"
n=$(cl_lines carol)
cl_cmd carol "refuse dave"
expect dave "^refused${TAB}carol${TAB}declined\$" "carol refuses: dave gets refused carol declined"
cl_sync carol
expect_none carol "^(chat|ended)${TAB}dave" "refusing prints no chat or ended line on carol's side" \
	"$n" "^users${TAB}"
cl_cmd bob "talk carol"
expect carol "^request${TAB}bob\$" "carol gets bob's request"
cl_cmd carol "end bob"
expect bob "^refused${TAB}carol${TAB}declined\$" "end on a request received declines it: refused carol declined"

# ---- three chats at once for alice ----
cl_cmd alice "talk bob"
cl_cmd alice "talk carol"
cl_cmd dave "talk alice"
expect bob "^request${TAB}alice\$" "bob gets request alice"
expect carol "^request${TAB}alice\$" "carol gets request alice"
expect alice "^request${TAB}dave\$" "alice gets request dave"
cl_cmd bob "accept alice"
cl_cmd carol "accept alice"
cl_cmd alice "accept dave"
expect alice "^chat${TAB}bob${TAB}$FB\$" "alice: chat bob with bob's fingerprint"
expect alice "^chat${TAB}carol${TAB}$FC\$" "alice: chat carol with carol's fingerprint"
expect alice "^chat${TAB}dave${TAB}$FD\$" "alice (accepting side): chat dave with dave's fingerprint"
expect bob "^chat${TAB}alice${TAB}$FA\$" "bob: chat alice with alice's fingerprint"
expect carol "^chat${TAB}alice${TAB}$FA\$" "carol: chat alice with alice's fingerprint"
expect dave "^chat${TAB}alice${TAB}$FA\$" "dave (requester): chat alice with alice's fingerprint"
check "the known peers file records the fingerprints seen" \
	grep -q "$FB" "$DDIR/known/alice/alice"
# Asking again for a chat that exists: CLIENT.md's refusal, not an error.
cl_cmd alice "talk bob"
expect alice "^refused${TAB}bob${TAB}exists\$" "talk bob while a chat with bob exists: refused bob exists"
cl_cmd alice "talk dave"
expect alice "^refused${TAB}dave${TAB}exists\$" "... also for a chat alice accepted: refused dave exists"

# Messages both ways in all three chats, interleaved.
cl_cmd alice "send bob $W1 one"
cl_cmd alice "send carol $W2 two"
cl_cmd alice "send dave $W3 three"
cl_cmd bob "send alice $W4 reply"
cl_cmd carol "send alice $W5 reply"
cl_cmd dave "send alice $W6 reply"
cl_cmd alice "send bob $W1 again"
expect bob "^msg${TAB}alice${TAB}1${TAB}$W1 one\$" "bob gets alice's message 1"
expect bob "^msg${TAB}alice${TAB}2${TAB}$W1 again\$" "bob gets alice's message 2, in order"
expect carol "^msg${TAB}alice${TAB}1${TAB}$W2 two\$" "carol gets alice's message"
expect dave "^msg${TAB}alice${TAB}1${TAB}$W3 three\$" "dave gets alice's message"
expect alice "^msg${TAB}bob${TAB}1${TAB}$W4 reply\$" "alice gets bob's message"
expect alice "^msg${TAB}carol${TAB}1${TAB}$W5 reply\$" "alice gets carol's message"
expect alice "^msg${TAB}dave${TAB}1${TAB}$W6 reply\$" "alice (accepting side) gets dave's message"
expect alice "^sent${TAB}bob${TAB}2\$" "alice: sent bob 2"
expect alice "^sent${TAB}dave${TAB}1\$" "alice (accepting side): sent dave 1"
expect alice "^delivered${TAB}bob${TAB}1\$" "alice: delivered bob 1"
expect alice "^delivered${TAB}bob${TAB}2\$" "alice: delivered bob 2"
expect alice "^delivered${TAB}carol${TAB}1\$" "alice: delivered carol 1"
expect alice "^delivered${TAB}dave${TAB}1\$" "alice: delivered dave 1"
expect bob "^sent${TAB}alice${TAB}1\$" "bob (accepting side): sent alice 1"
expect bob "^delivered${TAB}alice${TAB}1\$" "bob: delivered alice 1"
expect carol "^delivered${TAB}alice${TAB}1\$" "carol: delivered alice 1"
expect dave "^delivered${TAB}alice${TAB}1\$" "dave: delivered alice 1"
check "each sent line comes before its delivered line (alice to bob 1)" \
	[ "$(grep -nE "^sent${TAB}bob${TAB}1\$" "$(cl_out alice)" | cut -d: -f1)" -lt \
	  "$(grep -nE "^delivered${TAB}bob${TAB}1\$" "$(cl_out alice)" | cut -d: -f1)" ]
check "no message was reported twice" \
	[ "$(grep -c "^msg${TAB}alice${TAB}1${TAB}" "$(cl_out bob)")" -eq 1 -a \
	  "$(grep -c "^delivered${TAB}bob${TAB}1\$" "$(cl_out alice)")" -eq 1 ]

# ---- escaping: \t \n \\ and a literal TAB ----
cl_cmd alice 'send bob tab\there\nnewline back\\slash \x kept'
expect bob "^msg${TAB}alice${TAB}3${TAB}tab\\\\there\\\\nnewline back\\\\\\\\slash \\\\\\\\x kept\$" \
	"escapes round trip: TAB, newline and backslash come back as \\t \\n \\\\ (a lone backslash as \\\\)"
cl_cmd bob "send alice literal${TAB}tab and trailing\\"
expect alice "^msg${TAB}bob${TAB}2${TAB}literal\\\\ttab and trailing\\\\\\\\\$" \
	"a literal TAB in the text arrives as \\t, a trailing backslash as \\\\"
check "bob's msg line for the escaped text has exactly 4 fields" \
	[ "$(grep "^msg${TAB}alice${TAB}3${TAB}" "$(cl_out bob)" | awk -F'\t' '{print NF}')" = 4 ]
cl_cmd alice "send bob "
expect alice "^error${TAB}0${TAB}" "send with an empty text: error 0"
cl_cmd alice "send erin hello"
wait_count alice "^error${TAB}0${TAB}" 2
check "the error names the send it answers (a fourth field: send erin)" \
	[ "$(grep "^error${TAB}0${TAB}" "$(cl_out alice)" | tail -1 | cut -f4)" = "send erin" ]
check "a script's IFS=TAB read of three fields still gets the code" \
	[ "$(grep "^error${TAB}0${TAB}" "$(cl_out alice)" | tail -1 | { IFS=$TAB read -r ev code text; echo "$ev $code"; })" = "error 0" ]
check "send to a peer without a chat: error 0, nothing sent" \
	[ "$(grep -c "^sent${TAB}erin" "$(cl_out alice)")" -eq 0 ]

# ---- end and withdraw ----
cl_cmd dave "end alice"
expect alice "^ended${TAB}dave${TAB}left\$" "dave ends the chat: alice gets ended dave left"
cl_cmd dave "send alice too late"
expect dave "^error${TAB}0${TAB}" "sending in an ended chat: error 0"
cl_cmd dave "talk bob"
expect bob "^request${TAB}dave\$" "bob gets dave's request"
cl_cmd dave "end bob"
expect bob "^ended${TAB}dave${TAB}withdrawn\$" "dave withdraws: bob gets ended dave withdrawn"

# ---- kick (needs secmsgctl) ----
if [ -x "$CTL" ]; then
	"$CTL" --socket "$DCTL" kick bob --reason "testing" >"$CL_DIR/ctl.out" 2>&1
	check "secmsgctl kick bob exits 0" [ $? -eq 0 ]
	expect bob "^bye${TAB}kicked${TAB}testing\$" "kicked bob prints bye kicked testing"
	expect_exit bob 1 "kicked bob exits 1"
	expect alice "^ended${TAB}bob${TAB}kicked\$" "alice gets ended bob kicked"
else
	echo "SKIP: kick: $CTL is not built"
	cl_cmd bob quit
	expect alice "^ended${TAB}bob${TAB}left\$" "bob quits: alice gets ended bob left"
	expect_exit bob 0 "bob exits 0 after quit"
fi

# ---- takeover: alice logs in again ----
# Another machine: a state directory of its own (a client of version 2
# refuses to share one with a client of the same user that runs).
cl_start alice2 alice "${VIA[@]}" --state-dir "$CL_DIR/alice2-state"
expect alice2 "^ready${TAB}alice\$" "a second alice client logs in"
expect alice "^bye${TAB}elsewhere${TAB}" "the first alice client prints bye elsewhere"
expect_exit alice 1 "the first alice client exits 1"
expect carol "^ended${TAB}alice${TAB}disconnected\$" "carol gets ended alice disconnected"
cl_cmd alice2 "talk carol"
expect_count carol "^request${TAB}alice\$" 2 "the new alice session asks carol to talk"
cl_cmd carol "accept alice"
expect alice2 "^chat${TAB}carol${TAB}$FC\$" "the new alice session has a chat with carol"
cl_cmd carol "send alice $W2 after takeover"
expect alice2 "^msg${TAB}carol${TAB}1${TAB}$W2 after takeover\$" \
	"a new chat numbers its messages from 1 again"

# ---- quit ----
cl_cmd alice2 "send carol $W3 parting words"
cl_cmd alice2 quit
expect_exit alice2 0 "alice quits: exit 0"
expect carol "^ended${TAB}alice${TAB}left\$" "carol gets ended alice left"
expect carol "^msg${TAB}alice${TAB}1${TAB}$W3 parting words\$" \
	"a message sent just before quit still arrives"
kill -TERM "${CL_PID[carol]}"
expect_exit carol 0 "carol gets SIGTERM: exit 0"
cl_close dave
expect_exit dave 0 "dave's end of input: exit 0"

# ---- what the server relayed ----
kill -TERM "$PROXY_PID" 2>/dev/null
sz=$(stat -c %s "$CAP" 2>/dev/null || echo 0)
in_cap() { LC_ALL=C grep -a -q -F -- "$1" "$CAP"; }
check "the capture holds the relayed bytes ($sz bytes) and the usernames (sanity)" \
	eval '[ "$sz" -gt 10000 ] && in_cap alice && in_cap bob && in_cap carol && in_cap dave'
leaked=
for w in $W1 $W2 $W3 $W4 $W5 $W6 newline slash "after takeover" literal trailing; do
	in_cap "$w" && leaked="$leaked $w"
done
check "no chat plaintext in the relayed bytes${leaked:+ (found:$leaked)}" [ -z "$leaked" ]
leaked=
for w in $W1 $W2 $W3 $W4 $W5 $W6; do
	LC_ALL=C grep -a -q -F "$w" "$DDIR/secmsgd.log" && leaked="$leaked $w"
done
check "no chat plaintext in the daemon's debug log${leaked:+ (found:$leaked)}" [ -z "$leaked" ]
check "no client wrote a sanitizer report" \
	[ -z "$(grep -l -E 'Sanitizer|runtime error' "$CL_DIR"/*.err 2>/dev/null)" ]
daemon_stop && pass "secmsgd exits 0 after the session tests"

# ---- expiry, pacing, idle and keepalive: a daemon with default rates ----
dstart "request_timeout = 1s
idle_timeout = 3s" || { fail "secmsgd starts (request_timeout = 1s, idle_timeout = 3s)"; exit 1; }
cl_start ed dave --keepalive 1
expect ed "^ready${TAB}dave\$" "dave logs in with --keepalive 1 (idle_timeout = 3s)"
cl_start ec carol --keepalive 0
cl_start ea alice --keepalive 1
cl_start eb bob --keepalive 1
expect ec "^ready${TAB}carol\$" "carol logs in with --keepalive 0"
expect ea "^ready${TAB}alice\$" "alice logs in (second daemon)"
expect eb "^ready${TAB}bob\$" "bob logs in (second daemon)"
t0=$(now_us)
cl_cmd ea "talk bob"
expect eb "^request${TAB}alice\$" "bob gets alice's request"
expect ea "^refused${TAB}bob${TAB}expired\$" "unanswered request: alice gets refused bob expired" 10
t1=$(now_us)
expect eb "^ended${TAB}alice${TAB}withdrawn\$" "bob gets ended alice withdrawn" 5
check "the request expired after about 1 s ($(( (t1 - t0) / 1000 )) ms)" \
	[ $(( (t1 - t0) / 1000 )) -ge 900 -a $(( (t1 - t0) / 1000 )) -lt 8000 ]
n=$(cl_lines ea)
cl_cmd eb "accept alice"
expect eb "^error${TAB}.*${TAB}accept alice\$" "accepting an expired request: an error that names accept alice"
# Bob's next request reaches alice after anything his accept could have sent.
cl_cmd eb "talk alice"
expect_none ea "^chat${TAB}" "no chat after the expiry" "$n" "^request${TAB}bob\$"
cl_cmd eb "end alice"
expect ea "^ended${TAB}bob${TAB}withdrawn\$" "bob withdraws that request"

# 150 messages at once: the client paces them (and bob his receipts)
# under the server's default 50 records a second, so none is lost.
cl_cmd ea "talk bob"
expect_count eb "^request${TAB}alice\$" 2 "bob gets alice's second request"
# The accepting side may send at once: held until alice's HELLO.
cl_cmd eb "accept alice"
cl_cmd eb "send alice early bird"
expect ea "^msg${TAB}bob${TAB}1${TAB}early bird\$" "bob's message sent right after accept arrives"
expect eb "^delivered${TAB}alice${TAB}1\$" "bob: delivered alice 1 (sent right after accept)"
expect ea "^chat${TAB}bob${TAB}$FB\$" "alice: chat bob (second daemon)"
na=$(cl_lines ea)
nb=$(cl_lines eb)
t0=$(now_us)
for i in $(seq 1 150); do cl_cmd ea "send bob burst $i"; done
expect_count ea "^delivered${TAB}bob${TAB}" 150 "a burst of 150 messages: 150 delivered lines" 40
t1=$(now_us)
echo "  | 150 messages delivered in $(( (t1 - t0) / 1000 )) ms"
check "bob got the 150 messages in order, numbered 1 to 150" \
	[ "$(grep "^msg${TAB}alice${TAB}" "$(cl_out eb)" | cut -f3 | tr '\n' ' ')" = "$(seq -s ' ' 1 150) " ]
check "the last message arrived intact" grep -q "^msg${TAB}alice${TAB}150${TAB}burst 150\$" "$(cl_out eb)"
cl_sync ea
cl_sync eb
expect_none ea "^(error|ended)" "no error and no ended chat during the burst (alice)" \
	"$na" "^users${TAB}"
expect_none eb "^(error|ended)" "no error and no ended chat during the burst (bob)" \
	"$nb" "^users${TAB}"

# The longest text, and one byte more.
X4096=$(head -c 4096 /dev/zero | tr '\0' x)
cl_cmd ea "send bob $X4096"
wait_for eb "^msg${TAB}alice${TAB}151${TAB}"
check "a 4096-byte message arrives whole" \
	[ "$(cl_line eb "^msg${TAB}alice${TAB}151${TAB}")" = "msg${TAB}alice${TAB}151${TAB}$X4096" ]
cl_cmd ea "send bob ${X4096}y"
expect ea "^error${TAB}0${TAB}" "a 4097-byte message: error 0"
BS=$(printf '%4096s' '' | sed 's/ /\\\\/g')
cl_cmd ea "send bob $BS"
wait_for eb "^msg${TAB}alice${TAB}152${TAB}"
check "4096 escaped backslashes (8192 bytes on the command line) arrive whole" \
	[ "$(cl_line eb "^msg${TAB}alice${TAB}152${TAB}")" = "msg${TAB}alice${TAB}152${TAB}$BS" ]
cl_cmd ea "send bob after the long ones"
expect eb "^msg${TAB}alice${TAB}153${TAB}after the long ones\$" \
	"the 4097-byte text was not sent: the next message is 153"

# Idle: carol (no keepalive) is dropped; dave (keepalive 1 s) is not.
expect ec "^bye${TAB}idle${TAB}" "carol, idle with --keepalive 0, gets bye idle" 10
expect_exit ec 1 "carol exits 1 after bye idle"
# The server would have ended dave's session before answering his list.
cl_sync ed
expect_none ed "^bye" "dave, idle longer than carol but with --keepalive 1, is still logged in" \
	0 "^users${TAB}"
expect ed "^users${TAB}alice,bob\$" "dave's list still works: users alice,bob"

cl_cmd ea quit
expect eb "^ended${TAB}alice${TAB}left\$" "bob gets ended alice left (second daemon)"
cl_cmd eb quit
cl_close ed
expect_exit ea 0 "alice quits: exit 0 (second daemon)"
expect_exit eb 0 "bob quits: exit 0 (second daemon)"
expect_exit ed 0 "dave's end of input: exit 0 (second daemon)"
check "no client wrote a sanitizer report (second daemon)" \
	[ -z "$(grep -l -E 'Sanitizer|runtime error' "$CL_DIR"/e?.err 2>/dev/null)" ]
daemon_stop && pass "secmsgd exits 0 after the second daemon's tests"

echo "client.sh took $(( ($(now_us) - START) / 1000 )) ms"
[ "$FAILURES" -eq 0 ]
