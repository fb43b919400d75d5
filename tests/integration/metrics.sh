#!/bin/bash
# metrics.sh - secmsgd's GET /metrics read by Prometheus's own tools:
# `promtool check metrics` on the golden text and on a real scrape (no
# complaint at all), a real Prometheus server (Debian's `prometheus`, a
# child process on loopback with a temporary configuration and storage)
# scraping the daemon until its HTTP API returns the logins made, and the
# endpoint on a socket passed by systemd-socket-activate ("metrics"), whose
# first connection, a GET /health, starts the daemon and is answered.
#
# Needs promtool and prometheus (scripts/deps.sh installs the package),
# jq and systemd-socket-activate; a missing one fails the test (python3's
# urllib, through tests/lib/fetch.py, is the HTTP client).
# Uses $SECMSG_BUILD and $SECMSG_PKI.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/daemon.sh

for t in promtool prometheus python3 jq systemd-socket-activate; do
	if ! command -v "$t" >/dev/null; then
		fail "metrics test: $t is missing (make deps installs it)"
		exit 1
	fi
done
T=$(mktemp -d /tmp/secmsg-metrics-XXXXXX)
PROM=
ACT=
cleanup() {
	local p
	for p in $PROM $ACT; do
		kill -TERM "$p" 2>/dev/null
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	daemon_stop >/dev/null 2>&1
	[ -n "${SECMSG_KEEP:-}" ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT

# until_true SECONDS CMD...: poll CMD every 0.2 s until it succeeds.
until_true() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@" 2>/dev/null; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.2
	done
}
# fetch URL: the body on stdout, "STATUS CONTENT-TYPE" in $T/head; exit
# status 0 for a 200.
fetch() { tests/lib/fetch.py "$1" "$T/head"; }
login() {
	printf 'quit\n' | timeout 20 "$SECMSG_BUILD/secmsg-client" -c "$(client_conf "$1")" \
		--batch "$1" >"$T/login-$1.out" 2>&1
}
# promtool_clean WHAT FILE: promtool check metrics says nothing and exits 0.
promtool_clean() {
	local out rc
	out=$(promtool check metrics <"$2" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && [ -z "$out" ]; then
		pass "$1"
	else
		fail "$1 (exit $rc): $out"
	fi
}

# ---- promtool ----

promtool_clean "promtool check metrics: the golden text (tests/unit/metrics/full.prom)" \
	tests/unit/metrics/full.prom

MPORT=$(free_port)
daemon_start "[server]
metrics_listen = 127.0.0.1:$MPORT" || { fail "secmsgd starts with metrics_listen"; exit 1; }
URL=http://127.0.0.1:$MPORT
login alice || fail "alice logs in ($(cat "$T/login-alice.out"))"
if fetch "$URL/metrics" >"$T/scrape" &&
	[ "$(cat "$T/head")" = "200 text/plain; version=0.0.4; charset=utf-8" ]; then
	pass "GET /metrics: 200, text/plain; version=0.0.4"
else
	fail "GET /metrics: 200, text/plain; version=0.0.4 ($(cat "$T/head" 2>/dev/null))"
fi
promtool_clean "promtool check metrics: a real scrape" "$T/scrape"
n=$(grep -c '^# HELP secmsgd_' "$T/scrape")
if [ "$n" -ge 20 ] && grep -q '^secmsgd_logins_total 1$' "$T/scrape"; then
	pass "the scrape has $n families, secmsgd_logins_total 1"
else
	fail "the scrape has $n families, secmsgd_logins_total 1: $(grep logins_total "$T/scrape")"
fi
if [ "$(fetch "$URL/health")" = ok ]; then
	pass "GET /health: ok"
else
	fail "GET /health: ok"
fi

# ---- a real Prometheus ----

PPORT=$(free_port)
cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: secmsgd
    static_configs:
      - targets: ['127.0.0.1:$MPORT']
EOF
promtool check config "$T/prometheus.yml" >"$T/promtool-config.log" 2>&1 ||
	fail "promtool check config: $(cat "$T/promtool-config.log")"
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/data" \
	--web.listen-address="127.0.0.1:$PPORT" --log.level=warn \
	>"$T/prometheus.log" 2>&1 </dev/null &
PROM=$!
API=http://127.0.0.1:$PPORT/api/v1
# query EXPR: the first result's value, as Prometheus's HTTP API gives it.
query() {
	fetch "$API/query?query=$(python3 -c 'import sys, urllib.parse
print(urllib.parse.quote(sys.argv[1]))' "$1")" | jq -r '.data.result[0].value[1] // empty'
}
is() { [ "$(query "$1")" = "$2" ]; }
if until_true 30 fetch "http://127.0.0.1:$PPORT/-/ready" >/dev/null; then
	pass "prometheus $(prometheus --version 2>&1 | sed -n '1s/prometheus, version \([^ ]*\).*/\1/p') is ready on 127.0.0.1:$PPORT"
else
	fail "prometheus is ready on 127.0.0.1:$PPORT"
	tail -20 "$T/prometheus.log"
	exit 1
fi
if until_true 30 is 'secmsgd_logins_total' 1 && is 'up{job="secmsgd"}' 1; then
	pass "Prometheus scrapes secmsgd: /api/v1/query?query=secmsgd_logins_total is 1, up 1"
else
	fail "Prometheus scrapes secmsgd: secmsgd_logins_total '$(query secmsgd_logins_total)', up '$(query 'up{job="secmsgd"}')'"
	fetch "$API/targets" | jq -c '.data.activeTargets[] | {health, lastError}'
fi
login bob || fail "bob logs in"
login bob || fail "bob logs in again"
if until_true 30 is 'secmsgd_logins_total' 3 &&
	until_true 10 is 'secmsgd_handshake_duration_seconds_count' 3; then
	pass "Prometheus sees the logins that follow: secmsgd_logins_total 3, the histogram's count 3"
else
	fail "Prometheus sees the logins that follow: secmsgd_logins_total '$(query secmsgd_logins_total)', count '$(query secmsgd_handshake_duration_seconds_count)'"
fi
h=$(fetch "$API/targets" | jq -r '.data.activeTargets[0] | "\(.health) \(.lastError)"')
if [ "$h" = "up " ]; then
	pass "the scrape target is up, with no error"
else
	fail "the scrape target is up, with no error: $h"
fi
if grep -qi 'level=error\|level=warn' "$T/prometheus.log"; then
	fail "prometheus logged no warning: $(grep -i 'level=error\|level=warn' "$T/prometheus.log" | head -3)"
else
	pass "prometheus logged no warning"
fi

# ---- socket activation: the socket named "metrics" ----

APORT=$(free_port)
AMPORT=$(free_port)
# The same configuration, while the first daemon still holds its
# metrics_listen port: a passed "metrics" socket is used instead of it.
# Only the state directory differs: the first daemon holds its database
# (a second secmsgd on the same database refuses to start).
mkdir -p "$T/state"
sed "s|^state_dir = .*|state_dir = $T/state|" "$DCONF" >"$T/activated.conf"
systemd-socket-activate -l "127.0.0.1:$APORT" -l "$T/control" \
	-l "127.0.0.1:$AMPORT" --fdname=chat:control:metrics \
	"$SECMSG_BUILD/secmsgd" -c "$T/activated.conf" >"$T/activated.log" 2>&1 &
ACT=$!
comm() { cat "/proc/$ACT/comm" 2>/dev/null; }
if until_true 10 grep -q "Listening on 127.0.0.1:$AMPORT" "$T/activated.log" &&
	[ "$(comm)" = systemd-socket- ]; then
	pass "socket activation: the sockets listen, secmsgd is not started yet"
else
	fail "socket activation: the sockets listen, secmsgd is not started yet ($(comm))"
fi
health=$(fetch "http://127.0.0.1:$AMPORT/health")
if [ "$health" = ok ] && [ "$(comm)" = secmsgd ]; then
	pass "socket activation: GET /health on the \"metrics\" socket starts secmsgd and is answered ok"
else
	fail "socket activation: GET /health on the \"metrics\" socket starts secmsgd and is answered ok ('$health', $(comm))"
	cat "$T/activated.log"
fi
fetch "http://127.0.0.1:$AMPORT/metrics" >"$T/activated.prom"
promtool_clean "promtool check metrics: a scrape on the passed socket" "$T/activated.prom"
kill -TERM "$ACT"
until_true 10 eval "! kill -0 $ACT"
wait "$ACT"; rc=$?
ACT=
if [ $rc -eq 0 ]; then
	pass "the socket-activated secmsgd stops cleanly"
else
	fail "the socket-activated secmsgd stops cleanly (exit $rc): $(tail -5 "$T/activated.log")"
fi

daemon_stop || fail "secmsgd stops cleanly"
[ "$FAILURES" -eq 0 ]
