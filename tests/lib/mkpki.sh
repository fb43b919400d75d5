#!/bin/sh
# mkpki.sh DIR - make the test PKI (CAs, server certificates, CRLs, user keys).
#
# Idempotent: exits at once when DIR/.done holds this script's VERSION (a
# PKI of an older version is made again: tests rely on its new files). The
# PKI is built in a temporary directory next to DIR and renamed into place,
# so a half-made PKI is never used. Quiet on success; on failure prints
# what openssl said. Needs openssl and python3.
#
# Files (other tests rely on these names):
#   ca.pem ca.key            test CA (ECDSA P-256)
#   other-ca.pem             an unrelated CA
#   inter.pem                intermediate CA signed by ca
#   inter.key other-ca.key   their keys (to make more certificates)
#   server.pem/.key          Ed25519 leaf, SAN localhost, 127.0.0.1, ::1
#   server-chain.pem/.key    leaf signed by inter; the file holds leaf, inter
#   server-ecdsa  server-rsa the same SANs with P-256 / RSA-2048 keys
#   server-expired server-notyet server-wrongname server-revoked
#   server-clientauth (extendedKeyUsage clientAuth only: not for a server)
#   server-untrusted server-cn server-rsa1024   (each .pem and .key)
#   server-wildcard          SAN DNS:*.localhost, DNS:* (no wildcards: never matches)
#   server-wildcard-cn       no SAN, CN=*.localhost
#   server-dupsan            two subjectAltName extensions (DNS:localhost each)
#   server-badsan            a subjectAltName that does not decode
#                            (OpenSSL refuses the last two in a chain; pinned
#                            as their own anchor they reach the name check)
#   crl.pem                  valid CRLs: ca's (revokes server-revoked), then inter's
#   crl-expired.pem          the same CRLs with nextUpdate in the past
#   alice bob carol dave erin rsa1024 p384   (.key PKCS#8, .pub SPKI)
#   alice-enc.key            alice.key encrypted, passphrase "correct horse"
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dir=$1
# Bump when the set of files changes.
VERSION=2
[ "$(cat "$dir/.done" 2>/dev/null)" = "$VERSION" ] && exit 0
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac

parent=$(dirname "$dir")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.mkpki.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
cd "$tmp"
umask 077

log=$tmp/openssl.log
ossl() {
	if ! openssl "$@" >/dev/null 2>>"$log"; then
		echo "mkpki: openssl $* failed:" >&2
		cat "$log" >&2
		exit 1
	fi
}

SAN='subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1'
cat >openssl.cnf <<EOF
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ inter_ext ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ leaf_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
$SAN
[ wrongname_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:other.example
[ clientauth_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid:always
$SAN
[ wildcard_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:*.localhost, DNS:*
[ dupsan_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:localhost
# made a second subjectAltName by dupsan() below
issuerAltName = DNS:localhost
[ badsan_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid:always
# a NULL where a SEQUENCE OF GeneralName belongs
2.5.29.17 = DER:0500
[ cn_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
authorityKeyIdentifier = keyid:always
[ crl_ext ]
authorityKeyIdentifier = keyid:always
[ ca ]
default_ca = ca_root
[ ca_root ]
database = db-ca/index.txt
new_certs_dir = db-ca
serial = db-ca/serial
crlnumber = db-ca/crlnumber
default_md = sha256
default_days = 3650
default_crl_days = 3650
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
crl_extensions = crl_ext
certificate = ca.pem
private_key = ca.key
[ ca_inter ]
database = db-inter/index.txt
new_certs_dir = db-inter
serial = db-inter/serial
crlnumber = db-inter/crlnumber
default_md = sha256
default_days = 3650
default_crl_days = 3650
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
crl_extensions = crl_ext
certificate = inter.pem
private_key = inter.key
[ policy_any ]
commonName = supplied
EOF
export OPENSSL_CONF="$tmp/openssl.cnf"
for d in db-ca db-inter; do
	mkdir "$d"
	: >"$d/index.txt"
	echo 1000 >"$d/serial"
	echo 1000 >"$d/crlnumber"
done

# genkey NAME TYPE: NAME.key (PKCS#8 PEM) and NAME.pub (SPKI PEM).
genkey() {
	case $2 in
	ed25519) ossl genpkey -algorithm ED25519 -out "$1.key" ;;
	p256) ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-pkeyopt ec_param_enc:named_curve -out "$1.key" ;;
	p384) ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 \
		-pkeyopt ec_param_enc:named_curve -out "$1.key" ;;
	rsa*) ossl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${2#rsa}" \
		-out "$1.key" ;;
	esac
	ossl pkey -in "$1.key" -pubout -out "$1.pub"
}

# selfca NAME CN: a self-signed CA.
selfca() {
	genkey "$1" p256
	ossl req -new -x509 -key "$1.key" -subj "/CN=$2" -days 7300 \
		-sha256 -extensions ca_ext -out "$1.pem"
}

# leaf NAME TYPE ISSUER EXT [CN]: a certificate signed by ISSUER directly.
leaf() {
	genkey "$1" "$2"
	ossl req -new -key "$1.key" -subj "/CN=${5:-localhost}" \
		-CA "$3.pem" -CAkey "$3.key" -days 3650 -sha256 \
		-extensions "$4" -out "$1.pem"
}

# dated NAME CA-SECTION START END: a leaf issued with `openssl ca` (dates).
dated() {
	genkey "$1" ed25519
	ossl req -new -key "$1.key" -subj /CN=localhost -out "$1.csr"
	ossl ca -batch -notext -name "$2" -in "$1.csr" -out "$1.pem" \
		-extensions leaf_ext -startdate "$3" -enddate "$4"
}

# dupsan NAME ISSUER: turn NAME.pem's issuerAltName into a second
# subjectAltName and sign it again with ISSUER's key (openssl itself
# keeps only one extension of a kind).
dupsan() {
	if ! python3 - "$1.pem" "$2.key" >>"$log" 2>&1 <<'PY'
import base64, subprocess, sys

path, key = sys.argv[1], sys.argv[2]
pem = open(path).read()
der = base64.b64decode("".join(l for l in pem.splitlines() if "-----" not in l))

def tlv(b, i):
    """The header length and the content length of the DER TLV at b[i]."""
    n = b[i + 1]
    if n < 0x80:
        return 2, n
    k = n & 0x7F
    return 2 + k, int.from_bytes(b[i + 2:i + 2 + k], "big")

def enc(tag, body):
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(ln)]) + ln + body

h, _ = tlv(der, 0)
th, tl = tlv(der, h)
tbs = der[h:h + th + tl]
ah, al = tlv(der, h + th + tl)
alg = der[h + th + tl:h + th + tl + ah + al]
ian, san = bytes.fromhex("0603551d12"), bytes.fromhex("0603551d11")
if tbs.count(ian) != 1:
    sys.exit("dupsan: want exactly one issuerAltName in " + path)
tbs = tbs.replace(ian, san)
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                     input=tbs, capture_output=True, check=True).stdout
b64 = base64.b64encode(enc(0x30, tbs + alg + enc(0x03, b"\0" + sig))).decode()
with open(path, "w") as f:
    f.write("-----BEGIN CERTIFICATE-----\n")
    f.write("".join(b64[i:i + 64] + "\n" for i in range(0, len(b64), 64)))
    f.write("-----END CERTIFICATE-----\n")
PY
	then
		echo "mkpki: dupsan $1 failed:" >&2
		cat "$log" >&2
		exit 1
	fi
}

