#!/bin/bash
# Run the libFuzzer targets of tests/fuzz/ for a while each.
#   tests/fuzz/smoke.sh [SECONDS [TARGET...]]
# SECONDS defaults to 30 (the make check smoke test); every target by
# default. Builds them first (make fuzz FUZZ_SECONDS=0) unless
# FUZZ_NOBUILD is set; FUZZ_O picks the build directory (build/fuzz).
#
# Each target runs on its seed corpus tests/fuzz/corpus/NAME (read-only)
# and a writable corpus $FUZZ_O/corpus-NAME that keeps what it finds
# between runs. Prints "PASS: fuzz NAME (N execs)" or "FAIL: fuzz NAME"
# per target; a failure shows the end of libFuzzer's log (the stack trace)
# and the input it saved in $FUZZ_O/artifacts/. Exits non-zero if any
# target crashed, leaked, timed out or did not run.
set -u
cd "$(dirname "$0")/../.." || exit 1

secs=${1:-30}
[ $# -gt 0 ] && shift
O=${FUZZ_O:-build/fuzz}
mkdir -p "$O/logs" "$O/artifacts" || exit 1

if [ -z "${FUZZ_NOBUILD:-}" ]; then
	if ! make --no-print-directory fuzz FUZZ_SECONDS=0 FUZZ_O="$O" \
	    >"$O/logs/build.log" 2>&1; then
		echo "FAIL: fuzz (build)"
		tail -40 "$O/logs/build.log" | sed 's/^/    /'
		exit 1
	fi
fi

if [ $# -gt 0 ]; then
	targets=("$@")
else
	targets=()
	for src in tests/fuzz/fuzz_*.c; do
		t=${src#tests/fuzz/fuzz_}
		t=${t%.c}
		[ "$t" = common ] || targets+=("$t")
	done
fi

# Crashes and leaks must stop a target; libFuzzer saves the input.
export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${FUZZ_UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
for t in "${targets[@]}"; do
	bin=$O/fuzz_$t
	seeds=tests/fuzz/corpus/$t
	work=$O/corpus-$t
	log=$O/logs/$t.log
	if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
		echo "FAIL: fuzz $t (no $bin or no $seeds)"
		status=1
		continue
	fi
	mkdir -p "$work"
	timeout $((secs + 300)) "$bin" -max_total_time="$secs" \
		-print_final_stats=1 -timeout=20 -rss_limit_mb=2048 \
		-artifact_prefix="$O/artifacts/$t-" "$work" "$seeds" \
		>"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	if [ $rc -eq 0 ] && [ -n "$execs" ]; then
		echo "PASS: fuzz $t ($execs execs)"
	else
		echo "FAIL: fuzz $t (exit $rc)"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*property violated|.*runtime error)' \
			"$log" | head -5 | sed 's/^/    /'
		tail -60 "$log" | sed 's/^/    /'
		status=1
	fi
done
exit $status
