#!/usr/bin/env bash
# `make run`: the whole cluster on this machine with a demo city. Ctrl-C stops everything.
# Expects `cargo build --workspace --bins` and scripts/dev-services.sh to have run (make does both).
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=.run
BIN=${JIFEN_BIN_DIR:-target/debug}
mkdir -p "$RUN/logs" "$RUN/keys"

export JIFEN_DATABASE_URL=${JIFEN_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
export JIFEN_AMQP_URL=${JIFEN_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
export JIFEN_REDIS_URL=${JIFEN_REDIS_URL:-redis://127.0.0.1:6379}
export JIFEN_JWT_KEYS_DIR=${JIFEN_JWT_KEYS_DIR:-$PWD/$RUN/keys}
export JIFEN_JWT_SIGNING_KID=${JIFEN_JWT_SIGNING_KID:-dev}
export JIFEN_BOOTSTRAP_ADMIN_PASSWORD=${JIFEN_BOOTSTRAP_ADMIN_PASSWORD:-jifen-admin}
export JIFEN_ROOT_ORG_NAME=${JIFEN_ROOT_ORG_NAME:-市直机关工委}
export JIFEN_LOG_FORMAT=${JIFEN_LOG_FORMAT:-json}
# No load balancer in front of `make run`: Ctrl-C stops at once instead of draining 5 s.
export JIFEN_SHUTDOWN_DRAIN_SECS=${JIFEN_SHUTDOWN_DRAIN_SECS:-0}
GATEWAY_ADDR=${JIFEN_GATEWAY_ADDR:-127.0.0.1:8080}
export JIFEN_GATEWAY_ADDR=$GATEWAY_ADDR
# What invitation slips print and their QR codes open (<url>/m/e#<code>). To scan slips with a
# phone on the same network, listen there and name this machine's address, e.g.
# JIFEN_GATEWAY_ADDR=0.0.0.0:8080 JIFEN_PUBLIC_URL=http://192.168.1.20:8080 make run
export JIFEN_PUBLIC_URL=${JIFEN_PUBLIC_URL:-http://$GATEWAY_ADDR}

# Development secrets, made once and kept in .run/ (git-ignored).
"$BIN/jifen-gateway" gen-keys --dir "$JIFEN_JWT_KEYS_DIR" --kid "$JIFEN_JWT_SIGNING_KID"
[ -s "$RUN/pii.key" ] || head -c 32 /dev/urandom | base64 > "$RUN/pii.key"
export JIFEN_PII_KEY=${JIFEN_PII_KEY:-$(cat "$RUN/pii.key")}
[ -s "$RUN/evaluations-code.key" ] || head -c 32 /dev/urandom | base64 > "$RUN/evaluations-code.key"
export JIFEN_EVALUATIONS_CODE_KEY=${JIFEN_EVALUATIONS_CODE_KEY:-$(cat "$RUN/evaluations-code.key")}

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping jifen…"
  if [ -n "${HISTORY_PGID:-}" ]; then kill -TERM -- "-$HISTORY_PGID" 2>/dev/null || true; fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped."
  exit 0
}
trap stop INT TERM EXIT

start() { # name binary args…
  local name=$1; shift
  "$@" >"$RUN/logs/$name.log" 2>&1 &
  pids+=($!)
}

wait_ready() { # name url
  for _ in $(seq 1 240); do
    if curl -fsS "$2" >/dev/null 2>&1; then return 0; fi
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || { echo "$1 died; see $RUN/logs/"; tail -n 20 "$RUN"/logs/*.log; exit 1; }
    done
    sleep 0.25
  done
  echo "$1 is not ready after 60s; see $RUN/logs/$1.log"; exit 1
}

# The consumers first, so their queues are bound before the members service publishes the demo
# city; then members.
export JIFEN_EVIDENCE_DIR=${JIFEN_EVIDENCE_DIR:-$PWD/$RUN/evidence}
start declarations "$BIN/jifen-declarations"
wait_ready declarations "http://${JIFEN_DECLARATIONS_OPS_ADDR:-127.0.0.1:9102}/readyz"
start evaluations "$BIN/jifen-evaluations"
wait_ready evaluations "http://${JIFEN_EVALUATIONS_OPS_ADDR:-127.0.0.1:9103}/readyz"
start grading "$BIN/jifen-grading"
wait_ready grading "http://${JIFEN_GRADING_OPS_ADDR:-127.0.0.1:9104}/readyz"
start members "$BIN/jifen-members"
wait_ready members "http://${JIFEN_MEMBERS_OPS_ADDR:-127.0.0.1:9101}/readyz"
start gateway "$BIN/jifen-gateway"
wait_ready gateway "http://$GATEWAY_ADDR/readyz"

# The demo city (docs/decisions/0002-demo-city.md). A seeding that fails leaves the cluster
# running: the city may be incomplete, the services are not.
SEED_NOTE=""
seed_step() { # name command… : runs one seeding step, its output in .run/logs/seed-<name>.log
  local name=$1; shift
  local log="$RUN/logs/seed-$name.log"
  # Progress lines as they come (the JSON log lines only in the log).
  "$@" 2>&1 | tee "$log" | { grep --line-buffered -v '^{' || true; } | sed -u 's/^/  /'
  local rc=${PIPESTATUS[0]}
  if [ "$rc" = 0 ]; then
    return 0
  fi
  SEED_NOTE="$SEED_NOTE
  WARNING: seeding step '$name' failed; the cluster is running, the demo city may be incomplete.
           See $log (last lines below). \`make reset\` then \`make run\` gives a fresh city.
$(tail -n 5 "$log" | sed 's/^/           | /')"
  echo "seeding step '$name' failed (see $log)" >&2
  return 1
}
echo "seeding the demo city…"
# Its history (docs/decisions/0014-demo-history.md): last year declared, reviewed, recorded,
# evaluated, graded and final; this year up to today. Each step goes through its own service's
# use cases and keeps its own marker, so a second `make run` adds nothing. The city is seeded
# first (seconds); its history then runs in the background, because on the full city it takes
# minutes (0014, "Measured"): the cluster is usable at once and the figures fill in as it goes.
MANIFEST="$RUN/demo-manifest.json"
HISTORY_LOG="$RUN/logs/seed-history.log"
history() { # the three history steps; the summary line also on the console (fd 3)
  local started=$SECONDS ok=1 note
  "$BIN/jifen-evaluations" seed-demo-history --manifest "$MANIFEST" \
    >"$RUN/logs/seed-evaluations.log" 2>&1 &
  local evaluations=$!
  "$BIN/jifen-declarations" seed-demo-history --manifest "$MANIFEST" \
    >"$RUN/logs/seed-declarations.log" 2>&1 || ok=0
  wait "$evaluations" || ok=0
  if [ "$ok" = 1 ]; then
    "$BIN/jifen-grading" seed-demo-history --manifest "$MANIFEST" \
      >"$RUN/logs/seed-grading.log" 2>&1 || ok=0
  fi
  if [ "$ok" = 1 ]; then
    note="[jifen] the demo history is seeded ($((SECONDS - started)) s): last year is final."
  else
    note="[jifen] WARNING: a demo history step failed after $((SECONDS - started)) s; the cluster is running. See $RUN/logs/seed-{declarations,evaluations,grading}.log; 'make reset' then 'make run' gives a fresh city."
  fi
  echo "$note"
  echo "$note" >&3
}
HISTORY_NOTE=""
HISTORY_PGID=""
if seed_step city "$BIN/jifen-members" seed-demo \
  && seed_step manifest "$BIN/jifen-members" demo-manifest --out "$MANIFEST"; then
  exec 3>&1
  set -m # its own process group, so that stop() ends every step with it
  history >"$HISTORY_LOG" 2>&1 &
  HISTORY_PGID=$!
  set +m
  HISTORY_NOTE="    history      last year and this year are being seeded in the background (minutes on
                 the full city; figures fill in as it goes; a second \`make run\` adds nothing):
                 $RUN/logs/seed-{declarations,evaluations,grading}.log"
fi

cat <<INFO

  jifen is running.

    gateway      http://$GATEWAY_ADDR   (GET /readyz, /metrics, /api/v1/openapi.json)
    dashboard    http://$GATEWAY_ADDR/dashboard/   (党建看板: log in as admin)
    phone pages  http://$GATEWAY_ADDR/m/   (党员积分: members declare, secretaries review)
    evaluation   $JIFEN_PUBLIC_URL/m/e   (民主评议: the page invitation slips open)
    members      gRPC 127.0.0.1:15051, ops http://127.0.0.1:9101/metrics
    declarations gRPC 127.0.0.1:15052, ops http://127.0.0.1:9102/metrics (evidence in $JIFEN_EVIDENCE_DIR)
    evaluations  gRPC 127.0.0.1:15053, ops http://127.0.0.1:9103/metrics
    grading      gRPC 127.0.0.1:15054, ops http://127.0.0.1:9104/metrics
                 (year-end batch: $BIN/jifen-grading batch --year 2026 --org <org id> [--shard i/n])
    admin login  username admin, password $JIFEN_BOOTSTRAP_ADMIN_PASSWORD
    demo member  username demo0001 … demo1000, password jifen-demo
    tour         demo0001: secretary of 第一党支部, this month's declarations waiting for review
                 demo0002: a member of it, with last year's ledger, final grade and this year's
                 months; admin: the dashboard, last year's grades and the ledger export
    logs         $RUN/logs/
$HISTORY_NOTE

  Try:  curl -s -XPOST http://$GATEWAY_ADDR/api/v1/auth/login -H 'content-type: application/json' \\
          -d '{"username":"admin","password":"$JIFEN_BOOTSTRAP_ADMIN_PASSWORD"}'

  Ctrl-C stops everything.
INFO
if [ -n "$SEED_NOTE" ]; then echo "$SEED_NOTE"; echo; fi

wait -n "${pids[@]}" || true
echo "a service exited; see $RUN/logs/"
