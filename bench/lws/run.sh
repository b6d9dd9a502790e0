#!/usr/bin/env bash
# bench/lws/run.sh: libwebsockets' Secure Streams proxy and client side by
# side with ssproxy and ss, on loopback, in one run (see README.md here).
#
#   LWS_BUILD=/path/to/lws-build bench/lws/run.sh
#
# Without LWS_BUILD it prints why and exits 0 (CI has no libwebsockets).
# Knobs (environment): STREAMS (100,1000), CYCLES (8), CYCLE_STREAMS (1000),
# RTT_COUNT (5000), BYTES (67108864), DURATION (2s), H1_N (2000),
# ECHO_N (20000), IDLE_N (1000), CONNECTED_N (1000), OUT (a temp dir),
# BUSY_POLL (unset; a duration adds an ssproxy -busy-poll side).
set -euo pipefail

if [ -z "${LWS_BUILD:-}" ]; then
	echo "bench/lws: LWS_BUILD is not set: skipped (point it at a libwebsockets build, see bench/lws/README.md)"
	exit 0
fi
LWS_PROXY="$LWS_BUILD/bin/lws-minimal-secure-streams-proxy"
for f in "$LWS_PROXY" "$LWS_BUILD/lib/libwebsockets.so" "$LWS_BUILD/include/libwebsockets.h"; do
	if [ ! -e "$f" ]; then
		echo "bench/lws: $f missing: LWS_BUILD must be a libwebsockets build with the secure-streams proxy example (bench/lws/README.md)" >&2
		exit 1
	fi
done

# Loopback only: re-run inside a network namespace of our own.
if [ -z "${SSBENCH_NETNS:-}" ]; then
	un=(unshare -n)
	[ "$(id -u)" = 0 ] || un=(unshare -rn)
	exec "${un[@]}" env SSBENCH_NETNS=1 bash "$0" "$@"
fi
ip link set lo up

repo=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/ss-lws-bench.XXXXXX)}
mkdir -p "$OUT"
STREAMS=${STREAMS:-100,1000}
CYCLES=${CYCLES:-8}
CYCLE_STREAMS=${CYCLE_STREAMS:-1000}
RTT_COUNT=${RTT_COUNT:-5000}
BYTES=${BYTES:-67108864}
DURATION=${DURATION:-2s}
H1_N=${H1_N:-2000}
ECHO_N=${ECHO_N:-20000}
IDLE_N=${IDLE_N:-1000}
CONNECTED_N=${CONNECTED_N:-1000}
ROUNDS=${ROUNDS:-1}
ulimit -n "$(ulimit -Hn)"

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

echo "building into $OUT" >&2
(cd "$repo" && go build -o "$OUT/ssproxy" ./cmd/ssproxy && go build -o "$OUT/ssproxy-bench" ./cmd/ssproxy-bench &&
	go build -o "$OUT/ssclient" ./bench/lws/ssclient)
cc -O2 -Wall -I"$LWS_BUILD/include" -o "$OUT/lws-ss-bench" "$repo/bench/lws/lws-ss-bench.c" \
	-L"$LWS_BUILD/lib" -lwebsockets -Wl,-rpath,"$LWS_BUILD/lib"
B="$OUT/ssproxy-bench"

# The onward servers: the ssproxy-bench peer (raw echo/sink/source) and a
# 1 KiB HTTP/1.1 server. Fixed ports are safe in our own namespace.
"$B" -peer 127.0.0.1:7681 2>/dev/null & pids+=($!)
"$OUT/ssclient" -serve-http 127.0.0.1:7682 2>/dev/null & pids+=($!)

"$B" -print-policy 127.0.0.1:7681 > "$OUT/proxy-policy.json"
"$OUT/ssproxy" -policy "$OUT/proxy-policy.json" -listen unix:@ss-bench-ssproxy -max-links -1 \
	-max-links-per-uid -1 -max-links-per-process -1 -max-queued-bytes -1 2>"$OUT/ssproxy.log" & ss_pid=$!; pids+=($ss_pid)
# The same with one goroutine per link instead of the event loop (docs/proxy.md, "Event loop").
"$OUT/ssproxy" -policy "$OUT/proxy-policy.json" -listen unix:@ss-bench-ssproxy-net -event-loop off -max-links -1 \
	-max-links-per-uid -1 -max-links-per-process -1 -max-queued-bytes -1 2>"$OUT/ssproxy-net.log" & net_pid=$!; pids+=($net_pid)
# BUSY_POLL=DURATION adds a side: ssproxy with -busy-poll (docs/proxy.md, "Event loop").
if [ -n "${BUSY_POLL:-}" ]; then
	"$OUT/ssproxy" -policy "$OUT/proxy-policy.json" -listen unix:@ss-bench-ssproxy-bp -busy-poll "$BUSY_POLL" -max-links -1 \
		-max-links-per-uid -1 -max-links-per-process -1 -max-queued-bytes -1 2>"$OUT/ssproxy-bp.log" & bp_pid=$!; pids+=($bp_pid)
fi
"$LWS_PROXY" -c "$OUT/proxy-policy.json" -i @ss-bench-lws -d 3 >"$OUT/lws-proxy.log" 2>&1 & lws_pid=$!; pids+=($lws_pid)
sleep 1

head="commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'), lws $(awk '/define LWS_LIBRARY_VERSION_(MAJOR|MINOR|PATCH_ELABORATED) /{printf "%s%s", (n++ ? "." : ""), $3}' "$LWS_BUILD/include/lws_config.h"), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
common=(-rtt-count "$RTT_COUNT" -bytes "$BYTES" -streams "$STREAMS" -duration "$DURATION" -cycles "$CYCLES" -cycle-streams "$CYCLE_STREAMS" -json)

