#!/bin/bash
# ctl.sh - secmsgctl against a real secmsgd: every verb's text and --json
# output (parsed with jq), usage errors and exit statuses, a reload the
# daemon refuses (its reason printed, exit 1), the users
# directory (add-user, remove-user), configuration lookup, a caller that
# is not an administrator, the admin group (primary and supplementary),
# and the bash completion. Users online, kick end to end and hostile
# input are in test_control.c.
#
# Needs root (setpriv), jq. Uses $SECMSG_BUILD and $SECMSG_PKI.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh

CTLBIN=$SECMSG_BUILD/secmsgctl
export TZ=UTC
T=$(mktemp -d /tmp/secmsg-ctl-XXXXXX)
PID2=
trap '[ -z "$PID2" ] || kill "$PID2" 2>/dev/null; daemon_stop >/dev/null 2>&1; rm -rf "$T"' EXIT

# run CMD...: stdout in OUT, stderr in ERR, exit status in RC.
run() {
	OUT=$("$@" 2>"$T/stderr")
	RC=$?
	ERR=$(cat "$T/stderr")
}

# expect WHAT STATUS CMD...: run, and check the exit status.
expect() {
	local what=$1 want=$2
	shift 2
	run "$@"
	if [ "$RC" -eq "$want" ]; then
		pass "$what"
	else
		fail "$what (exit $RC, want $want; stdout: $OUT; stderr: $ERR)"
	fi
}

# has WHAT TEXT PATTERN: grep -E PATTERN in TEXT.
has() {
	if printf '%s\n' "$2" | grep -Eq -- "$3"; then
		pass "$1"
	else
		fail "$1 (no /$3/ in: $2)"
	fi
}

# json WHAT FILTER: jq -e FILTER on $OUT.
json() {
	if printf '%s\n' "$OUT" | jq -e "$2" >/dev/null 2>&1; then
		pass "$1"
	else
		fail "$1 (jq '$2' on: $OUT)"
	fi
}

fingerprint() { # SPKI SHA-256 of a PEM public key
	openssl pkey -pubin -in "$1" -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1
}

command -v jq >/dev/null || { fail "jq is not installed"; exit 1; }
tests/lib/mkpki.sh "$SECMSG_PKI" || { fail "mkpki"; exit 1; }
daemon_start || { fail "secmsgd started"; exit 1; }
C="$CTLBIN -c $DCONF"
P=$SECMSG_PKI

# ---- help, version, usage errors ----
expect "--version" 0 $CTLBIN --version
has "--version names the tool" "$OUT" '^secmsgctl [0-9]'
expect "--help" 0 $CTLBIN --help
for v in list-users list-chats list-queues purge kick status reload add-user remove-user help; do
	has "--help lists $v" "$OUT" "^  $v( |$)"
done
has "--help lists exit statuses" "$OUT" '4 no such user'
for v in list-users list-chats list-queues purge kick status reload add-user remove-user; do
	expect "help $v" 0 $CTLBIN help $v
	has "help $v: usage line" "$OUT" "^Usage: secmsgctl \[OPTIONS\] $v"
	expect "$v --help" 0 $CTLBIN $v --help
	has "$v --help: usage line" "$OUT" "^Usage: secmsgctl \[OPTIONS\] $v"
done
run $CTLBIN help kick
has "help kick documents --reason" "$OUT" '--reason TEXT'
expect "-h" 0 $CTLBIN -h
expect "no command: usage" 2 $CTLBIN
has "no command: hint" "$ERR" "Try 'secmsgctl --help'"
expect "unknown command" 2 $C frobnicate
has "unknown command named" "$ERR" "unknown command 'frobnicate'"
expect "help of an unknown command" 2 $CTLBIN help frobnicate
expect "unknown option" 2 $C --frobnicate status
expect "list-users takes no argument" 2 $C list-users alice
expect "kick needs USER" 2 $C kick
expect "kick takes one USER" 2 $C kick alice bob
expect "add-user needs KEYFILE" 2 $C add-user frank
expect "remove-user needs NAME" 2 $C remove-user
expect "--reason only with kick" 2 $C status --reason x
expect "--force only with add-user" 2 $C remove-user alice --force
expect "--socket needs a path" 2 $CTLBIN status --socket
expect "kick: invalid name" 2 $C kick Alice
has "kick: invalid name explained" "$ERR" "invalid user name 'Alice'"
expect "kick: reason over 1023 bytes" 2 $C kick alice --reason "$(printf '%01024d' 0)"
expect "kick: reason not UTF-8" 2 $C kick alice --reason "$(printf 'bad \377')"

