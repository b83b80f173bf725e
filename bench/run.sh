#!/usr/bin/env bash
# maitred vs. peers, every scenario, every server, in ONE run, alternating servers in rounds.
#
#   bench/run.sh                                        # everything: 3 rounds, ~10 minutes
#   SCENARIOS="hello-50 echo-1m" ROUNDS=1 bench/run.sh  # a subset
#   ROUNDS=7 bench/run.sh                               # anything you intend to quote
#
# Scenarios (SCENARIOS, space-separated, any order; N is a number, `k` means ×1000):
#   hello-N   GET /, N keep-alive connections
#   close-N   GET / with `Connection: close`: a new connection per request, N at a time
#   echo-1m   POST /echo with a 1 MiB body, echoed back; ECHO_CONNS connections
#   sleep     GET /sleep (the handler sleeps 50 ms); SLEEP_CONNS connections
#   idle-N    hello with IDLE_ACTIVE_CONNS connections, without and then with N idle
#             keep-alive connections held open by bench/idle-conns
#   static-1k, static-64k, static-100m
#             GET of a 1 KiB, 64 KiB or 100 MiB file (random bytes, page cache warm) from the
#             `maitred` binary and from nginx (sendfile on) with one worker process and with
#             `worker_processes auto`; STATIC_CONNS connections (100m: STATIC_BIG_CONNS)
#
# Environment (defaults in brackets):
#   SERVERS         servers for every scenario but idle-N ["maitred hyper tiny-pool"]
#   IDLE_SERVERS    servers for idle-N ["maitred hyper"] (tiny-pool runs a thread per connection)
#   STATIC_SERVERS  servers for static-* ["maitred nginx-1 nginx-auto"]
#   SCENARIOS       ["hello-50 hello-256 close-50 echo-1m sleep idle-10k static-1k static-64k static-100m"]
#   ROUNDS          rounds; every round runs every scenario on every server once [3]
#   DURATION        seconds of each measured wrk run [5]
#   SLEEP_DURATION  seconds of each measured run of `sleep` [max(DURATION, 5)]
#   WARMUP          seconds of the unmeasured wrk run before each measured one [2]
#   THREADS         --threads for maitred and tiny-pool (hyper: tokio's default) [4]
#   ECHO_CONNS      connections for echo-1m [16]
#   SLEEP_CONNS     connections for sleep [100]
#   IDLE_ACTIVE_CONNS  wrk connections for idle-N [50]
#   STATIC_CONNS    connections for static-1k and static-64k [50]
#   STATIC_BIG_CONNS   connections for static-100m [4]
#   MAITRED_STATIC_BIN the maitred binary for static-* instead of building it (e.g. an older
#                   build, for a before/after comparison) [""]
#   CHART_OUT       also copy the chart (SVG) and its medians (.tsv beside it) here [""]
#   WRK_TIMEOUT     wrk --timeout, seconds [10]
#   PIN             1 = server on SERVER_CPU, clients (wrk, idle-conns) on CLIENT_CPU; 0 = off [1]
#   SERVER_CPU      CPU list for the server [1]
#   CLIENT_CPU      CPU list for wrk and idle-conns [0]
#   START_TIMEOUT   seconds a server gets to print its address before it is killed [30]
#   IDLE_TIMEOUT    seconds idle-conns gets to open all its connections [120]
#   MAITRED_ARGS    extra flags for every maitred run, appended last [""]
#   RESULTS_DIR     where the raw per-round file goes [bench/results]
#
# Progress goes to stderr; the tables, targets and checks to stdout (and to the raw file); the
# medians also go to RESULTS_DIR/run-<stamp>.medians.tsv and a chart of them (bench/chart.py) to
# RESULTS_DIR/run-<stamp>.svg.
# The exit status is non-zero if any run failed. See bench/README.md for every column.

set -euo pipefail

# The whole script is one compound command, parsed before it runs: editing this file while a run
# is in progress cannot change what that run executes.
{

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
T_START=$SECONDS

SERVERS=${SERVERS:-"maitred hyper tiny-pool"}
IDLE_SERVERS=${IDLE_SERVERS:-"maitred hyper"}
STATIC_SERVERS=${STATIC_SERVERS:-"maitred nginx-1 nginx-auto"}
SCENARIOS=${SCENARIOS:-"hello-50 hello-256 close-50 echo-1m sleep idle-10k static-1k static-64k static-100m"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
SLEEP_DURATION=${SLEEP_DURATION:-$(( DURATION > 5 ? DURATION : 5 ))}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-4}
ECHO_CONNS=${ECHO_CONNS:-16}
SLEEP_CONNS=${SLEEP_CONNS:-100}
IDLE_ACTIVE_CONNS=${IDLE_ACTIVE_CONNS:-50}
STATIC_CONNS=${STATIC_CONNS:-50}
STATIC_BIG_CONNS=${STATIC_BIG_CONNS:-4}
MAITRED_STATIC_BIN=${MAITRED_STATIC_BIN:-}
CHART_OUT=${CHART_OUT:-}
WRK_TIMEOUT=${WRK_TIMEOUT:-10}
PIN=${PIN:-1}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
START_TIMEOUT=${START_TIMEOUT:-30}
IDLE_TIMEOUT=${IDLE_TIMEOUT:-120}
MAITRED_ARGS=${MAITRED_ARGS:-}
RESULTS_DIR=${RESULTS_DIR:-"$BENCH_DIR/results"}

ECHO_BYTES=1048576   # the 1 MiB of echo-1m
SLEEP_SECONDS=0.05   # what /sleep sleeps, in every server

log() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[run.sh] error: %s\n' "$*" >&2; exit 1; }
# Shared with bench/tls/run.sh: process bookkeeping, /proc readers, wrk runs, medians, targets.
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in ROUNDS DURATION SLEEP_DURATION WARMUP THREADS ECHO_CONNS SLEEP_CONNS IDLE_ACTIVE_CONNS \
         STATIC_CONNS STATIC_BIG_CONNS WRK_TIMEOUT START_TIMEOUT IDLE_TIMEOUT; do
    is_uint "${!v}" && (( ${!v} > 0 )) || die "$v must be a positive integer (got '${!v}')"
done
[[ $PIN == 0 || $PIN == 1 ]] || die "PIN must be 0 or 1 (got '$PIN')"
read -r -a SERVER_LIST <<<"$SERVERS"
read -r -a IDLE_SERVER_LIST <<<"$IDLE_SERVERS"
read -r -a STATIC_SERVER_LIST <<<"$STATIC_SERVERS"
read -r -a SCENARIO_LIST <<<"$SCENARIOS"
read -r -a MAITRED_EXTRA <<<"$MAITRED_ARGS"
(( ${#SCENARIO_LIST[@]} > 0 )) || die "SCENARIOS is empty"
for s in "${SERVER_LIST[@]+"${SERVER_LIST[@]}"}" "${IDLE_SERVER_LIST[@]+"${IDLE_SERVER_LIST[@]}"}"; do
    case $s in maitred|hyper|tiny-pool) ;; *) die "unknown server '$s' (known: maitred hyper tiny-pool)";; esac
done
for s in "${STATIC_SERVER_LIST[@]+"${STATIC_SERVER_LIST[@]}"}"; do
    case $s in maitred|nginx-1|nginx-auto) ;; *) die "unknown static server '$s' (known: maitred nginx-1 nginx-auto)";; esac
done

