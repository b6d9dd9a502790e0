#!/usr/bin/env bash
# scripts/bench.sh: the ratio table of the performance goals (PERFORMANCE.md,
# issue 13), from the pairs in bench/, and with LWS_BUILD set also the
# libwebsockets tables (bench/lws/run.sh).
#
#   scripts/bench.sh                 # 6 passes of every pair
#   COUNT=10 scripts/bench.sh        # more passes
#   PAIRS='Raw64BEcho|H1Get1KiB' scripts/bench.sh
#   LWS_BUILD=/path/to/lws-build scripts/bench.sh
#
# The bench test binary is built once and run COUNT times (default 6); each
# pass runs every pair, so the two sides of a pair (BenchmarkX/ss and
# BenchmarkX/raw, ...) run one right after the other. scripts/benchtable
# takes each pair's ratio inside every pass and prints the median of those
# ratios beside the goal, PASS or MISS: load that changes between passes
# moves both sides of a ratio together. The memory benchmarks run once per
# pass with -benchtime 1x (MEM= skips them). Knobs: COUNT, PAIRS, MEM, BENCHTIME, OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-6}
PAIRS=${PAIRS:-'^Benchmark(PairRaw64BEcho|PairWS64BEcho|PairProxyRaw64BRoundTrip|PairH[123]Get1KiB|Raw64BEcho|Raw16KiBReceive|Raw16KiBOneWay|H[123]Get1KiB|WS64BEcho|WS16KiBOneWay|MQTTQoS0|MQTTQoS1Windowed|ProxyRaw16KiB|ProxyRaw16KiBReceive|ProxyRaw64BRoundTrip)$'}
MEM=${MEM-'^Benchmark(IdleStreamHeap|Proxy1000Streams|ProxyStreamCycles)$'}
BENCHTIME=${BENCHTIME:-1s}
OUT=${OUT:-$(mktemp -d /tmp/ss-bench.XXXXXX)}
mkdir -p "$OUT"

go test -c -o "$OUT/bench.test" ./bench/
go build -o "$OUT/benchtable" ./scripts/benchtable
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, load at start $(cut -d' ' -f1-3 /proc/loadavg); $COUNT passes; raw output in $OUT"
files=()
for i in $(seq 1 "$COUNT"); do
	f="$OUT/pass-$i.txt"
	# The proxy benchmarks build ../cmd/ssproxy: run from bench/.
	(cd bench && "$OUT/bench.test" -test.run '^$' -test.bench "$PAIRS" -test.benchtime "$BENCHTIME" -test.benchmem) > "$f" 2>&1 ||
		echo "pass $i: the benchmarks failed (see $f)" >&2
	if [ -n "$MEM" ]; then
		(cd bench && "$OUT/bench.test" -test.run '^$' -test.bench "$MEM" -test.benchtime 1x) >> "$f" 2>&1 ||
			echo "pass $i: the memory benchmarks failed (see $f)" >&2
	fi
	files+=("$f")
	echo "pass $i/$COUNT done, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
"$OUT/benchtable" "${files[@]}"
echo "load at end $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -n "${LWS_BUILD:-}" ]; then
	echo
	OUT="$OUT/lws" bench/lws/run.sh
fi
