#!/bin/bash
# client-crossed.sh - two users who `talk` each other at the same moment
# get one chat, not "already exists" (issue 18): real secmsg-client --batch
# processes and a real secmsgd of two workers (each pair's users on
# different ones), the two commands written back to back, ten times at
# protocol version 2 (each round a conversation, ended for good before
# the next) and five times at version 1. Whatever
# the order in which the server takes the two requests (one stands and the
# other is refused; or they cross and both are refused), each round ends
# with `chat` on both sides, and no one types `accept`.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client-crossed.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 150 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh

START=$(now_us)
ROUNDS_V2=10
ROUNDS_V1=5

# Each pair's two users on different workers (their logins dealt in
# turn): the requests can then cross between the workers, both refused.
export SECMSG_TEST_HOOKS=round-robin
dstart || { fail "secmsgd starts"; exit 1; }

# rounds A B N WHAT: N rounds of A and B asking each other at once.
rounds() {
	local a=$1 b=$2 n=$3 what=$4 i ok=0
	for i in $(seq 1 "$n"); do
		cl_cmd "$a" "talk $b"
		cl_cmd "$b" "talk $a"
		if wait_count "$a" "^chat${TAB}$b${TAB}" "$i" &&
		   wait_count "$b" "^chat${TAB}$a${TAB}" "$i"; then
			ok=$((ok + 1))
		else
			echo "round $i: no chat on both sides" >&2
		fi
		cl_cmd "$a" "end $b"
		wait_count "$b" "^ended${TAB}$a${TAB}" "$i" ||
			echo "round $i: $b saw no end" >&2
	done
	check "$what: $ok of $n rounds end in a chat on both sides" \
		[ "$ok" -eq "$n" ]
	# A request line is shown when the peer's request came in before the
	# client read its own `talk` (which then accepts it): no one types
	# accept in this test.
	echo "$what: request lines before the talk: $(cat "$(cl_out "$a")" \
		"$(cl_out "$b")" | grep -c "^request"), crossed at the client: the rest"
	check "$what: nobody was told 'exists'" \
		eval '! grep -q "^refused" "$(cl_out "$a")" "$(cl_out "$b")"'
	check "$what: no error line" \
		eval '! grep -q "^error" "$(cl_out "$a")" "$(cl_out "$b")"'
}

cv_start alice alice
cv_start bob bob
expect alice "^ready${TAB}alice\$" "alice logs in (version 2)"
expect bob "^ready${TAB}bob\$" "bob logs in (version 2)"
rounds alice bob "$ROUNDS_V2" "version 2"

CL_PROTO=1
cl_start carol carol
cl_start dave dave
expect carol "^ready${TAB}carol\$" "carol logs in (version 1)"
expect dave "^ready${TAB}dave\$" "dave logs in (version 1)"
rounds carol dave "$ROUNDS_V1" "version 1"

for n in alice bob carol dave; do
	cl_cmd "$n" quit
	expect_exit "$n" 0 "$n quits: exit 0"
done
check "no client wrote a sanitizer report" \
	[ -z "$(grep -l -E 'Sanitizer|runtime error' "$CL_DIR"/*.err 2>/dev/null)" ]
daemon_stop && pass "secmsgd exits 0"
echo "client-crossed.sh took $(( ($(now_us) - START) / 1000 )) ms"
[ "$FAILURES" -eq 0 ]