# "10k" -> 10000, "256" -> 256; anything else fails.
count_of() {
    local n=$1
    if [[ $n =~ ^([0-9]+)k$ ]]; then echo $(( BASH_REMATCH[1] * 1000 ));
    elif [[ $n =~ ^[0-9]+$ ]]; then echo "$n";
    else return 1; fi
}
declare -A SCEN_KIND SCEN_N SCEN_BYTES
for sc in "${SCENARIO_LIST[@]}"; do
    case $sc in
        hello-*|close-*|idle-*)
            n=$(count_of "${sc#*-}") && (( n > 0 )) || die "bad scenario '$sc' (N must be a number, e.g. hello-50, idle-10k)"
            SCEN_KIND[$sc]=${sc%%-*}; SCEN_N[$sc]=$n ;;
        echo-1m) SCEN_KIND[$sc]=echo; SCEN_N[$sc]=$ECHO_CONNS ;;
        sleep)   SCEN_KIND[$sc]=sleep; SCEN_N[$sc]=$SLEEP_CONNS ;;
        static-1k)   SCEN_KIND[$sc]=static; SCEN_N[$sc]=$STATIC_CONNS; SCEN_BYTES[$sc]=1024 ;;
        static-64k)  SCEN_KIND[$sc]=static; SCEN_N[$sc]=$STATIC_CONNS; SCEN_BYTES[$sc]=65536 ;;
        static-100m) SCEN_KIND[$sc]=static; SCEN_N[$sc]=$STATIC_BIG_CONNS; SCEN_BYTES[$sc]=104857600 ;;
        *) die "unknown scenario '$sc' (known: hello-N close-N echo-1m sleep idle-N static-1k static-64k static-100m)" ;;
    esac
done

# Which servers run in a scenario. echo-1m measures maitred twice: `maitred` with the default
# settings (the 1 MiB body stays in memory: body_spool_threshold is 1 MiB), `maitred-spool` with
# --body-spool-threshold 512KiB, so the body goes through a temporary file.
variants_of() { # variants_of SCENARIO -> one name per line
    local s list
    case ${SCEN_KIND[$1]} in
        idle)   list=("${IDLE_SERVER_LIST[@]+"${IDLE_SERVER_LIST[@]}"}") ;;
        static) list=("${STATIC_SERVER_LIST[@]+"${STATIC_SERVER_LIST[@]}"}") ;;
        *)      list=("${SERVER_LIST[@]+"${SERVER_LIST[@]}"}") ;;
    esac
    for s in "${list[@]+"${list[@]}"}"; do
        echo "$s"
        [[ $s == maitred && ${SCEN_KIND[$1]} == echo ]] && echo maitred-spool
    done
    return 0
}

# ---------------------------------------------------------------------------------------------
# Process bookkeeping: every process we start in the background is recorded here and killed on
# exit, whatever happens.
STARTED_PIDS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/maitred-bench.XXXXXX")

# (forget_pid, ours, cleanup: bench/lib.sh)
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Tools and limits.
ensure_wrk
for tool in cargo curl awk timeout ss pgrep; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
pin_and_clean_env

# Idle connections need descriptors: raise the soft limit to the hard one (inherited by every
# process started below), then check it is enough.
FD_SOFT_BEFORE=$(ulimit -Sn)
FD_HARD=$(ulimit -Hn)
if [[ $FD_HARD == unlimited ]]; then
    FD_HARD=$(cat /proc/sys/fs/nr_open 2>/dev/null || echo 1048576)
fi
ulimit -Sn "$FD_HARD" 2>/dev/null || log "could not raise the fd limit to $FD_HARD"
FD_LIMIT=$(ulimit -Sn)
log "fd limit: soft $FD_SOFT_BEFORE -> $FD_LIMIT (hard $FD_HARD)"
for sc in "${SCENARIO_LIST[@]}"; do
    [[ ${SCEN_KIND[$sc]} == idle ]] || continue
    # The server holds N + the wrk connections + a few dozen of its own; so does idle-conns.
    need=$(( SCEN_N[$sc] + IDLE_ACTIVE_CONNS + 100 ))
    (( need <= FD_LIMIT )) \
        || die "$sc needs about $need descriptors per process but the limit is $FD_LIMIT (hard limit $FD_HARD); use a smaller idle-N"
done

# ---------------------------------------------------------------------------------------------
# Build. Binary paths come from cargo's own JSON messages, so CARGO_TARGET_DIR etc. are honoured.

declare -A BIN
need_build() { # need_build SERVER: is it used by any selected scenario but static-*?
    local sc v
    for sc in "${SCENARIO_LIST[@]}"; do
        [[ ${SCEN_KIND[$sc]} == static ]] && continue
        while IFS= read -r v; do [[ ${v%-spool} == "$1" ]] && return 0; done < <(variants_of "$sc")
    done
    return 1
}
# The tree the servers are built from, read before they are built: a file edited while the run
# goes on is in neither the binaries nor this line.
GIT_STATE="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit')$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (dirty)')"
for s in maitred hyper tiny-pool; do
    need_build "$s" || continue
    log "building $s (release)"
    case $s in
        maitred)   BIN[$s]=$(cd "$ROOT" && cargo_exe --example bench_server) ;;
        hyper)     BIN[$s]=$(cargo_exe --manifest-path "$BENCH_DIR/peers/hyper-hello/Cargo.toml") ;;
        tiny-pool) BIN[$s]=$(cargo_exe --manifest-path "$BENCH_DIR/peers/tiny-pool/Cargo.toml") ;;
    esac
    log "  -> ${BIN[$s]}"
done
STATIC_DIR=$WORK/static
for sc in "${SCENARIO_LIST[@]}"; do
    [[ ${SCEN_KIND[$sc]} == static ]] || continue
    if [[ -z ${BIN[maitred-static]:-} ]] && variants_of "$sc" | grep -qx maitred; then
        if [[ -n $MAITRED_STATIC_BIN ]]; then
            [[ -x $MAITRED_STATIC_BIN ]] || die "MAITRED_STATIC_BIN=$MAITRED_STATIC_BIN is not an executable"
            BIN[maitred-static]=$MAITRED_STATIC_BIN
        else
            log "building the maitred binary (release), for static-*"
            BIN[maitred-static]=$(cd "$ROOT" && cargo_exe --bin maitred)
        fi
        log "  -> ${BIN[maitred-static]}"
    fi
    if [[ -z ${BIN[nginx]:-} ]] && variants_of "$sc" | grep -q '^nginx-'; then
        BIN[nginx]=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null) \
            || die "nginx not found (Debian: apt-get install -y nginx); or leave the nginx servers out: STATIC_SERVERS=maitred"
        command -v python3 >/dev/null 2>&1 || die "python3 not found (needed to pick nginx's port)"
    fi
    # The files: random bytes, written once; the warm-up run brings them into the page cache.
    mkdir -p "$STATIC_DIR"
    f="$STATIC_DIR/${sc#static-}.bin"
    [[ -f $f ]] || head -c "${SCEN_BYTES[$sc]}" /dev/urandom >"$f"
done
for sc in "${SCENARIO_LIST[@]}"; do
    if [[ ${SCEN_KIND[$sc]} == idle && -z ${BIN[idle-conns]:-} ]]; then
        log "building idle-conns (release)"
        BIN[idle-conns]=$(cargo_exe --manifest-path "$BENCH_DIR/idle-conns/Cargo.toml")
        log "  -> ${BIN[idle-conns]}"
    fi
done

# wrk Lua scripts (see write_stats_lua in bench/lib.sh): echo-1m also sets a fixed 1 MiB
# body; curl separately checks that a random 1 MiB body round-trips intact.
STATS_LUA=$WORK/stats.lua
write_stats_lua "$STATS_LUA"
ECHO_LUA=$WORK/echo-1m.lua
{
    cat <<EOF_LUA
wrk.method = "POST"
wrk.body = string.rep("x", $ECHO_BYTES)
wrk.headers["Content-Type"] = "application/octet-stream"
EOF_LUA
    cat "$STATS_LUA"
} >"$ECHO_LUA"
head -c "$ECHO_BYTES" /dev/urandom >"$WORK/body-1m.bin"

