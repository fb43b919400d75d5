#!/bin/bash
# run-sh.sh - tests/run.sh itself: the count must not hide gaps (issue 13
# section 7).
#
# Runs the tree's tests/run.sh on two small fake trees (stub programs
# that print what cmocka or a test script would) and checks its summary
# line and exit status. The "gaps" tree has a binary that skips a test, one
# that ran 0 tests, a test source without its binary, a script without
# its run bit, a script that skips, one that prints nothing, a TSan build
# directory without secmsgd, a release build without secmsgctl and no
# fuzz smoke: each must be a failure line
# and the run must fail. The "clean" tree has only passing tests and one
# skip that run.sh's allow-list names: the run must pass and count it as
# skipped.
#
# One "PASS: what" or "FAIL: what" line per check; exits non-zero on any
# failure. A few seconds; needs nothing but bash.
set -u
cd "$(dirname "$0")/../.." || exit 1
RUNSH=$PWD/tests/run.sh
FAILURES=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
check() {
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

W=$(mktemp -d /tmp/secmsg-run-sh-XXXXXX) || exit 1
trap 'rm -rf "$W"' EXIT

# stub FILE MODE <TEXT: an executable (or not, MODE) printing TEXT; lines
# starting with "2>" go to stderr, as cmocka writes its summary there.
stub() {
	{
		echo '#!/bin/sh'
		while IFS= read -r l; do
			case $l in
			"2>"*) printf "printf '%%s\\\\n' '%s' >&2\n" "${l#2>}" ;;
			*) printf "printf '%%s\\\\n' '%s'\n" "$l" ;;
			esac
		done
	} >"$1"
	chmod "$2" "$1"
}

# cmocka_ok NAME...: cmocka's output for a group whose tests all pass.
cmocka_ok() {
	echo "[==========] Running $# test(s)."
	for t in "$@"; do
		echo "[ RUN      ] $t"
		echo "[       OK ] $t"
	done
	echo "[==========] $# test(s) run."
	echo "2>[  PASSED  ] $# test(s)."
}

# cmocka_skip PASSING SKIPPED: one passes, the other calls skip().
cmocka_skip() {
	cat <<EOF
[==========] Running 2 test(s).
[ RUN      ] $1
[       OK ] $1
[ RUN      ] $2
[  SKIPPED ] $2
[==========] 2 test(s) run.
2>[  PASSED  ] 1 test(s).
2>[  SKIPPED ] 1 test(s), listed below:
2>[  SKIPPED ] $2
2>
2> 1 SKIPPED TEST(S)
EOF
}

# tree DIR: the parts both fake trees share (the runner, a PKI maker, the
# release programs, a unit test that passes, a script that passes, the
# mutants' list check).
tree() {
	local d=$1
	mkdir -p "$d/tests/lib" "$d/tests/unit" "$d/tests/integration" \
		"$d/daemon" "$d/client" "$d/ctl" "$d/build/asan/tests/unit" \
		"$d/build/asan/tests/integration" "$d/build/tsan"
	cp "$RUNSH" "$d/tests/run.sh"
	printf '#!/bin/sh\nmkdir -p "$1"\n' >"$d/tests/lib/mkpki.sh"
	chmod 755 "$d/tests/lib/mkpki.sh"
	for p in daemon/secmsgd client/secmsg-client ctl/secmsgctl; do
		: >"$d/${p%/*}/main.c"
		stub "$d/build/${p#*/}" 755 </dev/null
	done
	: >"$d/tests/unit/test_ok.c"
	cmocka_ok test_one test_two | stub "$d/build/asan/tests/unit/test_ok" 755
	echo "PASS: ok" | stub "$d/tests/integration/ok.sh" 755
	mkdir -p "$d/tests/mutants"
	echo "PASS: mutant 1 (x): its text is in x.c once" |
		stub "$d/tests/mutants/run.sh" 755
}

# run DIR: run the fake tree's runner; its output in DIR.out, status in DIR.rc.
run() {
	(cd "$1" && timeout 60 tests/run.sh build/asan build build/tsan) >"$1.out" 2>&1
	echo $? >"$1.rc"
}
summary() { tail -n 1 "$1.out"; }
has_line() { grep -qF -- "$2" "$1.out"; }

