#!/usr/bin/env bash
# Profile txrealtime under one load: bench/profile.sh [echo|listen|poll-echo] [clients] [seconds]
# Writes bench/profile-<scenario>.txt: functions by samples (self and total), from py-spy.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-echo}; clients=${2:-1000}; seconds=${3:-8}
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PYTHONPATH=. taskset -c 0 .venv/bin/twistd -n --pidfile= -l /dev/null txrealtime \
  --listen "tcp:$port:interface=127.0.0.1:backlog=1024" --app bench.apps.tx_app:setup --no-access-log \
  --max-buffer 50000000 & server=$!
trap 'kill $server 2>/dev/null || true' EXIT
until (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do sleep 0.1; done
NODE_PATH=bench/node_modules taskset -c 1 node bench/loadgen.js "$scenario" "http://127.0.0.1:$port" "$clients" $((seconds + 3)) > /tmp/profile-load.json &
load=$!
sleep 2
.venv/bin/py-spy record --pid "$server" --duration "$seconds" --rate 200 --format raw --output /tmp/profile.raw --nonblocking >/dev/null 2>&1
wait $load || true
.venv/bin/python bench/collapse.py /tmp/profile.raw > "bench/profile-$scenario.txt"
tail -1 /tmp/profile-load.json
head -40 "bench/profile-$scenario.txt"