# server_cmd VARIANT SCENARIO -> fills array CMD
server_cmd() {
    local kind=${SCEN_KIND[$2]}
    if [[ $kind == static ]]; then
        case $1 in
            maitred) CMD=("${BIN[maitred-static]}" --listen 127.0.0.1:0 --threads "$THREADS" "${MAITRED_EXTRA[@]+"${MAITRED_EXTRA[@]}"}" "$STATIC_DIR") ;;
            nginx-*) nginx_cmd "${1#nginx-}" ;;
        esac
        return 0
    fi
    case $1 in
        maitred|maitred-spool)
            CMD=("${BIN[maitred]}" --listen 127.0.0.1:0 --threads "$THREADS")
            # echo-1m: maitred runs with the defaults (the 1 MiB body stays in memory, and
            # max_body_size is 8 MiB); maitred-spool spools it past a 512 KiB threshold.
            [[ $1 == maitred-spool && $kind == echo ]] && CMD+=(--body-spool-threshold 512KiB)
            # idle-N: the default connection cap (1024) would evict idle connections, and the
            # default keep-alive timeout (15 s) would close them during the measurement.
            if [[ $kind == idle ]]; then
                local cap=$(( 2 * SCEN_N[$2] > 20000 ? 2 * SCEN_N[$2] : 20000 ))
                CMD+=(--connection-limit "$cap" --keepalive-timeout 300)
            fi
            CMD+=("${MAITRED_EXTRA[@]+"${MAITRED_EXTRA[@]}"}") ;;
        hyper)     CMD=("${BIN[hyper]}" --listen 127.0.0.1:0) ;;
        tiny-pool) CMD=("${BIN[tiny-pool]}" --listen 127.0.0.1:0 --threads "$THREADS") ;;
    esac
}

# nginx_cmd WORKERS (1 or auto): writes a configuration serving STATIC_DIR on a free port, in
# the foreground (so $! is the master), sendfile on, no access log (maitred logs none by
# default either), keep-alive requests capped at 1000 like maitred's default; fills CMD and
# NGINX_PORT.
nginx_cmd() {
    local prefix="$WORK/nginx-$1" user_line=""
    mkdir -p "$prefix/tmp"
    NGINX_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # As root, nginx's workers would run as `nobody`, who cannot read the 0700 work directory.
    (( EUID == 0 )) && user_line="user root root;"
    cat >"$prefix/nginx.conf" <<EOF_NGINX
$user_line
daemon off;
master_process on;
worker_processes $1;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000;
    default_type application/octet-stream;
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $STATIC_DIR;
    }
}
EOF_NGINX
    CMD=("${BIN[nginx]}" -p "$prefix/" -e "$prefix/error.log" -c "$prefix/nginx.conf")
    # nginx prints nothing: it is up once its port accepts (start_server in lib.sh).
    READY_ADDR=127.0.0.1:$NGINX_PORT
}

# ---------------------------------------------------------------------------------------------
# Server lifecycle (the /proc readers, wrk, start_server and stop_pid are in lib.sh).

RAW_STD=$WORK/rows-std.tsv     # hello, close, echo, sleep
RAW_IDLE=$WORK/rows-idle.tsv   # idle
: >"$RAW_STD"; : >"$RAW_IDLE"
: >"$WORK/wrk-all.txt"
FAILURES=()

record_failure() { # record_failure FILE SCENARIO ROUND SERVER REASON
    printf '%s\t%s\t%s\tFAILED\t%s\n' "$2" "$3" "$4" "$5" >>"$1"
    FAILURES+=("$2 round $3: $4: $5")
    log "$2 round $3: $4: FAILED: $5"
}

# verify KIND ADDR: one request with curl; checks the route answers what it is named after.
# Prints the problem and returns 1 if it does not.
verify() {
    local kind=$1 addr=$2 out="$WORK/verify.out" res
    case $kind in
        hello|close|idle)
            local -a hdr=()
            [[ $kind == close ]] && hdr=(-H 'Connection: close')
            res=$(curl -sS --max-time 10 "${hdr[@]+"${hdr[@]}"}" -o "$out" -w '%{http_code}' "http://$addr/" 2>&1) || { echo "curl: $res"; return 1; }
            [[ $res == 200 && "$(cat "$out")" == 'Hello, World!' ]] \
                || { echo "GET / answered $res '$(head -c 100 "$out")'"; return 1; } ;;
        echo)
            res=$(curl -sS --max-time 20 -H 'Content-Type: application/octet-stream' -H 'Expect:' \
                       --data-binary @"$WORK/body-1m.bin" -o "$out" -w '%{http_code} %{size_download}' \
                       "http://$addr/echo" 2>&1) || { echo "curl: $res"; return 1; }
            [[ $res == "200 $ECHO_BYTES" ]] && cmp -s "$out" "$WORK/body-1m.bin" \
                || { echo "POST /echo of $ECHO_BYTES random bytes answered '$res' and $(stat -c %s "$out") bytes that $(cmp -s "$out" "$WORK/body-1m.bin" && echo match || echo 'do not match')"; return 1; } ;;
        static-*)
            local file="$STATIC_DIR/${kind#static-}.bin" size
            size=$(stat -c %s "$file")
            res=$(curl -sS --max-time 60 -o "$out" -w '%{http_code} %{size_download}' "http://$addr/${kind#static-}.bin" 2>&1) || { echo "curl: $res"; return 1; }
            [[ $res == "200 $size" ]] && cmp -s "$out" "$file" \
                || { echo "GET /${kind#static-}.bin answered '$res' (want 200 $size, byte-exact)"; return 1; }
            rm -f "$out" ;;
        sleep)
            res=$(curl -sS --max-time 10 -o "$out" -w '%{http_code} %{time_total}' "http://$addr/sleep" 2>&1) || { echo "curl: $res"; return 1; }
            [[ ${res%% *} == 200 && "$(cat "$out")" == slept ]] \
                && awk -v t="${res#* }" -v s="$SLEEP_SECONDS" 'BEGIN { exit !(t >= s) }' \
                || { echo "GET /sleep answered '$res' '$(head -c 100 "$out")' (want 200, slept, >= ${SLEEP_SECONDS}s)"; return 1; } ;;
    esac
}

# A scenario's wrk arguments: fills WRK_ARGS, PATH_, CONNS_, SECS_.
wrk_plan() {
    local sc=$1
    WRK_ARGS=(); PATH_=/; SECS_=$DURATION
    case ${SCEN_KIND[$sc]} in
        hello) CONNS_=${SCEN_N[$sc]} ;;
        close) CONNS_=${SCEN_N[$sc]}; WRK_ARGS=(-H 'Connection: close') ;;
        echo)  CONNS_=$ECHO_CONNS; PATH_=/echo; WRK_ARGS=(-s "$ECHO_LUA") ;;
        sleep) CONNS_=$SLEEP_CONNS; PATH_=/sleep; SECS_=$SLEEP_DURATION ;;
        idle)  CONNS_=$IDLE_ACTIVE_CONNS ;;
        static) CONNS_=${SCEN_N[$sc]}; PATH_=/${sc#static-}.bin ;;
    esac
}

