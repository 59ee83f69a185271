#!/usr/bin/env bash
# The second command: installs what the tests need (PostgreSQL, WireGuard, dockerd, registry, Chromium)
# and runs every check. Exit status is non-zero if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONDONTWRITEBYTECODE=1
# The checks below run the development settings (keys under var/), as make run does; production's are
# checked by the "deploy check" step with an environment of its own. pytest opts in by itself (tests/settings.py).
export DJANGO_DEBUG=${DJANGO_DEBUG:-true}
ARTIFACTS=${POWERNODE_ARTIFACTS:-$PWD/var/artifacts}
mkdir -p "$ARTIFACTS"

failed=()
step() {  # step NAME COMMAND...
  local name=$1; shift
  echo "=== $name"
  local start=$SECONDS
  if "$@"; then echo "--- $name: ok ($((SECONDS - start))s)"; else echo "--- $name: FAILED ($((SECONDS - start))s)"; failed+=("$name"); fi
}

scripts/bootstrap.sh || { echo "bootstrap failed"; exit 1; }
if [ "$(id -u)" = 0 ]; then
  scripts/install_lab_deps.sh || { echo "installing the lab's packages failed"; exit 1; }
else
  echo "not root: lab tests will be skipped (they need network namespaces)"
fi
PG_URL=$(scripts/pg.sh start) || { echo "PostgreSQL did not start"; exit 1; }

PY=.venv/bin/python
step "ruff" .venv/bin/ruff check .
# contracts in pyproject.toml [tool.importlinter]; this checkout's agent source, not whichever one pip linked
step "import contracts" env PYTHONPATH=.:agent .venv/bin/lint-imports --no-cache --no-logo
step "migrations are up to date" $PY manage.py makemigrations --check --dry-run
step "OpenAPI schema validates" $PY manage.py spectacular --validate --fail-on-warn --file "$ARTIFACTS/openapi.yaml"
# production settings as .env.example describes them (throwaway keys): Django's deployment checklist, warnings included
deploy_check() {
  env DJANGO_DEBUG=false \
    DJANGO_SECRET_KEY="$($PY -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    POWERNODE_ENCRYPTION_KEY="$($PY -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    DJANGO_ALLOWED_HOSTS=powernode.example.net \
    DJANGO_SECURE_SSL_REDIRECT=true \
    DJANGO_SECURE_HSTS_SECONDS=31536000 DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS=true DJANGO_SECURE_HSTS_PRELOAD=true \
    DJANGO_SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO \
    $PY manage.py check --deploy --fail-level WARNING
}
step "deploy check (production settings)" deploy_check
# The lab's tests (namespaces, WireGuard, dockerd; their platforms run on SQLite files of their own) spend most
# of their time waiting on daemons, handshakes and certificate lifetimes, so they run in the background while
# the rest of the suite uses the CPU. After them, still in the background, the `cluster` tests (tests/cluster:
# three platform processes behind HAProxy, one killed mid-run; they make a database of their own): they load
# the CPU, so they do not overlap the lab's timings. Output and results are reported when they end.
LAB_LOG="$ARTIFACTS/pytest-lab.log"
LAB_RC="$ARTIFACTS/pytest-lab.rc"
rm -f "$LAB_RC"
(
  start=$SECONDS
  env DATABASE_URL="${PG_URL%/*}/powernode_lab" .venv/bin/pytest -p no:cacheprovider -q -m "lab and not browser" \
    --junitxml="$ARTIFACTS/pytest-lab.xml" tests >"$LAB_LOG" 2>&1
  rc=$?
  echo "=== cluster tests (after the lab)" >>"$LAB_LOG"
  env DATABASE_URL="$PG_URL" .venv/bin/pytest -p no:cacheprovider -q -m "cluster and not lab" \
    --junitxml="$ARTIFACTS/pytest-cluster.xml" tests >>"$LAB_LOG" 2>&1 || rc=1
  echo "$rc $((SECONDS - start))" >"$LAB_RC"
) &
LAB_PID=$!
step "pytest on PostgreSQL (all but the lab and the cluster)" env DATABASE_URL="$PG_URL" .venv/bin/pytest -p no:cacheprovider -q \
  -m "not browser and not lab and not cluster" --junitxml="$ARTIFACTS/pytest-postgres.xml" tests
step "API contract tests on SQLite" env -u DATABASE_URL .venv/bin/pytest -p no:cacheprovider -q -m contract tests
step "agent tests" .venv/bin/pytest -p no:cacheprovider -q agent/tests
# schemathesis over /api/v1/schema/ against the shipped server (scripts/serve.sh) on a seeded SQLite database (~2 minutes)
step "API fuzzing (schemathesis, not_a_server_error)" scripts/schemathesis.sh

browser_tests() {  # Debian's Chromium and Playwright (never a browser download), then the admin in a real browser
  if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 chromium >/dev/null \
      || { apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=600 chromium >/dev/null; } || return 1
  fi
  $PY -c "import playwright" 2>/dev/null || .venv/bin/pip install -q playwright || return 1
  env DATABASE_URL="$PG_URL" POWERNODE_ARTIFACTS="$ARTIFACTS" .venv/bin/pytest -p no:cacheprovider -q -m browser \
    --junitxml="$ARTIFACTS/pytest-browser.xml" tests/browser
}
step "browser tests (screenshots in $ARTIFACTS/screenshots)" browser_tests

lab_tests() {  # the background run started above: wait for it and show what it printed
  wait "$LAB_PID"
  cat "$LAB_LOG"
  read -r rc secs <"$LAB_RC" || { echo "the lab run left no status"; return 1; }
  echo "(the lab's and the cluster's tests ran ${secs}s, in parallel with the steps above)"
  return "$rc"
}
step "pytest on PostgreSQL: the lab, then the cluster (ran in the background)" lab_tests
# the throwaway cluster goes with the run: another checkout's run would find its port taken
scripts/pg.sh stop >/dev/null 2>&1 || echo "(stopping the test PostgreSQL failed; scripts/pg.sh stop)"

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED steps: ${failed[*]}"
  exit 1
fi
echo "all steps passed"
