#!/bin/bash
# Run every test of secmsg and print one summary line for the whole suite:
#   N passed, N failed
# Usage: tests/run.sh ASAN_BUILD_DIR RELEASE_BUILD_DIR [TSAN_BUILD_DIR]
#
# cmocka binaries report their own counts; shell tests print one line per
# check, "PASS: what" or "FAIL: what", and exit non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
B=${1:-build/asan}
R=${2:-build}
TS=${3:-}
export SECMSG_BUILD=$B SECMSG_RELEASE=$R
export SECMSG_PKI=$B/pki
export SECMSG_VECTORS=tests/vectors
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

passed=0
failed=0
failures=()
LOG=$B/test-logs
mkdir -p "$LOG"

note_fail() { failed=$((failed + $2)); failures+=("$1"); }

run_cmocka() {
	local bin=$1 name out p f g rc
	name=$(basename "$bin")${2:+-$2}
	out=$LOG/$name.log
	timeout 900 "$bin" >"$out" 2>&1
	rc=$?
	cat "$out"
	# A binary may run several groups: add up every group's summary.
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {if (NR) print s}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {if (NR) print s}')
	# A failed group set-up or teardown (a daemon that exited with a
	# sanitizer report, say) counts once; cmocka still exits 0 for it.
	g=$(grep -c '^\[  FAILED  \] GROUP' "$out")
	f=$((${f:-0} + g))
	passed=$((passed + ${p:-0}))
	if [ "$f" -gt 0 ]; then
		note_fail "$name" "$f"
	elif [ $rc -ne 0 ] || [ -z "$p" ]; then
		note_fail "$name (exit $rc)" 1
	fi
}

run_script() {
	local script=$1 name out p f rc
	name=$(basename "$script")
	out=$LOG/$name.log
	echo "=== $name"
	timeout "${2:-1200}" "$script" >"$out" 2>&1
	rc=$?
	cat "$out"
	p=$(grep -c '^PASS: ' "$out")
	f=$(grep -c '^FAIL: ' "$out")
	passed=$((passed + p))
	if [ "$f" -gt 0 ]; then
		note_fail "$name" "$f"
	elif [ $rc -ne 0 ] || [ "$p" -eq 0 ]; then
		note_fail "$name (exit $rc)" 1
	fi
}

echo "=== making the test PKI in $SECMSG_PKI"
if ! tests/lib/mkpki.sh "$SECMSG_PKI" >"$LOG/mkpki.log" 2>&1; then
	cat "$LOG/mkpki.log"
	note_fail "mkpki" 1
fi

for t in "$B"/tests/unit/test_*; do
	[ -x "$t" ] && run_cmocka "$t"
done
for t in "$B"/tests/integration/test_*; do
	[ -x "$t" ] && run_cmocka "$t"
done
# Hostile load against a real daemon (tests/stress/): the RSS test runs
# the release secmsgd, the others the sanitizer build.
for t in "$B"/tests/stress/test_*; do
	[ -x "$t" ] && run_cmocka "$t"
done
# The daemon's threads under ThreadSanitizer: the concurrent integration
# test once more against a TSan build of secmsgd (a report stops it).
if [ -n "$TS" ] && [ -x "$TS/secmsgd" ] && [ -x "$B/tests/integration/test_daemon" ]; then
	echo "=== test_daemon against the ThreadSanitizer build of secmsgd"
	SECMSG_BUILD=$TS run_cmocka "$B/tests/integration/test_daemon" tsan
fi
for t in tests/integration/*.sh tests/stress/*.sh tests/system/*.sh tests/lint/*.sh; do
	[ -x "$t" ] && run_script "$t"
done
# libFuzzer targets, 30 s each (make fuzz FUZZ_SECONDS=N for longer runs).
if [ -x tests/fuzz/smoke.sh ] && [ -z "${SECMSG_NO_FUZZ:-}" ]; then
	FUZZ_NOBUILD=1 run_script tests/fuzz/smoke.sh 1800
fi

echo
if [ ${#failures[@]} -gt 0 ]; then
	echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