# One standard run (hello, close, echo, sleep): start, verify, warm up, measure, stop.
run_std() { # run_std SCENARIO ROUND VARIANT
    local sc=$1 round=$2 name=$3 why
    local wlog="$WORK/$sc.$name.r$round.wrk"
    if ! start_server "$name" "$sc" "$round"; then
        record_failure "$RAW_STD" "$sc" "$round" "$name" "$START_ERR"; return 0
    fi
    local pid=$PID addr=$ADDR
    log "$sc round $round: $name: pid $pid at http://$addr/"
    local vkind=${SCEN_KIND[$sc]}
    [[ $vkind == static ]] && vkind=$sc
    if ! why=$(verify "$vkind" "$addr"); then
        stop_pid "$pid"; record_failure "$RAW_STD" "$sc" "$round" "$name" "check failed: $why"; return 0
    fi
    local -a WRK_ARGS; local PATH_ CONNS_ SECS_
    wrk_plan "$sc"
    run_wrk "$wlog.warmup" "$CONNS_" "$WARMUP" "http://$addr$PATH_" "${WRK_ARGS[@]+"${WRK_ARGS[@]}"}" || true
    if [[ ${SCEN_KIND[$sc]} == sleep ]]; then
        # The warm-up leaves up to SLEEP_CONNS requests queued in a thread-pool server when wrk
        # hangs up, and the workers still sleep through them: wait until they must be done, or
        # the measured run starts behind.
        sleep "$(awk -v c="$SLEEP_CONNS" -v t="$THREADS" -v s="$SLEEP_SECONDS" 'BEGIN { printf "%.1f", c * s / t + 1 }')"
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true; forget_pid "$pid"
        record_failure "$RAW_STD" "$sc" "$round" "$name" "died during warm-up"; return 0
    fi
    if ! measure "$pid" "${addr##*:}" "$wlog" "$CONNS_" "$SECS_" "http://$addr$PATH_" "${WRK_ARGS[@]+"${WRK_ARGS[@]}"}"; then
        stop_pid "$pid"; record_failure "$RAW_STD" "$sc" "$round" "$name" "$M_ERR"; return 0
    fi
    stop_pid "$pid"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$sc" "$round" "$name" "$M_RPS" "$M_REQ" "$M_P50" "$M_P99" "$M_CPU" "$M_CPU_REQ" "$M_CTX_REQ" \
        "$(awk -v k="$M_HWM" 'BEGIN { printf "%.1f", k / 1024 }')" "$M_THREADS" "$M_SOCKERR" \
        "$M_CONN_REQ" "$M_KIB_RESP" "$SECS_" "$M_ACCEPTED" "$CONNS_" "$M_NON2XX" "$M_READ" "$M_ERRDETAIL" "$M_EST_MID" "$M_CPU_PCT" "$M_WRK_PCT" "${M_OTHER_PCT% *}" "${M_OTHER_PCT#* }" "$M_TW" >>"$RAW_STD"
    log "$sc round $round: $name: $M_RPS req/s, p50 $M_P50 ms, p99 $M_P99 ms, ${M_CPU}s CPU ($M_CPU_PCT% of a core; wrk $M_WRK_PCT%, others ${M_OTHER_PCT% *}%, steal ${M_OTHER_PCT#* }%) = $M_CPU_REQ us/req, $M_CTX_REQ ctxsw/req, $M_CONN_REQ conns/req, $M_EST_MID established mid-run, $M_TW TIME_WAIT gained on the port, $M_KIB_RESP KiB/resp, VmHWM $M_HWM kB, $M_THREADS threads; wrk errors: $M_ERRDETAIL"
    { printf '===== %s round %s: %s (http://%s%s) =====\n' "$sc" "$round" "$name" "$addr" "$PATH_"; cat "$wlog"; } >>"$WORK/wrk-all.txt"
}

# One idle run: start, verify, warm up, measure A (no idle connections), open N idle
# connections, check them, measure B (with them), check they are still open, stop.
run_idle() { # run_idle SCENARIO ROUND VARIANT
    local sc=$1 round=$2 name=$3 why n=${SCEN_N[$1]}
    local wlog="$WORK/$sc.$name.r$round.wrk"
    if ! start_server "$name" "$sc" "$round"; then
        record_failure "$RAW_IDLE" "$sc" "$round" "$name" "$START_ERR"; return 0
    fi
    local pid=$PID addr=$ADDR port=${ADDR##*:}
    log "$sc round $round: $name: pid $pid at http://$addr/"
    if ! why=$(verify idle "$addr"); then
        stop_pid "$pid"; record_failure "$RAW_IDLE" "$sc" "$round" "$name" "check failed: $why"; return 0
    fi
    local url="http://$addr/"
    run_wrk "$wlog.warmup" "$IDLE_ACTIVE_CONNS" "$WARMUP" "$url" || true

    # A: without idle connections.
    if ! measure "$pid" "$port" "$wlog.without" "$IDLE_ACTIVE_CONNS" "$DURATION" "$url"; then
        stop_pid "$pid"; record_failure "$RAW_IDLE" "$sc" "$round" "$name" "without idle: $M_ERR"; return 0
    fi
    local a_rps=$M_RPS a_p50=$M_P50 a_p99=$M_P99 a_cpu=$M_CPU_REQ a_rss=$M_RSS a_thr=$M_THREADS a_sock=$M_SOCKERR a_non2xx=$M_NON2XX a_detail=$M_ERRDETAIL a_ctx=$M_CTX_REQ a_pct=$M_CPU_PCT
    local est0; est0=$(established_on "$port")

    # Open the idle connections: idle-conns reads commands from a FIFO on fd 9 (closed by the
    # EXIT trap too), and is bounded by --hold in case everything else fails.
    local fifo="$WORK/idle.fifo" iout="$WORK/$sc.$name.r$round.idle" ipid t0 line=""
    rm -f "$fifo"; mkfifo "$fifo"
    "${CLIENT_PIN[@]+"${CLIENT_PIN[@]}"}" "${BIN[idle-conns]}" --connect "$addr" --count "$n" \
        --hold $(( IDLE_TIMEOUT + 4 * DURATION + 120 )) <"$fifo" >"$iout" 2>"$iout.err" &
    ipid=$!
    STARTED_PIDS+=("$ipid")
    exec 9>"$fifo"
    t0=$SECONDS
    while :; do
        line=$(head -n 1 "$iout" 2>/dev/null) || true
        [[ -n $line ]] && break
        if ! kill -0 "$ipid" 2>/dev/null || (( SECONDS - t0 >= IDLE_TIMEOUT )); then
            line="idle-conns gave no answer within ${IDLE_TIMEOUT}s: $(tail -c 200 "$iout.err" | tr '\n' ' ')"
            break
        fi
        sleep 0.1
    done
    local t_open=$(( SECONDS - t0 ))
    if [[ $line != "ready $n" ]]; then
        exec 9>&-; stop_pid "$ipid"; stop_pid "$pid"
        record_failure "$RAW_IDLE" "$sc" "$round" "$name" "opening $n idle connections: $line"; return 0
    fi
    sleep 1   # let the server's side settle
    local est1 idle_rss idle_thr
    est1=$(established_on "$port")
    idle_rss=$(proc_status_field "$pid" VmRSS); idle_thr=$(proc_status_field "$pid" Threads)
    log "$sc round $round: $name: $n idle connections open in ~${t_open}s; ESTABLISHED on :$port: $est1 (before: $est0); VmRSS $a_rss -> $idle_rss kB"

    # B: with them.
    if ! measure "$pid" "$port" "$wlog.with" "$IDLE_ACTIVE_CONNS" "$DURATION" "$url"; then
        exec 9>&-; stop_pid "$ipid"; stop_pid "$pid"
        record_failure "$RAW_IDLE" "$sc" "$round" "$name" "with idle: $M_ERR"; return 0
    fi
    sleep 0.5
    local est2 open_line
    est2=$(established_on "$port")
    # Ask idle-conns whether its connections are still open (its own, client-side view).
    echo check >&9
    t0=$SECONDS
    while :; do
        open_line=$(grep -m1 '^open ' "$iout" 2>/dev/null) || true
        [[ -n $open_line ]] && break
        (( SECONDS - t0 < 30 )) || { open_line="open ? closed ?"; break; }
        sleep 0.1
    done
    local client_open; client_open=$(awk '{ print $2 }' <<<"$open_line")
    local b_rps=$M_RPS b_p50=$M_P50 b_p99=$M_P99 b_cpu=$M_CPU_REQ b_rss=$M_RSS b_hwm=$M_HWM b_thr=$M_THREADS
    local b_sock=$M_SOCKERR b_non2xx=$M_NON2XX b_detail=$M_ERRDETAIL b_emid=$M_EST_MID b_ctx=$M_CTX_REQ b_pct=$M_CPU_PCT

    # A again, once the idle connections are gone: req/s without idle is the mean of the runs
    # before and after B, so a drift of the machine's speed during the run cancels out.
    exec 9>&-
    stop_pid "$ipid"
    t0=$SECONDS
    while (( $(established_on "$port") > 0 && SECONDS - t0 < 30 )); do sleep 0.2; done
    if ! measure "$pid" "$port" "$wlog.without2" "$IDLE_ACTIVE_CONNS" "$DURATION" "$url"; then
        stop_pid "$pid"; record_failure "$RAW_IDLE" "$sc" "$round" "$name" "without idle, after: $M_ERR"; return 0
    fi
    stop_pid "$pid"

    local row
    row=$(awk -v OFS='\t' -v sc="$sc" -v r="$round" -v s="$name" -v n="$n" \
              -v arps="$a_rps" -v a2rps="$M_RPS" -v brps="$b_rps" -v ap50="$a_p50" -v ap99="$a_p99" -v bp50="$b_p50" -v bp99="$b_p99" \
              -v acpu="$a_cpu" -v a2cpu="$M_CPU_REQ" -v bcpu="$b_cpu" -v arss="$a_rss" -v irss="$idle_rss" -v brss="$b_rss" \
              -v hwm="$b_hwm" -v athr="$a_thr" -v bthr="$b_thr" -v e1="$est1" -v e2="$est2" -v co="$client_open" \
              -v sock=$(( a_sock + b_sock + M_SOCKERR )) -v non2xx=$(( a_non2xx + b_non2xx + M_NON2XX )) \
              -v detail="without:$a_detail;with:$b_detail;without-after:$M_ERRDETAIL" -v emid="$b_emid" -v actx="$a_ctx" -v bctx="$b_ctx" -v apct="$a_pct" -v bpct="$b_pct" 'BEGIN {
        wo = (arps + a2rps) / 2
        print sc, r, s, sprintf("%.2f", wo), brps, sprintf("%.3f", brps / wo), ap50, ap99, bp50, bp99,
              sprintf("%.2f", (acpu + a2cpu) / 2), bcpu,
              arss, irss, brss, sprintf("%.2f", (brss - arss) / n), sprintf("%.1f", hwm / 1024),
              athr, bthr, n, e1, e2, co, sock, non2xx, detail, emid, arps, a2rps, actx, bctx, apct, bpct }')
    printf '%s\n' "$row" >>"$RAW_IDLE"
    awk -F'\t' '{ printf "[run.sh] %s round %s: %s: %s req/s without, %s with (x%s); %s KiB RSS per idle connection; threads %s -> %s; established %s/%s, client sees %s open; wrk errors: %s socket, %s non-2xx\n",
                  $1, $2, $3, $4, $5, $6, $16, $18, $19, $21, $22, $23, $24, $25 }' <<<"$row" >&2
    { printf '===== %s round %s: %s without idle (http://%s/) =====\n' "$sc" "$round" "$name" "$addr"; cat "$wlog.without"
      printf '===== %s round %s: %s with %s idle =====\n' "$sc" "$round" "$name" "$n"; cat "$wlog.with"
      printf '===== %s round %s: %s without idle, after =====\n' "$sc" "$round" "$name"; cat "$wlog.without2"; } >>"$WORK/wrk-all.txt"
}

# ---------------------------------------------------------------------------------------------
# Rounds: every round runs every scenario, and within a scenario every server once; the first
# server rotates every round so nobody is always first (or last).
log "scenarios: ${SCENARIO_LIST[*]}; servers: ${SERVER_LIST[*]-} (idle: ${IDLE_SERVER_LIST[*]-}); rounds: $ROUNDS; ${DURATION}s measured (sleep: ${SLEEP_DURATION}s) + ${WARMUP}s warm-up; pin: $( (( PIN )) && echo "server cpu $SERVER_CPU, clients cpu $CLIENT_CPU" || echo off)"
for (( r = 1; r <= ROUNDS; r++ )); do
    for sc in "${SCENARIO_LIST[@]}"; do
        mapfile -t vs < <(variants_of "$sc")
        nv=${#vs[@]}
        for (( i = 0; i < nv; i++ )); do
            v=${vs[$(( (i + r - 1) % nv ))]}
            if [[ ${SCEN_KIND[$sc]} == idle ]]; then run_idle "$sc" "$r" "$v"; else run_std "$sc" "$r" "$v"; fi
        done
    done
done

# ---------------------------------------------------------------------------------------------
# Tables: medians over the successful rounds (median, col_median, ratio, ... are in lib.sh).
describe() { # one line saying what a scenario does
    local sc=$1
    case ${SCEN_KIND[$sc]} in
        hello) echo "GET / -> Hello, World!; ${SCEN_N[$sc]} keep-alive connections; ${DURATION}s" ;;
        close) echo "GET / with Connection: close (a new connection per request); ${SCEN_N[$sc]} connections; ${DURATION}s" ;;
        echo)  echo "POST /echo, 1 MiB body echoed back; $ECHO_CONNS connections; ${DURATION}s; maitred: default settings (in memory), maitred-spool: --body-spool-threshold 512KiB (spooled to a temp file)" ;;
        sleep) echo "GET /sleep (handler sleeps 50 ms); $SLEEP_CONNS connections; ${SLEEP_DURATION}s; ideal = threads / 0.05 s (hyper: no thread limit, ideal = connections / 0.05 s)" ;;
        static) echo "GET /${sc#static-}.bin (${SCEN_BYTES[$sc]} random bytes, page cache warm); ${SCEN_N[$sc]} keep-alive connections; ${DURATION}s; maitred: the \`maitred\` binary, --threads $THREADS; nginx-1 / nginx-auto: nginx $(${BIN[nginx]:-nginx} -v 2>&1 | sed 's#.*/##'), sendfile on, worker_processes 1 / auto" ;;
        idle)  echo "GET / with $IDLE_ACTIVE_CONNS connections: without, with ${SCEN_N[$sc]} idle keep-alive connections, without again (w/o = mean of the two); ${DURATION}s each; maitred: --connection-limit $(( 2 * SCEN_N[$sc] > 20000 ? 2 * SCEN_N[$sc] : 20000 )) --keepalive-timeout 300" ;;
    esac
}

