#!/bin/bash
# client-keygen.sh - secmsg-client --keygen: the files it writes (modes,
# PEM kinds, scrypt + AES-256-CBC, the public half), each key type, the
# refusals (empty or short passphrase, no terminal, existing files, bad
# name, bad type), on a terminal a short or mismatched passphrase asked
# again, and a login with the new key once its .pub is enrolled.
#
# Usage (from the top directory): SECMSG_BUILD=build/asan tests/integration/client-keygen.sh
[ -n "${SECMSG_TIMED:-}" ] || SECMSG_TIMED=1 exec timeout -k 5 170 "$0" "$@"
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh
. tests/lib/clients.sh
. tests/lib/tmux.sh

START=$(now_us)
K=$CL_DIR/keys
PASS=$CL_DIR/pass
EMPTY=$CL_DIR/empty
printf 'correct horse battery staple\n' >"$PASS"
: >"$EMPTY"

# keygen USER [OPTIONS...]: --keygen into $K with no terminal (setsid);
# KG_RC is the exit status; $KO and $KE its standard output and error.
KO=$CL_DIR/kg.out
KE=$CL_DIR/kg.err
keygen() {
	local u=$1
	shift
	setsid -w "$CLIENT" --keygen "$u" -k "$K" "$@" </dev/null >"$KO" 2>"$KE"
	KG_RC=$?
	cat "$KE" >>"$CL_DIR/keygen-all.err"
}

mode() { stat -c %a "$1"; }

# ---- each key type, with a passphrase ----
for t in ed25519 ecdsa rsa; do
	u=kg$t
	keygen "$u" -t "$t" -p "$PASS"
	check "$t: --keygen exits 0" [ "$KG_RC" = 0 ]
	check "$t: $u.key is mode 600, $u.pub 644" \
		[ "$(mode "$K/$u.key")" = 600 -a "$(mode "$K/$u.pub")" = 644 ]
	check "$t: $u.key is encrypted PKCS#8" \
		grep -q -- '-----BEGIN ENCRYPTED PRIVATE KEY-----' "$K/$u.key"
	openssl asn1parse -in "$K/$u.key" >"$CL_DIR/$u.asn1"
	# scrypt's N, r, p: the three INTEGERs after its OID.
	nrp=$(awk '/:scrypt/ { on = 1 } on && /INTEGER/ { sub(/.*:/, ""); printf "%s ", $1 }' \
		"$CL_DIR/$u.asn1")
	check "$t: ... PBES2: scrypt (N = 2^14, r = 8, p = 1), AES-256-CBC" eval \
		"grep -q ':PBES2' '$CL_DIR/$u.asn1' && [ '$nrp' = '4000 08 01 ' ] &&
		 grep -q ':aes-256-cbc' '$CL_DIR/$u.asn1'"
	check "$t: the passphrase opens it, and its public half is $u.pub" eval \
		"openssl pkey -in '$K/$u.key' -passin 'file:$PASS' -pubout |
		 cmp -s - '$K/$u.pub'"
	check "$t: another passphrase does not open it" \
		eval "! openssl pkey -in '$K/$u.key' -passin pass:wrong -noout 2>/dev/null"
	check "$t: it prints the fingerprint of $u.pub" \
		grep -q -F "Fingerprint: $("$CLIENT" --fingerprint "$K/$u.pub")" "$KO"
done
check "ed25519 is an Ed25519 key" eval \
	"openssl pkey -pubin -in '$K/kged25519.pub' -noout -text | grep -q ED25519"
check "ecdsa is on P-256" eval \
	"openssl pkey -pubin -in '$K/kgecdsa.pub' -noout -text | grep -q prime256v1"
check "rsa has 3072 bits" eval \
	"openssl pkey -pubin -in '$K/kgrsa.pub' -noout -text | grep -q '3072 bit'"
check "the keys directory was made with mode 700" [ "$(mode "$K")" = 700 ]
check "ed25519 is the default type" eval \
	"keygen kgdefault -p '$PASS' && openssl pkey -pubin -in '$K/kgdefault.pub' -noout -text | grep -q ED25519"

# ---- no passphrase ----
keygen kgplain --no-passphrase
check "--no-passphrase: exits 0" [ "$KG_RC" = 0 ]
check "--no-passphrase: an unencrypted PKCS#8 key" \
	grep -q -- '-----BEGIN PRIVATE KEY-----' "$K/kgplain.key"
check "--no-passphrase: it says so" grep -q "NOT protected" "$KO"

# ---- refusals: nothing is written ----
keygen kgempty -p "$EMPTY"
check "an empty passphrase is refused (exit 2, names --no-passphrase)" eval \
	"[ $KG_RC = 2 ] && grep -q -- '--no-passphrase' '$KE'"
check "... and writes nothing" [ ! -e "$K/kgempty.key" -a ! -e "$K/kgempty.pub" ]
printf '1234567\n' >"$CL_DIR/short"
keygen kgshort -p "$CL_DIR/short"
check "a 7-character passphrase is refused (exit 2, 'too short')" eval \
	"[ $KG_RC = 2 ] && grep -q 'too short: at least 8' '$KE'"
check "... and writes nothing" [ ! -e "$K/kgshort.key" -a ! -e "$K/kgshort.pub" ]
printf '12345678\n' >"$CL_DIR/eight"
keygen kgeight -p "$CL_DIR/eight"
check "an 8-character one is taken" eval \
	"[ $KG_RC = 0 ] && openssl pkey -in '$K/kgeight.key' -passin 'file:$CL_DIR/eight' -noout"
keygen kgtty
check "no terminal to ask on: exit 2, names --passphrase-file" eval \
	"[ $KG_RC = 2 ] && grep -q -- '--passphrase-file' '$KE'"
