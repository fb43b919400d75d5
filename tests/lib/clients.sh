# clients.sh - drive real secmsg-client processes from shell tests.
# Source it after daemon.sh:
#
#   . tests/lib/daemon.sh; . tests/lib/clients.sh
#   cl_start NAME USER [OPTIONS...]  # a --batch client (config: client_conf USER)
#   cv_start NAME USER [OPTIONS...]  # the same at protocol version 2, its
#                                    # state USER's on this machine
#                                    # ($DDIR/cstate/USER), reconnecting
#                                    # after 0.3 s at most
#   cv_away A B                      # cv_start A and B (users A and B), a
#                                    # conversation between them, B quits:
#                                    # A sees B offline (PASS/FAIL lines)
#   cl_cmd NAME LINE                 # write one command line to NAME's stdin
#   cl_close NAME                    # end NAME's input (it quits)
#   wait_for NAME REGEX [SECONDS]    # until a line of NAME's stdout matches
#   wait_count NAME REGEX N [SECS]   # until N lines match
#   expect NAME REGEX WHAT [SECS]    # wait_for, then PASS or FAIL: WHAT
#   expect_count NAME REGEX N WHAT [SECS]  # wait_count, then PASS or FAIL
#   expect_none NAME REGEX WHAT N BARRIER  # wait for a line after line N
#                                    # matching BARRIER, then PASS if no line
#                                    # after line N matches REGEX; cl_lines
#                                    # NAME gives N
#   cl_sync NAME                     # `list`: its users line is a barrier
#                                    # for NAME's earlier commands
#   cl_wait NAME [SECONDS]           # wait for NAME to exit: status in CL_RC
#   expect_exit NAME STATUS WHAT     # cl_wait, then PASS or FAIL
#   cl_out NAME, cl_err NAME         # paths of NAME's stdout and stderr
#   fpr_hex FILE                     # a key's fingerprint, 64 hex digits
#   bg_track PID                     # another process to kill at exit
#   dstart [LIMITS] [USERS...]       # daemon_start, its directory removed at exit
#   proxy_start CAPTURE [flip-server-sig]  # tests/lib/recproxy.py in front of
#                                    # the daemon: sets PPORT and PROXY_PID
#
# Patterns are grep -E (LC_ALL=C); $TAB holds a tab. Every client, tracked
# process and temporary file is removed at exit (SECMSG_KEEP=1 keeps the
# files), and then the daemon is stopped. SIGPIPE is ignored so that a
# command written to a client that has exited fails quietly.

TAB=$'\t'
CLIENT=$SECMSG_BUILD/secmsg-client
CL_DIR=$(mktemp -d /tmp/secmsg-cl-XXXXXX)
CL_WAIT=${CL_WAIT:-15}
declare -A CL_PID=() CL_FD=()
CL_BG=()
CL_RC=

cl_out() { echo "$CL_DIR/$1.out"; }
cl_err() { echo "$CL_DIR/$1.err"; }

# Microseconds since the epoch.
now_us() { echo "${EPOCHREALTIME/./}"; }

cl_start() {
	local n=$1 u=$2 conf fd
	shift 2
	conf=$(client_conf "$u")
	rm -f "$CL_DIR/$n.in"
	mkfifo "$CL_DIR/$n.in"
	: >"$CL_DIR/$n.out"
	: >"$CL_DIR/$n.err"
	# The client must not inherit the other clients' input ends, or
	# closing one would not give its client end of input.
	(
		for fd in "${CL_FD[@]}"; do exec {fd}>&-; done
		exec "$CLIENT" -b -c "$conf" "$@" "$u" <"$CL_DIR/$n.in" \
			>"$CL_DIR/$n.out" 2>"$CL_DIR/$n.err"
	) &
	CL_PID[$n]=$!
	exec {fd}>"$CL_DIR/$n.in"
	CL_FD[$n]=$fd
}

