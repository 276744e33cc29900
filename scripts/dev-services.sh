#!/usr/bin/env bash
# Makes PostgreSQL, RabbitMQ and Redis answer on their standard local ports.
#
#   scripts/dev-services.sh up              start what is installed, install (Debian) what is missing (and promtool)
#   scripts/dev-services.sh clean-test-dbs  drop databases, queues and exchanges left behind by earlier test runs
#
# Safe to run again and again: a server that already answers is left alone.
set -euo pipefail

PGHOST=127.0.0.1
PGPORT=5432
PGUSER=${PGUSER:-postgres}
APT_UPDATED=0

log() { printf '[dev-services] %s\n' "$*" >&2; }

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# rabbitmqctl needs the node's Erlang cookie, readable by root and the rabbitmq user only: as any
# other user it refuses to run.
rabbitmqctl_() { sudo_ rabbitmqctl "$@"; }

apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    sudo_ apt-get update -qq
    APT_UPDATED=1
  fi
  log "installing $*"
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name seconds command...
  local name=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  log "$name did not come up within ${secs}s"; return 1
}

pg_ready() { pg_isready -q -h "$PGHOST" -p "$PGPORT"; }
pg_sql() { psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres "$@"; }

ensure_postgres() {
  if command -v pg_isready >/dev/null && pg_ready; then return; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql postgresql-client
    # A development server: trust local TCP connections so the default URLs work without a password.
    local hba; hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n1)
    sudo_ sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  fi
  local version; version=$(ls /etc/postgresql | sort -V | tail -n1)
  log "starting PostgreSQL"
  sudo_ pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL 30 pg_ready
  # Where installing the package started the server (systemd), it read pg_hba.conf before the
  # edit above: reload so the trust lines hold. A reload of a server that just read it is harmless.
  sudo_ pg_ctlcluster --skip-systemctl-redirect "$version" main reload || log "could not reload PostgreSQL"
}

# The test suite runs several whole clusters side by side (five services, each with a pool):
# Debian's default of 100 connections is too few. Raised once, with a restart.
PG_MAX_CONNECTIONS=400
ensure_pg_connections() {
  local now; now=$(pg_sql -tAc "SHOW max_connections")
  if [ "${now:-0}" -ge "$PG_MAX_CONNECTIONS" ]; then return; fi
  log "raising PostgreSQL max_connections from $now to $PG_MAX_CONNECTIONS (restart)"
  pg_sql -c "ALTER SYSTEM SET max_connections = $PG_MAX_CONNECTIONS"
  sudo_ pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main restart
  wait_for PostgreSQL 30 pg_ready
}

ensure_redis() {
  if command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then return; fi
  command -v redis-server >/dev/null || apt_install redis-server redis-tools
  log "starting Redis"
  sudo_ mkdir -p /var/lib/redis /var/log/redis
  sudo_ redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis 15 sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'
}

rabbit_ready() { port_open 5672 && rabbitmqctl_ -q await_startup >/dev/null 2>&1; }

ensure_rabbitmq() {
  if port_open 5672; then
    # The node may be up with the app stopped (a disruptive test that died): start the app.
    if command -v rabbitmqctl >/dev/null; then rabbitmqctl_ -q start_app >/dev/null 2>&1 || true; fi
    return
  fi
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  if rabbitmqctl_ -q status >/dev/null 2>&1; then
    log "RabbitMQ node is up with its app stopped: starting the app"
    rabbitmqctl_ -q start_app
  else
    # `rabbitmq-server` starts the node through `su`, whose PAM limits give 1024 open files; every
    # quorum queue holds files open, and a node out of descriptors stops accepting connections
    # while its port stays open. Give the rabbitmq user room first.
    if [ ! -f /etc/security/limits.d/rabbitmq.conf ]; then
      printf 'rabbitmq soft nofile 65536\nrabbitmq hard nofile 65536\n' | sudo_ tee /etc/security/limits.d/rabbitmq.conf >/dev/null
    fi
    log "starting RabbitMQ"
    sudo_ rabbitmq-server -detached
  fi
  wait_for RabbitMQ 90 port_open 5672
  rabbitmqctl_ -q await_startup
}