sleep_ideal() { # requests/s if every worker (or, for hyper, every connection) sleeps back to back
    case $1 in
        hyper) awk -v c="$SLEEP_CONNS" -v s="$SLEEP_SECONDS" 'BEGIN { printf "%.0f", c / s }' ;;
        *)     awk -v t="$THREADS" -v s="$SLEEP_SECONDS" 'BEGIN { printf "%.0f", t / s }' ;;
    esac
}

TABLES=$WORK/tables.txt
: >"$TABLES"
for sc in "${SCENARIO_LIST[@]}"; do
    mapfile -t vs < <(variants_of "$sc")
    {
        echo "== $sc: $(describe "$sc")"
        if [[ ${SCEN_KIND[$sc]} == idle ]]; then
            hyper_rps=$(col_median "$RAW_IDLE" "$sc" hyper 5)
            printf '%-13s %3s %9s %9s %7s %7s %9s %8s %8s %7s %7s %11s %7s %7s %8s %8s %9s\n' \
                server ok 'req/s w/o' 'req/s idl' 'idl/w/o' 'spread%' 'rps/hyper' 'p99 w/o' 'p99 idl' 'us/req' 'us/req' \
                'idle open' 'RSS w/o' 'RSS idl' 'KiB/idle' threads errors
            printf '%-13s %3s %9s %9s %7s %7s %9s %8s %8s %7s %7s %11s %7s %7s %8s %8s %9s\n' \
                '' '' '' '' '' '(idle)' '(idle)' ms ms 'w/o' 'idle' 'srv/client' MiB MiB '' 'w/o>idl' 'sock/http'
            for s in "${vs[@]}"; do
                ok=$(ok_count "$RAW_IDLE" "$sc" "$s")
                if (( ok == 0 )); then printf '%-13s %3s %9s\n' "$s" "0/$ROUNDS" FAILED; continue; fi
                b=$(col_median "$RAW_IDLE" "$sc" "$s" 5)
                printf '%-13s %3s %9.0f %9.0f %7.3f %7s %9s %8.3f %8.3f %7.2f %7.2f %11s %7.1f %7.1f %8.2f %8s %9s\n' \
                    "$s" "$ok/$ROUNDS" "$(col_median "$RAW_IDLE" "$sc" "$s" 4)" "$b" \
                    "$(col_median "$RAW_IDLE" "$sc" "$s" 6)" "$(spread "$RAW_IDLE" "$sc" "$s" 5)" "$(ratio "$b" "$hyper_rps")" \
                    "$(col_median "$RAW_IDLE" "$sc" "$s" 8)" "$(col_median "$RAW_IDLE" "$sc" "$s" 10)" \
                    "$(col_median "$RAW_IDLE" "$sc" "$s" 11)" "$(col_median "$RAW_IDLE" "$sc" "$s" 12)" \
                    "$(col_median "$RAW_IDLE" "$sc" "$s" 22)/$(col_median "$RAW_IDLE" "$sc" "$s" 23)" \
                    "$(awk -v k="$(col_median "$RAW_IDLE" "$sc" "$s" 13)" 'BEGIN { print k / 1024 }')" \
                    "$(awk -v k="$(col_median "$RAW_IDLE" "$sc" "$s" 15)" 'BEGIN { print k / 1024 }')" \
                    "$(col_median "$RAW_IDLE" "$sc" "$s" 16)" \
                    "$(col_median "$RAW_IDLE" "$sc" "$s" 18)>$(col_median "$RAW_IDLE" "$sc" "$s" 19)" \
                    "$(col_sum "$RAW_IDLE" "$sc" "$s" 24)/$(col_sum "$RAW_IDLE" "$sc" "$s" 25)"
            done
        else
            # The peer every row is compared with: hyper, or nginx with one worker for static-*.
            base=hyper
            [[ ${SCEN_KIND[$sc]} == static ]] && base=nginx-1
            hyper_rps=$(col_median "$RAW_STD" "$sc" "$base" 4)
            extra_h=""; extra_f=""
            if [[ ${SCEN_KIND[$sc]} == sleep ]]; then extra_h=$(printf ' %7s %9s' 'ideal/s' 'rps/ideal'); fi
            printf '%-13s %3s %9s %7s %9s %8s %8s %10s %5s %5s %6s %9s %9s %9s %8s %7s %13s%s\n' \
                server ok 'req/s' 'spread%' "rps/$base" 'p50 ms' 'p99 ms' 'cpu us/req' 'cpu%' 'wrk%' 'other%' 'ctxsw/req' 'conns/req' \
                'KiB/resp' 'RSS MiB' threads 'err sock/http' "$extra_h"
            for s in "${vs[@]}"; do
                ok=$(ok_count "$RAW_STD" "$sc" "$s")
                if (( ok == 0 )); then printf '%-13s %3s %9s\n' "$s" "0/$ROUNDS" FAILED; continue; fi
                rps=$(col_median "$RAW_STD" "$sc" "$s" 4)
                extra=""
                if [[ ${SCEN_KIND[$sc]} == sleep ]]; then
                    ideal=$(sleep_ideal "$s")
                    extra=$(printf ' %7s %9s' "$ideal" "$(awk -v a="$rps" -v b="$ideal" 'BEGIN { printf "%.3f", a / b }')")
                fi
                printf '%-13s %3s %9.0f %7s %9s %8.3f %8.3f %10.2f %5.0f %5s %6s %9.3f %9.4f %9.2f %8.1f %7.0f %13s%s\n' \
                    "$s" "$ok/$ROUNDS" "$rps" "$(spread "$RAW_STD" "$sc" "$s" 4)" "$(ratio "$rps" "$hyper_rps")" \
                    "$(col_median "$RAW_STD" "$sc" "$s" 6)" "$(col_median "$RAW_STD" "$sc" "$s" 7)" \
                    "$(col_median "$RAW_STD" "$sc" "$s" 9)" "$(col_median "$RAW_STD" "$sc" "$s" 23)" \
                    "$(col_median "$RAW_STD" "$sc" "$s" 24)" "$(col_median "$RAW_STD" "$sc" "$s" 25)" "$(col_median "$RAW_STD" "$sc" "$s" 10)" \
                    "$(col_median "$RAW_STD" "$sc" "$s" 14)" "$(col_median "$RAW_STD" "$sc" "$s" 15)" \
                    "$(col_median "$RAW_STD" "$sc" "$s" 11)" "$(col_median "$RAW_STD" "$sc" "$s" 12)" \
                    "$(col_sum "$RAW_STD" "$sc" "$s" 13)/$(col_sum "$RAW_STD" "$sc" "$s" 19)" "$extra"
            done
        fi
        echo
    } >>"$TABLES"
