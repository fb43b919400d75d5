#!/bin/bash
# run.sh - apply each one-line mutant of tests/mutants/list, one at a time,
# in a scratch copy of the tree, and check that its test fails (make
# mutants; issue 13 section 7).
#
#   tests/mutants/run.sh [NAME...]      every mutant, or the ones named
#   MUTANTS_LIST_ONLY=1 tests/mutants/run.sh
#                                       only check that the list follows the
#                                       code (a fraction of a second)
#
# The scratch copy is the working tree as it is (tracked and untracked
# files, not the ignored ones), with a copy of the ASan build directory
# (MUTANTS_BUILD, default build/asan) when there is one, so that only what
# a mutant touches is rebuilt. The worktree itself is never changed.
#
# First every entry is checked against the code (its text must occur
# exactly once in its file), the scratch tree is built, and each distinct
# test command must pass there without any mutant. Then, for each mutant:
# replace the text, rebuild the test's binaries (and, unless it is a unit
# test, secmsgd, secmsg-client and secmsgctl, which it may run) with
# -Wno-error, run the
# test under a timeout (MUTANTS_TIMEOUT seconds, default 300), put the file
# back. (About 4 minutes for the whole list on 2 busy CPUs; make check
# runs it through tests/run.sh.) Prints one line per mutant:
#   PASS: mutant N (NAME): killed by TEST
#   FAIL: mutant N (NAME): SURVIVED (TEST passed)
# and FAIL lines for entries that no longer match the code, do not
# compile, or whose test fails without the mutant. Exits non-zero on any
# FAIL. Logs in MUTANTS_BUILD/test-logs/mutants/ of the tree run from.
set -u
cd "$(dirname "$0")/../.." || exit 1
TOP=$PWD
LIST=${MUTANTS_LIST:-$TOP/tests/mutants/list}
B=${MUTANTS_BUILD:-build/asan}
TMO=${MUTANTS_TIMEOUT:-300}
LOGS=$TOP/$B/test-logs/mutants
T0=$(date +%s)
FAILURES=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }

mkdir -p "$LOGS" && rm -f "$LOGS"/*.log
S=$(mktemp -d /tmp/secmsg-mutants-XXXXXX) || exit 1
cleanup() {
	[ -n "${MUTANTS_KEEP:-}" ] && { echo "kept $S"; return; }
	rm -rf "$S"
}
trap cleanup EXIT
trap 'fail "mutants: interrupted"; exit 1' INT TERM HUP

# ---- the list ----

# Parallel arrays, one element per entry.
NAME=() FILE=() FROM=() TO=() TEST=() CLAIM=()
parse() {
	local line key val n=-1
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in
		'#'* ) continue ;;
		'') continue ;;
		esac
		key=${line%%:*}
		val=${line#*:}
		val=${val#"${val%%[! ]*}"}	# the spaces after "key:"
		case $key in
		name)
			n=$((n + 1))
			NAME[n]=$val FILE[n]= FROM[n]= TO[n]= TEST[n]= CLAIM[n]= ;;
		file) FILE[n]=$val ;;
		from) FROM[n]=$val ;;
		to) TO[n]=$val ;;
		test) TEST[n]=$val ;;
		claim) CLAIM[n]=$val ;;
		*) fail "mutants: $LIST: unknown line '$line'" ;;
		esac
	done <"$LIST"
}
parse

# mutate FILE FROM TO [--check]: replace the one occurrence of FROM (with
# \n \t \\ escapes) by TO; return 2 if FROM is not there, 3 if it is there
# more than once. With --check, change nothing.
unescape() {
	local s=$1 ph=$'\001'
	s=${s//\\\\/$ph}
	s=${s//\\n/$'\n'}
	s=${s//\\t/$'\t'}
	printf '%s' "${s//$ph/\\}"
}
mutate() {
	local text from to rest n
	IFS= read -r -d '' text <"$1"
	from=$(unescape "$2"; echo x)
	from=${from%x}
	to=$(unescape "$3"; echo x)
	to=${to%x}
	[ -n "$from" ] || return 2
	rest=${text//"$from"/}
	n=$(((${#text} - ${#rest}) / ${#from}))
	[ "$n" -eq 1 ] || return $((n == 0 ? 2 : 3))
	[ "${4:-}" = --check ] && return 0
	printf '%s' "${text/"$from"/"$to"}" >"$1"
}

# Which entries are run: all, or those named on the command line.
want() {
	local a
	[ $# -eq 1 ] && return 0
	for a in "${@:2}"; do [ "$a" = "$1" ] && return 0; done
	return 1
}

SEL=()
for i in "${!NAME[@]}"; do
	want "${NAME[i]}" "$@" || continue
	n=$((i + 1))
	if [ -z "${FILE[i]}" ] || [ -z "${FROM[i]}" ] || [ -z "${TEST[i]}" ]; then
		fail "mutant $n (${NAME[i]}): needs file, from and test"
		continue
	fi
	if [ ! -f "${FILE[i]}" ]; then
		fail "mutant $n (${NAME[i]}): ${FILE[i]} does not exist (update the list)"
		continue
	fi
	mutate "${FILE[i]}" "${FROM[i]}" "${TO[i]}" --check
	case $? in
	0) SEL+=("$i") ;;
	2) fail "mutant $n (${NAME[i]}): '${FROM[i]}' is not in ${FILE[i]} (update the list)" ;;
	*) fail "mutant $n (${NAME[i]}): '${FROM[i]}' is in ${FILE[i]} more than once (give more context)" ;;
	esac
done
[ $# -gt 0 ] && [ ${#SEL[@]} -eq 0 ] && [ "$FAILURES" -eq 0 ] &&
	fail "mutants: none of '$*' is in $LIST"
if [ -n "${MUTANTS_LIST_ONLY:-}" ]; then
	for i in "${SEL[@]}"; do
		pass "mutant $((i + 1)) (${NAME[i]}): its text is in ${FILE[i]} once"
	done
	[ ${#NAME[@]} -gt 0 ] || fail "mutants: $LIST has no entry"
	[ "$FAILURES" -eq 0 ]
	exit
fi

# ---- the scratch tree ----

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -z --cached --others --exclude-standard |
		tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$S"
else
	tar --exclude=./build --exclude=./demo -cf - . | tar -xf - -C "$S"
fi
if [ -d "$B" ]; then
	mkdir -p "$S/$(dirname "$B")"
	cp -a "$B" "$S/$B"
	rm -rf "$S/$B/test-logs"
fi
cd "$S" || exit 1
export SECMSG_BUILD=$B SECMSG_RELEASE=$B SECMSG_PKI=$B/pki SECMSG_VECTORS=tests/vectors
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
MK=(nice make --no-print-directory -j2 O="$B" SAN=address,undefined)

if ! "${MK[@]}" tests >"$LOGS/build.log" 2>&1; then
	fail "mutants: the scratch tree does not build (see $LOGS/build.log)"
	tail -20 "$LOGS/build.log"
	exit 1
fi
if ! tests/lib/mkpki.sh "$SECMSG_PKI" >"$LOGS/mkpki.log" 2>&1; then
	fail "mutants: mkpki (see $LOGS/mkpki.log)"
	exit 1
fi

# The command with @B@ expanded, and what to rebuild for it: the binaries
# it names, and the programs a test against a real daemon runs.
cmd_of() { printf '%s' "${TEST[$1]//@B@/$B}"; }
targets_of() {
	local w t=() progs=1
	for w in $(cmd_of "$1"); do
		case $w in
		"$B"/tests/unit/*) t+=("$w") progs= ;;
		"$B"/*) t+=("$w") ;;
		*/*.sh) progs=1; break ;;
		esac
	done
	[ -n "$progs" ] && t+=("$B/secmsgd" "$B/secmsg-client" "$B/secmsgctl")
	printf '%s\n' "${t[@]}"
}
# run_test I LOG: the test of entry I, bounded; its exit status.
run_test() {
	# A subshell: the shell's "Aborted" notice goes to the log, not here.
	(timeout -k 10 "$TMO" bash -c "$(cmd_of "$1")"; exit $?) >"$2" 2>&1
}

