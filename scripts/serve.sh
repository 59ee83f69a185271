#!/usr/bin/env bash
# The one way the platform is served (make run, the lab, every benchmark, the deployment's unit): gunicorn
# managing POWERNODE_WORKERS uvicorn worker processes (uvloop + httptools) of powernode.asgi, which serves
# /api, /admin and /mcp. Each worker runs the ASGI lifespan (MCP session manager, Docker prober) and keeps
# one LISTEN connection for held heartbeats (powernode/watch.py). docs/PERFORMANCE.md says why this server.
#   POWERNODE_BIND     where to listen, host:port or [v6]:port (default 127.0.0.1:8000)
#   POWERNODE_WORKERS  worker processes (default: one per core on PostgreSQL; 1 on SQLite, where a held
#                      heartbeat is woken only by commits of its own process: powernode/watch.py)
#   POWERNODE_PYTHON   the interpreter with the platform installed (default: the checkout's .venv)
#   PROMETHEUS_MULTIPROC_DIR  where workers keep /metrics counters (emptied here at start; default with
#                      several workers: var/metrics/<port>)
# Each is read from the environment, else from .env. Further arguments go to gunicorn as they are
# (e.g. --log-level warning).
set -euo pipefail
cd "$(dirname "$0")/.."
# a variable from the environment, else from .env (the environment wins, as in settings.py)
setting() { if [ -n "${!1:-}" ]; then echo "${!1}"; elif [ -f .env ]; then sed -n "s/^$1=//p" .env | tail -n 1; fi; }
BIND=$(setting POWERNODE_BIND)
BIND=${BIND:-127.0.0.1:8000}
WORKERS=$(setting POWERNODE_WORKERS)
if [ -z "$WORKERS" ]; then
  url=$(setting DATABASE_URL)  # the database the settings will use
  case "$url" in
    postgres*|pgsql*) WORKERS=$(nproc) ;;
    *) WORKERS=1 ;;
  esac
fi
PY=${POWERNODE_PYTHON:-.venv/bin/python}
# /metrics summed over the worker processes (powernode/metrics.py): counters live in files of one directory,
# emptied at every start. The systemd unit gives a fresh /run directory; without one, several workers get
# var/metrics/<port> (one per served address, so two servers on one checkout do not mix their counts).
METRICS_DIR=$(setting PROMETHEUS_MULTIPROC_DIR)
if [ -z "$METRICS_DIR" ] && [ "$WORKERS" -gt 1 ]; then
  METRICS_DIR="${POWERNODE_VAR_DIR:-$PWD/var}/metrics/${BIND##*:}"
fi
if [ -n "$METRICS_DIR" ]; then
  mkdir -p "$METRICS_DIR"
  find "$METRICS_DIR" -maxdepth 1 -name '*.db' -delete
  export PROMETHEUS_MULTIPROC_DIR="$METRICS_DIR"
fi
# --keep-alive 5: uvicorn's own default (gunicorn's is 2 s). No access log (gunicorn's default): the platform
# records its own events. On SIGTERM a worker waits up to gunicorn's --graceful-timeout (30 s) for requests in
# flight, held heartbeats included; the agents of the ones cut then simply call again.
exec "$PY" -m gunicorn powernode.asgi:application \
  --worker-class uvicorn_worker.UvicornWorker \
  --bind "$BIND" \
  --workers "$WORKERS" \
  --keep-alive 5 \
  --backlog 2048 \
  --no-control-socket \
  "$@"