done

# ---------------------------------------------------------------------------------------------
# Targets (issue 6), from the medians. A line is printed only if its scenario ran.
TARGETS=$WORK/targets.txt
: >"$TARGETS"
has_scenario() { local s; for s in "${SCENARIO_LIST[@]}"; do [[ $s == "$1" ]] && return 0; done; return 1; }
std_rps() { col_median "$RAW_STD" "$1" "$2" 4; }
# The [cpu] lines apply the same threshold to server CPU time per request (other / maitred):
# not the target itself, but much less sensitive to what else the machine is doing.
std_cpu() { col_median "$RAW_STD" "$1" "$2" 9; }
if has_scenario hello-50; then
    target "hello, 50 conns: maitred / hyper req/s" "$(exact_ratio "$(std_rps hello-50 maitred)" "$(std_rps hello-50 hyper)")" ">=" 0.8
    target "hello, 50 conns: maitred / tiny-pool req/s" "$(exact_ratio "$(std_rps hello-50 maitred)" "$(std_rps hello-50 tiny-pool)")" ">=" 1.5
    target "  [cpu] hello, 50 conns: hyper / maitred us/req" "$(exact_ratio "$(std_cpu hello-50 hyper)" "$(std_cpu hello-50 maitred)")" ">=" 0.8
    target "  [cpu] hello, 50 conns: tiny-pool / maitred us/req" "$(exact_ratio "$(std_cpu hello-50 tiny-pool)" "$(std_cpu hello-50 maitred)")" ">=" 1.5
fi
# Issue 15: hello at 50 and 256 connections, level with hyper in both requests per second and
# server CPU per request.
for sc in hello-50 hello-256; do
    has_scenario "$sc" || continue
    target "issue 15: $sc: maitred / hyper req/s" "$(exact_ratio "$(std_rps "$sc" maitred)" "$(std_rps "$sc" hyper)")" ">=" 1.0
    target "issue 15: $sc: hyper / maitred cpu us/req" "$(exact_ratio "$(std_cpu "$sc" hyper)" "$(std_cpu "$sc" maitred)")" ">=" 1.0
done
if has_scenario close-50; then
    target "new connection per request, 50 conns: maitred / hyper" "$(exact_ratio "$(std_rps close-50 maitred)" "$(std_rps close-50 hyper)")" ">=" 0.8
    target "  [cpu] new connection per request: hyper / maitred us/req" "$(exact_ratio "$(std_cpu close-50 hyper)" "$(std_cpu close-50 maitred)")" ">=" 0.8
fi
if has_scenario echo-1m; then
    target "1 MiB echo: maitred (default settings) / hyper req/s" "$(exact_ratio "$(std_rps echo-1m maitred)" "$(std_rps echo-1m hyper)")" ">=" 0.8
    target "  [cpu] 1 MiB echo: hyper / maitred us/req" "$(exact_ratio "$(std_cpu echo-1m hyper)" "$(std_cpu echo-1m maitred)")" ">=" 0.8
    target "  [info] 1 MiB echo: maitred-spool (spooled) / hyper req/s" "$(exact_ratio "$(std_rps echo-1m maitred-spool)" "$(std_rps echo-1m hyper)")" ">=" 0.8
fi
# static-*: against nginx with one worker process (the issue's bar) and, for information, with
# `worker_processes auto`. static-100m compares throughput (bytes read / duration, partial
# responses included), the others requests per second.
std_mibs() { col_median_expr "$RAW_STD" "$1" "$2" '$20 / $16 / 1048576'; }
for sc in static-1k static-64k; do
    has_scenario "$sc" || continue
    target "$sc, ${SCEN_N[$sc]} conns: maitred / nginx-1 req/s" "$(exact_ratio "$(std_rps "$sc" maitred)" "$(std_rps "$sc" nginx-1)")" ">=" 1.0
    target "  [cpu] $sc: nginx-1 / maitred us/req" "$(exact_ratio "$(std_cpu "$sc" nginx-1)" "$(std_cpu "$sc" maitred)")" ">=" 1.0
    target "  [info] $sc: maitred / nginx-auto req/s" "$(exact_ratio "$(std_rps "$sc" maitred)" "$(std_rps "$sc" nginx-auto)")" ">=" 1.0
