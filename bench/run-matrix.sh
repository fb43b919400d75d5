#!/bin/bash
# bench/run-matrix.sh - the standard secmsg-bench matrix (make bench).
#
#   bench/run-matrix.sh [BUILD_DIR]      # default $SECMSG_RELEASE, else build
#
# relay P = 1, 10, 100, 1000; latency (10,000 msg/s over P = 100);
# handshake K = 8, 64; idle N = 1,000 and 10,000; store P = 100 (window
# STORE_WINDOW, 8: texts awaiting STORED per sender; and window 4: with
# P x W texts in flight a text waits about P x W / rate, so the window
# sets where the run sits on the rate-latency curve), timed and with a
# backlog of 10,000 for the drain (100 recipients: their logins are most
# of its time), and one recipient holding 10,000 (the drain after its
# login). ONLY=store runs only the store configurations and keeps the
# others' runs from results.jsonl. Each configuration runs
# RUNS times (default 3), each run with a fresh daemon started by
# secmsg-bench; the table gives the median and the min-max of each figure.
# Writes bench/results.md (and every run's JSON to bench/results.jsonl).
# REPORT_ONLY=1 rewrites results.md from results.jsonl without running.
#
# Environment: RUNS (3), SECONDS_PER_RUN (5), QUIET_WAIT (60): before each
# run, wait up to this many seconds for other processes to use less than
# QUIET_PCT (25) % of one CPU; a run during which they used more than
# MAX_OTHER (50) % is repeated, up to RETRIES (3) times. The "other CPU"
# column shows what they used during the kept runs. A handshake run is
# also repeated when the crypto ceiling measured during it and the one
# measured after it differ by more than MAX_DRIFT (0.10, a fraction): the
# host, which other_cpu_pct cannot see, changed the speed of a CPU-second.
set -u
cd "$(dirname "$0")/.."
B=${1:-${SECMSG_RELEASE:-build}}
BIN=$B/secmsg-bench
RUNS=${RUNS:-3}
T=${SECONDS_PER_RUN:-5}
QUIET_WAIT=${QUIET_WAIT:-60}
QUIET_PCT=${QUIET_PCT:-25}
MAX_OTHER=${MAX_OTHER:-50}
RETRIES=${RETRIES:-3}
MAX_DRIFT=${MAX_DRIFT:-0.10}
STORE_WINDOW=${STORE_WINDOW:-8}
OUT=bench/results.md
RAW=bench/results.jsonl

command -v jq >/dev/null || { echo "run-matrix.sh: needs jq" >&2; exit 2; }
[ -x "$BIN" ] || { echo "run-matrix.sh: no $BIN (make O=$B all)" >&2; exit 2; }

# busy_pct: CPU used by the whole machine over one second, % of one CPU.
busy_pct() {
	local a b
	a=($(head -1 /proc/stat))
	sleep 1
	b=($(head -1 /proc/stat))
	# user nice system idle iowait irq softirq steal
	local busy=$(( (b[1]+b[2]+b[3]+b[6]+b[7]+b[8]) - (a[1]+a[2]+a[3]+a[6]+a[7]+a[8]) ))
	echo $(( busy * 100 / $(getconf CLK_TCK) ))
}

wait_quiet() {
	local waited=0 pct
	while [ "$waited" -lt "$QUIET_WAIT" ]; do
		pct=$(busy_pct)
		[ "$pct" -lt "$QUIET_PCT" ] && return 0
		waited=$((waited + 1))
	done
	echo "  (machine still busy: ${pct}% of one CPU used by others)" >&2
}

# The tree being measured: read before the runs (HEAD may move meanwhile).
if [ -z "${REPORT_ONLY:-}" ]; then
	commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [ -n "$(git status --porcelain -- proto daemon 2>/dev/null)" ]; then
		commit="$commit + uncommitted changes in $(git status --porcelain -- proto daemon |
			awk '{print $2}' | tr '\n' ' ' | sed 's/ $//')"
	fi
	if [ -n "$(find proto daemon -newer "$B/secmsgd" -name '*.[ch]' 2>/dev/null)" ]; then
		echo "run-matrix: warning: sources newer than $B/secmsgd; run make O=$B all" >&2
		commit="$commit (warning: $B/secmsgd is older than some sources)"
	fi
	started=$(date -u '+%Y-%m-%d %H:%M UTC')