# ---- status ----
expect "status" 0 $C status
for k in 'Uptime: ([0-9]+(d|h|min|s) ?)+' 'Workers: 2' 'Online: 0' 'Chats: 0' \
	 'Connections: [0-9]+' 'Handshakes: [0-9]+ ok, [0-9]+ failed' \
	 'Messages relayed: 0' 'Bytes relayed: 0 \(0 B\)' \
	 'Stored: 0 messages, 0 B, oldest none' \
	 'Store on disk: [0-9.]+ [KM]?i?B \(database and WAL\)' \
	 'Messages stored: 0'; do
	has "status: ${k%%:*}" "$OUT" "^ *$k\$"
done
has "status: keys right-aligned" "$OUT" '^          Uptime: '
check "status: 11 lines" test "$(printf '%s\n' "$OUT" | wc -l)" -eq 11
expect "status --json" 0 $C status --json
json "status --json: fields and types" \
	'(keys | sort) == (["bytes_relayed","chats","connections","handshakes_failed","handshakes_ok","messages_relayed","online","stored_bytes","stored_messages","stored_oldest","messages_stored","store_file_bytes","uptime","workers"] | sort) and ([.[] | type] | unique) == ["number"] and .workers == 2 and .online == 0 and .stored_messages == 0 and .stored_oldest == 0 and .messages_stored == 0 and .store_file_bytes > 0'
expect "--json before the command" 0 $C --json status
json "--json anywhere" '.workers == 2'

# ---- list-users, list-chats (nobody online: see test_control.c) ----
expect "list-users" 0 $C list-users
check "list-users: legend only" test "$OUT" = "0 users online."
expect "list-users --no-legend" 0 $C list-users --no-legend
check "list-users --no-legend: nothing" test -z "$OUT"
expect "list-users --json" 0 $C list-users --json
json "list-users --json" '. == {"users": []}'
expect "list-chats" 0 $C list-chats
check "list-chats: legend only" test "$OUT" = "0 chats."
expect "list-chats --json" 0 $C --json list-chats
json "list-chats --json" '. == {"chats": []}'
expect "list-queues" 0 $C list-queues
check "list-queues: legend only" test "$OUT" = "0 users with stored messages."
expect "list-queues --json" 0 $C --json list-queues
json "list-queues --json" '. == {"queues": []}'
expect "purge with nothing stored" 0 $C purge carol
check "purge: says how many" test "$OUT" = "Deleted 0 stored messages for carol."
expect "purge --json" 0 $C --json purge carol
json "purge --json" '. == {"messages": 0}'
expect "purge of a bad name: usage" 2 $C purge 'x y'

# ---- kick ----
expect "kick a user not online: exit 4" 4 $C kick bob --reason "x"
has "kick: no such user" "$ERR" '^secmsgctl: no such user: bob is not online$'
expect "kick an unknown user: exit 4" 4 $C kick mallory

# ---- reload ----
expect "reload" 0 $C reload
check "reload: count" test "$OUT" = "Reloaded: 5 users enrolled."
expect "reload --json" 0 $C reload --json
json "reload --json" '. == {"users": 5}'

# ---- a reload secmsgd refuses: the reason, and the old state kept ----
cp "$DCONF" "$DDIR/good.conf"
sed -i "s|^certificate = .*|certificate = $P/server-ecdsa.pem|" "$DCONF"
expect "reload of a bad configuration: exit 1" 1 $C reload
has "reload refused: secmsgd's reason" "$ERR" \
	"^secmsgctl: reload failed, secmsgd keeps its running configuration: $P/server.key does not match the certificate $P/server-ecdsa.pem\$"
check "reload refused: nothing on stdout" test -z "$OUT"
expect "reload refused --json: exit 1" 1 $C reload --json
check "reload refused --json: nothing on stdout" test -z "$OUT"
cp "$DDIR/good.conf" "$DCONF"
expect "reload refused: the daemon still serves" 0 $C status
expect "reload of the good file again" 0 $C reload
check "reload of the good file: count" test "$OUT" = "Reloaded: 5 users enrolled."

