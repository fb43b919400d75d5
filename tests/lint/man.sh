#!/bin/sh
# Lint every man page: "mandoc -Tlint -Wwarning" must print nothing.
# Prints "PASS: man NAME" or "FAIL: man NAME" per page (with mandoc's
# complaints after a FAIL); exits non-zero if any page fails.
cd "$(dirname "$0")/../.." || exit 1

if ! command -v mandoc >/dev/null 2>&1; then
	echo "FAIL: man (mandoc is not installed; run make deps)"
	exit 1
fi

status=0
found=0
for page in man/*.[1-8]; do
	[ -f "$page" ] || continue
	found=1
	name=$(basename "$page")
	if out=$(mandoc -Tlint -Wwarning "$page" 2>&1) && [ -z "$out" ]; then
		echo "PASS: man $name"
	else
		echo "FAIL: man $name"
		printf '%s\n' "$out" | sed 's/^/    /'
		status=1
	fi
done
if [ "$found" -eq 0 ]; then
	echo "FAIL: man (no pages in man/)"
	status=1
fi
exit $status
