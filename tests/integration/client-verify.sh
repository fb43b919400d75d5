#!/bin/bash
# client-verify.sh - each way the client's check of the server (and the
# server's check of the client) can fail gives exit status 3 and its own
# message on standard error: unknown CA, wrong name, expired, not yet
# valid, revoked, invalid CRL, bad server signature, refused credentials.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client-verify.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 110 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh

START=$(now_us)
P=$SECMSG_PKI
MSGS=$CL_DIR/messages

# A copy of the fixture PKI whose server.pem/.key are another certificate's,
# for daemon_start (which always serves server.pem).
pki_with() {
	local d=$CL_DIR/pki-$1 f
	mkdir -p "$d"
	for f in "$P"/*; do ln -sf "$f" "$d/"; done
	ln -sf "$P/$1.pem" "$d/server.pem"
	ln -sf "$P/$1.key" "$d/server.key"
	echo "$d"
}

# auth_fail NAME WORD WHAT USER [OPTIONS...]: the client fails with exit 3
# and a message containing WORD, and prints nothing on standard output.
auth_fail() {
	local n=$1 word=$2 what=$3 u=$4
	shift 4
	cl_start "$n" "$u" "$@"
	cl_close "$n"
	cl_wait "$n" 30
	if [ "$CL_RC" = 3 ]; then
		pass "$what: exit status 3"
	else
		echo "  | exit status $CL_RC"; cl_show "$n"
		fail "$what: exit status 3"
	fi
	if grep -q -F -- "$word" "$(cl_err "$n")"; then
		pass "$what: stderr names it ('$word')"
	else
		cl_show "$n"
		fail "$what: stderr names it ('$word')"
	fi
	check "$what: no event on stdout" [ ! -s "$(cl_out "$n")" ]
	printf '%s\t%s\n' "$n" "$(grep -m1 'secmsg-client:' "$(cl_err "$n")")" >>"$MSGS"
}

# auth_ok NAME USER [OPTIONS...]: the client logs in (a control for the above).
auth_ok() {
	local n=$1 u=$2
	shift 2
	cl_start "$n" "$u" "$@"
	expect "$n" "^ready${TAB}$u\$" "control ($n): $u logs in with ${*:-the defaults}"
	cl_cmd "$n" quit
	expect_exit "$n" 0 "control ($n): $u quits with exit 0"
}

# ---- the right server: the client's own checks, and the server's ----
dstart "" alice bob carol dave || { fail "secmsgd starts"; exit 1; }
auth_ok ok alice
auth_ok okcrl alice --crl "$P/crl.pem"
auth_ok okip alice -n 127.0.0.1
auth_fail untrusted "untrusted" "unknown CA (--ca other-ca.pem)" alice \
	--ca "$P/other-ca.pem"
auth_fail wrongname "server name" "wrong server name (-n wrong.example)" alice \
	-n wrong.example
check "the wrong-name message names the expected name" \
	grep -q "wrong.example" "$(cl_err wrongname)"
auth_fail crlexpired "CRL invalid" "expired CRL (--crl crl-expired.pem)" alice \
	--crl "$P/crl-expired.pem"
auth_fail notenrolled "refused our credentials" "user not enrolled (erin)" erin
mkdir -p "$CL_DIR/wrongkey"
cp "$P/bob.key" "$CL_DIR/wrongkey/alice.key"
auth_fail wrongkey "refused our credentials" "wrong key (alice with bob's key)" alice \
	-k "$CL_DIR/wrongkey"
proxy_start "$CL_DIR/flip.bin" flip-server-sig ||
	fail "the tampering proxy starts"
auth_fail badsig "server signature" "bad server signature (ServerHello tampered)" alice \
	-s "127.0.0.1:$PPORT" -n localhost
check "secmsgd logged both refused logins (erin, alice)" eval \
	'grep -q "authentication failed for erin" "$DDIR/secmsgd.log" &&
	 grep -q "authentication failed for alice" "$DDIR/secmsgd.log"'
daemon_stop && pass "secmsgd exits 0 (right certificate)"

# ---- an expired server certificate ----
SECMSG_PKI=$(pki_with server-expired) dstart ||
	fail "secmsgd starts with an expired certificate"
auth_fail expired "expired" "expired server certificate (server-expired.pem)" alice
daemon_stop && pass "secmsgd exits 0 (expired certificate)"

# ---- a server certificate not valid yet ----
SECMSG_PKI=$(pki_with server-notyet) dstart ||
	fail "secmsgd starts with a certificate not valid yet"
auth_fail notyet "not yet valid" "server certificate not valid yet (server-notyet.pem)" alice
daemon_stop && pass "secmsgd exits 0 (certificate not valid yet)"

# ---- a revoked server certificate ----
SECMSG_PKI=$(pki_with server-revoked) dstart ||
	fail "secmsgd starts with a revoked certificate"
auth_ok okrevnocrl alice
auth_fail revoked "revoked" "revoked server certificate (--crl crl.pem)" alice \
	--crl "$P/crl.pem"
daemon_stop && pass "secmsgd exits 0 (revoked certificate)"

# ---- a server certificate from another CA ----
SECMSG_PKI=$(pki_with server-untrusted) dstart ||
	fail "secmsgd starts with a certificate of another CA"
auth_fail untrusted2 "untrusted" "server certificate of another CA (server-untrusted.pem)" alice
daemon_stop && pass "secmsgd exits 0 (certificate of another CA)"

# ---- the messages differ from one another ----
sed 's/^/  | /' "$MSGS"
n=$(grep -v -E '^(untrusted2|notyet|wrongkey)\b' "$MSGS" | cut -f2 | sort -u | wc -l)
check "unknown CA, wrong name, expired, revoked, CRL, signature and refused credentials: 7 different messages" \
	[ "$n" -eq 7 ]
check "not enrolled and wrong key give the same message (no hint which)" \
	[ "$(grep -E '^(notenrolled|wrongkey)\b' "$MSGS" | cut -f2 | sort -u | wc -l)" -eq 1 ]
check "no client wrote a sanitizer report" \
	[ -z "$(grep -l -E 'Sanitizer|runtime error' "$CL_DIR"/*.err 2>/dev/null)" ]
echo "client-verify.sh took $(( ($(now_us) - START) / 1000 )) ms"
[ "$FAILURES" -eq 0 ]
