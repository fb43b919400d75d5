#!/bin/bash
# Run every test of secmsg and print one summary line for the whole suite:
#   N passed, N failed, N skipped
# Usage: tests/run.sh ASAN_BUILD_DIR RELEASE_BUILD_DIR [TSAN_BUILD_DIR]
#
# cmocka binaries report their own counts; shell tests print one line per
# check, "PASS: what", "FAIL: what" or "SKIP: what", and exit non-zero on
# any failure. Exits non-zero on any failure.
#
# The count must not hide gaps, so each of these is a failure line of its
# own, not silence: a test source (tests/*/test_*.c) without its binary,
# a test script without its run bit, a binary or script that ran no test,
# a skip that ALLOWED_SKIPS below does not list, a missing release or TSan
# build, a missing fuzz smoke. "N skipped" counts only the allowed skips
# (each is listed with its reason); an unexpected skip counts as failed.
# SECMSG_NO_FUZZ=1 leaves the fuzz smoke out on purpose (one allowed skip).
set -u
cd "$(dirname "$0")/.." || exit 1
B=${1:-build/asan}
R=${2:-build}
TS=${3:-}
export SECMSG_BUILD=$B SECMSG_RELEASE=$R
export SECMSG_PKI=$B/pki
export SECMSG_VECTORS=tests/vectors
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

# Skips that may legitimately happen: "PROGRAM|TEST|reason". PROGRAM is a
# test binary or script name, TEST the cmocka test name or the text of a
# script's "SKIP: " line. Keep it short: every entry is a hole in the
# suite, and the reason must say why the test cannot run, not why it
# would be inconvenient.
ALLOWED_SKIPS=(
	"test_config|empty.conf|secmsg is installed on this machine: the default /etc/secmsg/server.pem exists, and an empty configuration's error names it only when it is missing"
	"test_config|test_example_file|built with sysconfdir other than /etc: etc/secmsgd.conf shows the default paths"
)

passed=0
failed=0
skipped=0
failures=()
skips=()
LOG=$B/test-logs
mkdir -p "$LOG" || exit 1

note_fail() { failed=$((failed + $2)); failures+=("$1"); }

