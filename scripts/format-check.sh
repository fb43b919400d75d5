#!/bin/sh
# format-check.sh - check C sources against the repository's .clang-format.
#
#   scripts/format-check.sh                 every tracked .c and .h file
#   scripts/format-check.sh FILE...         these files
#   scripts/format-check.sh --since REF     only the lines changed since
#                                           git REF (clang-format-diff)
#
# Checks only: nothing is rewritten. Prints "PASS: format" or "FAIL:
# format" with how many files (or changed lines) differ and the first
# differences; exits 0 when clean, 1 when not, 2 when it cannot check
# (no clang-format, no .clang-format, not a git tree for --since).
# CLANG_FORMAT picks the binary (default clang-format).
cd "$(dirname "$0")/.." || exit 2

CF=${CLANG_FORMAT:-clang-format}
SHOW=${FORMAT_SHOW:-40}		# lines of differences shown

if ! command -v "$CF" >/dev/null 2>&1; then
	echo "FAIL: format ($CF is not installed; run make deps)"
	exit 2
fi
if [ ! -f .clang-format ]; then
	echo "FAIL: format (no .clang-format at the top of the tree)"
	exit 2
fi

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

if [ "${1:-}" = --since ]; then
	ref=${2:?--since needs a git revision}
	if ! git rev-parse --verify -q "$ref" >/dev/null; then
		echo "FAIL: format (no git revision $ref)"
		exit 2
	fi
	# clang-format-diff prints a diff of the changed lines only.
	git diff -U0 --no-color "$ref" -- '*.c' '*.h' |
		"${CF}-diff" -p1 -binary "$CF" -style=file >"$tmp/diff" 2>&1
	if [ ! -s "$tmp/diff" ]; then
		echo "PASS: format (lines changed since $ref)"
		exit 0
	fi
	n=$(grep -c '^+[^+]' "$tmp/diff")
	echo "FAIL: format: $n changed lines since $ref differ from .clang-format"
	head -n "$SHOW" "$tmp/diff" | sed 's/^/    /'
	exit 1
fi

if [ $# -gt 0 ]; then
	printf '%s\n' "$@" >"$tmp/files"
else
	git ls-files '*.c' '*.h' >"$tmp/files" 2>/dev/null ||
		find . -name build -prune -o \( -name '*.c' -o -name '*.h' \) \
			-print | sed 's|^\./||' >"$tmp/files"
fi

total=0 bad=0 lines=0
while IFS= read -r f; do
	[ -f "$f" ] || continue
	total=$((total + 1))
	"$CF" -style=file "$f" | diff -u "$f" - >"$tmp/one" 2>&1
	[ -s "$tmp/one" ] || continue
	bad=$((bad + 1))
	lines=$((lines + $(grep -c '^[-+][^-+]' "$tmp/one")))
	cat "$tmp/one" >>"$tmp/diff"
done <"$tmp/files"

if [ "$bad" -eq 0 ]; then
	echo "PASS: format ($total files)"
	exit 0
fi
echo "FAIL: format: $bad of $total files differ from .clang-format" \
	"($lines lines changed)"
head -n "$SHOW" "$tmp/diff" | sed 's/^/    /'
exit 1