# `promtool check metrics` lints every service's /metrics in the end-to-end tests. Debian ships it
# in the `prometheus` package, whose maintainer scripts would start a Prometheus server on :9090:
# install without recommends (no node exporter) under a policy-rc.d that forbids starting
# services, and stop a server that started anyway.
ensure_promtool() {
  command -v promtool >/dev/null && return
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | sudo_ tee "$policy" >/dev/null
    sudo_ chmod +x "$policy"
    created=1
  fi
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    sudo_ apt-get update -qq
    APT_UPDATED=1
  fi
  log "installing prometheus (for promtool)"
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [ "$created" = 1 ]; then sudo_ rm -f "$policy"; fi
  # Belt and braces: no Prometheus server is wanted on this machine.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    sudo_ systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
  if port_open 9090; then log "warning: something listens on :9090 (a Prometheus server?)"; fi
}

ensure_databases() {
  for db in jifen_members jifen_declarations jifen_evaluations jifen_grading; do
    if [ -z "$(pg_sql -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
      pg_sql -c "CREATE DATABASE \"$db\"" && log "created database $db"
    fi
  done
}

clean_test_dbs() {
  # Each DROP DATABASE waits for a checkpoint; dropped eight at a time, they share them (a full
  # test run leaves about 1,800 databases: minutes one by one).
  local dbs n
  dbs=$(pg_sql -tAc "SELECT datname FROM pg_database WHERE datname LIKE 'jifen\_test\_%'")
  n=$(grep -c . <<<"$dbs" || true)
  if [ "$n" -gt 0 ]; then
    export PGHOST PGPORT PGUSER
    xargs -P 8 -I{} psql -X -q -v ON_ERROR_STOP=1 -d postgres \
      -c 'DROP DATABASE IF EXISTS "{}" WITH (FORCE)' <<<"$dbs"
  fi
  log "dropped $n test databases"
}

# Queues and exchanges of earlier test runs (every test names them `t-<label>-<id>…`). Hundreds of
# leftover quorum queues slow RabbitMQ down until it stops answering, so `make test` removes them
# first, in one call inside the broker (a rabbitmqctl call per queue would take minutes).
clean_test_bus() {
  port_open 5672 || return 0
  local out
  out=$(rabbitmqctl_ -q eval '
    IsTest = fun(N) -> binary:longest_common_prefix([N, <<"t-">>]) =:= 2 end,
    Qs = [Q || Q <- rabbit_amqqueue:list(<<"/">>), IsTest(element(4, amqqueue:get_name(Q)))],
    [catch rabbit_amqqueue:delete(Q, false, false, <<"jifen-cleanup">>) || Q <- Qs],
    Xs = [element(2, X) || X <- rabbit_exchange:list(<<"/">>), IsTest(element(4, element(2, X)))],
    [catch rabbit_exchange:delete(N, false, <<"jifen-cleanup">>) || N <- Xs],
    io_lib:format("~b queues and ~b exchanges", [length(Qs), length(Xs)]).' 2>&1) || {
    log "could not clean test queues: $out"
    return 0
  }
  log "deleted $(echo "$out" | tr -d '"[]')"
}

# The H5 pages' browser tests (crates/e2e, `browser::`) drive Debian's Chromium through
# ChromeDriver at a phone's viewport; the CJK fonts make the screenshots readable.
ensure_browser() {
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  fc-list 2>/dev/null | grep -qi 'noto sans cjk' || missing+=(fonts-noto-cjk)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

case "${1:-up}" in
  up)
    ensure_postgres
    ensure_pg_connections
    ensure_redis
    ensure_rabbitmq
    ensure_databases
    ensure_promtool
    ensure_browser
    log "PostgreSQL 127.0.0.1:5432, RabbitMQ 127.0.0.1:5672, Redis 127.0.0.1:6379 are up"
    ;;
  clean-test-dbs) clean_test_dbs; clean_test_bus ;;
  *) echo "usage: $0 [up|clean-test-dbs]" >&2; exit 2 ;;
esac
