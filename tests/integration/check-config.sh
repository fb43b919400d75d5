#!/bin/bash
# secmsgd --check-config through the real binary: the normalised output of
# good configurations matches the golden files in tests/unit/config/; bad
# ones exit 78 (EX_CONFIG) with one line on stderr naming the file: a
# "FILE:LINE: section.key: ..." line for the configuration file, or the
# certificate, key or users directory that start-up could not load (the
# check loads them as start-up does). --credentials DIR resolves a
# relative private_key as the service does in $CREDENTIALS_DIRECTORY, and
# the stand-in secmsgd.service hands over for a missing key file is named.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/daemon.sh
trap - EXIT
BIN=$SECMSG_BUILD/secmsgd
T=$(mktemp -d /tmp/secmsg-cc-XXXXXX)
trap 'rm -rf "$T"' EXIT
tests/lib/mkpki.sh "$SECMSG_PKI" >/dev/null || { fail "mkpki"; exit 1; }
P=$SECMSG_PKI
cp "$P/server.pem" "$P/server.key" "$T/"
mkdir "$T/users"
cp "$P/alice.pub" "$T/users/alice.pem"

# The golden files name the default users directory, which need not
# exist here: point users_dir at $T/users, in the file and the output.
for good in tests/unit/config/good-minimal tests/unit/config/good-units tests/unit/config/good-ipv6; do
	name=$(basename "$good")
	sed "/^\[server\]/a users_dir = users" "$good.conf" >"$T/$name.conf"
	out=$("$BIN" --check-config -c "$T/$name.conf" 2>"$T/err"); rc=$?
	want=$(sed -e "s|@DIR@|$(realpath "$T")|g" -e "s|@NCPU@|$(nproc)|g" \
		-e "s|^users_dir = @SYSCONFDIR@/secmsg/users$|users_dir = $(realpath "$T")/users|" \
		-e "s|@SYSCONFDIR@|/etc|g" "$good.out")
	if [ $rc -eq 0 ] && [ "$out" = "$want" ]; then
		pass "check-config $name: exit 0, golden output"
	else
		fail "check-config $name: exit $rc"
		diff <(echo "$want") <(echo "$out") | head -20
		cat "$T/err"
	fi
done

bad() { # bad NAME CONTENT EXPECTED-STDERR-REGEX [OPTIONS...]
	local name=$1 content=$2 re=$3
	shift 3
	printf '%s\n' "$content" >"$T/$name.conf"
	"$BIN" -t -c "$T/$name.conf" "$@" >"$T/out" 2>"$T/err"; rc=$?
	if [ $rc -eq 78 ] && [ ! -s "$T/out" ] && [ "$(wc -l <"$T/err")" -eq 1 ] &&
		grep -Eq "$re" "$T/err"; then
		pass "check-config $name: exit 78, $(cat "$T/err")"
	else
		fail "check-config $name: exit $rc, stderr: $(cat "$T/err")"
	fi
}
# expect WHAT RC STREAM ERE CMD...: CMD exits RC and its STREAM (out or
# err) matches ERE.
expect() {
	local what=$1 want=$2 stream=$3 re=$4
	shift 4
	"$@" >"$T/out" 2>"$T/err"; rc=$?
	if [ $rc -eq "$want" ] && grep -Eq -- "$re" "$T/$stream"; then
		pass "$what: exit $rc, $(head -c 300 "$T/err")"
	else
		fail "$what: exit $rc (want $want), stderr: $(cat "$T/err")"
	fi
}
SERVER="[server]
certificate = $T/server.pem
private_key = $T/server.key
users_dir = $T/users"
bad unknown-key "$SERVER
colour = blue" "unknown-key\.conf:5: server\.colour: unknown key"
bad bad-duration "$SERVER
[limits]
idle_timeout = soon" "bad-duration\.conf:6: limits\.idle_timeout: "
bad missing-key "[server]
certificate = $T/server.pem
private_key = $T/nowhere.key" "missing-key\.conf:3: server\.private_key: .*No such file"