# ---- a tree with every kind of gap ----
G=$W/gaps
tree "$G"
: >"$G/tests/unit/test_skip.c"
cmocka_skip test_runs test_needs_pki | stub "$G/build/asan/tests/unit/test_skip" 755
: >"$G/tests/unit/test_zero.c"
cmocka_ok | stub "$G/build/asan/tests/unit/test_zero" 755
: >"$G/tests/unit/test_gone.c"		# no binary
echo "PASS: would pass" | stub "$G/tests/integration/norun.sh" 644
printf 'PASS: a\nSKIP: b: not built\n' | stub "$G/tests/integration/skips.sh" 755
stub "$G/tests/integration/empty.sh" 755 </dev/null
rm "$G/build/secmsgctl"
# build/tsan has no secmsgd; there is no tests/fuzz/smoke.sh
run "$G"

check "gaps: the run fails (exit $(cat "$G.rc"))" [ "$(cat "$G.rc")" -ne 0 ]
# test_ok 2, test_skip 1, ok.sh 1, skips.sh 1, the list check 1; one
# failure for each of the 9 gaps.
check "gaps: summary '$(summary "$G")' is '6 passed, 9 failed, 0 skipped'" \
	[ "$(summary "$G")" = "6 passed, 9 failed, 0 skipped" ]
check "gaps: a cmocka skip not in the allow-list is a failure" \
	has_line "$G" "failed: test_skip: unexpected skip of test_needs_pki"
check "gaps: a binary that ran 0 tests is a failure" \
	has_line "$G" "failed: test_zero (ran no test)"
check "gaps: a test source without its binary is a failure" \
	has_line "$G" "failed: test_gone (not built"
check "gaps: a script without its run bit is a failure" \
	has_line "$G" "failed: tests/integration/norun.sh (not executable"
check "gaps: a script's SKIP line not in the allow-list is a failure" \
	has_line "$G" "failed: skips.sh: unexpected skip of b: not built"
check "gaps: a script that printed no PASS line is a failure" \
	has_line "$G" "failed: empty.sh (ran no test)"
check "gaps: a TSan build directory without secmsgd is a failure" \
	has_line "$G" "failed: TSan secmsgd (missing"
check "gaps: a missing release program is a failure" \
	has_line "$G" "failed: release secmsgctl (missing"
check "gaps: no fuzz smoke is a failure" \
	has_line "$G" "failed: fuzz smoke (missing"

# ---- a clean tree: passes, with one allowed skip ----
C=$W/clean
tree "$C"
: >"$C/tests/unit/test_config.c"
cmocka_skip test_good empty.conf | stub "$C/build/asan/tests/unit/test_config" 755
: >"$C/tests/integration/test_daemon.c"
cmocka_ok test_login | stub "$C/build/asan/tests/integration/test_daemon" 755
stub "$C/build/tsan/secmsgd" 755 </dev/null
mkdir -p "$C/tests/fuzz"
echo "PASS: fuzz x (1 execs)" | stub "$C/tests/fuzz/smoke.sh" 755
run "$C"

check "clean: the run passes (exit $(cat "$C.rc"))" [ "$(cat "$C.rc")" -eq 0 ]
# test_ok 2, test_config 1, test_daemon 1 and once more against TSan,
# ok.sh 1, the list check 1, the fuzz smoke 1; the allowed skip.
check "clean: summary '$(summary "$C")' is '8 passed, 0 failed, 1 skipped'" \
	[ "$(summary "$C")" = "8 passed, 0 failed, 1 skipped" ]
check "clean: the allowed skip is listed with its reason" \
	has_line "$C" "skipped: test_config: empty.conf (secmsg is installed"

if [ "$FAILURES" -ne 0 ]; then
	for d in "$G" "$C"; do
		echo "--- tests/run.sh in the ${d##*/} tree said:"
		sed 's/^/    /' "$d.out"
	done
fi
[ "$FAILURES" -eq 0 ]