echo "== ssproxy against the libwebsockets proxy ($head)"
echo "   the same load client (cmd/ssproxy-bench), the same raw peer; direct = no proxy"
# One run of the load client against one side, written to $OUT/SIDE.ROUND.json.
# The memory tests (-pid: RSS per stream, cycles) run in the first round
# only: later rounds would measure a proxy warmed by the earlier ones.
side() {
	local mem=() more=()
	[ "$2" = 0 ] && mem=(-pid) || more=(-tests latency,rx,tx,streams)
	case $1 in
	direct) "$B" -direct 127.0.0.1:7681 -label direct "${common[@]}" "${more[@]}" ;;
	lws) "$B" -proxy unix:@ss-bench-lws ${mem[@]:+"${mem[@]}" "$lws_pid"} -label lws "${common[@]}" "${more[@]}" ;;
	ssproxy-net) "$B" -proxy unix:@ss-bench-ssproxy-net ${mem[@]:+"${mem[@]}" "$net_pid"} -label ssproxy-net "${common[@]}" "${more[@]}" ;;
	ssproxy) "$B" -proxy unix:@ss-bench-ssproxy ${mem[@]:+"${mem[@]}" "$ss_pid"} -label ssproxy "${common[@]}" "${more[@]}" ;;
	ssproxy-bp) "$B" -proxy unix:@ss-bench-ssproxy-bp ${mem[@]:+"${mem[@]}" "$bp_pid"} -label ssproxy-bp "${common[@]}" "${more[@]}" ;;
	esac > "$OUT/$1.$2.json" || true
}
# ROUNDS > 1 alternates the sides, each round starting with a different
# one, and the table shows medians, the ratio column the median of the
# per-round ratios (ssproxy-bench -compare label=a+b+...).
sides=(direct lws ssproxy-net ssproxy)
[ -n "${BUSY_POLL:-}" ] && sides+=(ssproxy-bp)
for ((k = 0; k < ROUNDS; k++)); do
	for ((j = 0; j < ${#sides[@]}; j++)); do
		side "${sides[(j + k) % ${#sides[@]}]}" "$k"
	done
done
files() { local f=() k; for ((k = 0; k < ROUNDS; k++)); do f+=("$OUT/$1.$k.json"); done; local IFS=+; echo "${f[*]}"; }
[ "$ROUNDS" -gt 1 ] && echo "   $ROUNDS rounds, sides alternated: medians; the ratio is the median of the per-round ratios"
bp=
[ -n "${BUSY_POLL:-}" ] && bp="ssproxy-bp=$(files ssproxy-bp),"
"$B" -compare "direct=$(files direct),ssproxy-net=$(files ssproxy-net),${bp}lws=$(files lws),ssproxy=$(files ssproxy)"
echo
if [ -n "${PROXY_ONLY:-}" ]; then
	exit 0
fi

echo "== libwebsockets' Secure Streams client against ss, in-process ($head)"
cat > "$OUT/client-policy.json" <<POLICY
{
  "release": "01234567", "product": "ss-lws-bench", "schema-version": 1,
  "retry": [{"default": {"backoff": [100, 200, 500, 1000], "conceal": 5, "jitterpc": 20, "svalidping": 300, "svalidhup": 310}}],
  "s": [
    {"get": {"endpoint": "127.0.0.1", "port": 7682, "protocol": "h1", "http_method": "GET", "http_url": "1k", "retry": "default", "tls": false}},
    {"bench": {"endpoint": "127.0.0.1", "port": 7681, "protocol": "raw", "retry": "default"}}
  ]
}
POLICY
: > "$OUT/c-lws.jsonl"; : > "$OUT/c-ss.jsonl"; : > "$OUT/c-ss1.jsonl"; : > "$OUT/c-go.jsonl"; : > "$OUT/c-ssloop.jsonl"
for t in "h1 $H1_N" "echo $ECHO_N" "idle $IDLE_N" "connected $CONNECTED_N"; do
	set -- $t
	"$OUT/lws-ss-bench" "$OUT/client-policy.json" "$1" "$2" >> "$OUT/c-lws.jsonl" 2>>"$OUT/lws-client.log" || echo "lws-ss-bench $1 failed (see $OUT/lws-client.log)" >&2
	"$OUT/ssclient" -policy "$OUT/client-policy.json" -test "$1" -n "$2" >> "$OUT/c-ss.jsonl" || echo "ssclient $1 failed" >&2
	GOMAXPROCS=1 "$OUT/ssclient" -policy "$OUT/client-policy.json" -test "$1" -n "$2" >> "$OUT/c-ss1.jsonl" || echo "ssclient (GOMAXPROCS=1) $1 failed" >&2
	case $1 in
	h1 | echo)
		# The Go floor: the same work with net/http or a net.Conn alone.
		"$OUT/ssclient" -policy "$OUT/client-policy.json" -floor -test "$1" -n "$2" >> "$OUT/c-go.jsonl" || echo "ssclient -floor $1 failed" >&2
		;;
	connected)
		# ss.Config.EventLoop: the connected sockets parked in one epoll set.
		"$OUT/ssclient" -policy "$OUT/client-policy.json" -event-loop -test "$1" -n "$2" >> "$OUT/c-ssloop.jsonl" || echo "ssclient -event-loop $1 failed" >&2
		;;
	esac
done
"$OUT/ssclient" -table "lws SS=$OUT/c-lws.jsonl,ss=$OUT/c-ss.jsonl,ss GOMAXPROCS 1=$OUT/c-ss1.jsonl,Go floor=$OUT/c-go.jsonl,ss EventLoop=$OUT/c-ssloop.jsonl"
echo "(raw results in $OUT; load at end $(cut -d' ' -f1-3 /proc/loadavg))"