selfca ca "secmsg test CA"
selfca other-ca "secmsg unrelated CA"
genkey inter p256
ossl req -new -key inter.key -subj "/CN=secmsg test intermediate" \
	-CA ca.pem -CAkey ca.key -days 7300 -sha256 -extensions inter_ext \
	-out inter.pem

leaf server ed25519 ca leaf_ext
leaf server-chain ed25519 inter leaf_ext
cat inter.pem >>server-chain.pem
leaf server-ecdsa p256 ca leaf_ext
leaf server-rsa rsa2048 ca leaf_ext
leaf server-rsa1024 rsa1024 ca leaf_ext
leaf server-wrongname ed25519 ca wrongname_ext
leaf server-cn ed25519 ca cn_ext
leaf server-clientauth ed25519 ca clientauth_ext
leaf server-untrusted ed25519 other-ca leaf_ext
leaf server-revoked ed25519 ca leaf_ext
dated server-expired ca_root 20200101000000Z 20210101000000Z
dated server-notyet ca_root 20900101000000Z 20950101000000Z

leaf server-wildcard ed25519 ca wildcard_ext
leaf server-wildcard-cn ed25519 ca cn_ext "*.localhost"
leaf server-badsan ed25519 ca badsan_ext
leaf server-dupsan ed25519 ca dupsan_ext
dupsan server-dupsan ca

ossl ca -batch -name ca_root -revoke server-revoked.pem -crl_reason keyCompromise
ossl ca -batch -name ca_root -gencrl -out crl-ca.pem
ossl ca -batch -name ca_inter -gencrl -out crl-inter.pem
ossl ca -batch -name ca_root -gencrl -out crl-ca-old.pem \
	-crl_lastupdate 20200101000000Z -crl_nextupdate 20200201000000Z
ossl ca -batch -name ca_inter -gencrl -out crl-inter-old.pem \
	-crl_lastupdate 20200101000000Z -crl_nextupdate 20200201000000Z
cat crl-ca.pem crl-inter.pem >crl.pem
cat crl-ca-old.pem crl-inter-old.pem >crl-expired.pem

for u in alice dave erin; do genkey $u ed25519; done
genkey bob p256
genkey carol rsa2048
genkey rsa1024 rsa1024
genkey p384 p384
ossl pkcs8 -topk8 -in alice.key -v2 aes-256-cbc -passout "pass:correct horse" \
	-out alice-enc.key

rm -rf db-ca db-inter ./*.csr crl-ca*.pem crl-inter*.pem openssl.cnf "$log" \
	ca.pub other-ca.pub inter.pub server*.pub
chmod 600 ./*.key
chmod 644 ./*.pem ./*.pub
chmod 755 .
echo "$VERSION" >.done
chmod 644 .done

# Publish. An empty DIR, or a PKI of another version, is replaced; if
# another run finished first, keep it.
cd /
if [ -e "$dir/.done" ] && [ "$(cat "$dir/.done")" != "$VERSION" ]; then
	rm -rf "$dir"
fi
if ! mv -T "$tmp" "$dir" 2>/dev/null; then
	[ "$(cat "$dir/.done" 2>/dev/null)" = "$VERSION" ] && exit 0
	echo "mkpki: $dir exists and is not a finished PKI; remove it" >&2
	exit 1
fi