cv_start() {
	local n=$1 u=$2
	shift 2
	mkdir -p "$DDIR/cstate/$u"
	cl_start "$n" "$u" --protocol-version 2 --state-dir "$DDIR/cstate/$u" \
		--reconnect 300ms "$@"
}

# cv_away A B: A and B (names of clients and users) log in with version 2,
# begin a conversation, and B quits; A sees B offline.
cv_away() {
	cv_start "$1" "$1"
	cv_start "$2" "$2"
	expect "$1" "^ready${TAB}$1\$" "$1 logs in"
	expect "$2" "^ready${TAB}$2\$" "$2 logs in"
	cl_cmd "$1" "talk $2"
	expect "$2" "^request${TAB}$1\$" "$2 gets $1's request"
	cl_cmd "$2" "accept $1"
	expect "$1" "^conversation${TAB}$2${TAB}[0-9]+${TAB}online\$" \
		"a conversation"
	# B's client must hold it before it quits, or B's next login would
	# end it (the server lists it, B has no state for it).
	expect "$2" "^conversation${TAB}$1${TAB}[0-9]+${TAB}online\$" \
		"$2 has it too"
	cl_cmd "$2" quit
	expect_exit "$2" 0 "$2 quits"
	expect "$1" "^presence${TAB}$2${TAB}offline\$" "$1: $2 offline"
}

cl_cmd() {
	local fd=${CL_FD[$1]:-}
	[ -n "$fd" ] || return 1
	printf '%s\n' "$2" 2>/dev/null 1>&"$fd"
}

cl_close() {
	local fd=${CL_FD[$1]:-}
	[ -n "$fd" ] || return 0
	exec {fd}>&-
	unset "CL_FD[$1]"
}

cl_show() {
	echo "  | $1 stdout:"
	sed 's/^/  |   /' "$CL_DIR/$1.out"
	echo "  | $1 stderr:"
	sed 's/^/  |   /' "$CL_DIR/$1.err" | tail -20
}

wait_count() { # NAME REGEX N [SECONDS]
	local f=$CL_DIR/$1.out end n
	end=$(( $(now_us) + ${4:-$CL_WAIT} * 1000000 ))
	while :; do
		n=$(LC_ALL=C grep -cE -- "$2" "$f" 2>/dev/null)
		[ "${n:-0}" -ge "$3" ] && return 0
		[ "$(now_us)" -lt "$end" ] || break
		sleep 0.05
	done
	echo "  | waited ${4:-$CL_WAIT} s for $3 line(s) of $1 matching: $2"
	cl_show "$1"
	return 1
}

wait_for() { wait_count "$1" "$2" 1 "${3:-$CL_WAIT}"; }

expect() { # NAME REGEX WHAT [SECONDS]
	if wait_for "$1" "$2" "${4:-$CL_WAIT}"; then pass "$3"; else fail "$3"; fi
}

expect_count() { # NAME REGEX N WHAT [SECONDS]
	if wait_count "$1" "$2" "$3" "${5:-$CL_WAIT}"; then pass "$4"; else fail "$4"; fi
}

# cl_lines NAME: how many lines NAME printed so far (for expect_none).
cl_lines() { wc -l <"$CL_DIR/$1.out"; }

# wait_after NAME N REGEX [SECONDS]: until a line after line N matches.
wait_after() {
	local f=$CL_DIR/$1.out end
	end=$(( $(now_us) + ${4:-$CL_WAIT} * 1000000 ))
	while :; do
		tail -n "+$(($2 + 1))" "$f" | LC_ALL=C grep -qE -- "$3" && return 0
		[ "$(now_us)" -lt "$end" ] || break
		sleep 0.05
	done
	echo "  | waited ${4:-$CL_WAIT} s for a line of $1 after line $2 matching: $3"
	cl_show "$1"
	return 1
}