# ---- add-user, remove-user ----
U=$DDIR/users
expect "add-user" 0 $C add-user frank "$P/dave.pub"
has "add-user: enrolled line" "$OUT" "^Enrolled frank: $U/frank.pem \(ed25519, 256 bits\)\$"
has "add-user: fingerprint" "$OUT" '^Fingerprint: ([0-9a-f]{4} ){15}[0-9a-f]{4}$'
has "add-user: reloaded" "$OUT" '^Reloaded: 6 users enrolled\.$'
fpr=$(printf '%s\n' "$OUT" | sed -n 's/^Fingerprint: //p' | tr -d ' ')
check "add-user: the fingerprint is the key's" test "$fpr" = "$(fingerprint "$P/dave.pub")"
check "add-user: mode 0644" test "$(stat -c %a "$U/frank.pem")" = 644
check "add-user: same key written" test "$(fingerprint "$U/frank.pem")" = "$(fingerprint "$P/dave.pub")"
dotfiles=("$U"/.[!.]*)
check "add-user: no temporary file left" test ! -e "${dotfiles[0]}"
cp "$U/frank.pem" "$DDIR/frank.before"
expect "add-user: no overwrite without --force" 1 $C add-user frank "$P/erin.pub"
has "add-user: exists" "$ERR" 'frank.pem exists.*--force'
check "add-user: file kept" cmp -s "$U/frank.pem" "$DDIR/frank.before"
expect "add-user --force" 0 $C add-user --force frank "$P/erin.pub" --json
json "add-user --json" '.name == "frank" and .users == 6 and .key_type == "ed25519" and (.fingerprint | test("^[0-9a-f]{64}$")) and (.file | endswith("/users/frank.pem"))'
check "add-user --force: key replaced" test "$(fingerprint "$U/frank.pem")" = "$(fingerprint "$P/erin.pub")"
# ECDSA and RSA keys as PROTOCOL.md §1 allows: bob is P-256, carol RSA
expect "add-user: ECDSA P-256" 0 $C add-user gina "$P/bob.pub"
has "add-user: ECDSA named" "$OUT" 'gina.pem \(ecdsa-p256, 256 bits\)'
expect "add-user: RSA" 0 $C add-user hank "$P/carol.pub"
has "add-user: RSA named" "$OUT" 'hank.pem \(rsa, [0-9]+ bits\)'
expect "add-user: RSA-1024 refused" 1 $C add-user ivan "$P/rsa1024.pub"
has "add-user: RSA-1024 explained" "$ERR" 'key type or size not allowed'
expect "add-user: P-384 refused" 1 $C add-user ivan "$P/p384.pub"
expect "add-user: a private key refused" 1 $C add-user ivan "$P/alice.key"
has "add-user: private key explained" "$ERR" 'not a PEM public key'
expect "add-user: missing key file" 1 $C add-user ivan "$DDIR/nonexistent.pub"
has "add-user: missing file named" "$ERR" "cannot read $DDIR/nonexistent.pub: No such file"
expect "add-user: invalid name" 2 $C add-user Ivan "$P/alice.pub"
expect "add-user: a name with a slash" 2 $C add-user ../ivan "$P/alice.pub"
expect "add-user: a name too long" 2 $C add-user "$(printf 'a%.0s' $(seq 33))" "$P/alice.pub"
check "add-user: nothing written for ivan" test ! -e "$U/ivan.pem"
# a file holding the private key too: only the public key is written
cat "$P/alice.key" "$P/alice.pub" >"$DDIR/both.pem"
expect "add-user: private+public file" 0 $C add-user ivan "$DDIR/both.pem"
check "add-user: no private key copied" test "$(grep -c PRIVATE "$U/ivan.pem")" -eq 0
check "add-user: the public key copied" test "$(fingerprint "$U/ivan.pem")" = "$(fingerprint "$P/alice.pub")"
expect "remove-user" 0 $C remove-user frank
has "remove-user: removed line" "$OUT" "^Removed frank: $U/frank.pem\$"
has "remove-user: reloaded" "$OUT" '^Reloaded: 8 users enrolled\.$'
check "remove-user: file gone" test ! -e "$U/frank.pem"
expect "remove-user again: exit 4" 4 $C remove-user frank
has "remove-user: no such user" "$ERR" "^secmsgctl: no such user: frank \(no $U/frank.pem\)\$"
expect "remove-user: invalid name" 2 $C remove-user ../alice
expect "remove-user --json" 0 $C remove-user gina --json
json "remove-user --json" '.name == "gina" and .users == 7 and (.file | endswith("/gina.pem"))'
$C remove-user hank >/dev/null && $C remove-user ivan >/dev/null
expect "back to five users" 0 $C reload
check "back to five users: count" test "$OUT" = "Reloaded: 5 users enrolled."

