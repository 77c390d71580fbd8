#!/usr/bin/env bash
# Server CPU per operation under one load: bench/cpu.sh SCENARIO CLIENTS [N] [ROOT]
#   echo       CLIENTS WebSocket clients echoing for N seconds (default 5): µs per message
#   poll-echo  the same over long-polling: µs per message
#   broadcast  CLIENTS clients in a room, N broadcasts of ~2.5 KB (default 10): µs per delivery
#   connect    CLIENTS WebSocket clients connecting and staying: µs per client, and resident KiB per client
# The server's user + system time (from /proc, all its processes: bench/cpustat.py, as bench.py) over the measured part, divided by what the load generator
# counted: steadier than rates on a machine whose speed varies, since time the server does not run is not
# counted. ROOT serves txrealtime from another tree (as bench.py's --txrealtime-root), for before/after runs;
# TXREALTIME_ARGS adds twistd options; TXREALTIME_APP replaces the app hook (bench/apps/tx_app.py's setup).
# The server runs on CPU 0, the load generator on CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=$1; clients=$2; root=${4:-$PWD}
[ -d bench/node_modules ] || (cd bench && npm ci --no-audit --no-fund --loglevel=error)
ulimit -n "$(ulimit -Hn)"
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out=$(mktemp -d /tmp/cpu-bench.XXXX)
# shellcheck disable=SC2086  # TXREALTIME_ARGS is a list of options
(cd "$root" && PYTHONPATH="$root" exec taskset -c 0 "$OLDPWD/.venv/bin/twistd" -n --pidfile= -l /dev/null txrealtime \
  --listen "tcp:$port:interface=127.0.0.1:backlog=1024" --app "${TXREALTIME_APP:-bench.apps.tx_app:setup}" --no-access-log \
  --max-buffer 50000000 ${TXREALTIME_ARGS:-}) & server=$!
trap 'kill $server 2>/dev/null || true; pkill -f "loadgen.js [a-z-]* http://127.0.0.1:$port" || true; rm -rf "$out"' EXIT
until (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do sleep 0.1; done
sleep 1
cpu() { .venv/bin/python bench/cpustat.py "$server"; }  # seconds, the server's child processes included
rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
load() { NODE_PATH=bench/node_modules taskset -c 1 node bench/loadgen.js "$@"; }
hz=1  # cpu() gives seconds
case $scenario in
  echo|poll-echo)
    load "$scenario" "http://127.0.0.1:$port" "$clients" "${3:-5}" > "$out/load.json" & gen=$!
    sleep 2; c0=$(cpu); t0=$(date +%s.%N); wait $gen; c1=$(cpu); t1=$(date +%s.%N)
    python3 - "$out/load.json" "$c0" "$c1" "$hz" "$t0" "$t1" <<'PY'
import json, sys
report = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
c0, c1, hz, t0, t1 = (float(a) for a in sys.argv[2:7])
busy = (c1 - c0) / hz / (t1 - t0)  # the server's share of a CPU while the load ran, steady state
print(f"{report['rate']:.0f} msgs/s; {busy * 1e6 / report['rate']:.1f} µs of server CPU per message")
PY
    ;;
  broadcast)
    messages=${3:-10}
    load listen "http://127.0.0.1:$port" "$clients" "$messages" > "$out/listen.json" & gen=$!
    until grep -q ready "$out/listen.json" 2>/dev/null; do sleep 0.2; done
    c0=$(cpu); load emit "http://127.0.0.1:$port" "$messages" > "$out/emit.json"; wait $gen; c1=$(cpu)
    python3 - "$out/listen.json" "$out/emit.json" "$c0" "$c1" "$hz" <<'PY'
import json, sys
listen = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
sent = dict(json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])["sent"])
c0, c1, hz = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
last: dict[int, float] = {}
for n, (_first, at, _count) in listen["arrivals"]:
    last[n] = max(last.get(n, 0.0), at)
elapsed = (max(last.values()) - min(sent.values())) / 1000
deliveries = listen["deliveries"]
print(f"{deliveries} deliveries, {deliveries / elapsed:.0f}/s; "
      f"{(c1 - c0) / hz * 1e6 / deliveries:.1f} µs of server CPU per delivery")
PY
    ;;
  connect)
    r0=$(rss); c0=$(cpu)
    mkfifo "$out/stdin"  # the idle load generator keeps its clients until its standard input ends
    load idle "http://127.0.0.1:$port" "$clients" < "$out/stdin" > "$out/idle.json" & gen=$!
    exec 3> "$out/stdin"
    until grep -q connected "$out/idle.json" 2>/dev/null; do sleep 0.1; done
    c1=$(cpu); sleep 1; r1=$(rss)
    exec 3>&-; wait $gen || true
    python3 - "$out/idle.json" "$c0" "$c1" "$hz" "$r0" "$r1" <<'PY'
import json, sys
report = json.loads(open(sys.argv[1]).readline())
c0, c1, hz, r0, r1 = (float(a) for a in sys.argv[2:7])
n = report["connected"]
print(f"{n} clients in {report['connectMs'] / 1000:.2f} s; {(c1 - c0) / hz * 1e6 / n:.0f} µs of server CPU "
      f"and {(r1 - r0) / n:.2f} KiB resident per client")
PY
    ;;
  *) echo "unknown scenario $scenario (echo, poll-echo, broadcast, connect)" >&2; exit 2 ;;
esac
