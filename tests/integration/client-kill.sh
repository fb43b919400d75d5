#!/bin/bash
# client-kill.sh - a stream of messages to a peer offline while secmsgd is
# killed again and again (issue 17), with real secmsg-client --batch
# processes: alice writes to bob, who is away, ROUNDS rounds of PER_ROUND
# messages; after each round secmsgd gets SIGKILL at a random moment (0 to
# 50 ms after the round's last send) and starts again, and alice's client
# connects again by itself and sends again what it saw no `stored` for.
# Then:
#   - every message alice's client numbered (`sent`) ends up `stored` (a
#     send typed while it reconnects is refused at once, unnumbered);
#   - the database holds each once, and no two of its records share a
#     (ratchet key, n) pair: the (key, nonce) of a message is never used
#     for another (e2e header: dh[32] || pn || n, secmsg-protocol(7));
#   - bob, at his login, is shown each message exactly once.
# test_queue.c kills 200 times with proto/ clients; this one checks the
# real client's side of the promise, with fewer kills.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client-kill.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 150 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh

ROUNDS=20
PER_ROUND=6
TOTAL=$((ROUNDS * PER_ROUND))

count() { LC_ALL=C grep -cE -- "$2" "$(cl_out "$1")"; }

dstart "messages_per_second = 1000" alice bob ||
	{ fail "secmsgd starts"; exit 1; }
cv_away alice bob

# ---- the stream, secmsgd killed after each round ----
# alice's client takes no message while it reconnects ("not connected"):
# each round waits for its login, as a user would.
kills=0
for r in $(seq 1 $ROUNDS); do
	wait_count alice "^ready${TAB}alice\$" "$r" 15 ||
		{ fail "alice logs in again after SIGKILL $((r - 1))"; break; }
	for i in $(seq 1 $PER_ROUND); do cl_cmd alice "send bob round $r msg $i"; done
	sleep "$(printf '0.%03d' $((RANDOM % 50)))"
	daemon_restart KILL || { fail "secmsgd starts again after SIGKILL $r"; break; }
	kills=$((kills + 1))
done
check "secmsgd killed (SIGKILL) and started again $kills times" [ "$kills" -eq $ROUNDS ]
# A send that came while the client was reconnecting was refused at once,
# with no number ("not connected"): the user knows it did not go. Every
# message it numbered (`sent bob N`) must end up stored.
wait_count alice "^ready${TAB}alice\$" $((ROUNDS + 1)) 15
cl_sync alice
wait_count alice "^users${TAB}" 1 15
sent_ids() { LC_ALL=C sed -n "s/^sent${TAB}bob${TAB}\([0-9]*\)\$/\1/p" "$(cl_out alice)" | sort -un; }
SENT=$(sent_ids | wc -l)
refused=$(count alice "^error${TAB}0${TAB}not connected")
expect_count alice "^stored${TAB}bob${TAB}[0-9]+\$" "$SENT" \
	"alice: each of the $SENT messages sent stored in the end, sent again after a kill ($refused refused while reconnecting)" 60
check "... each once" [ "$(LC_ALL=C sed -n "s/^stored${TAB}bob${TAB}//p" "$(cl_out alice)" | sort -un | wc -l)" -eq "$SENT" ]
check "no message was refused by the server" [ "$(count alice "^notsent")" -eq 0 ]
check "most messages went ($SENT of $TOTAL)" [ "$SENT" -ge $((TOTAL / 2)) ]
cl_cmd alice quit
expect_exit alice 0 "alice quits"

# ---- what the database holds (secmsgd stopped: the file is closed) ----
kill -TERM "$DPID"
wait "$DPID" 2>/dev/null
rows=$(python3 - "$DDIR/state/secmsgd.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
rows = db.execute("SELECT e2e FROM queued WHERE sender = 'alice' "
                  "AND recipient = 'bob'").fetchall()
# header = dh[32] || u32 pn || u32 n: the message key and nonce follow
# from (dh, n)
pairs = {(bytes(e[:32]), bytes(e[36:40])) for (e,) in rows}
print(len(rows), len(pairs))
EOF
)
check "the database holds the $SENT messages for bob, each (ratchet key, n) once ($rows)" \
	[ "$rows" = "$SENT $SENT" ]
check "secmsgd starts again" daemon_restart

# ---- bob is shown each once ----
cv_start bob2 bob
expect bob2 "^ready${TAB}bob\$" "bob logs in"
expect_count bob2 "^msg${TAB}alice${TAB}" "$SENT" "bob gets $SENT messages" 30
cl_sync bob2
expect bob2 "^users${TAB}" "bob's session answers"
shown=$(LC_ALL=C grep -E "^msg${TAB}alice${TAB}" "$(cl_out bob2)" | cut -f3 | sort -n)
check "bob is shown each message alice sent exactly once" \
	[ "$shown" = "$(sent_ids)" ]
cl_cmd bob2 quit
expect_exit bob2 0 "bob quits"
echo "kill points: $kills (SIGKILL) with real clients"
[ "$FAILURES" -eq 0 ]
