#!/bin/bash
# valgrind.sh - the daemon's integration tests once more with the release
# secmsgd under valgrind memcheck: test_daemon (every opcode path,
# takeover, expiry, rate limit, timeouts, slow readers, reload, shutdown,
# with and without socket activation) and test_control (the control
# socket and secmsgctl). test_idle is left out: it is a measurement of
# 10,000 connections, and valgrind's own memory would be what it
# measured. Builds nothing.
#
# The test binaries are $SECMSG_BUILD/tests/integration/* (the ASan build
# is fine: only the daemon runs under valgrind); the daemon (and
# secmsgctl) come from $SECMSG_RELEASE, and tests/lib/tclient.c starts the
# daemon behind $SECMSG_DAEMON_WRAPPER. valgrind exits 99 on any error or
# definite leak, td_stop returns that status and the test fails; each
# daemon's valgrind log is also checked here. Logs:
# $SECMSG_BUILD/test-logs/valgrind/.
#
# SECMSG_TEST_FILTER (a cmocka pattern) picks tests, default all.
# Prints PASS:/FAIL: lines for tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
B=${SECMSG_BUILD:-build/asan}
R=${SECMSG_RELEASE:-build}
TESTS="test_daemon test_control"
VG=$(command -v valgrind || true)
LOGS=$B/test-logs/valgrind
failures=0

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

if [ -z "$VG" ]; then
	fail "valgrind is not installed (apt-get install valgrind)"
	exit 1
fi
for t in $TESTS; do
	if [ ! -x "$R/secmsgd" ] || [ ! -x "$B/tests/integration/$t" ]; then
		fail "need $R/secmsgd and $B/tests/integration/$t (make; make O=$B SAN=address,undefined tests)"
		exit 1
	fi
done
export SECMSG_PKI=${SECMSG_PKI:-$B/pki}
export SECMSG_VECTORS=${SECMSG_VECTORS:-tests/vectors}
tests/lib/mkpki.sh "$SECMSG_PKI" >/dev/null || { fail "mkpki"; exit 1; }

rm -rf "$LOGS"
mkdir -p "$LOGS"
for t in $TESTS; do
	out=$LOGS/$t.out
	start=$(date +%s)
	SECMSG_BUILD=$R \
	SECMSG_DAEMON_WRAPPER="$VG --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --track-origins=no --num-callers=30 --log-file=$PWD/$LOGS/secmsgd.%p.log" \
		timeout 1200 "$B/tests/integration/$t" >"$out" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	sed -e 's/^/  /' "$out"

	passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	failed=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	# cmocka 1.1.5 exits 0 when a group teardown fails (there, td_stop saw
	# the daemon exit non-zero: valgrind's 99): count those too.
	groups=$(grep -c '^\[  FAILED  \] GROUP' "$out")
	failed=$((failed + groups))
	if [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; then
		pass "$t with secmsgd under valgrind: $passed tests passed in ${secs}s"
	else
		fail "$t with secmsgd under valgrind: $passed passed, $failed failed, exit $rc (see $out)"
	fi
done

runs=0
bad=0
killed=0
for log in "$LOGS"/secmsgd.*.log; do
	[ -e "$log" ] || continue
	# No summary at all: SIGKILLed (test_control kills a daemon whose
	# worker it stalled); valgrind reports any other fatal signal.
	if ! grep -q 'ERROR SUMMARY:' "$log"; then
		killed=$((killed + 1))
		continue
	fi
	runs=$((runs + 1))
	if ! grep -q 'ERROR SUMMARY: 0 errors' "$log" ||
	   grep -q 'definitely lost: [1-9]' "$log"; then
		bad=$((bad + 1))
		echo "valgrind found errors or definite leaks: $log"
		sed -n '/^==[0-9]*== [A-Z].*\(Invalid\|uninitialised\|definitely lost in\|Mismatched\|overlap\)/,/^==[0-9]*== $/p' "$log" | head -60
	fi
done
if [ "$runs" -eq 0 ]; then
	fail "valgrind: no daemon log was written (was the wrapper used?)"
elif [ "$bad" -eq 0 ]; then
	pass "valgrind memcheck: no errors, no definite leaks in $runs secmsgd runs ($killed SIGKILLed by a test, not judged)"
else
	fail "valgrind memcheck: errors or definite leaks in $bad of $runs secmsgd runs"
fi
[ "$failures" -eq 0 ]
