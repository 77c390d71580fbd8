#!/bin/bash
# usage: bench/icount.sh SCENARIO N [LABEL]
# Instructions per operation of an in-process scenario (bench/inproc.py): the difference between
# an N- and a 2N-operation run under callgrind, on a snapshot of this checkout's txrealtime/ and
# bench/ (so that editing the source meanwhile does not change what is measured).
set -e
here=$(cd "$(dirname "$0")/.." && pwd)
scenario=$1; n=$2; label=${3:-$scenario}
python=${PYTHON:-$here/.venv/bin/python}
snap=$(mktemp -d /tmp/icount-$label.XXXX)
cp -r "$here/txrealtime" "$here/bench" "$snap/"
cp "$here"/txrealtime__mypyc*.so "$snap/" 2>/dev/null || true  # a compiled tree (pip install --target DIR)
cd "$snap"
run() {
    valgrind --tool=callgrind --callgrind-out-file="$snap/cg.$1" "$python" -c "
from bench import inproc
inproc.$scenario($1)
" 2>&1 | grep -o "Collected : [0-9]*" | awk '{print $3}'
}
a=$(run "$n"); b=$(run $(( n * 2 )))
rm -rf "$snap"
echo "$label: $(( (b - a) / n )) instructions per op ($scenario, $n vs $(( n * 2 )))"
