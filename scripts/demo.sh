#!/bin/sh
# make demo: a throwaway PKI and users alice, bob and carol under demo/,
# then secmsgd in the foreground on 127.0.0.1:10000 (Ctrl-C stops it).
set -eu
B=${1:-build}
D=demo
PORT=${SECMSG_DEMO_PORT:-10000}
cd "$(dirname "$0")/.."
top=$(pwd)

mkpki() {
	mkdir -p "$D/users" "$D/keys" "$D/known"
	openssl genpkey -algorithm ed25519 -out "$D/ca.key" 2>/dev/null
	openssl req -x509 -new -key "$D/ca.key" -subj "/CN=secmsg demo CA" \
		-days 30 -out "$D/ca.pem" 2>/dev/null
	openssl genpkey -algorithm ed25519 -out "$D/server.key" 2>/dev/null
	openssl req -new -key "$D/server.key" -subj "/CN=localhost" \
		-out "$D/server.csr" 2>/dev/null
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n' >"$D/san.ext"
	openssl x509 -req -in "$D/server.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" \
		-CAcreateserial -days 30 -extfile "$D/san.ext" \
		-out "$D/server.pem" 2>/dev/null
	for u in alice bob carol; do
		openssl genpkey -algorithm ed25519 -out "$D/keys/$u.key" 2>/dev/null
		chmod 600 "$D/keys/$u.key"
		openssl pkey -in "$D/keys/$u.key" -pubout -out "$D/users/$u.pem"
		cat >"$D/$u.conf" <<CONF
[client]
server = 127.0.0.1:$PORT
server_name = localhost
ca = $top/$D/ca.pem
keys_dir = $top/$D/keys
known_peers_dir = $top/$D/known/$u
CONF
	done
	cat >"$D/secmsgd.conf" <<CONF
[server]
listen = 127.0.0.1:$PORT
workers = 0
certificate = $top/$D/server.pem
private_key = $top/$D/server.key
users_dir = $top/$D/users
control_socket = $top/$D/control
state_dir = $top/$D/state
admin_group =
log_level = info
CONF
}

[ -f "$D/secmsgd.conf" ] || mkpki
cat <<MSG

secmsg demo: secmsgd on 127.0.0.1:$PORT, users alice, bob and carol.
In other terminals, run one of:

  $B/secmsg-client -c $D/alice.conf alice
  $B/secmsg-client -c $D/bob.conf bob
  $B/secmsg-client -c $D/carol.conf carol

and the administrator's view:

  $B/secmsgctl --socket $D/control list-users

(/help in the client lists its commands; Ctrl-C here stops the server;
rm -rf $D to start from a fresh PKI.)

MSG
exec "$B/secmsgd" -c "$D/secmsgd.conf"