# ---- each test passes without a mutant ----

declare -A BASE	# test command -> 0 (passes) or its status
for i in "${SEL[@]}"; do
	c=$(cmd_of "$i")
	[ -n "${BASE[$c]:-}" ] && continue
	run_test "$i" "$LOGS/baseline-$((i + 1)).log"
	BASE[$c]=$?
	if [ "${BASE[$c]}" -ne 0 ]; then
		fail "mutants: '$c' fails without any mutant (exit ${BASE[$c]}, $LOGS/baseline-$((i + 1)).log): its mutants are not judged"
	fi
done

# ---- the mutants ----

killed=0 survived=0
for i in "${SEL[@]}"; do
	n=$((i + 1))
	what="mutant $n (${NAME[i]})"
	c=$(cmd_of "$i")
	[ "${BASE[$c]}" -eq 0 ] || continue
	f=${FILE[i]}
	cp -p "$f" "$f.orig"
	mutate "$f" "${FROM[i]}" "${TO[i]}"
	mapfile -t tg < <(targets_of "$i")
	log=$LOGS/$n-${NAME[i]}.log
	t0=$(date +%s)
	if ! "${MK[@]}" CFLAGS=-Wno-error "${tg[@]}" >"$log" 2>&1; then
		fail "$what: does not compile (see $log)"
	else
		t1=$(date +%s)
		run_test "$i" "$log.test"
		rc=$?
		cat "$log.test" >>"$log"
		rm -f "$log.test"
		if [ $rc -ne 0 ]; then
			killed=$((killed + 1))
			pass "$what: killed by $c (exit $rc$([ $rc -eq 124 ] && echo ", timed out"); build $((t1 - t0)) s, test $(($(date +%s) - t1)) s)"
		else
			survived=$((survived + 1))
			fail "$what: SURVIVED ($c passed) - ${CLAIM[i]}"
		fi
	fi
	# Put the file back, newer than anything built from the mutant.
	mv -f "$f.orig" "$f"
	touch "$f"
done

echo "mutants: $killed killed, $survived survived of ${#SEL[@]} in $(($(date +%s) - T0)) s"
[ "$FAILURES" -eq 0 ]