check "... and writes nothing" [ ! -e "$K/kgtty.key" ]
sum=$(sha256sum <"$K/kged25519.key")
keygen kged25519 -p "$PASS"
check "an existing key is never overwritten (exit 1, 'exists already')" eval \
	"[ $KG_RC = 1 ] && grep -q 'exists already' '$KE'"
check "... the file is unchanged" [ "$(sha256sum <"$K/kged25519.key")" = "$sum" ]
keygen 'bad/name' -p "$PASS"
check "an invalid user name: exit 2" [ "$KG_RC" = 2 ]
keygen kgdsa -t dsa -p "$PASS"
check "an unknown key type: exit 2, names the types" eval \
	"[ $KG_RC = 2 ] && grep -q 'ed25519, ecdsa or rsa' '$KE'"

# ---- the new key logs in once enrolled ----
dstart "" alice || { fail "secmsgd starts"; exit 1; }
mkdir -p "$DDIR/keys"
for t in ed25519 ecdsa; do
	cp "$K/kg$t.key" "$DDIR/keys/"
	cp "$K/kg$t.pub" "$DDIR/users/kg$t.pem"
done
kill -HUP "$DPID"
for _ in $(seq 1 100); do
	grep -q "reloaded: 3 users" "$DDIR/secmsgd.log" && break
	sleep 0.05
done
check "secmsgd enrolled the new keys (reloaded: 3 users)" \
	grep -q "reloaded: 3 users" "$DDIR/secmsgd.log"
for t in ed25519 ecdsa; do
	cl_start "login$t" "kg$t" --passphrase-file "$PASS"
	expect "login$t" "^ready${TAB}kg$t\$" "kg$t logs in with its new $t key"
	cl_cmd "login$t" quit
	expect_exit "login$t" 0 "kg$t quits with exit 0"
done
check "a key file of mode 600 gives no warning" \
	eval "! grep -q 'can be read by other users' '$(cl_err logined25519)'"
# A key file others can read: a warning on standard error, then the login.
for m in 640 604; do
	mkdir -p "$CL_DIR/keys$m"
	cp "$K/kged25519.key" "$CL_DIR/keys$m/"
	chmod "$m" "$CL_DIR/keys$m/kged25519.key"
	cl_start "perm$m" kged25519 --passphrase-file "$PASS" -k "$CL_DIR/keys$m"
	expect "perm$m" "^ready${TAB}kged25519\$" "a key file of mode $m still logs in"
	check "... with a warning on stderr: the key can be read by other users" \
		grep -q "warning: $CL_DIR/keys$m/kged25519.key can be read by other users; chmod 600 it" \
		"$(cl_err "perm$m")"
	cl_cmd "perm$m" quit
	expect_exit "perm$m" 0 "... and quits with exit 0 (mode $m)"
done
# ---- on a terminal (tmux): a short, then a mismatched passphrase are
# asked again, and the third try writes the key ----
tmux_init
tmux_run 120x30 "$CLIENT" --keygen kgtty -k "$K"
ktype() { keys "$1"; enter; }
kwait() { # REGEX N: the screen shows N lines matching REGEX (10 s at most)
	local i
	for i in $(seq 1 200); do
		[ "$(pane | grep -cE -- "$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	pane | sed 's/^/  |   /'
	return 1
}
check "asked for a new passphrase on the terminal" kwait "^New passphrase" 1
ktype short; kwait "^Same passphrase" 1; ktype short
check "a short one: said so, and asked again" \
	eval 'kwait "too short.*; try again" 1 && kwait "^New passphrase" 2'
ktype "long enough one"; kwait "^Same passphrase" 2; ktype "long enough two"
check "two that differ: said so, and asked again" \
	eval 'kwait "passphrases differ; try again" 1 && kwait "^New passphrase" 3'
ktype "correct horse battery"; kwait "^Same passphrase" 3
ktype "correct horse battery"
check "the third try writes the key (exit 0)" kwait "^\[exit 0\]" 1
check "... kgtty.key and kgtty.pub" eval '[ -s "$K/kgtty.key" ] && [ -s "$K/kgtty.pub" ]'
check "no passphrase typed showed on the screen" \
	eval '! pane | grep -q -E "short\$|long enough|correct horse"'
# Three bad tries: no key, exit 2.
tmux_run 120x30 "$CLIENT" --keygen kgtty3 -k "$K"
for i in 1 2 3; do
	kwait "^New passphrase" "$i" && ktype "x$i"
	kwait "^Same passphrase" "$i" && ktype "x$i"
done
check "three short passphrases: exit 2" kwait "^\[exit 2\]" 1
check "... and no kgtty3.key or kgtty3.pub" \
	eval '[ ! -e "$K/kgtty3.key" ] && [ ! -e "$K/kgtty3.pub" ]'
check "... the last refusal does not say try again" \
	eval '[ "$(pane | grep -c "try again")" -eq 2 ]'
"${TMX[@]}" kill-server 2>/dev/null

printf 'not it\n' >"$CL_DIR/wrong"
cl_start wrongpass kged25519 --passphrase-file "$CL_DIR/wrong"
cl_close wrongpass
expect_exit wrongpass 2 "a wrong passphrase: exit 2"
check "... and says so" grep -q "wrong passphrase" "$(cl_err wrongpass)"
daemon_stop && pass "secmsgd exits 0"
check "no client wrote a sanitizer report" eval \
	"! grep -q -E 'Sanitizer|runtime error' $CL_DIR/*.err 2>/dev/null"
echo "client-keygen.sh took $(( ($(now_us) - START) / 1000 )) ms"
[ "$FAILURES" -eq 0 ]