done
if has_scenario static-100m; then
    target "static-100m, ${SCEN_N[static-100m]} conns: maitred / nginx-1 MiB/s" "$(exact_ratio "$(std_mibs static-100m maitred)" "$(std_mibs static-100m nginx-1)")" ">=" 1.0
    target "  [cpu] static-100m: nginx-1 / maitred us/req" "$(exact_ratio "$(std_cpu static-100m nginx-1)" "$(std_cpu static-100m maitred)")" ">=" 1.0
    target "  [info] static-100m: maitred / nginx-auto MiB/s" "$(exact_ratio "$(std_mibs static-100m maitred)" "$(std_mibs static-100m nginx-auto)")" ">=" 1.0
fi
for sc in "${SCENARIO_LIST[@]}"; do
    [[ ${SCEN_KIND[$sc]} == idle ]] || continue
    n=${SCEN_N[$sc]}
    target "$sc: maitred req/s with / without idle (median of rounds)" "$(col_median "$RAW_IDLE" "$sc" maitred 6)" ">=" 0.9
    target "  [cpu] $sc: maitred us/req without / with idle" "$(exact_ratio "$(col_median "$RAW_IDLE" "$sc" maitred 11)" "$(col_median "$RAW_IDLE" "$sc" maitred 12)")" ">=" 0.9
    target "$sc: maitred KiB RSS per idle connection" "$(col_median "$RAW_IDLE" "$sc" maitred 16)" "<=" 8
    if (( $(ok_count "$RAW_IDLE" "$sc" maitred) > 0 )); then
        changed=$(awk -F'\t' -v sc="$sc" '$1 == sc && $3 == "maitred" && $4 != "FAILED" && $18 != $19' "$RAW_IDLE" | wc -l)
        target "$sc: maitred rounds whose thread count changed" "$changed" "==" 0
    else
        target "$sc: maitred rounds whose thread count changed" "n/a" "==" 0
    fi
done
if has_scenario sleep; then
    ideal=$(sleep_ideal maitred)
    dev=$(awk -v a="$(std_rps sleep maitred)" -v b="$ideal" 'BEGIN { if (a == "nan") print "n/a"; else { d = (a - b) / b * 100; if (d < 0) d = -d; printf "%.1f", d } }')
    target "sleep: maitred |req/s - $ideal| / $ideal, percent" "$dev" "<=" 5
fi

# ---------------------------------------------------------------------------------------------
# Checks: does every run measure what it is named after?
CHECKS=$WORK/checks.txt
: >"$CHECKS"
check() { printf '  %-7s %s\n' "$1" "$2" >>"$CHECKS"; }
non2xx=$(awk -F'\t' '$4 != "FAILED" { e += $19 } END { print e + 0 }' "$RAW_STD")
non2xx_idle=$(awk -F'\t' '$4 != "FAILED" { e += $25 } END { print e + 0 }' "$RAW_IDLE")
if (( non2xx + non2xx_idle == 0 )); then check OK "no non-2xx/3xx responses in any measured run (wrk)"
else check PROBLEM "$((non2xx + non2xx_idle)) non-2xx/3xx responses; see the errors columns and the raw file"; fi
# tiny_http does not answer "Connection: close" with "Connection: close", so wrk tries to reuse
# each connection and gets a read error when it finds it closed: expected, listed apart.
tiny_close='$1 ~ /^close-/ && $3 == "tiny-pool" && $21 ~ /^connect=0,read=[0-9]+,write=0,timeout=0,/'
sockerr_runs=$(awk -F'\t' "\$4 != \"FAILED\" && \$13 > 0 && !($tiny_close)"' { printf "%s r%s %s: %s; ", $1, $2, $3, $21 }' "$RAW_STD"
               awk -F'\t' '$4 != "FAILED" && $24 > 0 { printf "%s r%s %s: %s; ", $1, $2, $3, $26 }' "$RAW_IDLE")
tiny_close_runs=$(awk -F'\t' "\$4 != \"FAILED\" && \$13 > 0 && ($tiny_close)"' { printf "r%s %s; ", $2, $13 }' "$RAW_STD")
if [[ -z $sockerr_runs ]]; then check OK "no socket errors (connect, read, write, timeout) in any measured run (wrk)$([[ -n $tiny_close_runs ]] && echo ", except the expected ones below")"
else check PROBLEM "wrk socket errors: $sockerr_runs"; fi
[[ -z $tiny_close_runs ]] || check NOTE "close-N tiny-pool read errors (expected: tiny_http omits Connection: close in its answer, so wrk reuses the connection and finds it closed; requests still complete): $tiny_close_runs"
for sc in "${SCENARIO_LIST[@]}"; do
    case ${SCEN_KIND[$sc]} in
        static)
            # Bytes read per response: the file and a head of under 1 KiB, allowing for the
            # partial responses in flight when wrk stopped (one per connection); and every
            # keep-alive connection open half-way through.
            bad=$(awk -F'\t' -v sc="$sc" -v b="${SCEN_BYTES[$sc]}" '$1 == sc && $4 != "FAILED" && ($20 / $5 <= b || $20 / $5 > (b + 1024) * (1 + $18 / $5) || $22 != $18) { printf "%s r%s: %s KiB/resp, %s of %s established mid-run; ", $3, $2, $15, $22, $18 }' "$RAW_STD")
            [[ -z $bad ]] && check OK "$sc: bytes read per response between the file's size and size + 1 KiB, and all wrk's connections ESTABLISHED mid-run, in every run; curl fetched the file byte-exact before each run" \
                          || check PROBLEM "$sc: $bad" ;;
        hello|sleep)
            # Connections wrk holds half-way through (ss, on the server's port) must be all of
            # them, and the port's TIME_WAIT sockets gained during the run, beyond one per wrk
            # connection for wrk's own closes at the end, at most 2% of the requests.
            bad=$(awk -F'\t' -v sc="$sc" '$1 == sc && $4 != "FAILED" && ($22 != $18 || ($27 - $18) / $5 > 0.02) { printf "%s r%s: %s of %s established mid-run, %s TIME_WAIT gained for %s requests; ", $3, $2, $22, $18, $27, $5 }' "$RAW_STD")
            [[ -z $bad ]] && check OK "$sc: all wrk's connections ESTABLISHED on the server port mid-run, and connections closed during the run (TIME_WAIT on the port, less wrk's own at the end) <= 2% of requests, in every run (ss)" \
                          || check PROBLEM "$sc: keep-alive connections not all open, or many closed: $bad" ;;
        close)
            bad=$(awk -F'\t' -v sc="$sc" '$1 == sc && $4 != "FAILED" && ($14 < 0.95 || $14 > 1.2) { printf "%s r%s %s; ", $3, $2, $14 }' "$RAW_STD")
            [[ -z $bad ]] && check OK "$sc: one accepted connection per request (0.95..1.2 in every run; /proc/net/snmp PassiveOpens)" \
                          || check PROBLEM "$sc: accepted connections per request off: $bad" ;;
        echo)
            # bytes read / complete responses: more than 1 MiB if no response was short; at most
            # 1 MiB + 8 KiB of head and chunk framing (tiny_http sends bodies over 32 KiB chunked),
            # plus the partial responses in flight when wrk stopped (one per connection).
            bad=$(awk -F'\t' -v sc="$sc" -v b="$ECHO_BYTES" '$1 == sc && $4 != "FAILED" && ($20 / $5 <= b || $20 / $5 > (b + 8192) * (1 + $18 / $5)) { printf "%s r%s %s KiB; ", $3, $2, $15 }' "$RAW_STD")
            [[ -z $bad ]] && check OK "$sc: bytes read per response between 1 MiB and 1 MiB + 8 KiB in every run (wrk's exact totals), and curl round-tripped 1 MiB of random bytes intact before each run" \
                          || check PROBLEM "$sc: bytes per response not 1 MiB: $bad" ;;
        idle)
            n=${SCEN_N[$sc]}
            bad=$(awk -F'\t' -v sc="$sc" -v n="$n" -v a="$IDLE_ACTIVE_CONNS" '$1 == sc && $4 != "FAILED" && ($21 != n || $22 != n || $23 != n || $27 != n + a) { printf "%s r%s: established %s before, %s mid-run, %s after; client sees %s open; ", $3, $2, $21, $27, $22, $23 }' "$RAW_IDLE")
            [[ -z $bad ]] && check OK "$sc: ESTABLISHED on the server port (ss): exactly $n before the measured run, $n + $IDLE_ACTIVE_CONNS half-way through, $n after; idle-conns sees all $n open at the end (every run)" \
                          || check PROBLEM "$sc: idle connections not all open: $bad" ;;
    esac
