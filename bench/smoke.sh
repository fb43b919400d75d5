#!/bin/sh
# bench/smoke.sh - a short run of every secmsg-bench mode, so the benchmark
# cannot rot. Each run starts its own secmsgd (throwaway PKI), lasts a
# second or two with tiny sizes, and must print a JSON object that parses,
# with errors == 0 and its mode's main figure present.
#
#   SECMSG_RELEASE=build bench/smoke.sh     # prints PASS:/FAIL: lines
#
# Uses $SECMSG_RELEASE/secmsg-bench (default build/); secmsg-bench starts the
# secmsgd next to it. Exits 1 if any mode failed. About 12 s in all.
set -u
cd "$(dirname "$0")/.."
R=${SECMSG_RELEASE:-build}
BIN=$R/secmsg-bench
failures=0

# json_check FILE FILTER: the JSON in FILE parses and FILTER is true.
json_check() {
	if command -v jq >/dev/null 2>&1; then
		jq -e "$2" "$1" >/dev/null 2>&1
	else
		python3 - "$1" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
f = sys.argv[2]
ok = d.get("errors") == 0
for key in ("msgs_per_s", "logins_per_s", "rss_per_conn_bytes"):
    if key in f:
        ok = ok and d.get(key) is not None
sys.exit(0 if ok else 1)
EOF
	fi
}

# smoke MODE FILTER ARGS...: run one mode and check its JSON.
smoke() {
	mode=$1 filter=$2
	shift 2
	out=$(mktemp) err=$(mktemp)
	timeout 60 "$BIN" "$mode" "$@" --json >"$out" 2>"$err"
	rc=$?
	if [ $rc -le 1 ] && json_check "$out" ".errors == 0 and ($filter)"; then
		echo "PASS: bench $mode"
	else
		echo "FAIL: bench $mode (exit $rc)"
		cat "$out" "$err" | tail -20
		failures=$((failures + 1))
	fi
	rm -f "$out" "$err"
}

if [ ! -x "$BIN" ]; then
	echo "FAIL: bench smoke: no $BIN (build with make O=$R all)"
	exit 1
fi
smoke relay '.msgs_per_s > 0 and .msgs_per_server_cpu_s != null and .p50_us != null' \
	--pairs 2 --size 64 --window 8 --seconds 1 --warmup 0.2
smoke latency '.msgs_per_s > 0 and .p99_us != null' \
	--pairs 4 --rate 400 --seconds 1 --warmup 0.2
smoke handshake '.logins_per_s > 0 and .crypto_ceiling_per_s > 0 and .inproc_fraction > 0' \
	--connectors 2 --seconds 1 --warmup 0.2
smoke idle '.rss_per_conn_bytes != null and .connections == 40' \
	--connections 40
smoke store '.msgs_per_s > 0 and .p99_us != null and .backlog > 0 and .lost == 0 and .drain_msgs_per_s > 0' \
	--pairs 4 --window 8 --seconds 1 --warmup 0.2
smoke store '.backlog == 200 and .lost == 0 and .drain_msgs_per_s > 0' \
	--pairs 4 --window 8 --backlog 200
[ $failures -eq 0 ]
