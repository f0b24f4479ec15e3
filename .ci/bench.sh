#!/usr/bin/env bash
# Load test of the token endpoint against PostgreSQL + Redis with wrk:
# client_credentials with Basic auth and a form body, and with a JSON body,
# each after a warm-up, at each concurrency in CONNS. Each path is then run the
# same way against the floor (cmd/tollgate-floor: the least work the path must
# do, on the same Redis), and the table gives Tollgate's ratio to it and
# Tollgate's CPU time per request. Uses its own database and Redis key
# prefixes and removes them afterwards.
#
#   bash .ci/bench.sh                 # or: make bench
#   DURATION=30s CONNS="16 64" bash .ci/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
CONNS=${CONNS:-"16 64"}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
REDIS=${REDIS:-redis://127.0.0.1:6379/0}
ADDR=127.0.0.1:18080
OPS=127.0.0.1:19090
FLOOR=127.0.0.1:18081

if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
fi
make -s build
CGO_ENABLED=0 ${GO:-go} build -trimpath -o bin/tollgate-floor ./cmd/tollgate-floor

work=$(mktemp -d)
db="tollgate_bench_$$"
prefix="tgbench:$$:"
fprefix="tgfloor:$$:"
pid=""
fpid=""
# del_keys PREFIX unlinks every key under PREFIX, scanning in Redis: the
# token keys hold raw bytes that redis-cli --scan | xargs cannot pass back.
del_keys() {
  local cursor=0
  while :; do
    cursor=$(redis-cli -u "$REDIS" --raw EVAL "local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', 1000)
for _, k in ipairs(r[2]) do redis.call('UNLINK', k) end
return r[1]" 0 "$cursor" "$1*") || return
    [[ $cursor == 0 ]] && return
  done
}
cleanup() {
  for p in $pid $fpid; do
    kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
  done
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  for p in "$prefix" "$fprefix"; do del_keys "$p" || true; done
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
export TOLLGATE_HTTP_ADDR=$ADDR TOLLGATE_OPS_ADDR=$OPS TOLLGATE_DATA_DIR="$work"
export TOLLGATE_OPS_PPROF=true
# Load from one client: no token rate, and a class far above the load.
export TOLLGATE_TOKEN_RATE_LIMIT=0 TOLLGATE_RATE_CLASSES="default=10000000"

bin/tollgate migrate >/dev/null 2>&1
bin/tollgate bootstrap 2>/dev/null > "$work/boot.json"
id=$(sed -E 's/.*"client_id":([0-9]+).*/\1/' "$work/boot.json")
secret=$(sed -E 's/.*"client_secret":"([^"]+)".*/\1/' "$work/boot.json")

# Logs at the default level, as in production, written to a file.
bin/tollgate serve 2>"$work/serve.log" &
pid=$!
for _ in $(seq 1 100); do curl -fs "http://$OPS/healthz" >/dev/null && break; sleep 0.1; done

# The floor, on the same Redis under its own prefix.
bin/tollgate-floor -addr "$FLOOR" -redis "$REDIS" -prefix "$fprefix" 2>"$work/floor.log" &
fpid=$!
for _ in $(seq 1 100); do curl -fs -o /dev/null -d grant_type=client_credentials "http://$FLOOR/oauth/token" && break; sleep 0.1; done

basic=$(printf '%s:%s' "$id" "$secret" | base64 -w0)

# A token and an API key for the introspection and check paths.
token=$(curl -fs -H "Authorization: Basic $basic" -d grant_type=client_credentials "http://$ADDR/oauth/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
user=$(sed -E 's/.*"username":"([^"]+)".*/\1/' "$work/boot.json")
password=$(sed -E 's/.*"password":"([^"]+)".*/\1/' "$work/boot.json")
admin=$(curl -fs -H 'Content-Type: application/json' "http://$ADDR/oauth/token" \
  -d "{\"grant_type\":\"eskimi_dsp\",\"username\":\"$user\",\"password\":\"$password\",\"client_id\":$id,\"client_secret\":\"$secret\"}" \
  | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
key=$(curl -fs -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "http://$ADDR/api/v1/keys" \
  -d '{"name":"bench","access_rights":"events"}' | sed -E 's/.*"key":"([^"]+)".*/\1/')
ftoken=$(curl -fs -d grant_type=client_credentials "http://$FLOOR/oauth/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

# scripts DIR TOKEN KEY writes the wrk scripts for one server into DIR.
scripts() {
  local dir=$1 token=$2 key=$3
  mkdir -p "$dir"
cat > "$dir/form.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
LUA
cat > "$dir/introspect.lua" <<LUA
wrk.method = "POST"
wrk.body = "token=$token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
LUA
cat > "$dir/check-token.lua" <<LUA
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer $token"
LUA
cat > "$dir/check-key.lua" <<LUA
wrk.method = "GET"
wrk.headers["X-API-Key"] = "$key"
LUA
cat > "$dir/json.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"grant_type":"client_credentials","client_id":$id,"client_secret":"$secret"}'
wrk.headers["Content-Type"] = "application/json"
LUA
}
scripts "$work/tollgate" "$token" "$key"
scripts "$work/floor" "$ftoken" "$ftoken"

if [[ -n ${PROFILE:-} ]]; then
  # A 15 s CPU profile of the form path at the highest concurrency.
  c=${CONNS##* }
  wrk -t2 -c"$c" -d20s -s "$work/tollgate/form.lua" "http://$ADDR/oauth/token" >/dev/null &
  wrkpid=$!
  sleep 2
  curl -fs "http://$OPS/debug/pprof/profile?seconds=15" -o "$PROFILE"
  wait "$wrkpid"
  echo "CPU profile written to $PROFILE"
fi

echo "# Tollgate, PostgreSQL + Redis — $(date -u +%FT%TZ)"
echo "# $(nproc) cores, $(go version | cut -d' ' -f3), $(psql "$PG/postgres" -tAc 'show server_version' | cut -d' ' -f1) PostgreSQL, Redis $(redis-cli -u "$REDIS" info server | sed -n 's/^redis_version:\(.*\)\r/\1/p'), wrk -t2, warm-up $WARMUP, run $DURATION"
tck=$(getconf CLK_TCK)
# cpu_ticks PID: utime + stime of PID in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the ")" that ends the command name).
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
# bench DIR HOST PATH BODY C: warm up, run, and leave wrk's output in $out.
bench() {
  wrk -t2 -c"$5" -d"$WARMUP" -s "$1/$4.lua" "http://$2$3" >/dev/null
  out=$(wrk -t2 -c"$5" -d"$DURATION" --latency -s "$1/$4.lua" "http://$2$3")
}
printf '| %-30s | %5s | %9s | %8s | %8s | %8s | %7s | %11s | %5s | %10s |\n' \
  path conns "req/s" p50 p99 max errors "floor req/s" ratio "CPU µs/req"
printf '|%s|\n' "--------------------------------|-------|-----------|----------|----------|----------|---------|-------------|-------|------------"
PATHS=${PATHS:-"form json introspect check-token check-key"}
for body in $PATHS; do
  case $body in
    form | json) path=/oauth/token label="token client_credentials $body" ;;
    introspect) path=/oauth/introspect label="introspect" ;;
    check-token) path=/auth/check label="check, Bearer token" ;;
    check-key) path=/auth/check label="check, X-API-Key" ;;
    *) echo "bench.sh: unknown path $body" >&2; exit 2 ;;
  esac
  for c in $CONNS; do
    # Tollgate, with its CPU time (user + system) over the measured run only.
    t0=$(cpu_ticks "$pid")
    bench "$work/tollgate" "$ADDR" "$path" "$body" "$c"
    t1=$(cpu_ticks "$pid")
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/ requests in / {print $1}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    max=$(awk '/^    Latency/ {print $4}' <<<"$out")
    errs=$(awk '/Non-2xx/ {e+=$5} /Socket errors/ {e+=$4+$6+$8+$10} END {print e+0}' <<<"$out")
    cpu=$(awk -v d=$((t1 - t0)) -v t="$tck" -v n="$reqs" 'BEGIN {if (n > 0) printf "%.1f", d * 1e6 / t / n; else print "-"}')
    # The floor: the same path, body, warm-up and run.
    bench "$work/floor" "$FLOOR" "$path" "$body" "$c"
    frps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    ferrs=$(awk '/Non-2xx/ {e+=$5} /Socket errors/ {e+=$4+$6+$8+$10} END {print e+0}' <<<"$out")
    [[ $ferrs == 0 ]] || echo "bench.sh: floor $body c=$c: $ferrs errors" >&2
    ratio=$(awk -v a="$rps" -v b="$frps" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')
    printf '| %-30s | %5s | %9s | %8s | %8s | %8s | %7s | %11s | %5s | %10s |\n' \
      "$label" "$c" "$rps" "$p50" "$p99" "$max" "$errs" "$frps" "$ratio" "$cpu"
  done
done