fi

: >"$RAW.tmp"
# bench NAME ARGS...: RUNS runs of one configuration. A run during which
# other processes used more than MAX_OTHER % of one CPU is repeated, up to
# RETRIES times; the last attempt is kept either way (marked disturbed).
bench() {
	local name=$1 i try out other
	shift
	for i in $(seq 1 "$RUNS"); do
		for try in $(seq 0 "$RETRIES"); do
			wait_quiet
			echo "run-matrix: $name run $i$([ "$try" -gt 0 ] && echo " (retry $try)"): secmsg-bench $*" >&2
			out=$("$BIN" "$@" --seconds "$T" --json 2>/tmp/run-matrix.err.$$)
			if ! echo "$out" | jq -e . >/dev/null 2>&1; then
				tail -5 /tmp/run-matrix.err.$$ >&2
				out="{\"mode\": \"$1\", \"errors\": 1, \"error\": \"no JSON\"}"
				break
			fi
			other=$(echo "$out" | jq '.other_cpu_pct // 0 | floor')
			drift=$(echo "$out" | jq --argjson m "$MAX_DRIFT" \
				'.ceiling_drift // 1 | (. - 1 | fabs) > $m')
			[ "$other" -le "$MAX_OTHER" ] && [ "$drift" = false ] && break
			if [ "$drift" = true ]; then
				echo "  (disturbed: the ceiling drifted: $(echo "$out" |
					jq .ceiling_drift) of the one after the run)" >&2
			else
				echo "  (disturbed: others used ${other}% of one CPU)" >&2
			fi
		done
		echo "$out" | jq -c --arg name "$name" --argjson run "$i" \
			--argjson tries "$((try + 1))" --argjson max "$MAX_OTHER" \
			--argjson drift "$MAX_DRIFT" \
			--arg commit "$commit" --arg started "$started" \
			'. + {config: $name, run: $run, attempts: $tries,
			      disturbed: ((.other_cpu_pct // 0) > $max or
					  ((.ceiling_drift // 1) - 1 | fabs) > $drift),
			      commit: $commit, started: $started}' >>"$RAW.tmp"
	done
	rm -f /tmp/run-matrix.err.$$
}

if [ -n "${REPORT_ONLY:-}" ]; then
	# Rewrite results.md from the runs in results.jsonl.
	commit=$(jq -rs '.[0].commit // "unknown"' "$RAW")
	started=$(jq -rs '.[0].started // "unknown"' "$RAW")
	rm -f "$RAW.tmp"
else
	if [ "${ONLY:-}" != store ]; then
	bench relay-1 relay --pairs 1
	bench relay-10 relay --pairs 10
	bench relay-100 relay --pairs 100
	bench relay-1000 relay --pairs 1000
	bench latency latency --pairs 100 --rate 10000
	bench handshake-8 handshake --connectors 8
	bench handshake-64 handshake --connectors 64
	bench idle-1000 idle --connections 1000
	bench idle-10000 idle --connections 10000
	fi
	bench store-100 store --pairs 100 --window "$STORE_WINDOW"
	bench store-100-w4 store --pairs 100 --window 4
	bench store-drain store --pairs 100 --window "$STORE_WINDOW" --backlog 10000
	bench store-drain-1 store --pairs 1 --window "$STORE_WINDOW" --backlog 10000
	if [ "${ONLY:-}" = store ]; then
		jq -c 'select(.config | startswith("store") | not)' "$RAW" >"$RAW.keep"
		cat "$RAW.tmp" >>"$RAW.keep" && rm -f "$RAW.tmp"
		mv "$RAW.keep" "$RAW"
		commit=$(jq -rs '.[0].commit // "unknown"' "$RAW")
		started=$(jq -rs '.[0].started // "unknown"' "$RAW")
	else
		mv "$RAW.tmp" "$RAW"
	fi
fi

# cell CONFIG KEY [SCALE] [DECIMALS]: "median (min-max)" over the runs.
cell() {
	jq -rs --arg c "$1" --arg k "$2" --argjson s "${3:-1}" --argjson d "${4:-0}" '
		def fmt: if . == null then "-" else (. * $s * pow(10; $d) | round)
			/ pow(10; $d) | tostring end;
		[.[] | select(.config == $c) | .[$k]] as $all
		| ($all | map(select(. != null)) | sort) as $v
		| if ($v | length) == 0 then "-"
		  else ($v[(($v | length) - 1) / 2 | floor] | fmt) + " ("
			+ ($v[0] | fmt) + "–" + ($v[-1] | fmt) + ")" end' "$RAW"
}

errors() {
	jq -rs --arg c "$1" '[.[] | select(.config == $c) | .errors // 1] | add' "$RAW"
}

median() {
	jq -rs --arg c "$1" --arg k "$2" '
		[.[] | select(.config == $c) | .[$k] | select(. != null)] | sort
		| if length == 0 then null else .[(length - 1) / 2 | floor] end' "$RAW"
}

# fmt VALUE SCALE DECIMALS: a median for the targets table.
fmt() {
	[ "$1" = null ] && { echo "-"; return; }
	jq -rn --argjson v "$1" --argjson s "$2" --argjson d "$3" \
		'($v * $s * pow(10; $d) | round) / pow(10; $d) | tostring'
}

verdict() { # verdict VALUE OP LIMIT
	if [ "$1" = null ]; then echo "not measured"
	elif jq -en "$1 $2 $3" >/dev/null; then echo "met"
	else echo "**not met**"; fi
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
	echo "# secmsg-bench results"
	echo
	echo "- date: $started (start of the runs)"
	echo "- machine: $(nproc) CPUs, $cpu, Linux $(uname -r)"
	echo "- commit: $commit; build: \`$B\` (release flags)"
	echo "- runs: $RUNS per configuration, ${T} s measured each after the warm-up;"
	echo "  each cell is the median (min–max); daemon and bench share the machine"
	echo "- noise: $(jq -s '[.[] | select(.disturbed)] | length' "$RAW") of $(jq -s length "$RAW") kept runs had other"
	echo "  processes above ${MAX_OTHER}% of one CPU (or, for the handshake, a ceiling"
	echo "  that moved more than $(jq -n "$MAX_DRIFT * 100")% between the window and after it)"
	echo "  after $RETRIES retries; $(jq -s '[.[] | .attempts - 1] | add' "$RAW") runs were repeated"
	echo "- reproduce: \`make O=$B all && bench/run-matrix.sh $B\`; raw runs in \`$RAW\`"
	[ "$(jq -rs '[.[] | select(.config == "store-100")][0].started // ""' "$RAW")" != "$started" ] &&
		echo "- the store section was run apart (\`ONLY=store\`): its commit and start are given there"
	echo
	echo "## Relay and latency (100-byte texts)"
	echo
	echo "| configuration | msgs/s | msgs per server CPU-s | p50 µs | p99 µs | p99.9 µs | server CPU % | bench CPU % | other CPU % | errors |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	for c in relay-1 relay-10 relay-100 relay-1000 latency; do
		case $c in
		relay-*) label="relay P=${c#relay-}, window 64" ;;
		latency) label="latency, 10,000 msg/s, P=100" ;;
		esac
		echo "| $label | $(cell $c msgs_per_s) | $(cell $c msgs_per_server_cpu_s)" \
			"| $(cell $c p50_us 1 1) | $(cell $c p99_us 1 1) | $(cell $c p999_us 1 1)" \
			"| $(cell $c server_cpu_pct 1 1) | $(cell $c bench_cpu_pct 1 1)" \
			"| $(cell $c other_cpu_pct 1 1) | $(errors $c) |"
	done
	echo
	echo "## Handshake (full logins: handshake + first LIST)"
	echo
	echo "| configuration | logins/s | logins per server CPU-s | crypto ceiling per CPU-s | fraction of ceiling % | ceiling, quiet | server steps in process, % of quiet ceiling | server CPU % | bench CPU % | other CPU % | errors |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	for c in handshake-8 handshake-64; do
		echo "| K=${c#handshake-} | $(cell $c logins_per_s) | $(cell $c logins_per_server_cpu_s)" \
			"| $(cell $c crypto_ceiling_per_s) | $(cell $c ceiling_fraction 100 1)" \
			"| $(cell $c ceiling_quiet_per_s) | $(cell $c inproc_fraction 100 1)" \
			"| $(cell $c server_cpu_pct 1 1) | $(cell $c bench_cpu_pct 1 1)" \
			"| $(cell $c other_cpu_pct 1 1) | $(errors $c) |"
	done
	echo
	echo "## Idle connections"
	echo
	echo "| configuration | RSS per connection, bytes | incl. one-time costs, bytes | RSS after, KiB | logins/s while filling | errors |"
	echo "| --- | --- | --- | --- | --- | --- |"
	for c in idle-1000 idle-10000; do
		echo "| N=${c#idle-} | $(cell $c rss_per_conn_bytes) | $(cell $c rss_per_conn_incl_fixed_bytes)" \
			"| $(cell $c rss_after_kib) | $(cell $c idle_logins_per_s) | $(errors $c) |"
	done
	echo
	echo "## Stored messages (recipients offline; protocol version 2)"
	echo
	echo "Runs at commit $(jq -rs '[.[] | select(.config == "store-100")][0].commit // "unknown"' "$RAW"),"
	echo "started $(jq -rs '[.[] | select(.config == "store-100")][0].started // "unknown"' "$RAW")."
	echo "\"drain\" is timed from the recipients' first connect (the P handshakes"
	echo "included) to the last stored text received; \"drain after login\" from the"
	echo "first recipient's ClientAuth (its handshake done; the daemon prepares the"
	echo "backlog before its LIST reply, so that is in) to the last text received:"
	echo "for P=1, one recipient's backlog of 10,000 without the handshake. Drain-only"
	echo "runs have no CPU % figures (the bench takes them over the timed window)."
	echo
	echo "| configuration | stored msgs/s | stored msgs per server CPU-s | to STORED p50 µs | p99 µs | p99.9 µs | backlog, msgs | drain msgs/s | drain after login msgs/s | drain msgs per server CPU-s | server CPU % | bench CPU % | other CPU % | errors |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	for c in store-100 store-100-w4 store-drain store-drain-1; do
		w=$(jq -rs --arg c "$c" '[.[] | select(.config == $c) | .window][0] // "?"' "$RAW")
		case $c in
		store-100|store-100-w4) label="store P=100, window $w, timed" ;;
		store-drain) label="store P=100, window $w, backlog 10,000 (drain only)" ;;
		store-drain-1) label="store P=1, window $w, backlog 10,000 (drain only)" ;;
		esac
		echo "| $label | $(cell $c msgs_per_s) | $(cell $c msgs_per_server_cpu_s)" \
			"| $(cell $c p50_us 1 1) | $(cell $c p99_us 1 1) | $(cell $c p999_us 1 1)" \
			"| $(cell $c backlog) | $(cell $c drain_msgs_per_s)" \
			"| $(cell $c drain_after_login_msgs_per_s) | $(cell $c drain_msgs_per_server_cpu_s)" \
			"| $(cell $c server_cpu_pct 1 1) | $(cell $c bench_cpu_pct 1 1)" \
			"| $(cell $c other_cpu_pct 1 1) | $(errors $c) |"
	done
	echo
	echo "## Targets of issue 7 (medians)"
	echo
	echo "| target | measured | verdict |"
	echo "| --- | --- | --- |"
	v=$(median relay-100 msgs_per_server_cpu_s)
	echo "| relay P=100: ≥ 300,000 msgs per server CPU-s | $(fmt "$v" 1 0) | $(verdict "$v" '>=' 300000) |"
	v=$(median relay-1000 msgs_per_server_cpu_s)
	echo "| relay P=1000: ≥ 150,000 msgs per server CPU-s | $(fmt "$v" 1 0) | $(verdict "$v" '>=' 150000) |"
	for k in 8 64; do
		v=$(median handshake-$k ceiling_fraction)
		echo "| handshake K=$k: ≥ 80% of the crypto ceiling | $(fmt "$v" 100 1)% | $(verdict "$v" '>=' 0.8) |"
	done
	v=$(median idle-10000 rss_per_conn_bytes)
	echo "| idle N=10000: ≤ 4096 bytes RSS per connection | $(fmt "$v" 1 0) | $(verdict "$v" '<=' 4096) |"
	v=$(median latency p50_us)
	echo "| latency: p50 ≤ 100 µs | $(fmt "$v" 1 1) | $(verdict "$v" '<=' 100) |"
	v=$(median latency p99_us)
	echo "| latency: p99 ≤ 1000 µs | $(fmt "$v" 1 1) | $(verdict "$v" '<=' 1000) |"
	echo
	echo "## Targets of issue 17 (medians)"
	echo
	echo "| target | measured | verdict |"
	echo "| --- | --- | --- |"
	for c in store-100 store-100-w4; do
		w=$(jq -rs --arg c "$c" '[.[] | select(.config == $c) | .window][0] // "?"' "$RAW")
		v=$(median $c msgs_per_s)
		p=$(median $c p99_us)
		both=$(jq -n --argjson v "$v" --argjson p "$p" 'if $v == null or $p == null then null
			elif $v >= 50000 and $p <= 20000 then 1 else 0 end')
		echo "| ≥ 50,000 stored msgs/s with p99 to STORED ≤ 20 ms at P=100, window $w | $(fmt "$v" 1 0) msgs/s, p99 $(fmt "$p" 0.001 1) ms | $(verdict "$both" '>=' 1) |"
	done
	v=$(median store-100 drain_msgs_per_s)
	b=$(median store-100 backlog)
	both=$(jq -n --argjson v "$v" --argjson b "$b" 'if $v == null or $b == null then null
		elif $v >= 100000 and $b >= 10000 then 1 else 0 end')
	echo "| a backlog of at least 10,000 delivered at ≥ 100,000 msgs/s: the timed run's, 100 recipients, their logins included | $(fmt "$v" 1 0) msgs/s from $(fmt "$b" 1 0) messages | $(verdict "$both" '>=' 1) |"
	v=$(median store-drain drain_msgs_per_s)
	b=$(median store-drain backlog)
	both=$(jq -n --argjson v "$v" --argjson b "$b" 'if $v == null or $b == null then null
		elif $v >= 100000 and $b >= 10000 then 1 else 0 end')
	echo "| a 10,000-message backlog delivered at ≥ 100,000 msgs/s: 100 recipients of 100, their logins included | $(fmt "$v" 1 0) msgs/s from $(fmt "$b" 1 0) messages | $(verdict "$both" '>=' 1) |"
	v=$(median store-drain-1 drain_after_login_msgs_per_s)
	b=$(median store-drain-1 backlog)
	both=$(jq -n --argjson v "$v" --argjson b "$b" 'if $v == null or $b == null then null
		elif $v >= 100000 and $b >= 10000 then 1 else 0 end')
	echo "| the same: one recipient holding 10,000, from its ClientAuth | $(fmt "$v" 1 0) msgs/s from $(fmt "$b" 1 0) messages | $(verdict "$both" '>=' 1) |"
	echo
	echo "The 15,000-connection target is not in the matrix; check it with"
	echo "\`$BIN idle --connections 15000\`."
} >"$OUT"
echo "run-matrix: wrote $OUT" >&2