# A negative check must not pass merely because the unwanted line is
# late: BARRIER is a line that comes only after the unwanted one would
# have (the users line of a later `list`, a later message...). The check
# waits for it, then looks at everything printed after line N.
expect_none() { # NAME REGEX WHAT AFTER_LINE BARRIER
	if [ $# -ne 5 ]; then
		fail "$3 (expect_none needs AFTER_LINE and BARRIER)"
		return
	fi
	if ! wait_after "$1" "$4" "$5"; then
		fail "$3 (the barrier never came)"
		return
	fi
	if tail -n "+$(($4 + 1))" "$CL_DIR/$1.out" |
		LC_ALL=C grep -qE -- "$2"; then
		echo "  | unexpected line(s) of $1:"
		tail -n "+$(($4 + 1))" "$CL_DIR/$1.out" |
			LC_ALL=C grep -E -- "$2" | sed 's/^/  |   /'
		fail "$3"
	else
		pass "$3"
	fi
}

# cl_sync NAME: ask for the user list; the server answers it after every
# earlier record of NAME's, and the client prints it after every earlier
# command's lines, so its users line is a barrier for them.
cl_sync() { cl_cmd "$1" list; }

# The first line of NAME's stdout matching REGEX.
cl_line() { LC_ALL=C grep -m1 -E -- "$2" "$CL_DIR/$1.out"; }

cl_wait() { # NAME [SECONDS]: CL_RC is the exit status, or "timeout"
	local pid=${CL_PID[$1]:-} end
	CL_RC=none
	[ -n "$pid" ] || return 1
	end=$(( $(now_us) + ${2:-$CL_WAIT} * 1000000 ))
	while kill -0 "$pid" 2>/dev/null && [ "$(now_us)" -lt "$end" ]; do
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		CL_RC=timeout
		return 1
	fi
	wait "$pid"
	CL_RC=$?
	unset "CL_PID[$1]"
	cl_close "$1"
	return 0
}

expect_exit() { # NAME STATUS WHAT [SECONDS]
	cl_wait "$1" "${4:-$CL_WAIT}"
	if [ "$CL_RC" = "$2" ]; then
		pass "$3"
	else
		echo "  | $1: exit status $CL_RC, expected $2"
		cl_show "$1"
		fail "$3"
	fi
}

fpr_hex() { "$CLIENT" --fingerprint "$1" | tr -d ' \n'; }

bg_track() { CL_BG+=("$1"); }

CL_DDIRS=()
dstart() {
	local r
	DDIR=
	daemon_start "$@"
	r=$?
	[ -n "${DDIR:-}" ] && CL_DDIRS+=("$DDIR")
	return $r
}

proxy_start() {
	local pf _
	pf=$(mktemp "$CL_DIR/proxy-XXXXXX")
	rm -f "$pf"
	python3 "$(dirname "${BASH_SOURCE[0]}")/recproxy.py" "$pf" 127.0.0.1 \
		"$PORT" "$1" ${2:+"$2"} 2>>"$CL_DIR/proxy.err" &
	PROXY_PID=$!
	bg_track "$PROXY_PID"
	for _ in $(seq 1 200); do
		[ -s "$pf" ] && break
		sleep 0.05
	done
	PPORT=$(cat "$pf" 2>/dev/null)
	[ -n "$PPORT" ]
}

cl_cleanup() {
	local st=$? n pid pids=()
	trap - EXIT
	for n in "${!CL_FD[@]}"; do cl_close "$n"; done
	pids=("${CL_PID[@]}" "${CL_BG[@]}")
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for _ in $(seq 1 40); do
		for pid in "${pids[@]}"; do
			kill -0 "$pid" 2>/dev/null && break
		done
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	for pid in "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	[ -n "${CL_EXTRA_CLEANUP:-}" ] && eval "$CL_EXTRA_CLEANUP"
	daemon_stop >/dev/null 2>&1
	if [ -n "${SECMSG_KEEP:-}" ]; then
		echo "kept $CL_DIR ${CL_DDIRS[*]}" >&2
	else
		rm -rf "$CL_DIR" "${CL_DDIRS[@]}"
	fi
	exit "$st"
}

trap cl_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap '' PIPE
