#!/usr/bin/env bash
# Fuzz the whole HTTP API from its OpenAPI schema (schemathesis, check not_a_server_error): a live scripts/serve.sh
# on 127.0.0.1 over a fresh SQLite database seeded with the tutorial's fleet, as a Platform admin token.
#   scripts/schemathesis.sh [extra `st run` options]
# ST_MAX_EXAMPLES (default 25) bounds the cases per operation (about 2 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$PWD/.venv/bin/python
ST=$PWD/.venv/bin/st
[ -x "$ST" ] || { echo "schemathesis is not installed: .venv/bin/pip install -e '.[test]'" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pn-schemathesis.XXXXXXXX")
ARTIFACTS=${POWERNODE_ARTIFACTS:-$PWD/var/artifacts}
mkdir -p "$ARTIFACTS"
SERVER_PID=
cleanup() {
  set +e  # the server's exit status (143 after our TERM) is not the run's
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# a private world: its own var dir (SQLite database, local CA), no DATABASE_URL, no Vault
unset DATABASE_URL VAULT_ADDR VAULT_TOKEN
export POWERNODE_VAR_DIR=$WORK/var DJANGO_SETTINGS_MODULE=powernode.settings PYTHONDONTWRITEBYTECODE=1
$PY manage.py migrate -v0
$PY manage.py loaddata default_catalog -v0
$PY manage.py pki_init_local_ca >/dev/null
$PY manage.py shell -v0 -c '
from django.contrib.auth.models import Group, User
from powernode.actors import Actor
from powernode.registry import run_action
admin = User.objects.create_user("fuzz-admin")
admin.groups.add(Group.objects.get(name="Platform admins"))
act = lambda action, payload: run_action(name=action, actor=Actor.for_user(admin), payload=payload)
template = act("system_create_node_template", {"name": "docker-nodes"})["template"]
instance = act("system_provision_instance", {"template_id": template["id"], "name": "node-1"})["instance"]
network = act("system_sdwan_create_network", {"name": "net-a"})["network"]
act("system_sdwan_attach_peer", {"network_id": network["id"], "node_instance_id": instance["id"]})
'
TOKEN=$($PY manage.py create_operator_token fuzz-admin --name schemathesis)

PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# the shipped server (one worker on SQLite); serve.sh execs gunicorn, so $! is the server itself
POWERNODE_BIND="127.0.0.1:$PORT" POWERNODE_WORKERS=1 POWERNODE_PYTHON="$PY" scripts/serve.sh --log-level warning \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do  # any HTTP answer (even a 401) means the server is up
  curl -s -o /dev/null "http://127.0.0.1:$PORT/api/v1/" && break
  sleep 0.2
done

status=0
# No exclusions: every operation and every check failure counts (known today: huge ?limit= values answer
# 500 on the list resources, issue 11 item being fixed on its own branch; this step passes once it merges).
$ST run "http://127.0.0.1:$PORT/api/v1/schema/?format=json" --url "http://127.0.0.1:$PORT" \
  --checks not_a_server_error --header "Authorization: Bearer $TOKEN" \
  --max-examples "${ST_MAX_EXAMPLES:-25}" --seed "${ST_SEED:-1}" --request-timeout 30 \
  --generation-database none --report junit --report-junit-path "$ARTIFACTS/schemathesis.xml" "$@" || status=$?
if [ "$status" != 0 ]; then
  echo "--- server log (last 40 lines)"; tail -n 40 "$WORK/server.log"
fi
exit "$status"
