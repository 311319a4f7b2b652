#!/usr/bin/env bash
# The archive next to nfcapd in one run of the peer bench (bench.py findmax: the maximum lossless, kept-up
# sustained rate with a 20 s confirmation, and flows per CPU-second), IPFIX from one exporter or several.
# Ours: parquet:DIR (rows counted with DuckDB), jsonl and sqlite. Also, for scale: `sink` (the peer bench's
# C recvmmsg receiver, decoding nothing) and `floor` (bench/receive-floor.ts: a node:dgram socket that only
# counts records: what any collector on Node's UDP sockets pays before decoding). The peer bench itself is not part of this
# repository: PEER_BENCH=/path/to/peer-bench (its README is the manual; its C tools are built into
# PEER_BENCH_WORK, default /tmp/peer-bench).
#
# Usage: bench/archive-side-by-side.sh [--exporters N] [--port P] [--precision 0.1] [--only "nfcapd sink floor parquet jsonl sqlite"]
#        [--args "--decode-threads 1"]   # more options for our collector (its label then names them)
#        [--env "CLARION_COLLECTOR_WARM_UP=0"]   # environment for our collector (named in its label too)
#        CLARION_BENCH_CHECKOUT=/other/checkout bench/archive-side-by-side.sh ...   # another checkout's collector
# Prints one RESULT line per collector (bench.py's), with `uptime` before each.
set -u
PB="${PEER_BENCH:?set PEER_BENCH to the peer-bench directory}"
# bench.py keeps its results beside itself when it may write there: keep them out of a shared checkout
export PEER_BENCH_WORK="${PEER_BENCH_WORK:-/tmp/peer-bench}"
S="$(cd "$(dirname "$0")" && pwd)"
M="$(cd "${CLARION_BENCH_CHECKOUT:-$S/..}" && pwd)"
EXPORTERS=1 PORT=29995 PRECISION=0.1 ONLY="nfcapd parquet jsonl sqlite" ARGS="" ENVS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --exporters) EXPORTERS=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --precision) PRECISION=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --args) ARGS=$2; shift 2 ;;
    --env) ENVS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
TMP="${TMPDIR:-/tmp}/clarion-side-by-side-$$"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
(cd "$PB" && ./build.sh >/dev/null)
N="$M/node_modules/.bin/node"
RUN="exec env $ENVS $N $M/bin/clarion-collector.js --netflow-port {port} --ipfix-port 0 --sflow-port 0 --http-port 0 --udp-rcvbuf {rcvbuf} --batch-interval 1 --data-dir {wd}/data --log-level warn $ARGS"
SUFFIX="$(echo "$ENVS $ARGS" | tr -c 'a-zA-Z0-9\n' '-' | sed 's/^-*//; s/-*$//')"
SUFFIX="${SUFFIX:+-$SUFFIX}"
r() {
  echo "# $(date -u +%FT%TZ) $(uptime)"
  python3 "$PB/bench.py" findmax "$@" ipfix --exporters "$EXPORTERS" --port "$PORT" --precision "$PRECISION" \
    --tmpdir "$TMP" --label "clarion-archive-$EXPORTERS-$(basename "$M")" 2>&1 | grep '^RESULT' | tail -1
}
for c in $ONLY; do
  case "$c" in
    nfcapd) r nfcapd ;;
    # the peer bench's C recvmmsg receiver (counts records, writes nothing): the machine's receive ceiling
    sink) r sink ;;
    # a node:dgram socket that only counts records (bench/receive-floor.ts): the floor of any Node collector
    floor) r custom --name node-dgram-floor --cmd "$N $S/receive-floor.ts --host {host} --port {port} --rcvbuf {rcvbuf}" \
      --count-regex 'FLOOR flows=(\d+)' ;;
    parquet) r custom --name ours-parquet$SUFFIX --settle-allow 3 --cmd "bash -c 'cd $M && $RUN --output parquet:{out}/a'" \
      --count-cmd "$S/../node_modules/.bin/node $S/archive-count.ts {out}/a" ;;
    jsonl) r custom --name ours-jsonl$SUFFIX --settle-allow 3 --cmd "bash -c 'cd $M && $RUN --output jsonl:{out}/f.jsonl'" \
      --count-cmd "bash -c 'wc -l < {out}/f.jsonl'" ;;
    sqlite) r custom --name ours-sqlite$SUFFIX --settle-allow 3 --cmd "bash -c 'cd $M && $RUN --output sqlite:{out}/f.db'" \
      --count-cmd "sqlite3 {out}/f.db 'select count(*) from flows'" ;;
  esac
done
