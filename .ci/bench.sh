#!/usr/bin/env bash
# Load test of Tollgate against PostgreSQL + Redis with wrk, beside a floor.
#
# Each path in PATHS runs at each concurrency in CONNS, after a warm-up,
# against `tollgate serve` and then the same way against the floor
# (cmd/tollgate-floor: the least work the path must do, on the same Redis).
# The table gives req/s, latencies, errors, the ratio to the floor and
# Tollgate's CPU time per request; its footer, the resident memory of the
# Tollgate process (peak VmHWM over the runs, and VmRSS at the end). The
# eskimi_dsp grant, CPU-bound by design (argon2id), has a table of its own:
# its floor verifies the same argon2id hash and stores a token.
#
# SCALE=1 (make bench-scale) runs issuance and introspection, then seeds
# 100,000 clients in PostgreSQL (one INSERT … SELECT copying the bootstrap
# client, so they share its secret) and 1,000,000 live tokens in Redis
# (cmd/tollgate-seed, through the server's own issuer and token store), and
# runs them again with each request drawing one of 1,000 random clients or
# tokens, so the caches meet many credentials; the second table gives the
# ratio to the first run.
#
# The tables are printed and written into docs/performance.md between the
# markers <!-- bench:begin --> and <!-- bench:end --> (<!-- bench-scale:… -->
# with SCALE=1), with the machine, the versions, the date and the command;
# DOCS= (empty) writes nothing. The run uses its own database and Redis key
# prefixes and removes them afterwards.
#
#   bash .ci/bench.sh                          # or: make bench
#   SCALE=1 bash .ci/bench.sh                  # or: make bench-scale
#   DURATION=30s CONNS="16 64" PATHS="form introspect" ESKIMI=0 DOCS= bash .ci/bench.sh
#   PATHS="form pkjwt" PKJWT_N=150000 DOCS= bash .ci/bench.sh   # private_key_jwt against the floor
#   PROFILE=/tmp/cpu.prof CONNS=64 bash .ci/bench.sh     # the form path; PROFILE_PATH=eskimi, …
#   PROFILE=/tmp/cpu.prof PROFILE_PATH=introspect SCALE=1 bash .ci/bench.sh   # at scale
#   KEEP_LOG=/tmp/serve.log bash .ci/bench.sh   # keep Tollgate's log
#   PATHS="check-key check-metered" CONNS=64 DOCS= bash .ci/bench.sh   # the check with a quota and two budgets
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-"16 64"}
SCALE=${SCALE:-0}
if [[ $SCALE == 1 ]]; then
  PATHS=${PATHS:-"form introspect"}
  ESKIMI=${ESKIMI:-0}
else
  PATHS=${PATHS:-"form json jwt pkjwt introspect check-token check-jwt check-key check-metered"}
  ESKIMI=${ESKIMI:-1}
