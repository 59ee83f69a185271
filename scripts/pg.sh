#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks, owned by the project (not the machine's).
#   scripts/pg.sh start   → installs PostgreSQL from Debian when missing, starts it, prints DATABASE_URL
#   scripts/pg.sh stop
# Password authentication only (scram-sha-256, also on the socket), listening on 127.0.0.1 only. The
# password is generated once and kept in $POWERNODE_VAR_DIR/pg/password (0600); the cluster lives in a
# fresh `mktemp -d` directory (0700, never a predictable /tmp path) whose path is kept in
# $POWERNODE_VAR_DIR/pg/cluster so that later `start` and `stop` find it again.
# Environment: POWERNODE_VAR_DIR (default var/), PG_PORT (default 54329), PG_DATA_DIR and PG_SOCKET_DIR
# (an explicit cluster directory instead of the remembered one; its parent should be private).
set -euo pipefail
cd "$(dirname "$0")/.."
VAR=${POWERNODE_VAR_DIR:-$PWD/var}
PGPORT=${PG_PORT:-54329}
STATE=$VAR/pg
LEGACY_DATA_DIR=/tmp/powernode-pg/data  # where pg.sh kept a trust-auth cluster before issue 11

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

install_pg() {
  if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
    echo "pg.sh: installing PostgreSQL from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 postgresql >&2
  fi
}

as_owner() {  # the cluster's files belong to postgres when we are root (initdb refuses to run as root)
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}

password() {  # generated once, reused on every later start (the DATABASE_URLs people keep stay valid)
  (umask 077 && mkdir -p "$STATE")
  chmod 700 "$STATE"
  if [ ! -s "$STATE/password" ]; then
    (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$STATE/password.tmp" && mv "$STATE/password.tmp" "$STATE/password")
  fi
  chmod 600 "$STATE/password"
  cat "$STATE/password"
}

# The cluster's directory (holding data/, sock/ and log): PG_DATA_DIR's parent when given, else the one
# remembered in var/pg/cluster, else a new private one (made only by `start`).
cluster_dir() {
  if [ -n "${PG_DATA_DIR:-}" ]; then dirname "$PG_DATA_DIR"; return; fi
  if [ -s "$STATE/cluster" ] && [ -d "$(cat "$STATE/cluster")" ]; then cat "$STATE/cluster"; return; fi
  [ "${1:-}" = new ] || return 0
  local dir; dir=$(mktemp -d "${TMPDIR:-/tmp}/powernode-pg.XXXXXXXX")
  chmod 700 "$dir"
  (umask 077 && echo "$dir" >"$STATE/cluster")
  echo "$dir"
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$PGPORT") 2>/dev/null; }

start() {
  install_pg
  local bin pw dir data sock
  bin=$(pg_bin)
  pw=$(password)
  dir=$(cluster_dir new)
  data=${PG_DATA_DIR:-$dir/data}
  sock=${PG_SOCKET_DIR:-$dir/sock}
  mkdir -p "$dir" "$sock"
  chmod 700 "$dir" "$sock"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir" "$sock"
  if [ ! -f "$data/PG_VERSION" ]; then
    # the superuser's password reaches initdb through a file only the cluster's owner can read
    (umask 077 && printf '%s\n' "$pw" >"$dir/pwfile")
    [ "$(id -u)" = 0 ] && chown postgres: "$dir/pwfile"
    as_owner "$bin/initdb -D '$data' -U postgres --pwfile='$dir/pwfile' --auth-local=scram-sha-256 \
      --auth-host=scram-sha-256 --no-sync -E UTF8 >/dev/null" || { rm -f "$dir/pwfile"; return 1; }
    rm -f "$dir/pwfile"
    # loopback only, passwords only (no trust, no peer, no replication entries)
    as_owner "printf '%s\n' 'local all all scram-sha-256' 'host all all 127.0.0.1/32 scram-sha-256' \
      >'$data/pg_hba.conf'"
  fi
  if ! as_owner "$bin/pg_ctl -D '$data' status" >/dev/null 2>&1; then
    if port_taken; then
      echo "pg.sh: port $PGPORT is taken by another server; set PG_PORT, or stop it" >&2
      [ -f "$LEGACY_DATA_DIR/PG_VERSION" ] && echo "pg.sh: an old trust-auth cluster from before issue 11" \
        "runs in $LEGACY_DATA_DIR: 'scripts/pg.sh stop' stops it too" >&2
      return 1
    fi
    # fsync off: a test cluster, rebuilt at will; speed over durability
    as_owner "$bin/pg_ctl -D '$data' -l '$dir/log' -w start \
      -o \"-p $PGPORT -k $sock -c listen_addresses=127.0.0.1 -c password_encryption=scram-sha-256 \
      -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200\"" >/dev/null
  fi
  # psql runs as us over TCP with the password in its environment (never on a command line)
  local psql=("$bin/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -tAq -v ON_ERROR_STOP=1)
  export PGPASSWORD=$pw PGCONNECT_TIMEOUT=10
  if [ "$("${psql[@]}" -c "select 1 from pg_roles where rolname='powernode'")" != 1 ]; then
    "${psql[@]}" <<<"create role powernode login superuser password '$pw'"  # stdin: not in ps
  fi
  if [ "$("${psql[@]}" -c "select 1 from pg_database where datname='powernode'")" != 1 ]; then
    "${psql[@]}" -c 'create database powernode owner powernode'
  fi
  echo "postgres://powernode:$pw@127.0.0.1:$PGPORT/powernode"
}

stop() {
  local bin dir data; bin=$(pg_bin)
  [ -n "$bin" ] || return 0
  dir=$(cluster_dir)
  data=${PG_DATA_DIR:-${dir:+$dir/data}}
  if [ -n "$data" ] && [ -f "$data/PG_VERSION" ]; then
    as_owner "$bin/pg_ctl -D '$data' -m fast stop" >/dev/null 2>&1 || true
  fi
  # the trust-auth cluster of older checkouts, when it is the one on our port
  if [ -z "${PG_DATA_DIR:-}" ] && [ -f "$LEGACY_DATA_DIR/postmaster.pid" ] \
    && [ "$(sed -n 4p "$LEGACY_DATA_DIR/postmaster.pid")" = "$PGPORT" ]; then
    as_owner "$bin/pg_ctl -D '$LEGACY_DATA_DIR' -m fast stop" >/dev/null 2>&1 || true
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