# ---- where the socket and users directory come from ----
mkdir -p "$DDIR/etc/sub"
ln -s "$DCTL" "$DDIR/etc/ctl.sock"
printf '[server]\ncontrol_socket = "ctl.sock" ; a comment\nusers_dir = ../users\n' >"$DDIR/etc/rel.conf"
expect "-c: relative paths are relative to the file" 0 $CTLBIN -c "$DDIR/etc/rel.conf" status
expect "-c: relative users_dir" 4 $CTLBIN -c "$DDIR/etc/rel.conf" remove-user nobody-here
has "-c: users_dir resolved" "$ERR" "no $DDIR/etc/../users/nobody-here.pem"
printf '[server]\ncontrol_socket =\n' >"$DDIR/etc/empty.conf"
expect "-c: empty control_socket: no socket of its own" 1 $CTLBIN -c "$DDIR/etc/empty.conf" status
has "-c: empty control_socket named" "$ERR" "^secmsgctl: $DDIR/etc/empty.conf: control_socket is empty: secmsgd opens no control socket of its own; name the one it serves with --socket PATH\$"
check "-c: empty control_socket: no connection tried" test "$(grep -c 'cannot connect' <<<"$ERR")" = 0
expect "--socket wins over -c" 0 $CTLBIN -c "$DDIR/etc/empty.conf" --socket "$DCTL" status
expect "-c: missing file" 1 $CTLBIN -c "$DDIR/none.conf" status
has "-c: missing file named" "$ERR" "^secmsgctl: $DDIR/none.conf: No such file or directory\$"
printf '[server]\ncontrol_socket = ctl.sock\n[limits]\nidle_timeout = 5 min\n' >"$DDIR/etc/bad.conf"
expect "-c: a file secmsgd refuses" 1 $CTLBIN -c "$DDIR/etc/bad.conf" status
has "-c: refused with secmsgd's message" "$ERR" "^secmsgctl: $DDIR/etc/bad.conf:4: limits.idle_timeout: invalid duration '5 min' "
"$SECMSG_BUILD/secmsgd" -t -c "$DDIR/etc/bad.conf" >/dev/null 2>"$DDIR/bad.err"
has "-c: secmsgd says the same" "$(cat "$DDIR/bad.err")" "^secmsgd: $DDIR/etc/bad.conf:4: limits.idle_timeout: invalid duration '5 min' "
ln -s etc "$DDIR/etclink"
expect "-c: relative paths from the real directory" 4 $CTLBIN -c "$DDIR/etclink/rel.conf" remove-user nobody-here
has "-c: users_dir resolved through the link" "$ERR" "no $DDIR/etc/../users/nobody-here.pem"
expect "--socket: missing socket" 1 $CTLBIN --socket "$DDIR/nosock" status
has "--socket: names the socket" "$ERR" "^secmsgctl: cannot connect to $DDIR/nosock: No such file or directory\$"
expect "--socket: not a socket" 1 $CTLBIN --socket "$DCONF" list-users
has "--socket: refused" "$ERR" "cannot connect to $DCONF: Connection refused"
if [ ! -e /etc/secmsg/secmsgd.conf ]; then
	expect "no default config: default socket" 1 $CTLBIN status
	has "no default config: default socket named" "$ERR" \
		'^secmsgctl: cannot connect to /run/secmsgd/control: '
fi

# ---- not an administrator ----
chmod 0711 "$DDIR"
chmod 0666 "$DCTL"
expect "nobody: exit 1" 1 setpriv --reuid=nobody --regid=nogroup --clear-groups \
	"$CTLBIN" --socket "$DCTL" list-users
has "nobody: permission denied" "$ERR" '^secmsgctl: permission denied'
expect "nobody: status refused too" 1 setpriv --reuid=nobody --regid=nogroup \
	--clear-groups "$CTLBIN" --socket "$DCTL" status --json
check "nobody: nothing on stdout" test -z "$OUT"
chmod 0660 "$DCTL"
expect "root still may" 0 $C status

# ---- the admin group: a second daemon with admin_group = users ----
PORT2=$(free_port)
sed -e "s/^admin_group =.*/admin_group = users/" \
    -e "s/^listen = .*/listen = 127.0.0.1:$PORT2/" \
    -e "s|^control_socket = .*|control_socket = $DDIR/control2|" \
    -e "s|^state_dir = .*|state_dir = $DDIR/state2|" \
    "$DCONF" >"$DDIR/group.conf"
