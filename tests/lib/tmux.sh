# tmux.sh - drive the interactive client in a private tmux server and
# assert on its screen. Source it after daemon.sh and clients.sh:
#
#   tmux_init                       # a private tmux server (-L), killed at exit
#   pane                            # the screen as text
#   pane_e                          # the screen with its colours and attributes
#   pane_last                       # the last non-empty line (the input line)
#   pane_wait REGEX [SECONDS]       # until a line of the screen matches
#   pane_gone REGEX [SECONDS]       # until no line matches
#   pane_expect REGEX WHAT [SECS]   # pane_wait, then PASS or FAIL: WHAT
#   last_expect REGEX WHAT          # until the input line matches
#   key KEY / keys TEXT / enter     # tmux send-keys: a key name, literal text, Enter
#   tmux_run WxH COMMAND...         # session t (a new one) runs COMMAND, then
#                                   # prints [exit STATUS] and waits
#
# Uses $PANE (default t:0.0).

tmux_init() {
	if ! command -v tmux >/dev/null; then
		fail "tmux is installed (scripts/deps.sh installs it)"
		exit 1
	fi
	TMX=(tmux -L "secmsg-test-$$" -f /dev/null)
	TSOCK=${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/secmsg-test-$$
	# shellcheck disable=SC2016
	CL_EXTRA_CLEANUP='"${TMX[@]}" kill-server 2>/dev/null; rm -f "$TSOCK"'
	PANE=${PANE:-t:0.0}
}

tmux_run() {
	local size=$1 cmd="" a
	shift
	"${TMX[@]}" kill-session -t t 2>/dev/null
	for a in "$@"; do cmd+=" $(printf '%q' "$a")"; done
	"${TMX[@]}" new-session -d -s t -x "${size%x*}" -y "${size#*x}" \
		"$cmd; echo \"[exit \$?]\"; sleep 100"
}

pane() { "${TMX[@]}" capture-pane -p -t "$PANE"; }
pane_e() { "${TMX[@]}" capture-pane -p -e -t "$PANE"; }
pane_last() { pane | sed '/^[[:space:]]*$/d' | tail -1; }
pane_wait() { # REGEX [SECONDS]
	local end
	end=$(( $(now_us) + ${2:-$CL_WAIT} * 1000000 ))
	while :; do
		pane | grep -qE -- "$1" && return 0
		[ "$(now_us)" -lt "$end" ] || break
		sleep 0.05
	done
	echo "  | waited ${2:-$CL_WAIT} s for the pane to show: $1"
	pane | sed 's/^/  |   /'
	return 1
}
pane_gone() { # REGEX [SECONDS]
	local end
	end=$(( $(now_us) + ${2:-$CL_WAIT} * 1000000 ))
	while :; do
		pane | grep -qE -- "$1" || return 0
		[ "$(now_us)" -lt "$end" ] || break
		sleep 0.05
	done
	echo "  | waited ${2:-$CL_WAIT} s for the pane to lose: $1"
	pane | sed 's/^/  |   /'
	return 1
}
pane_expect() { if pane_wait "$1" "${3:-$CL_WAIT}"; then pass "$2"; else fail "$2"; fi; }
last_expect() {
	local end
	end=$(( $(now_us) + CL_WAIT * 1000000 ))
	while :; do
		pane_last | grep -qE -- "$1" && { pass "$2"; return 0; }
		[ "$(now_us)" -lt "$end" ] || break
		sleep 0.05
	done
	echo "  | waited $CL_WAIT s for the input line to match: $1"
	pane | sed 's/^/  |   /'
	fail "$2"
}
key() { "${TMX[@]}" send-keys -t "$PANE" "$@"; }
keys() { "${TMX[@]}" send-keys -t "$PANE" -l -- "$1"; }
enter() { "${TMX[@]}" send-keys -t "$PANE" Enter; }
