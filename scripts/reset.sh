#!/usr/bin/env bash
# `make reset`: forget the local jifen city, so that the next `make run` seeds a fresh one.
#
# Drops exactly what `make run` uses and nothing else:
#   * the four service databases (jifen_members, jifen_declarations, jifen_evaluations,
#     jifen_grading, or their JIFEN_<SERVICE>_DATABASE overrides); the test databases
#     (jifen_test_*) are `make clean-test-dbs`'s business and stay;
#   * the run's RabbitMQ exchanges and queues: the exchanges jifen.events, jifen.dlx,
#     jifen.events.unrouted and the consumer queues declarations.*, evaluations.*, grading.*
#     (behind JIFEN_BUS_PREFIX when set); test queues (t-*) and anything else stay;
#   * the gateway's Redis keys under JIFEN_REDIS_PREFIX (default `jifen:`), by SCAN and DEL,
#     never FLUSHALL;
#   * the evidence files of .run/evidence (JIFEN_EVIDENCE_DIR).
# The development keys in .run/ (JWT, personal data, evaluation codes) stay.
#
# It refuses to run while the cluster answers on its default ports: stop `make run` first.
set -euo pipefail
cd "$(dirname "$0")/.."

PGURL=${JIFEN_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${JIFEN_REDIS_URL:-redis://127.0.0.1:6379}
REDIS_PREFIX=${JIFEN_REDIS_PREFIX:-jifen:}
BUS_PREFIX=${JIFEN_BUS_PREFIX:-}
if [ -n "$BUS_PREFIX" ] && [ "${BUS_PREFIX: -1}" != "." ]; then BUS_PREFIX="$BUS_PREFIX."; fi
EVIDENCE=${JIFEN_EVIDENCE_DIR:-$PWD/.run/evidence}
DATABASES=(
  "${JIFEN_MEMBERS_DATABASE:-jifen_members}"
  "${JIFEN_DECLARATIONS_DATABASE:-jifen_declarations}"
  "${JIFEN_EVALUATIONS_DATABASE:-jifen_evaluations}"
  "${JIFEN_GRADING_DATABASE:-jifen_grading}"
)

log() { printf '[reset] %s\n' "$*" >&2; }
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The cluster of `make run`: the gateway and the four services' ops ports.
running=()
for addr in "${JIFEN_GATEWAY_ADDR:-127.0.0.1:8080}" \
  "${JIFEN_MEMBERS_OPS_ADDR:-127.0.0.1:9101}" "${JIFEN_DECLARATIONS_OPS_ADDR:-127.0.0.1:9102}" \
  "${JIFEN_EVALUATIONS_OPS_ADDR:-127.0.0.1:9103}" "${JIFEN_GRADING_OPS_ADDR:-127.0.0.1:9104}"; do
  if curl -fsS -m 2 "http://$addr/healthz" >/dev/null 2>&1; then running+=("$addr"); fi
done
if [ ${#running[@]} -gt 0 ]; then
  log "jifen is running (${running[*]} answer /healthz): stop \`make run\` (Ctrl-C) first; nothing was reset"
  exit 1
fi

for db in "${DATABASES[@]}"; do
  case "$db" in
    jifen_test_*) log "refusing to drop $db: a test database"; exit 2 ;;
  esac
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$PGURL/postgres" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
  log "dropped database $db"
done

if port_open 5672 && command -v rabbitmqctl >/dev/null; then
  # One call inside the broker: the run's exchanges, and the queues of its consumers.
  out=$(sudo_ rabbitmqctl -q eval '
    P = <<"'"$BUS_PREFIX"'">>,
    Exchanges = [<<P/binary, N/binary>> || N <- [<<"jifen.events">>, <<"jifen.dlx">>, <<"jifen.events.unrouted">>]],
    Queues = [<<P/binary, N/binary>> || N <- [<<"declarations.">>, <<"evaluations.">>, <<"grading.">>, <<"members.">>]],
    Starts = fun(Name, Prefix) -> binary:longest_common_prefix([Name, Prefix]) =:= byte_size(Prefix) end,
    IsOurs = fun(Name) -> lists:member(Name, Exchanges) orelse lists:any(fun(Q) -> Starts(Name, Q) end, Queues) end,
    Qs = [Q || Q <- rabbit_amqqueue:list(<<"/">>), IsOurs(element(4, amqqueue:get_name(Q)))],
    [catch rabbit_amqqueue:delete(Q, false, false, <<"jifen-reset">>) || Q <- Qs],
    Xs = [element(2, X) || X <- rabbit_exchange:list(<<"/">>), lists:member(element(4, element(2, X)), Exchanges)],
    [catch rabbit_exchange:delete(N, false, <<"jifen-reset">>) || N <- Xs],
    io_lib:format("~b queues and ~b exchanges", [length(Qs), length(Xs)]).' 2>&1) || {
    log "could not clean RabbitMQ: $out"; exit 1; }
  log "deleted $(echo "$out" | tr -d '"[]') of RabbitMQ"
else
  log "RabbitMQ is not running: nothing to delete there"
fi

if command -v redis-cli >/dev/null && redis-cli -u "$REDIS_URL" ping 2>/dev/null | grep -q PONG; then
  n=0
  while IFS= read -r key; do
    [ -n "$key" ] || continue
    redis-cli -u "$REDIS_URL" del "$key" >/dev/null
    n=$((n + 1))
  done < <(redis-cli -u "$REDIS_URL" --scan --pattern "${REDIS_PREFIX}*")
  log "deleted $n Redis keys under ${REDIS_PREFIX}"
else
  log "Redis is not running: nothing to delete there"
fi

if [ -d "$EVIDENCE" ]; then
  rm -rf -- "$EVIDENCE"
  log "removed the evidence files in $EVIDENCE"
fi
log "done: the next \`make run\` seeds a fresh demo city"
