#!/usr/bin/env bash
# Hello-world requests/second only: a thin wrapper around bench/run.sh, kept for its old name.
#
#   bench/hello.sh                                   # maitred, hyper, tiny-pool; 3 rounds × 5 s
#   SERVERS="hyper tiny-pool" ROUNDS=1 DURATION=3 bench/hello.sh
#   CONNS=256 bench/hello.sh
#
# Runs the scenario hello-$CONNS (CONNS defaults to 50). Every other variable of run.sh applies
# (SERVERS, ROUNDS, DURATION, WARMUP, THREADS, PIN, SERVER_CPU, CLIENT_CPU, START_TIMEOUT,
# RESULTS_DIR, ...); see bench/README.md. The raw file is bench/results/run-<timestamp>.txt.

set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONNS=${CONNS:-50}
[[ $CONNS =~ ^[0-9]+$ ]] && (( CONNS > 0 )) || { echo "[hello.sh] error: CONNS must be a positive integer (got '$CONNS')" >&2; exit 1; }
SCENARIOS="hello-$CONNS" exec "$BENCH_DIR/run.sh" "$@"
