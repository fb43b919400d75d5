#!/bin/bash
# client-example.sh - the script of secmsg-client(1)'s EXAMPLES ("A script
# that says hello to bob"), taken from the page as it is printed, run
# against a real secmsgd with the release client: with bob online it asks,
# bob accepts, bob gets "hello" and the script sees `delivered`; run again
# with bob offline it uses the conversation and sees `stored`. So the
# page's example says hello, and keeps doing so.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client-example.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 90 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh

HELLO=$CL_DIR/hello-bob
# The .EX block after the example's title, with the page's escapes undone.
sed -n '/^A script that says hello to bob/,/^\.EE/p' man/secmsg-client.1 |
	sed -n '/^\.EX/,/^\.EE/p' | sed '1d;$d' |
	sed -e 's/\\(aq/'"'"'/g' -e 's/\\-/-/g' -e 's/\\e/\\/g' >"$HELLO"
chmod +x "$HELLO"
check "the page has the script" grep -q '^coproc C' "$HELLO"

dstart "" alice bob || { fail "secmsgd starts"; exit 1; }
export PATH=$PWD/${SECMSG_RELEASE:-build}:$PATH
CONF=$(client_conf alice)
mkdir -p "$DDIR/cstate/alice"
run_hello() {
	timeout 20 "$HELLO" -c "$CONF" --state-dir "$DDIR/cstate/alice" \
		>"$CL_DIR/hello.out" 2>"$CL_DIR/hello.err"
}

cv_start bob bob
expect bob "^ready${TAB}bob\$" "bob logs in"
run_hello &
HPID=$!
expect bob "^request${TAB}alice\$" "the script asks bob to talk"
cl_cmd bob "accept alice"
expect bob "^msg${TAB}alice${TAB}1${TAB}hello\$" "bob gets hello"
wait "$HPID"
check "the script exits 0" [ $? -eq 0 ]
check "... after 'hello delivered'" \
	[ "$(cat "$CL_DIR/hello.out")" = "hello delivered" ]
cl_cmd bob quit
expect_exit bob 0 "bob quits"
run_hello
check "again, bob offline: exits 0" [ $? -eq 0 ]
check "... after 'hello stored'" \
	[ "$(cat "$CL_DIR/hello.out")" = "hello stored" ]
check "... and says nothing else" [ ! -s "$CL_DIR/hello.err" ]
[ "$FAILURES" -eq 0 ]