# What only loading the files finds: the check loads them as start-up does.
bad key-mismatch "[server]
certificate = $P/server-ecdsa.pem
private_key = $T/server.key
users_dir = $T/users" "^secmsgd: $T/server.key does not match the certificate $P/server-ecdsa.pem\$"
bad not-a-certificate "[server]
certificate = $T/users/alice.pem
private_key = $T/server.key
users_dir = $T/users" "^secmsgd: cannot load certificate chain $T/users/alice.pem: no PEM certificate in it\$"
bad not-a-key "[server]
certificate = $T/server.pem
private_key = $T/users/alice.pem
users_dir = $T/users" "^secmsgd: cannot load private key $T/users/alice.pem: not a PEM private key\$"
bad no-users-dir "[server]
certificate = $T/server.pem
private_key = $T/server.key
users_dir = $T/no-users" "^secmsgd: cannot read users directory $T/no-users: No such file or directory\$"
bad chain-not-from-ca "$SERVER
ca = $P/other-ca.pem" "^secmsgd: $T/server.pem: "

# --credentials DIR: a relative private_key is looked up there first, as
# the service looks it up in $CREDENTIALS_DIRECTORY (LoadCredential=).
mkdir -p "$T/etc" "$T/creds"
cp "$T/server.key" "$T/creds/server.key"
printf '[server]\ncertificate = %s\nprivate_key = server.key\nusers_dir = %s\n' \
	"$T/server.pem" "$T/users" >"$T/etc/cred.conf"
expect "check-config --credentials DIR: the key found in DIR" 0 out \
	"^private_key = $T/creds/server.key\$" \
	"$BIN" -t -c "$T/etc/cred.conf" --credentials "$T/creds"
expect "check-config without --credentials: the key looked up beside the file, named" 78 err \
	"cred.conf:3: server.private_key: .*$T/etc/server.key.*No such file" \
	"$BIN" -t -c "$T/etc/cred.conf"
# What secmsgd.service hands over when LoadCredential='s file is missing
# (SetCredential= of the same ID): the missing file is named.
printf 'secmsgd-credential-missing:/etc/secmsg/server.key' >"$T/creds/server.key"
bad credential-missing "$(cat "$T/etc/cred.conf")" \
	"^secmsgd: cannot load private key: /etc/secmsg/server.key does not exist \(systemd hands it over as LoadCredential=server.key:/etc/secmsg/server.key\)\$" \
	--credentials "$T/creds"
cp "$T/server.key" "$T/creds/server.key"
# As the service's unprivileged user: a key only root may read is named.
chmod 0755 "$T"
chmod 0600 "$T/creds/server.key"
expect "check-config as an unprivileged user names the key it cannot read" 78 err \
	"server.private_key: .*$T/creds/server.key.*Permission denied" \
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
	"$BIN" -t -c "$T/etc/cred.conf" --credentials "$T/creds"
chmod 0700 "$T"

# An empty control_socket: no control socket of secmsgd's own (it was
# refused here, while server.c and secmsgctl each read it another way).
printf '%s\ncontrol_socket =\n' "$SERVER" >"$T/nosock.conf"
expect "check-config nosock: control_socket printed empty" 0 out \
	'^control_socket =$' "$BIN" -t -c "$T/nosock.conf"
expect "check-config of a missing file" 78 err \
	"absent.conf: No such file or directory" "$BIN" -t -c "$T/absent.conf"
"$BIN" --bogus >/dev/null 2>&1; rc=$?
check "secmsgd with a bad option exits 2" [ $rc -eq 2 ]
"$BIN" --credentials "$T/creds" -c "$T/etc/cred.conf" >/dev/null 2>&1; rc=$?
check "--credentials without --check-config exits 2" [ $rc -eq 2 ]
"$BIN" --help | grep -q -- "--check-config"
check "secmsgd --help documents --check-config" [ $? -eq 0 ]
[ "$FAILURES" -eq 0 ]
