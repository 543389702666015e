#!/usr/bin/env bash
# Benchmark of issue 5: 100 simulated Modbus TCP devices (one port each on
# 127.0.0.1) with 100 holding registers each, every value changing every
# second, polled every second for DURATION (60 s) through the Modbus
# adapter into a counting sink, with and without request merging. The
# simulators run in their own process, so the figures are the adapter's.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${DEVICES:-100}
REGISTERS=${REGISTERS:-100}
DURATION=${DURATION:-60s}
PORT=${PORT:-26000}
bin=$(mktemp -d)
trap 'kill "$sim" 2>/dev/null || true; wait "$sim" 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/devsim ./cmd/modbus-bench
"$bin/devsim" modbus --listen "127.0.0.1:$PORT" --count "$DEVICES" --registers "$REGISTERS" --change 1s &
sim=$!
sleep 1
for merge in true false; do
  echo "== merge=$merge"
  "$bin/modbus-bench" --port "$PORT" --devices "$DEVICES" --registers "$REGISTERS" --duration "$DURATION" --merge=$merge
done