"$SECMSG_BUILD/secmsgd" -c "$DDIR/group.conf" >"$DDIR/secmsgd2.log" 2>&1 &
PID2=$!
for _ in $(seq 1 250); do [ -S "$DDIR/control2" ] && break; sleep 0.02; done
check "group daemon: socket mode 0660" test "$(stat -c %a "$DDIR/control2")" = 660
check "group daemon: socket group users" test "$(stat -c %G "$DDIR/control2")" = users
expect "admin group as primary group" 0 setpriv --reuid=nobody --regid=users \
	--clear-groups "$CTLBIN" --socket "$DDIR/control2" status
expect "admin group as supplementary group" 0 setpriv --reuid=nobody \
	--regid=nogroup --groups=users "$CTLBIN" --socket "$DDIR/control2" list-users
expect "not in the admin group" 1 setpriv --reuid=nobody --regid=nogroup \
	--groups=nogroup "$CTLBIN" --socket "$DDIR/control2" list-users
has "not in the admin group: refused by the kernel" "$ERR" \
	"cannot connect to $DDIR/control2: Permission denied"
chmod 0666 "$DDIR/control2"
expect "not in the admin group: refused by secmsgd" 1 setpriv --reuid=nobody \
	--regid=nogroup --clear-groups "$CTLBIN" --socket "$DDIR/control2" list-users
has "not in the admin group: permission denied" "$ERR" '^secmsgctl: permission denied'
kill -TERM "$PID2"
wait "$PID2"
check "group daemon: exit 0" test $? -eq 0
PID2=
chmod 0700 "$DDIR"

# ---- a daemon with control_socket empty: it serves clients, no socket ----
PORT3=$(free_port)
sed -e "s/^listen = .*/listen = 127.0.0.1:$PORT3/" \
    -e "s|^control_socket = .*|control_socket =|" \
    -e "s|^state_dir = .*|state_dir = $DDIR/state3|" \
    "$DCONF" >"$DDIR/nosock.conf"
"$SECMSG_BUILD/secmsgd" -c "$DDIR/nosock.conf" >"$DDIR/secmsgd3.log" 2>&1 &
PID2=$!
for _ in $(seq 1 250); do
	grep -q 'secmsgd started' "$DDIR/secmsgd3.log" && break
	kill -0 "$PID2" 2>/dev/null || break
	sleep 0.02
done
check "no control socket: secmsgd started" grep -q 'secmsgd started' "$DDIR/secmsgd3.log"
check "no control socket: clients served" bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT3"
expect "no control socket: secmsgctl says so" 1 $CTLBIN -c "$DDIR/nosock.conf" status
has "no control socket: named" "$ERR" "control_socket is empty"
kill -TERM "$PID2"
wait "$PID2"
check "no control socket: exit 0" test $? -eq 0
PID2=

# ---- bash completion ----
COMP=etc/bash-completion/secmsgctl
check "completion: bash -n" bash -n "$COMP"
complete_words() { # the completions bash offers for the words given
	bash -c '
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_secmsgctl secmsgctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		printf "%s\n" "${COMPREPLY[@]}"' _ "$COMP" "$@"
}
has "completion: verbs" "$(complete_words secmsgctl '')" '^remove-user$'
has "completion: verb prefix" "$(complete_words secmsgctl li)" '^list-chats$'
has "completion: list-queues" "$(complete_words secmsgctl list-q)" '^list-queues$'
has "completion: options" "$(complete_words secmsgctl --j)" '^--json$'
has "completion: kick options" "$(complete_words secmsgctl kick bob --r)" '^--reason$'
has "completion: add-user options" "$(complete_words secmsgctl add-user x y --f)" '^--force$'
has "completion: help verbs" "$(complete_words secmsgctl help k)" '^kick$'
has "completion: remove-user names from the config" \
	"$(complete_words secmsgctl -c "$DCONF" remove-user ca)" '^carol$'

# ---- the daemon gone ----
daemon_stop
expect "daemon stopped: exit 1" 1 $CTLBIN --socket "$DCTL" status
has "daemon stopped: names the socket" "$ERR" "^secmsgctl: cannot connect to $DCTL: No such file or directory\$"

[ "$FAILURES" -eq 0 ]