done
if (( ${#FAILURES[@]} == 0 )); then check OK "no failed runs"; else check PROBLEM "${#FAILURES[@]} failed run(s), listed below"; fi

# ---------------------------------------------------------------------------------------------
# Raw file and output.
ELAPSED=$(( SECONDS - T_START ))
mkdir -p "$RESULTS_DIR"
stamp=$(date +%Y%m%d-%H%M%S)
RAW_OUT=$RESULTS_DIR/run-$stamp.txt
{
    echo "# maitred benchmark (bench/run.sh), $(date -Is); wall time ${ELAPSED}s"
    echo "# host: $(uname -srm); nproc: $(nproc); loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# git: $GIT_STATE (when the servers were built)"
    echo "# rustc: $(rustc -V 2>/dev/null); wrk: $(wrk -v 2>&1 | head -n 1)"
    echo "# SCENARIOS='$SCENARIOS' SERVERS='$SERVERS' IDLE_SERVERS='$IDLE_SERVERS' ROUNDS=$ROUNDS DURATION=$DURATION SLEEP_DURATION=$SLEEP_DURATION WARMUP=$WARMUP THREADS=$THREADS ECHO_CONNS=$ECHO_CONNS SLEEP_CONNS=$SLEEP_CONNS IDLE_ACTIVE_CONNS=$IDLE_ACTIVE_CONNS WRK_TIMEOUT=$WRK_TIMEOUT PIN=$PIN SERVER_CPU=$SERVER_CPU CLIENT_CPU=$CLIENT_CPU MAITRED_ARGS='$MAITRED_ARGS' CLK_TCK=$CLK_TCK"
    echo "# fd limit: soft $FD_SOFT_BEFORE -> $FD_LIMIT (hard $FD_HARD); temp dir for spooled bodies: ${TMPDIR:-/tmp} ($(df -T "${TMPDIR:-/tmp}" 2>/dev/null | awk 'NR == 2 { print $2 }'))"
    for s in "${!BIN[@]}"; do echo "# bin $s: ${BIN[$s]}"; done
    echo
    echo "## per-round rows: hello, close, echo, sleep (rss_hwm_mib = VmHWM; cpu_s = utime+stime over the measured run)"
    printf 'scenario\tround\tserver\trps\trequests\tp50_ms\tp99_ms\tcpu_s\tcpu_us_per_req\tctxsw_per_req\trss_hwm_mib\tthreads\tsocket_errors\tconns_per_req\tkib_per_resp\tseconds\taccepted\tconnections\tnon2xx\tbytes\twrk_errors\testablished_mid\tcpu_pct\twrk_cpu_pct\tother_cpu_pct\tsteal_pct\ttime_wait_gained\n'
    cat "$RAW_STD"
    echo
    echo "## per-round rows: idle (runs: without idle, with idle, without idle again; rps_without and cpu_us_per_req_without = mean of the two without runs; rss_* = VmRSS in kB after the first run without idle / once the idle connections are open / after the run with them)"
    printf 'scenario\tround\tserver\trps_without\trps_with\twith_over_without\tp50_without\tp99_without\tp50_with\tp99_with\tcpu_us_per_req_without\tcpu_us_per_req_with\trss_without_kb\trss_idle_kb\trss_with_kb\tkib_per_idle\trss_hwm_mib\tthreads_before\tthreads_after\tidle_n\testablished_before\testablished_after\tclient_open\tsocket_errors\tnon2xx\twrk_errors\testablished_mid_with\trps_without_before\trps_without_after\tctxsw_per_req_without\tctxsw_per_req_with\tcpu_pct_without\tcpu_pct_with\n'
    cat "$RAW_IDLE"
    echo
    echo "## medians"
    cat "$TABLES"
    echo "## targets"
    cat "$TARGETS"
    echo
    echo "## checks"
    cat "$CHECKS"
    if (( ${#FAILURES[@]} > 0 )); then echo; echo "## failures"; printf '  %s\n' "${FAILURES[@]}"; fi
    echo
    echo "## full wrk output of every measured run"
    cat "$WORK/wrk-all.txt"
} >"$RAW_OUT"

# Medians, one row per scenario and server, for bench/chart.py (and anybody else): the
# header lines say when, where and how they were measured.
MEDIANS_OUT=$RESULTS_DIR/run-$stamp.medians.tsv
{
    echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# machine: $(uname -srm); $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)); $(awk '/^MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
    echo "# pinning: $( (( PIN )) && echo "server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU" || echo off); other programs' CPU during the runs: median $(awk -F'\t' '$4 != "FAILED" { print $25 }' "$RAW_STD" | median)% of $(( $(nproc) * 100 ))%"
    echo "# command: SCENARIOS='$SCENARIOS' ROUNDS=$ROUNDS DURATION=$DURATION THREADS=$THREADS bench/run.sh"
    echo "# git: $GIT_STATE"
    printf 'scenario\tserver\tok\trounds\trps\trps_spread_pct\tcpu_us_per_req\tp50_ms\tp99_ms\tmib_per_s\tdescription\n'
    for sc in "${SCENARIO_LIST[@]}"; do
        [[ ${SCEN_KIND[$sc]} == idle ]] && continue   # idle-N has its own table (A/B in one process)
        mapfile -t vs < <(variants_of "$sc")
        for s in "${vs[@]}"; do
            ok=$(ok_count "$RAW_STD" "$sc" "$s")
            (( ok > 0 )) || continue
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sc" "$s" "$ok" "$ROUNDS" \
                "$(col_median "$RAW_STD" "$sc" "$s" 4)" "$(spread "$RAW_STD" "$sc" "$s" 4)" "$(col_median "$RAW_STD" "$sc" "$s" 9)" \
                "$(col_median "$RAW_STD" "$sc" "$s" 6)" "$(col_median "$RAW_STD" "$sc" "$s" 7)" \
                "$(col_median_expr "$RAW_STD" "$sc" "$s" '$20 / $16 / 1048576')" "$(describe "$sc")"
        done
    done
} >"$MEDIANS_OUT"
CHART=$RESULTS_DIR/run-$stamp.svg
if command -v python3 >/dev/null 2>&1 && python3 "$BENCH_DIR/chart.py" "$MEDIANS_OUT" -o "$CHART"; then
    if [[ -n $CHART_OUT ]]; then
        cp "$CHART" "$CHART_OUT"
        cp "$MEDIANS_OUT" "${CHART_OUT%.svg}.tsv"
    fi
else
    log "no chart: python3 missing or bench/chart.py failed"
    CHART=""
fi

cat "$TABLES"
echo "targets (medians; $ROUNDS round(s)):"
cat "$TARGETS"
echo
echo "checks:"
cat "$CHECKS"
if (( ${#FAILURES[@]} > 0 )); then
    echo
    echo "failures:"
    printf '  %s\n' "${FAILURES[@]}"
fi
echo
echo "fd limit $FD_LIMIT (soft was $FD_SOFT_BEFORE); wall time ${ELAPSED}s; raw per-round numbers: ${RAW_OUT#"$ROOT"/}; medians: ${MEDIANS_OUT#"$ROOT"/}${CHART:+; chart: ${CHART#"$ROOT"/}}${CHART_OUT:+ (copied to $CHART_OUT)}"
(( ${#FAILURES[@]} == 0 )) || exit 1
exit 0
}