fi
SCALE_PATHS=${SCALE_PATHS:-"form introspect"}
SCALE_CLIENTS=${SCALE_CLIENTS:-100000}
SCALE_TOKENS=${SCALE_TOKENS:-1000000}
SCALE_SAMPLE=${SCALE_SAMPLE:-1000}
DOCS=${DOCS-docs/performance.md}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
REDIS=${REDIS:-redis://127.0.0.1:6379/0}
ADDR=127.0.0.1:18080
OPS=127.0.0.1:19090
FLOOR=127.0.0.1:18081

# The command that reproduces this run.
command="DURATION=$DURATION WARMUP=$WARMUP CONNS=\"$CONNS\" PATHS=\"$PATHS\" ESKIMI=$ESKIMI"
[[ $SCALE == 1 ]] && command+=" SCALE=1 SCALE_PATHS=\"$SCALE_PATHS\" SCALE_CLIENTS=$SCALE_CLIENTS SCALE_TOKENS=$SCALE_TOKENS SCALE_SAMPLE=$SCALE_SAMPLE"
command+=" bash .ci/bench.sh"

if ! command -v wrk >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq wrk
fi
make -s build
CGO_ENABLED=0 ${GO:-go} build -trimpath -o bin/tollgate-floor ./cmd/tollgate-floor
CGO_ENABLED=0 ${GO:-go} build -trimpath -o bin/tollgate-assert ./cmd/tollgate-assert
[[ $SCALE == 1 ]] && CGO_ENABLED=0 ${GO:-go} build -trimpath -o bin/tollgate-seed ./cmd/tollgate-seed

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
    cursor=$(redis-cli -u "$REDIS" --raw EVAL "local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', 5000)
for _, k in ipairs(r[2]) do redis.call('UNLINK', k) end
return r[1]" 0 "$cursor" "$1*") || return
    [[ $cursor == 0 ]] && return
  done
}
cleanup() {
  for p in $pid $fpid; do
    kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
  done
  [[ -z ${KEEP_LOG:-} ]] || cp "$work/serve.log" "$KEEP_LOG" 2>/dev/null || true
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
export TOLLGATE_KEY_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64 -w0)"
export TOLLGATE_HTTP_ADDR=$ADDR TOLLGATE_OPS_ADDR=$OPS TOLLGATE_DATA_DIR="$work"
export TOLLGATE_OPS_PPROF=true
# Load from one client: no token rate, and a class far above the load.
export TOLLGATE_TOKEN_RATE_LIMIT=0 TOLLGATE_RATE_CLASSES="default=10000000"
# One user logging in on every connection at once: the brute-force guard
# reserves each password attempt as a failure until it succeeds, so more
# concurrent logins of one user (or from one address) than the thresholds
# (5 and 20 by default) would be held back. The guard stays on, and costs
# what it costs, with thresholds above the load.
export TOLLGATE_BRUTEFORCE_THRESHOLD=1000 TOLLGATE_BRUTEFORCE_SOURCE_THRESHOLD=1000

bin/tollgate migrate >/dev/null 2>&1
bin/tollgate bootstrap 2>/dev/null > "$work/boot.json"
id=$(sed -E 's/.*"client_id":([0-9]+).*/\1/' "$work/boot.json")
secret=$(sed -E 's/.*"client_secret":"([^"]+)".*/\1/' "$work/boot.json")
user=$(sed -E 's/.*"username":"([^"]+)".*/\1/' "$work/boot.json")
password=$(sed -E 's/.*"password":"([^"]+)".*/\1/' "$work/boot.json")

# Logs at the default level, as in production, written to a file.
bin/tollgate serve 2>"$work/serve.log" &
pid=$!
for _ in $(seq 1 100); do curl -fs "http://$OPS/healthz" >/dev/null && break; sleep 0.1; done

# The floor, on the same Redis under its own prefix. Its eskimi_dsp path
# runs at most one argon2id verification per core at a time: the least
# work, without the memory of one 19 MiB verification per request in flight.
# The private_key_jwt client's key: its public JWK Set is registered with
# Tollgate and verifies the floor's assertions.
bin/tollgate-assert -key "$work/client.pem" -jwks "$work/jwks.json"
bin/tollgate-floor -addr "$FLOOR" -redis "$REDIS" -prefix "$fprefix" -password-concurrency "$(nproc)" \
  -assertion-jwks "$work/jwks.json" 2>"$work/floor.log" &
fpid=$!
for _ in $(seq 1 100); do curl -fs -o /dev/null -d grant_type=client_credentials "http://$FLOOR/oauth/token" && break; sleep 0.1; done

basic=$(printf '%s:%s' "$id" "$secret" | base64 -w0)

# A token and an API key for the introspection and check paths.
token=$(curl -fs -H "Authorization: Basic $basic" -d grant_type=client_credentials "http://$ADDR/oauth/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
admin=$(curl -fs -H 'Content-Type: application/json' "http://$ADDR/oauth/token" \
  -d "{\"grant_type\":\"eskimi_dsp\",\"username\":\"$user\",\"password\":\"$password\",\"client_id\":$id,\"client_secret\":\"$secret\"}" \
  | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
key=$(curl -fs -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "http://$ADDR/api/v1/keys" \
  -d '{"name":"bench","access_rights":"events"}' | sed -E 's/.*"key":"([^"]+)".*/\1/')
ftoken=$(curl -fs -d grant_type=client_credentials "http://$FLOOR/oauth/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
# A client whose access tokens are JWTs (ES256, the default signing key),
# for the jwt path.
jwtclient=$(curl -fs -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "http://$ADDR/api/v1/clients" \
  -d '{"name":"bench jwt","grant_types":["client_credentials"],"access_token_strategy":"jwt"}')
jwtbasic=$(printf '%s:%s' "$(sed -E 's/^\{"id":([0-9]+).*/\1/' <<<"$jwtclient")" \
  "$(sed -E 's/.*"client_secret":"([^"]+)".*/\1/' <<<"$jwtclient")" | base64 -w0)
# One of its tokens, for the check-jwt path.
jwttoken=$(curl -fs -H "Authorization: Basic $jwtbasic" -d grant_type=client_credentials "http://$ADDR/oauth/token" \
  | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

# The metered check: an API key of a child account, with a quota of its
# own, under a budget of the child (a per-second limit of the class and a
# quota) and one of the root (a quota), every limit far above the load, so
# that each call takes the whole decision and is allowed. The fields are set
# in the database (the management surfaces for them are not the bench's);
# the server's cache serves them once its entries expire (5 s).
mkey=""
if [[ " $PATHS " == *" check-metered "* ]]; then
  mkey=$(curl -fs -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "http://$ADDR/api/v1/keys" \
    -d '{"name":"bench metered","access_rights":"events"}' | sed -E 's/.*"key":"([^"]+)".*/\1/')
  mid=$(sed -E 's/^tgk_([0-9]+)_.*/\1/' <<<"$mkey")
  psql "$PG/$db" -qAt -v ON_ERROR_STOP=1 >/dev/null <<SQL
WITH root AS (SELECT account_id AS id FROM clients WHERE id = $mid),
child AS (INSERT INTO accounts (parent_id, name, status, budget_rate_limits, budget_quota_limit, budget_quota_period, version, created_at, updated_at)
  SELECT id, 'bench metered child', 'active', 'default=10000000:10000000', 1000000000000000, 'day', 1, now(), now() FROM root RETURNING id)
UPDATE clients SET account_id = (SELECT id FROM child), quota_limit = 1000000000000000, quota_period = 'month' WHERE id = $mid;
UPDATE accounts SET budget_quota_limit = 1000000000000000, budget_quota_period = 'month'
  WHERE id = (SELECT parent_id FROM accounts WHERE id = (SELECT account_id FROM clients WHERE id = $mid));
SQL
  sleep 6
fi

# scripts DIR TOKEN KEY USER PASSWORD [JWTBASIC [METEREDKEY [JWTTOKEN]]]
# writes the wrk scripts for one server into DIR; the jwt path uses
# JWTBASIC's client and check-jwt JWTTOKEN (the floor has one format only:
# its jwt path is its form path, its check-jwt its check-token).
scripts() {
  local dir=$1 token=$2 key=$3 user=$4 password=$5
  mkdir -p "$dir"
cat > "$dir/form.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
LUA
cat > "$dir/jwt.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic ${6:-$basic}"
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
cat > "$dir/check-jwt.lua" <<LUA
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer ${8:-$token}"
LUA
cat > "$dir/check-key.lua" <<LUA
wrk.method = "GET"
wrk.headers["X-API-Key"] = "$key"
LUA
cat > "$dir/check-metered.lua" <<LUA
wrk.method = "GET"
wrk.headers["X-API-Key"] = "${7:-$key}"
wrk.headers["X-Tollgate-Cost"] = "2"
LUA
cat > "$dir/json.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"grant_type":"client_credentials","client_id":$id,"client_secret":"$secret"}'
wrk.headers["Content-Type"] = "application/json"
LUA
# Base64url passwords and secrets need no form encoding.
cat > "$dir/eskimi.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=eskimi_dsp&username=$user&password=$password&client_id=$id&client_secret=$secret"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
}
scripts "$work/tollgate" "$token" "$key" "$user" "$password" "$jwtbasic" "$mkey" "$jwttoken"
scripts "$work/floor" "$ftoken" "$ftoken" floor "floor+password"

# private_key_jwt: every assertion is single-use and wrk cannot sign, so
# PKJWT_N request bodies per server are signed before the runs (ES256,
# exp 5 minutes ahead: the runs must start within that). Each wrk thread
# takes every other line from an offset that each run moves past what it
# may have used.
PKJWT_N=${PKJWT_N:-200000}
if [[ " $PATHS " == *" pkjwt "* ]]; then
  issuer=$(curl -fs "http://$ADDR/.well-known/oauth-authorization-server" | sed -E 's/.*"issuer":"([^"]+)".*/\1/')
  pk_id=$(curl -fs -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' "http://$ADDR/api/v1/clients" \
    -d "{\"name\":\"bench pkjwt\",\"grant_types\":[\"client_credentials\"],\"token_endpoint_auth_method\":\"private_key_jwt\",\"jwks\":$(cat "$work/jwks.json")}" \
    | sed -E 's/^\{"id":([0-9]+).*/\1/')
  echo "Signing $PKJWT_N assertions for each server…"
  bin/tollgate-assert -key "$work/client.pem" -client "$pk_id" -aud "$issuer" -n "$PKJWT_N" -out "$work/tollgate/pkjwt.txt"
  bin/tollgate-assert -key "$work/client.pem" -client floor -aud floor -n "$PKJWT_N" -out "$work/floor/pkjwt.txt"
  for dir in "$work/tollgate" "$work/floor"; do
    echo 0 > "$dir/pkjwt.offset"
    cat > "$dir/pkjwt.lua" <<LUA
local bodies, next_body, n_threads = {}, 1, 0
local offset_file = "$dir/pkjwt.offset"
local function read_offset()
  local f = io.open(offset_file, "r")
  local o = tonumber(f:read("*l")) or 0
  f:close()
  return o
end
setup = function(thread)
  thread:set("tid", n_threads)
  n_threads = n_threads + 1
end
init = function(args)
  local offset, i = read_offset(), 0
  for line in io.lines("$dir/pkjwt.txt") do
    if i >= offset and (i - offset) % 2 == tid then bodies[#bodies + 1] = line end
    i = i + 1
  end
end
request = function()
  local body = bodies[next_body] or "grant_type=client_credentials"
  next_body = next_body + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
done = function(summary, latency, requests)
  local offset = read_offset()
  local f = io.open(offset_file, "w")
  f:write(tostring(offset + 2 * summary.requests + 4096))
  f:close()
end
LUA
  done
fi


pg_version=$(psql "$PG/postgres" -tAc 'show server_version' | cut -d' ' -f1)
redis_version=$(redis-cli -u "$REDIS" info server | sed -n 's/^redis_version:\(.*\)\r/\1/p')
wrk_version=$(wrk -v 2>&1 | awk 'NR == 1 {print $2}' || true)
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
started=$(date -u +%FT%TZ)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
{
  echo "Measured $started: \`$command\`"
  echo
  echo "$(nproc) cores ($cpu_model), $(go version | cut -d' ' -f3), PostgreSQL $pg_version, Redis $redis_version," \
    "wrk $wrk_version (-t2, on the same cores), loopback, keep-alive; warm-up $WARMUP, run $DURATION per row."
} > "$work/head.md"
cat "$work/head.md"
echo

tck=$(getconf CLK_TCK)
# cpu_ticks PID: utime + stime of PID in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the ")" that ends the command name).
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
# rss_mb PID FIELD: VmHWM (peak) or VmRSS (now) of PID in MB.
rss_mb() { awk -v f="$2:" '$1 == f {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# reset_peak PID starts VmHWM afresh (Linux: clear_refs 5).
reset_peak() { echo 5 > "/proc/$1/clear_refs" 2>/dev/null || true; }
# bench DIR HOST PATH SCRIPT C: warm up, run, and leave wrk's output in $out.
# settle PID waits (at most 15 s) until PID uses less than a tenth of a core:
# requests wrk left in flight (eskimi_dsp at high concurrency keeps working
# for seconds after wrk has gone) must not run into the next measurement.
settle() {
  local a b
  for _ in $(seq 75); do
    a=$(cpu_ticks "$1"); sleep 0.2; b=$(cpu_ticks "$1")
    (( (b - a) * 50 < tck )) && return
  done
}
# eskimi_dsp answers in seconds at high concurrency: wrk waits for it
# rather than counting a timeout after its default 2 s.
bench() {
  local timeout=2s
  [[ $4 == eskimi ]] && timeout=10s
  wrk -t2 -c"$5" -d"$WARMUP" --timeout "$timeout" -s "$1/$4.lua" "http://$2$3" >/dev/null
  settle "$pid"; settle "$fpid"
  out=$(wrk -t2 -c"$5" -d"$DURATION" --timeout "$timeout" --latency -s "$1/$4.lua" "http://$2$3")
  settle "$pid"; settle "$fpid"
}
# parse: fields of wrk's output in $out.
parse() {
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/ requests in / {print $1}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  max=$(awk '/^    Latency/ {print $4}' <<<"$out")
  errs=$(awk '/Non-2xx/ {e+=$5} /Socket errors/ {e+=$4+$6+$8+$10} END {print e+0}' <<<"$out")
}
# per_req TICKS: CPU µs per request of the last run.
per_req() { awk -v d="$1" -v t="$tck" -v n="$reqs" 'BEGIN {if (n > 0) printf "%.1f", d * 1e6 / t / n; else print "-"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }
# target PATH: the path, label and script of a PATHS entry.
target() {
  case $1 in
    form) path=/oauth/token label="token client_credentials form" ;;
    json) path=/oauth/token label="token client_credentials json" ;;
    pkjwt) path=/oauth/token label="token private_key_jwt (ES256)" ;;
    jwt) path=/oauth/token label="token client_credentials JWT" ;;
    introspect) path=/oauth/introspect label="introspect" ;;
    check-token) path=/auth/check label="check, Bearer token" ;;
    check-jwt) path=/auth/check label="check, Bearer JWT" ;;
    check-key) path=/auth/check label="check, X-API-Key" ;;
    check-metered) path=/auth/check label="check, key, quota+2 budgets" ;;
    eskimi) path=/oauth/token label="token eskimi_dsp" ;;
    *) echo "bench.sh: unknown path $1" >&2; exit 2 ;;
  esac
}
row_format='| %-30s | %5s | %9s | %8s | %8s | %8s | %7s | %11s | %5s | %10s | %10s |\n'
row_rule='|--------------------------------|-------|-----------|----------|----------|----------|---------|-------------|-------|------------|------------|'
# run_paths TABLE PATH...: each path at each concurrency against Tollgate
# and the floor; rows printed and appended to TABLE; req/s, ratio and CPU
# per request kept in base_<path>_<conns>.
run_paths() {
  local table=$1 body c t0 t1 cpu frps ferrs fcpu fkey
  shift
  printf "$row_format" path conns "req/s" p50 p99 max errors "floor req/s" ratio "CPU µs/req" "floor CPU" | tee -a "$table"
  echo "$row_rule" | tee -a "$table"
  for body in "$@"; do
    target "$body"
    for c in $CONNS; do
      # Tollgate, with its CPU time (user + system) over the measured run only.
      t0=$(cpu_ticks "$pid")
      bench "$work/tollgate" "$ADDR" "$path" "$body" "$c"
      t1=$(cpu_ticks "$pid")
      parse
      cpu=$(per_req $((t1 - t0)))
      local trps=$rps tp50=$p50 tp99=$p99 tmax=$max terrs=$errs
      # The floor: the same path, body, warm-up and run. Its check paths do
      # the same work for a token and a key: measured once.
      fkey=floor_${body//-/_}_$c
      [[ $body == check-key || $body == check-metered || $body == check-jwt ]] && fkey=floor_check_token_$c
      [[ $body == jwt ]] && fkey=floor_form_$c
      if [[ -n ${!fkey:-} ]]; then
        read -r frps fcpu <<<"${!fkey}"
      else
        t0=$(cpu_ticks "$fpid")
        bench "$work/floor" "$FLOOR" "$path" "$body" "$c"
        t1=$(cpu_ticks "$fpid")
        parse
        frps=$rps ferrs=$errs fcpu=$(per_req $((t1 - t0)))
        [[ $ferrs == 0 ]] || echo "bench.sh: floor $body c=$c: $ferrs errors" >&2
        printf -v "$fkey" '%s %s' "$frps" "$fcpu"
      fi
      printf "$row_format" "$label" "$c" "$trps" "$tp50" "$tp99" "$tmax" "$terrs" "$frps" "$(ratio "$trps" "$frps")" "$cpu" "$fcpu" | tee -a "$table"
      printf -v "base_${body//-/_}_$c" '%s %s %s' "$trps" "$(ratio "$trps" "$frps")" "$cpu"
    done
  done
}
# rss_footer TABLE WHAT [floor]: the resident memory of Tollgate (and of
# the floor) since the last reset_peak, appended to TABLE.
rss_footer() {
  local peak now verdict=met floor=""
  peak=$(rss_mb "$pid" VmHWM) now=$(rss_mb "$pid" VmRSS)
  awk -v p="$peak" 'BEGIN {exit !(p > 100)}' && verdict="NOT met"
  [[ ${3:-} == floor ]] && floor=" The floor's peak: $(rss_mb "$fpid" VmHWM) MB."
  { echo
    echo "RSS of \`tollgate serve\` $2: peak $peak MB (VmHWM), $now MB at the end (VmRSS); target ≤ 100 MB: $verdict.$floor"; } | tee -a "$1"
}

# profile NAME [SUFFIX]: a 15 s CPU profile of Tollgate under the PATHS entry
# NAME (its script NAME-SUFFIX at scale) at the highest concurrency, written
# to $PROFILE.
profile() {
  local c=${CONNS##* } wrkpid
  target "$1"
  wrk -t2 -c"$c" -d20s --timeout 10s -s "$work/tollgate/$1${2:+-$2}.lua" "http://$ADDR$path" >/dev/null &
  wrkpid=$!
  sleep 2
  curl -fs "http://$OPS/debug/pprof/profile?seconds=15" -o "$PROFILE"
  wait "$wrkpid"
  settle "$pid"
  echo "CPU profile of $1${2:+ at scale} written to $PROFILE"
}
# PROFILE_PATH (form by default); with SCALE=1, that path at scale, after seeding.
[[ -n ${PROFILE:-} && $SCALE != 1 ]] && profile "${PROFILE_PATH:-form}"

# --- The paths, against Tollgate and the floor. ---------------------------
reset_peak "$pid"; reset_peak "$fpid"
read -ra paths <<<"$PATHS"
: > "$work/table.md"
run_paths "$work/table.md" "${paths[@]}"
rss_footer "$work/table.md" "over the runs above" floor

# --- eskimi_dsp: argon2id-bound, reported apart. ---------------------------
if [[ $ESKIMI == 1 ]]; then
  echo | tee -a "$work/table.md"
  reset_peak "$pid"; reset_peak "$fpid"
  run_paths "$work/table.md" eskimi
  { echo
    echo "eskimi_dsp's floor verifies an argon2id hash with the same parameters (secret.DefaultArgon2Params: m = 19 MiB," \
      "t = 2, p = 1), at most $(nproc) at a time (one per core), and stores a token: the ratio is Tollgate's throughput" \
      "against argon2id alone (target ≥ 0.90), and the CPU columns compare the cost of a request."; } | tee -a "$work/table.md"
  rss_footer "$work/table.md" "during the eskimi_dsp runs (each request in flight holds argon2id's 19 MiB)" floor
fi

# --- SCALE=1: the same paths with 100,000 clients and 1,000,000 tokens. -----
if [[ $SCALE == 1 ]]; then
  echo
  echo "Seeding $SCALE_CLIENTS clients and $SCALE_TOKENS tokens…"
  used_before=$(redis-cli -u "$REDIS" info memory | sed -n 's/^used_memory:\(.*\)\r/\1/p')
  t0=$(date +%s.%N)
  # One statement: copies of the bootstrap client, sharing its secret hash.
  psql -v ON_ERROR_STOP=1 "$TOLLGATE_DATABASE_URL" -qc "
    INSERT INTO clients (account_id, owner_id, name, description, secret_hash, secret_hint, grant_types, scopes,
      may_introspect, token_lifetime_seconds, status, generation, kind, access_rights, rate_limits, created_by,
      created_at, updated_at)
    SELECT c.account_id, c.owner_id, 'scale ' || g, '', c.secret_hash, c.secret_hint, c.grant_types, c.scopes,
      false, c.token_lifetime_seconds, c.status, c.generation, c.kind, c.access_rights, c.rate_limits, c.created_by,
      now(), now()
    FROM clients c, generate_series(1, $SCALE_CLIENTS) g WHERE c.id = $id" >/dev/null
  IFS='|' read -r first last count account generation scopes < <(psql "$TOLLGATE_DATABASE_URL" -tAc "
    SELECT min(s.id), max(s.id), count(*), min(c.account_id), min(c.generation), min(c.scopes)
    FROM clients s, clients c WHERE s.name LIKE 'scale %' AND c.id = $id")
  if [[ $count != "$SCALE_CLIENTS" || $((last - first + 1)) != "$SCALE_CLIENTS" ]]; then
    echo "bench.sh: seeded clients $first-$last ($count), want $SCALE_CLIENTS consecutive ids" >&2
    exit 1
  fi
  # The tokens name the root of the account's tree, as the server's own do (ADR 0013).
  root=$(psql "$TOLLGATE_DATABASE_URL" -tAc "
    WITH RECURSIVE up (id, parent_id) AS (SELECT id, parent_id FROM accounts WHERE id = $account
      UNION ALL SELECT a.id, a.parent_id FROM accounts a JOIN up ON a.id = up.parent_id)
    SELECT id FROM up WHERE parent_id IS NULL")
  t1=$(date +%s.%N)
  bin/tollgate-seed -tokens "$SCALE_TOKENS" -clients "$first-$last" -account "$account" -root "$root" -generation "$generation" \
    -scopes "$scopes" -sample "$SCALE_SAMPLE" -sample-out "$work/tokens.txt"
  t2=$(date +%s.%N)
  used_after=$(redis-cli -u "$REDIS" info memory | sed -n 's/^used_memory:\(.*\)\r/\1/p')
  seeded=$(awk -v a="$t0" -v b="$t1" -v c="$t2" -v m=$((used_after - used_before)) -v n="$SCALE_TOKENS" \
    'BEGIN {printf "clients in %.1f s, tokens in %.1f s; Redis used_memory grew %.0f MB, %.0f bytes per token", b - a, c - b, m / 1048576, m / n}')
  echo "Seeded: $seeded."

  # wrk scripts drawing a random credential or token per request.
  {
    echo 'local creds = {'
    for c in $(shuf -i "$first-$last" -n "$SCALE_SAMPLE"); do
      printf '"Basic %s",\n' "$(printf '%s:%s' "$c" "$secret" | base64 -w0)"
    done
    echo '}'
    cat <<'LUA'
local reqs
init = function(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
request = function()
  if not reqs then
    reqs = {}
    for i, c in ipairs(creds) do
      reqs[i] = wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded",
        ["Authorization"] = c}, "grant_type=client_credentials")
    end
  end
  return reqs[math.random(#reqs)]
end
LUA
  } > "$work/tollgate/form-scale.lua"
  # token_scripts DIR TOKENS: the introspection and check scripts drawing
  # from the file TOKENS.
  token_scripts() {
    {
      echo 'local tokens = {'
      sed 's/.*/"&",/' "$2"
      echo '}'
      cat <<LUA
local reqs, checks
init = function(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
request = function()
  if not reqs then
    reqs, checks = {}, {}
    for i, t in ipairs(tokens) do
      reqs[i] = wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded",
        ["Authorization"] = "Basic $basic"}, "token=" .. t)
      checks[i] = wrk.format("GET", nil, {["Authorization"] = "Bearer " .. t})
    end
  end
  if wrk.path == "/auth/check" then return checks[math.random(#checks)] end
  return reqs[math.random(#reqs)]
end
LUA
    } > "$1/introspect-scale.lua"
    cp "$1/introspect-scale.lua" "$1/check-token-scale.lua"
  }
  token_scripts "$work/tollgate" "$work/tokens.txt"
  # The floor runs the same scripts, so wrk spends the same on drawing: its
  # one token, repeated, and the issuance script as it is (the floor ignores
  # the credentials).
  yes "$ftoken" | head -n "$SCALE_SAMPLE" > "$work/ftokens.txt" || true
  token_scripts "$work/floor" "$work/ftokens.txt"
  cp "$work/tollgate/form-scale.lua" "$work/floor/form-scale.lua"

  # A seeded token must introspect as active.
  sample_token=$(head -1 "$work/tokens.txt")
  curl -fs -H "Authorization: Basic $basic" -d "token=$sample_token" "http://$ADDR/oauth/introspect" | grep -q '"active":true' \
    || { echo "bench.sh: a seeded token is not active" >&2; exit 1; }

  [[ -n ${PROFILE:-} ]] && profile "${PROFILE_PATH:-form}" scale

  echo
  scale_head="$SCALE_CLIENTS clients in PostgreSQL, $SCALE_TOKENS live tokens in Redis; each request draws one of $SCALE_SAMPLE random clients (issuance) or tokens (introspection, check). Seeded: $seeded."
  echo "$scale_head" | tee "$work/scale.md"
  echo | tee -a "$work/scale.md"
  # Each row runs the floor again: "vs base" compares the ratios to the
  # floor, which cancels most of the drift of a shared machine's load
  # between the two runs.
  scale_format='| %-40s | %5s | %9s | %10s | %8s | %7s | %11s | %5s | %10s | %7s | %10s | %8s |\n'
  printf "$scale_format" path conns "req/s" "base req/s" p99 errors "floor req/s" ratio "base ratio" "vs base" "CPU µs/req" "base CPU" | tee -a "$work/scale.md"
  echo '|------------------------------------------|-------|-----------|------------|----------|---------|-------------|-------|------------|---------|------------|----------|' | tee -a "$work/scale.md"
  reset_peak "$pid"
  for body in $SCALE_PATHS; do
    target "$body"
    for c in $CONNS; do
      t0=$(cpu_ticks "$pid")
      bench "$work/tollgate" "$ADDR" "$path" "$body-scale" "$c"
      t1=$(cpu_ticks "$pid")
      parse
      srps=$rps sp99=$p99 serrs=$errs scpu=$(per_req $((t1 - t0)))
      bench "$work/floor" "$FLOOR" "$path" "$body-scale" "$c"
      parse
      var="base_${body//-/_}_$c"
      read -r brps bratio bcpu <<<"${!var:-- - -}"
      sratio=$(ratio "$srps" "$rps")
      printf "$scale_format" "$label, at scale" "$c" "$srps" "$brps" "$sp99" "$serrs" "$rps" "$sratio" "$bratio" \
        "$(ratio "$sratio" "$([[ $bratio == - ]] && echo 0 || echo "$bratio")")" "$scpu" "$bcpu" | tee -a "$work/scale.md"
    done
  done
  rss_footer "$work/scale.md" "during the runs at scale"
fi

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "Load average (1, 5, 15 min) at the start: $load_start; at the end: $load_end." | tee "$work/load.md"

# write_block NAME FILE: replaces what lies between <!-- NAME:begin --> and
# <!-- NAME:end --> in $DOCS with FILE, or appends the block if the markers
# are missing.
write_block() {
  local begin="<!-- $1:begin -->" end="<!-- $1:end -->"
  if ! grep -qF "$begin" "$DOCS"; then
    printf '\n%s\n%s\n' "$begin" "$end" >> "$DOCS"
  fi
  awk -v b="$begin" -v e="$end" -v f="$2" '
    $0 == b {print; while ((getline line < f) > 0) print line; skip = 1; next}
    $0 == e {skip = 0}
    !skip' "$DOCS" > "$work/docs.md"
  cat "$work/docs.md" > "$DOCS"
}
if [[ -n $DOCS ]]; then
  if [[ $SCALE == 1 ]]; then
    { cat "$work/head.md"; echo; echo "Without the seeded data:"; echo; cat "$work/table.md"; echo
      cat "$work/scale.md"; echo; cat "$work/load.md"; } > "$work/block.md"
    write_block bench-scale "$work/block.md"
  else
    { cat "$work/head.md"; echo; cat "$work/table.md"; echo; cat "$work/load.md"; } > "$work/block.md"
    write_block bench "$work/block.md"
  fi
  echo "Written to $DOCS."
fi
