#!/usr/bin/env bash
# The cost of tracing: the token path (client_credentials, form body) with
# tracing off and with tracing on at 100% sampling, exporting over OTLP/HTTP
# to a local receiver that accepts and discards (cmd/tollgate-otlpsink),
# against PostgreSQL + Redis with wrk, in the same run.
#
# Off and on alternate, ROUNDS times (off, on, off, on…), each on a fresh
# `tollgate serve` warmed up first, so that the load of a shared machine
# falls on both alike; the table gives every run, the load average at the
# start and the end, and the ratio of on to off per round and over all
# rounds. Targets: tracing off costs nothing measurable (the no-op provider,
# see docs/performance.md), tracing on costs at most 15% of the throughput.
#
# The table is printed and written into docs/performance.md between the
# markers <!-- bench-otel:begin --> and <!-- bench-otel:end -->; DOCS= (empty)
# writes nothing. The run uses its own database and Redis key prefix and
# removes them afterwards.
#
#   bash .ci/bench-otel.sh                      # or: make bench-otel
#   ROUNDS=3 DURATION=15s CONNS=64 DOCS= bash .ci/bench-otel.sh
#   PROFILE=/tmp/otel.prof bash .ci/bench-otel.sh   # CPU profiles of the last round: on, and /tmp/otel-off.prof
#   go tool pprof -top -diff_base /tmp/otel-off.prof bin/tollgate /tmp/otel.prof   # what tracing adds
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-3s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-2}
DOCS=${DOCS-docs/performance.md}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
REDIS=${REDIS:-redis://127.0.0.1:6379/0}
ADDR=127.0.0.1:18090
OPS=127.0.0.1:19095
SINK=127.0.0.1:14318

command="DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS ROUNDS=$ROUNDS bash .ci/bench-otel.sh"

if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
fi
make -s build
CGO_ENABLED=0 ${GO:-go} build -trimpath -o bin/tollgate-otlpsink ./cmd/tollgate-otlpsink

work=$(mktemp -d)
db="tollgate_benchotel_$$"
prefix="tgbenchotel:$$:"
pid=""
spid=""
del_keys() {
  local cursor=0
  while :; do
    cursor=$(redis-cli -u "$REDIS" --raw EVAL "local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', 5000)
for _, k in ipairs(r[2]) do redis.call('UNLINK', k) end
return r[1]" 0 "$cursor" "$1*") || return
    [[ $cursor == 0 ]] && return
  done
}
stop_server() {
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    pid=""
  fi
}
cleanup() {
  stop_server
  if [[ -n $spid ]]; then kill -TERM "$spid" 2>/dev/null && wait "$spid" 2>/dev/null || true; fi
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  del_keys "$prefix" || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql "$PG/postgres" -qc "CREATE DATABASE $db" >/dev/null
export TOLLGATE_DATABASE_URL="$PG/$db?sslmode=disable"
export TOLLGATE_REDIS_URL="$REDIS"
export TOLLGATE_REDIS_KEY_PREFIX="$prefix"
export TOLLGATE_TOKEN_SECRET="$(head -c 48 /dev/urandom | base64 -w0)"
export TOLLGATE_PEPPER="$(head -c 48 /dev/urandom | base64 -w0)"
export TOLLGATE_KEY_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64 -w0)"
export TOLLGATE_HTTP_ADDR=$ADDR TOLLGATE_OPS_ADDR=$OPS TOLLGATE_DATA_DIR="$work"
export TOLLGATE_OPS_PPROF=true
export TOLLGATE_TOKEN_RATE_LIMIT=0
# The tracing variables are set per run below, never inherited.
unset OTEL_TRACES_EXPORTER OTEL_SDK_DISABLED OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT \
  OTEL_EXPORTER_OTLP_PROTOCOL OTEL_TRACES_SAMPLER OTEL_TRACES_SAMPLER_ARG

# Their logs go to a file, shown when they fail (a script that exits
# without a word says nothing about why).
bin/tollgate migrate >"$work/setup.log" 2>&1 || { cat "$work/setup.log" >&2; exit 1; }
bin/tollgate bootstrap 2>>"$work/setup.log" > "$work/boot.json" || { cat "$work/setup.log" >&2; exit 1; }
id=$(sed -E 's/.*"client_id":([0-9]+).*/\1/' "$work/boot.json")
secret=$(sed -E 's/.*"client_secret":"([^"]+)".*/\1/' "$work/boot.json")
basic=$(printf '%s:%s' "$id" "$secret" | base64 -w0)
cat > "$work/form.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
LUA

bin/tollgate-otlpsink -addr "$SINK" > "$work/sink.log" &
spid=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://$SINK/" && break; sleep 0.1; done

# start_server MODE: tollgate serve with tracing off or on (100% sampling,
# OTLP/HTTP to the sink).
start_server() {
  if [[ $1 == on ]]; then
    OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
      OTEL_EXPORTER_OTLP_ENDPOINT="http://$SINK" OTEL_TRACES_SAMPLER=always_on \
      bin/tollgate serve 2>"$work/serve-$1.log" &
  else
    bin/tollgate serve 2>"$work/serve-$1.log" &
  fi
  pid=$!
  for _ in $(seq 1 100); do curl -fs "http://$OPS/healthz" >/dev/null && break; sleep 0.1; done
}

cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
started=$(date -u +%FT%TZ)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
row_format='| %5s | %-7s | %9s | %8s | %8s | %6s | %10s |\n'
{
  echo "Measured $started: \`$command\`"
  echo
  echo "$(nproc) cores ($cpu_model), $(go version | cut -d' ' -f3), wrk -t2 -c$CONNS on the same cores, warm-up $WARMUP," \
    "run $DURATION; the OTLP receiver (cmd/tollgate-otlpsink) on the same cores too."
  echo
  printf "$row_format" round tracing "req/s" p50 p99 errors "CPU µs/req"
  echo '|-------|---------|-----------|----------|----------|--------|------------|'
} > "$work/table.md"

declare -A rps_of cpu_of
tck=$(getconf CLK_TCK)
# cpu_ticks PID: utime + stime of PID in clock ticks.
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
for round in $(seq 1 "$ROUNDS"); do
  for mode in off on; do
    start_server "$mode"
    wrk -t2 -c"$CONNS" -d"$WARMUP" -s "$work/form.lua" "http://$ADDR/oauth/token" >/dev/null
    if [[ -n ${PROFILE:-} && $round == "$ROUNDS" ]]; then
      wrk -t2 -c"$CONNS" -d"$DURATION" -s "$work/form.lua" "http://$ADDR/oauth/token" >/dev/null &
      wrkpid=$!
      prof=$PROFILE
      [[ $mode == off ]] && prof=${PROFILE%.prof}-off.prof
      curl -fs "http://$OPS/debug/pprof/profile?seconds=5" -o "$prof"
      wait "$wrkpid"
    fi
    t0=$(cpu_ticks "$pid")
    out=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$work/form.lua" "http://$ADDR/oauth/token")
    t1=$(cpu_ticks "$pid")
    reqs=$(awk '/ requests in / {print $1}' <<<"$out")
    cpu=$(awk -v d=$((t1 - t0)) -v t="$tck" -v n="$reqs" 'BEGIN {if (n > 0) printf "%.1f", d * 1e6 / t / n; else print "-"}')
    cpu_of[$round-$mode]=$cpu
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    errs=$(awk '/Non-2xx/ {e+=$5} /Socket errors/ {e+=$4+$6+$8+$10} END {print e+0}' <<<"$out")
    rps_of[$round-$mode]=$rps
    printf "$row_format" "$round" "$mode" "$rps" "$p50" "$p99" "$errs" "$cpu" >> "$work/table.md"
    stop_server
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
kill -TERM "$spid" && wait "$spid" || true
spid=""
exports=$(awk '/^exports/ {print $2 " exports, " $4 " bytes"}' "$work/sink.log")

{
  echo
  sum_off=0 sum_on=0
  for round in $(seq 1 "$ROUNDS"); do
    off=${rps_of[$round-off]} on=${rps_of[$round-on]}
    echo "Round $round: throughput on/off = $(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.3f", a / b}')," \
      "CPU per request on/off = $(awk -v a="${cpu_of[$round-on]}" -v b="${cpu_of[$round-off]}" 'BEGIN {printf "%.3f", a / b}')."
    sum_off=$(awk -v s="$sum_off" -v x="$off" 'BEGIN {print s + x}')
    sum_on=$(awk -v s="$sum_on" -v x="$on" 'BEGIN {print s + x}')
    cpu_off=$(awk -v s="${cpu_off:-0}" -v x="${cpu_of[$round-off]}" 'BEGIN {print s + x}')
    cpu_on=$(awk -v s="${cpu_on:-0}" -v x="${cpu_of[$round-on]}" 'BEGIN {print s + x}')
  done
  echo
  echo "All rounds: on/off = $(awk -v a="$sum_on" -v b="$sum_off" 'BEGIN {printf "%.3f", a / b}')" \
    "(cost $(awk -v a="$sum_on" -v b="$sum_off" 'BEGIN {printf "%.1f", (1 - a / b) * 100}')%; target ≤ 15%);" \
    "CPU per request on/off = $(awk -v a="$cpu_on" -v b="$cpu_off" 'BEGIN {printf "%.3f", a / b}')." \
    "Load average at the start $load_start, at the end $load_end. The receiver took $exports."
} >> "$work/table.md"
cat "$work/table.md"
[[ -n ${PROFILE:-} ]] && echo "CPU profiles of the last round written to $PROFILE (on) and ${PROFILE%.prof}-off.prof (off)"

if [[ -n $DOCS ]]; then
  if ! grep -q '<!-- bench-otel:begin -->' "$DOCS"; then
    echo "bench-otel.sh: no <!-- bench-otel:begin --> marker in $DOCS" >&2
    exit 1
  fi
  awk -v f="$work/table.md" '
    /<!-- bench-otel:begin -->/ {print; while ((getline l < f) > 0) print l; skip = 1; next}
    /<!-- bench-otel:end -->/ {skip = 0}
    !skip {print}' "$DOCS" > "$work/doc" && cat "$work/doc" > "$DOCS"
  echo "written into $DOCS"
fi
