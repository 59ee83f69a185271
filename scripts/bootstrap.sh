#!/usr/bin/env bash
# Creates .venv and installs the platform, the agent and the test tools into it (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.powernode-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ agent/pyproject.toml -nt "$stamp" ] \
  || [ constraints.txt -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
  # the same versions every time: constraints.txt pins the whole tree (refresh: scripts/freeze_constraints.py)
  .venv/bin/pip install -q -c constraints.txt -e ".[test]" -e ./agent
  touch "$stamp"
fi
