#!/usr/bin/env bash
# The first command: a fresh machine to a running platform (SQLite, local CA, default catalog, a login).
#   scripts/run.sh            → http://127.0.0.1:8000/admin/  (POWERNODE_BIND=0.0.0.0:8000 to expose)
set -euo pipefail
cd "$(dirname "$0")/.."
# Development mode (keys made under var/, every Host accepted) unless DJANGO_DEBUG is set here or in .env;
# production settings refuse to start without DJANGO_SECRET_KEY and POWERNODE_ENCRYPTION_KEY.
if [ -z "${DJANGO_DEBUG+set}" ] && ! grep -qs '^DJANGO_DEBUG=' .env; then
  export DJANGO_DEBUG=true
fi
scripts/bootstrap.sh
.venv/bin/python manage.py powernode_setup
.venv/bin/python manage.py collectstatic --noinput -v0
BIND=${POWERNODE_BIND:-127.0.0.1:8000}
echo "powernode: http://$BIND/admin/  ·  API docs http://$BIND/api/v1/docs/  ·  Ctrl-C stops it"
exec scripts/serve.sh  # the one serving configuration (POWERNODE_BIND, POWERNODE_WORKERS)
