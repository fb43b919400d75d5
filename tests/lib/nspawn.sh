# nspawn.sh - a real systemd in a container for the shell tests of
# tests/system/ (see /work/shared/SYSTEMD-TESTING.md): systemd-nspawn boots
# on an overlay of the host's / whose upper layer is a tmpfs, so nothing the
# test does inside reaches the host. Source it from the top directory:
#
#   pass WHAT, fail WHAT    print "PASS: WHAT" or "FAIL: WHAT" (FAILURES
#                           counts these), note TEXT a line of detail
#   ns_require NAME TOOL... root, the TOOLs and the test PKI
#                           ($SECMSG_PKI, made if missing; PKI: its full
#                           path), or fail and exit
#   ns_setup NAME SECONDS   R=/tmp/secmsg-NAME-XXXXXX; cleanup at exit; the
#                           whole test is ended (TERM) after SECONDS
#   ns_overlay              mount the overlay at $R/root (a new machine-id)
#   ns_boot MACHINE         boot systemd in $R/root as MACHINE (P1: its PID);
#                           fails after 60 s, saying why
#   E CMD...                CMD inside the container (all its namespaces),
#                           bounded to 30 s
#   prop PROP [UNIT]        a property of UNIT (default secmsgd.service)
#   is_running              secmsgd.service is active and running
#   until_true SECONDS CMD...  poll CMD every 0.1 s until it succeeds
#   ns_job NAME CMD...      CMD in the background (output in $R/NAME.log),
#                           killed at exit with its children; ns_wait NAME
#                           gives its exit status
#   NS_BG_PIDS+=(PID)       another process to kill at exit
#
# Batch clients (see /work/shared/CLIENT.md): set CL_EXEC to the command
# that runs the client up to its options (an array, e.g. (build/secmsg-client
# -c FILE)) and CL_IO to a directory for their input and output, then
#   cl_start USER; cl_cmd USER LINE; cl_wait USER ERE [SECONDS]; cl_stop USER
#   ns_client_conf PORT CA KEYS_DIR KNOWN_DIR  a client.conf for the relay
#                      on 127.0.0.1:PORT (stdout)
#   cl_chat A B TEXT   A and B (started) log in, A asks B to chat, B
#                      accepts, TEXT (no regex characters) reaches B and
#                      A gets the receipt; fails at the first step missing,
#                      printing what A and B said
#
# Every exit path stops the container, unmounts and removes $R
# (SECMSG_KEEP=1 keeps the files, not the mounts).

FAILURES=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
note() { echo "  ... $*"; }

NSPAWN=
P1=
R=
NS_MOUNTED=
NS_BG_PIDS=()
NS_JOBS=()
declare -A NS_JOB CL_FD CL_PID
CL_EXEC=()
CL_IO=

ns_cleanup() {
	local p
	for p in "${NS_JOBS[@]}"; do
		kill -TERM -- "-$p" 2>/dev/null
	done
	for p in "${NS_BG_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
		kill -TERM "$NSPAWN"	# the container shuts down cleanly
		for _ in $(seq 1 150); do
			kill -0 "$NSPAWN" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$NSPAWN" 2>/dev/null; then
			# Killing the container's init ends its whole PID namespace.
			[ -n "$P1" ] && kill -KILL "$P1" 2>/dev/null
			kill -KILL "$NSPAWN" 2>/dev/null
		fi
	fi
	wait 2>/dev/null
	if [ -n "$NS_MOUNTED" ]; then
		umount "$R/root" 2>/dev/null || umount -l "$R/root"
		umount "$R/up" 2>/dev/null || umount -l "$R/up"
	fi
	[ -n "$R" ] || return 0
	if [ -n "${SECMSG_KEEP:-}" ]; then
		echo "kept $R"
	else
		rm -rf "$R"
	fi
}

ns_require() {
	local what="$1 system test" t
	shift
	if [ "$(id -u)" -ne 0 ]; then
		fail "$what: needs root (run make check as root)"
		exit 1
	fi
	for t in systemd-nspawn nsenter "$@"; do
		if ! command -v "$t" >/dev/null; then
			fail "$what: $t is missing (make deps)"
			exit 1
		fi
	done
	if ! tests/lib/mkpki.sh "$SECMSG_PKI" >/dev/null; then
		fail "$what: cannot make the test PKI in $SECMSG_PKI"
		exit 1
	fi
	PKI=$(realpath "$SECMSG_PKI")
}

ns_setup() {
	R=$(mktemp -d "/tmp/secmsg-$1-XXXXXX")
	mkdir -p "$R/up" "$R/root"
	trap ns_cleanup EXIT
	# shellcheck disable=SC2064
	trap "fail '$1 system test: interrupted or over $2 s'; exit 1" INT TERM HUP
	(
		trap 'kill $sl 2>/dev/null; exit 0' TERM
		sleep "$2" & sl=$!
		wait $sl && kill -TERM $$
	) >/dev/null 2>&1 </dev/null &
	NS_BG_PIDS+=($!)
}

ns_overlay() {
	if ! mount -t tmpfs tmpfs "$R/up"; then
		fail "tmpfs for the overlay"
		return 1
	fi
	mkdir -p "$R/up/u" "$R/up/w"
	if ! mount -t overlay overlay \
		-o "lowerdir=/,upperdir=$R/up/u,workdir=$R/up/w" "$R/root"; then
		umount "$R/up"
		fail "overlay of / (overlayfs needed)"
		return 1
	fi
	NS_MOUNTED=1
	systemd-id128 new >"$R/root/etc/machine-id"
}