# allowed PROGRAM TEST: the reason if ALLOWED_SKIPS lists the skip.
allowed() {
	local e
	for e in "${ALLOWED_SKIPS[@]}"; do
		if [ "${e%%|*}" = "$1" ]; then
			e=${e#*|}
			[ "${e%%|*}" = "$2" ] && { echo "${e#*|}"; return 0; }
		fi
	done
	return 1
}

# count_skips PROGRAM <NAMES: skipped test names, one a line; count each
# allowed one in skipped and every other one in failed.
count_skips() {
	local name=$1 t why
	while IFS= read -r t; do
		[ -n "$t" ] || continue
		if why=$(allowed "$name" "$t"); then
			skipped=$((skipped + 1))
			skips+=("$name: $t ($why)")
		else
			note_fail "$name: unexpected skip of $t" 1
		fi
	done
}

# The sum of the numbers that sed pattern $1 extracts from file $2 (empty
# if none matched).
sum_of() {
	sed -n "$1" "$2" | awk '{s += $1} END {if (NR) print s}'
}

run_cmocka() {
	local bin=$1 name out p f s g rc names n
	name=$(basename "$bin")${2:+-$2}
	out=$LOG/$name.log
	timeout 900 "$bin" >"$out" 2>&1
	rc=$?
	cat "$out"
	# A binary may run several groups: add up every group's summary.
	p=$(sum_of 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out")
	f=$(sum_of 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out")
	s=$(sum_of 's/^\[  SKIPPED \] \([0-9]*\) test(s), listed below:$/\1/p' "$out")
	# A failed group set-up or teardown (a daemon that exited with a
	# sanitizer report, say) counts once; cmocka still exits 0 for it.
	g=$(grep -c '^\[  FAILED  \] GROUP' "$out")
	f=$((${f:-0} + g))
	passed=$((passed + ${p:-0}))
	# The names under each "N test(s), listed below:" (cmocka writes that
	# list to stderr, in one piece); a skip it does not name still counts.
	names=$(awk '/^\[  SKIPPED \] [0-9]+ test\(s\), listed below:$/ { n = $4; next }
		n > 0 && /^\[  SKIPPED \] / { sub(/^\[  SKIPPED \] /, ""); print; n-- }' "$out")
	count_skips "${name%-*}" <<<"$names"
	n=$(grep -c . <<<"$names")
	[ "${s:-0}" -gt "$n" ] && note_fail "$name: $((s - n)) skip(s) without a name" $((s - n))
	if [ "$f" -gt 0 ]; then
		note_fail "$name" "$f"
	elif [ $rc -ne 0 ] || [ -z "$p" ]; then
		note_fail "$name (exit $rc)" 1
	elif [ $((p + ${s:-0})) -eq 0 ]; then
		note_fail "$name (ran no test)" 1
	fi
}

# run_script SCRIPT [TIMEOUT [NAME]]
run_script() {
	local script=$1 name out p f rc
	name=${3:-$(basename "$script")}
	out=$LOG/$name.log
	echo "=== $name"
	timeout "${2:-1200}" "$script" >"$out" 2>&1
	rc=$?
	cat "$out"
	p=$(grep -c '^PASS: ' "$out")
	f=$(grep -c '^FAIL: ' "$out")
	passed=$((passed + p))
	count_skips "$name" < <(sed -n 's/^SKIP: //p' "$out")
	if [ "$f" -gt 0 ]; then
		note_fail "$name" "$f"
	elif [ $rc -ne 0 ]; then
		note_fail "$name (exit $rc)" 1
	elif [ "$p" -eq 0 ]; then
		note_fail "$name (ran no test)" 1
	fi
}

# run_binaries DIR: the binary of every tests/DIR/test_*.c, which must
# have been built.
run_binaries() {
	local src t
	for src in tests/"$1"/test_*.c; do
		[ -e "$src" ] || continue
		t=$B/tests/$1/$(basename "$src" .c)
		if [ -x "$t" ]; then
			run_cmocka "$t"
		else
			echo "=== $(basename "$t"): not built ($t)"
			note_fail "$(basename "$t") (not built: $t)" 1
		fi
	done
}

# need FILE WHAT: FILE must be an executable, or the run is incomplete.
need() {
	[ -x "$1" ] && return 0
	echo "=== $2 is missing: $1"
	note_fail "$2 (missing: $1)" 1
	return 1
}

echo "=== making the test PKI in $SECMSG_PKI"
if ! tests/lib/mkpki.sh "$SECMSG_PKI" >"$LOG/mkpki.log" 2>&1; then
	cat "$LOG/mkpki.log"
	note_fail "mkpki" 1
fi

# What the integration and system tests run: the release programs.
[ -e daemon/main.c ] && need "$R/secmsgd" "release secmsgd"
[ -e client/main.c ] && need "$R/secmsg-client" "release secmsg-client"
[ -e ctl/main.c ] && need "$R/secmsgctl" "release secmsgctl"

run_binaries unit
run_binaries integration
# Hostile load against a real daemon (tests/stress/): the RSS test runs
# the release secmsgd, the others the sanitizer build.
run_binaries stress
# The daemon's threads under ThreadSanitizer: the concurrent integration
# test once more against a TSan build of secmsgd (a report stops it).
if [ -z "$TS" ]; then
	echo "=== no TSan build given: test_daemon against a TSan secmsgd does not run"
	note_fail "tsan (no TSan build directory given: tests/run.sh ASAN RELEASE TSAN)" 1
elif need "$TS/secmsgd" "TSan secmsgd" &&
	need "$B/tests/integration/test_daemon" "test_daemon for TSan"; then
	echo "=== test_daemon against the ThreadSanitizer build of secmsgd"
	SECMSG_BUILD=$TS run_cmocka "$B/tests/integration/test_daemon" tsan
fi
for t in tests/integration/*.sh tests/stress/*.sh tests/system/*.sh tests/lint/*.sh; do
	[ -e "$t" ] || continue
	if [ -x "$t" ]; then
		run_script "$t"
	else
		echo "=== $t: not executable"
		note_fail "$t (not executable: chmod +x)" 1
	fi
done
# One-line mutants of the security checks (tests/mutants/list), each in
# a scratch copy of the tree: the test named for each must fail on it.
# About 4 minutes on 2 busy cores.
if need tests/mutants/run.sh "mutants"; then
	MUTANTS_BUILD=$B run_script tests/mutants/run.sh 1800 mutants
fi
# libFuzzer targets, 30 s each (make fuzz FUZZ_SECONDS=N for longer runs).
if [ -n "${SECMSG_NO_FUZZ:-}" ]; then
	echo "=== fuzz smoke left out (SECMSG_NO_FUZZ)"
	skipped=$((skipped + 1))
	skips+=("smoke.sh: fuzz smoke (left out on purpose: SECMSG_NO_FUZZ)")
elif need tests/fuzz/smoke.sh "fuzz smoke"; then
	FUZZ_NOBUILD=1 run_script tests/fuzz/smoke.sh 1800
fi

echo
for s in "${skips[@]}"; do
	echo "skipped: $s"
done
for f in "${failures[@]}"; do
	echo "failed: $f"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
