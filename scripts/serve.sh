#!/usr/bin/env bash
# The one way the platform is served (make run, the lab, every benchmark, the deployment's unit): gunicorn
# managing POWERNODE_WORKERS uvicorn worker processes (uvloop + httptools) of powernode.asgi, which serves
# /api, /admin and /mcp. Each worker runs the ASGI lifespan (MCP session manager, Docker prober) and keeps
# one LISTEN connection for held heartbeats (powernode/watch.py). docs/PERFORMANCE.md says why this server.
#   POWERNODE_BIND     where to listen, host:port or [v6]:port (default 127.0.0.1:8000)
#   POWERNODE_WORKERS  worker processes (default: one per core on PostgreSQL; 1 on SQLite, where a held
#                      heartbeat is woken only by commits of its own process: powernode/watch.py)
#   POWERNODE_PYTHON   the interpreter with the platform installed (default: the checkout's .venv)
# Further arguments go to gunicorn as they are (e.g. --log-level warning).
set -euo pipefail
cd "$(dirname "$0")/.."
BIND=${POWERNODE_BIND:-127.0.0.1:8000}
if [ -n "${POWERNODE_WORKERS:-}" ]; then
  WORKERS=$POWERNODE_WORKERS
else
  # the database the settings will use: DATABASE_URL from the environment, else from .env (as settings.py)
  url=${DATABASE_URL:-$(sed -n 's/^DATABASE_URL=//p' .env 2>/dev/null | tail -n 1)}
  case "$url" in
    postgres*|pgsql*) WORKERS=$(nproc) ;;
    *) WORKERS=1 ;;
  esac
fi
PY=${POWERNODE_PYTHON:-.venv/bin/python}
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