E() { timeout 30 nsenter -t "$P1" -a "$@"; }
prop() { E systemctl show -p "$1" --value "${2:-secmsgd.service}"; }

until_true() {
	local end=$(($(date +%s%N) / 1000000 + $1 * 1000))
	shift
	while ! "$@" 2>/dev/null; do
		[ $(($(date +%s%N) / 1000000)) -ge $end ] && return 1
		sleep 0.1
	done
}

is_running() {
	[ "$(prop ActiveState)" = active ] && [ "$(prop SubState)" = running ]
}

# Until systemd's bus is up, is-system-running fails at once: ask again.
ns_booted() {
	NS_STATE=$(E systemctl is-system-running --wait 2>/dev/null)
	[ "$NS_STATE" = running ] || [ "$NS_STATE" = degraded ]
}

ns_boot() {
	NS_STATE=
	setsid systemd-nspawn -D "$R/root" --machine="$1" --register=no \
		--link-journal=no --keep-unit -b --console=pipe >"$R/boot.log" 2>&1 &
	NSPAWN=$!
	until_true 60 pgrep -P "$NSPAWN" -x systemd >/dev/null
	P1=$(pgrep -P "$NSPAWN" -x systemd)
	if [ -z "$P1" ] || ! until_true 60 ns_booted; then
		fail "container boots (state '${NS_STATE:-no systemd}', nspawn pid $NSPAWN, systemd pid ${P1:-none})"
		ps -o pid,ppid,stat,etime,args --ppid "$NSPAWN" 2>/dev/null
		tail -30 "$R/boot.log"
		return 1
	fi
}

# setsid: a process group of its own, so that ns_cleanup ends the children
# too. A background job of a non-interactive shell is no group leader, so
# setsid does not fork and $! is the group's ID.
ns_job() {
	local n=$1
	shift
	setsid "$@" >"$R/$n.log" 2>&1 </dev/null &
	NS_JOB[$n]=$!
	NS_JOBS+=($!)
}
ns_wait() { wait "${NS_JOB[$1]}"; }

ns_client_conf() {
	printf '[client]\nserver = 127.0.0.1:%s\nserver_name = localhost\n' "$1"
	printf 'ca = %s\nkeys_dir = %s\nknown_peers_dir = %s\n' "$2" "$3" "$4"
}

cl_start() {
	local u=$1 fd
	rm -f "$CL_IO/$u.in"
	mkfifo "$CL_IO/$u.in"
	exec {fd}<>"$CL_IO/$u.in"
	CL_FD[$u]=$fd
	: >"$CL_IO/$u.out"
	"${CL_EXEC[@]}" --batch "$u" <"$CL_IO/$u.in" >"$CL_IO/$u.out" 2>"$CL_IO/$u.err" &
	CL_PID[$u]=$!
	NS_BG_PIDS+=($!)
}
cl_cmd() { printf '%s\n' "$2" >&"${CL_FD[$1]}"; }
cl_wait() { until_true "${3:-10}" grep -Eq "$2" "$CL_IO/$1.out"; }
cl_stop() {
	local u=$1
	[ -n "${CL_FD[$u]:-}" ] || return 0
	local fd=${CL_FD[$u]}
	cl_cmd "$u" quit 2>/dev/null
	exec {fd}>&-
	until_true 5 eval "! kill -0 ${CL_PID[$u]}" || kill -KILL "${CL_PID[$u]}" 2>/dev/null
	wait "${CL_PID[$u]}" 2>/dev/null
	unset "CL_FD[$u]"
}

cl_chat() {
	local u
	cl_chat_steps "$@" && return 0
	for u in "$1" "$2"; do sed "s/^/    $u> /" "$CL_IO/$u.out" "$CL_IO/$u.err"; done
	return 1
}
# cl_resume A B TEXT: A and B, who have a conversation (protocol version
# 2) from an earlier run, log in and A sends TEXT in it, with no new
# request: B reads it, A gets the receipt.
cl_resume() {
	local u
	cl_resume_steps "$@" && return 0
	for u in "$1" "$2"; do sed "s/^/    $u> /" "$CL_IO/$u.out" "$CL_IO/$u.err"; done
	return 1
}
cl_resume_steps() {
	local a=$1 b=$2 text=$3 t=$'\t'
	cl_wait "$a" "^ready$t$a\$" 15 && cl_wait "$b" "^ready$t$b\$" 10 || return 1
	cl_wait "$a" "^conversation$t$b$t[0-9]+$t" || return 1
	cl_wait "$a" "^(presence$t$b${t}online|conversation$t$b$t[0-9]+${t}online)\$" || return 1
	cl_cmd "$a" "send $b $text"
	cl_wait "$b" "^msg$t$a$t[^$t]+$t$text\$" && cl_wait "$a" "^delivered$t$b$t"
}
cl_chat_steps() {
	local a=$1 b=$2 text=$3 t=$'\t'
	cl_wait "$a" "^ready$t$a\$" 15 && cl_wait "$b" "^ready$t$b\$" 10 || return 1
	cl_cmd "$a" "talk $b"
	cl_wait "$b" "^request$t$a\$" || return 1
	cl_cmd "$b" "accept $a"
	cl_wait "$a" "^chat$t$b$t" && cl_wait "$b" "^chat$t$a$t" || return 1
	cl_cmd "$a" "send $b $text"
	cl_wait "$b" "^msg$t$a$t[^$t]+$t$text\$" && cl_wait "$a" "^delivered$t$b$t"
}
