#!/bin/bash
# secmsgd --check-config through the real binary: the normalised output of
# good configurations matches the golden files in tests/unit/config/, bad
# ones exit 1 with one "FILE:LINE: section.key: ..." line on stderr.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/daemon.sh
trap - EXIT
BIN=$SECMSG_BUILD/secmsgd
T=$(mktemp -d /tmp/secmsg-cc-XXXXXX)
trap 'rm -rf "$T"' EXIT
touch "$T/server.pem" "$T/server.key"

for good in tests/unit/config/good-minimal tests/unit/config/good-units tests/unit/config/good-ipv6; do
	name=$(basename "$good")
	cp "$good.conf" "$T/$name.conf"
	out=$("$BIN" --check-config -c "$T/$name.conf" 2>"$T/err"); rc=$?
	want=$(sed -e "s|@DIR@|$(realpath "$T")|g" -e "s|@NCPU@|$(nproc)|g" \
		-e "s|@SYSCONFDIR@|/etc|g" "$good.out")
	if [ $rc -eq 0 ] && [ "$out" = "$want" ]; then
		pass "check-config $name: exit 0, golden output"
	else
		fail "check-config $name: exit $rc"
		diff <(echo "$want") <(echo "$out") | head -20
		cat "$T/err"
	fi
done

bad() { # bad NAME CONTENT EXPECTED-STDERR-REGEX
	printf '%s\n' "$2" >"$T/$1.conf"
	"$BIN" -t -c "$T/$1.conf" >"$T/out" 2>"$T/err"; rc=$?
	if [ $rc -eq 1 ] && [ ! -s "$T/out" ] && grep -Eq "$3" "$T/err"; then
		pass "check-config $1: exit 1, $(cat "$T/err")"
	else
		fail "check-config $1: exit $rc, stderr: $(cat "$T/err")"
	fi
}
bad unknown-key "[server]
certificate = $T/server.pem
private_key = $T/server.key
colour = blue" "unknown-key\.conf:4: server\.colour: unknown key"
bad bad-duration "[server]
certificate = $T/server.pem
private_key = $T/server.key
[limits]
idle_timeout = soon" "bad-duration\.conf:5: limits\.idle_timeout: "
bad missing-key "[server]
certificate = $T/server.pem
private_key = $T/nowhere.key" "missing-key\.conf:3: server\.private_key: .*No such file"
# An empty control_socket: no control socket of secmsgd's own (it was
# refused here, while server.c and secmsgctl each read it another way).
printf '[server]\ncertificate = %s\nprivate_key = %s\ncontrol_socket =\n' \
	"$T/server.pem" "$T/server.key" >"$T/nosock.conf"
out=$("$BIN" -t -c "$T/nosock.conf" 2>"$T/err"); rc=$?
if [ $rc -eq 0 ] && grep -qx 'control_socket =' <<<"$out"; then
	pass "check-config nosock: exit 0, control_socket printed empty"
else
	fail "check-config nosock: exit $rc, $(cat "$T/err")"
fi
"$BIN" -t -c "$T/absent.conf" >/dev/null 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "absent.conf: No such file or directory" "$T/err"; then
	pass "check-config of a missing file: exit 1, $(cat "$T/err")"
else
	fail "check-config of a missing file: exit $rc, $(cat "$T/err")"
fi
"$BIN" --bogus >/dev/null 2>&1; rc=$?
check "secmsgd with a bad option exits 2" [ $rc -eq 2 ]
"$BIN" --help | grep -q -- "--check-config"
check "secmsgd --help documents --check-config" [ $? -eq 0 ]
[ "$FAILURES" -eq 0 ]
