#!/usr/bin/env bash
# Runs every benchmark under bench/ and prints its figures (nothing is asserted: machines are noisy).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
for b in bench/bench_*.py; do
  echo "=== $b"
  (cd bench && ../.venv/bin/python "$(basename "$b")") || echo "--- $b failed"
done
