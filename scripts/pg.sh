#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks, owned by the project (not the machine's).
#   scripts/pg.sh start   → installs PostgreSQL from Debian when missing, starts it, prints DATABASE_URL
#   scripts/pg.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
VAR=${POWERNODE_VAR_DIR:-$PWD/var}
PGDATA_DIR=${PG_DATA_DIR:-/tmp/powernode-pg/data}
PGSOCK=${PG_SOCKET_DIR:-/tmp/powernode-pg/sock}
PGPORT=${PG_PORT:-54329}
mkdir -p "$VAR"

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

install_pg() {
  if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
    echo "pg.sh: installing PostgreSQL from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 postgresql >&2
  fi
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}

start() {
  install_pg
  local bin; bin=$(pg_bin)
  mkdir -p "$(dirname "$PGDATA_DIR")" "$PGSOCK"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$(dirname "$PGDATA_DIR")" "$PGSOCK"
  if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
    as_owner "$bin/initdb -D '$PGDATA_DIR' -U postgres -A trust --no-sync -E UTF8 >/dev/null"
  fi
  if ! as_owner "$bin/pg_ctl -D '$PGDATA_DIR' status" >/dev/null 2>&1; then
    # fsync off: a test cluster, rebuilt at will; speed over durability
    as_owner "$bin/pg_ctl -D '$PGDATA_DIR' -l '$(dirname "$PGDATA_DIR")/log' -w start \
      -o \"-p $PGPORT -k $PGSOCK -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
      -c full_page_writes=off -c max_connections=200\"" >/dev/null
  fi
  local psql="$bin/psql -h $PGSOCK -p $PGPORT -U postgres -d postgres -tAq"
  if [ "$(as_owner "$psql -c \"select 1 from pg_roles where rolname='powernode'\"")" != 1 ]; then
    as_owner "$psql -c \"create role powernode login superuser password 'powernode'\""
  fi
  if [ "$(as_owner "$psql -c \"select 1 from pg_database where datname='powernode'\"")" != 1 ]; then
    as_owner "$psql -c 'create database powernode owner powernode'"
  fi
  echo "postgres://powernode:powernode@127.0.0.1:$PGPORT/powernode"
}

stop() {
  local bin; bin=$(pg_bin)
  [ -n "$bin" ] && [ -f "$PGDATA_DIR/PG_VERSION" ] && as_owner "$bin/pg_ctl -D '$PGDATA_DIR' -m fast stop" >/dev/null 2>&1 || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
