#!/usr/bin/env bash
# maitred's TLS listeners vs. peers (issue 14), every scenario and server in ONE run, alternating
# servers in rounds; medians, targets and checks at the end. See bench/tls/README.md.
#
#   bench/tls/run.sh                                     # everything, 3 rounds
#   SCENARIOS="hello-50 new-50" ROUNDS=1 bench/tls/run.sh
#   ROUNDS=5 bench/tls/run.sh                            # anything you intend to quote
#
# Scenarios (SCENARIOS, space-separated, run in this order within a round):
#   hello-N     GET / over HTTPS, N keep-alive connections (wrk): one handshake per connection
#   new-N       GET / over a NEW TLS connection each, full handshake (handshake-load, N clients,
#               session resumption off on the client): new TLS connections per second
#   wrkclose-N  the same with wrk -H 'Connection: close' (wrk resumes sessions: see README)
#   p99         p99 latency of P99_CONNS keep-alive clients (wrk) without / with HANDSHAKE_RATE
#               new TLS connections per second arriving (handshake-load --rate), without again
#
# Environment (defaults in brackets):
#   SERVERS       servers for hello-N, new-N, wrkclose-N ["maitred hyper-tls nginx-1 nginx-auto"]
#   P99_SERVERS   servers for p99 ["maitred hyper-tls"]
#   SCENARIOS     ["hello-50 new-50 wrkclose-50 p99"]
#   ROUNDS [3]  DURATION [5]  WARMUP [2]  THREADS (maitred --threads) [4]
#   KEY           certificate key type, ec (ECDSA P-256) or rsa (RSA 2048) [ec]
#   P99_CONNS [50]  HANDSHAKE_RATE (new connections per second during p99) [300]
#   LOAD_THREADS  handshake-load threads in rate mode (enough to stay open-loop) [32]
#   MAITRED_TLS_ARGS  the certificate flags for maitred's `--listen https://127.0.0.1:0`;
#                 $CERT and $KEY_FILE are replaced when the server starts
#                 ['--tls-cert $CERT --tls-key $KEY_FILE']
#   MAITRED_ARGS  extra maitred flags [""]
#   WRK_TIMEOUT [10]  PIN [1]  SERVER_CPU [1]  CLIENT_CPU [0]  START_TIMEOUT [30]
#   RESULTS_DIR   [bench/results]  (raw file: tls-<timestamp>.txt)
#
# Progress goes to stderr; tables, targets and checks to stdout and to the raw file. Exit status
# non-zero if any run failed.

set -euo pipefail

# One compound command, parsed before it runs: editing the file during a run cannot change it.
{

TLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_DIR=$(cd "$TLS_DIR/.." && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
T_START=$SECONDS
# The revision the binaries are built from (now, before the build: not at the end of the run).
GIT_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
if [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null || true) ]]; then GIT_REV+=" (dirty)"; fi

SERVERS=${SERVERS:-"maitred hyper-tls nginx-1 nginx-auto"}
P99_SERVERS=${P99_SERVERS:-"maitred hyper-tls"}
SCENARIOS=${SCENARIOS:-"hello-50 new-50 wrkclose-50 p99"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-4}
KEY=${KEY:-ec}
P99_CONNS=${P99_CONNS:-50}
HANDSHAKE_RATE=${HANDSHAKE_RATE:-300}
LOAD_THREADS=${LOAD_THREADS:-32}
# shellcheck disable=SC2016  # expanded later, on purpose
MAITRED_TLS_ARGS=${MAITRED_TLS_ARGS:-'--tls-cert $CERT --tls-key $KEY_FILE'}
MAITRED_ARGS=${MAITRED_ARGS:-}
WRK_TIMEOUT=${WRK_TIMEOUT:-10}
PIN=${PIN:-1}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
START_TIMEOUT=${START_TIMEOUT:-30}
RESULTS_DIR=${RESULTS_DIR:-"$BENCH_DIR/results"}

log() { printf '[tls/run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[tls/run.sh] error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

for v in ROUNDS DURATION WARMUP THREADS P99_CONNS HANDSHAKE_RATE LOAD_THREADS WRK_TIMEOUT START_TIMEOUT; do
    [[ ${!v} =~ ^[0-9]+$ ]] && (( ${!v} > 0 )) || die "$v must be a positive integer (got '${!v}')"
done
[[ $PIN == 0 || $PIN == 1 ]] || die "PIN must be 0 or 1 (got '$PIN')"
[[ $KEY == ec || $KEY == rsa ]] || die "KEY must be ec or rsa (got '$KEY')"
read -r -a SERVER_LIST <<<"$SERVERS"
read -r -a P99_SERVER_LIST <<<"$P99_SERVERS"
read -r -a SCENARIO_LIST <<<"$SCENARIOS"
read -r -a MAITRED_EXTRA <<<"$MAITRED_ARGS"
(( ${#SCENARIO_LIST[@]} > 0 )) || die "SCENARIOS is empty"
for s in "${SERVER_LIST[@]+"${SERVER_LIST[@]}"}" "${P99_SERVER_LIST[@]+"${P99_SERVER_LIST[@]}"}"; do
    case $s in maitred|hyper-tls|nginx-1|nginx-auto) ;; *) die "unknown server '$s' (known: maitred hyper-tls nginx-1 nginx-auto)";; esac
done
declare -A SCEN_KIND SCEN_N
for sc in "${SCENARIO_LIST[@]}"; do
    case $sc in
        hello-*|new-*|wrkclose-*)
            n=${sc#*-}
            [[ $n =~ ^[0-9]+$ ]] && (( n > 0 )) || die "bad scenario '$sc' (N must be a number, e.g. hello-50)"
            SCEN_KIND[$sc]=${sc%%-*}; SCEN_N[$sc]=$n ;;
        p99) SCEN_KIND[$sc]=p99; SCEN_N[$sc]=$P99_CONNS ;;
        *) die "unknown scenario '$sc' (known: hello-N new-N wrkclose-N p99)" ;;
    esac
done
servers_of() { # servers_of SCENARIO -> one name per line
    if [[ ${SCEN_KIND[$1]} == p99 ]]; then printf '%s\n' "${P99_SERVER_LIST[@]+"${P99_SERVER_LIST[@]}"}"
    else printf '%s\n' "${SERVER_LIST[@]+"${SERVER_LIST[@]}"}"; fi
}

STARTED_PIDS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/maitred-tls-bench.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_wrk
for tool in cargo curl awk timeout ss openssl pgrep; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
wants_nginx=0
for s in "${SERVER_LIST[@]+"${SERVER_LIST[@]}"}" "${P99_SERVER_LIST[@]+"${P99_SERVER_LIST[@]}"}"; do
    [[ $s == nginx-* ]] && wants_nginx=1
done
NGINX=""
if (( wants_nginx )); then
    if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
        log "nginx not found; installing with apt-get (Debian package nginx)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y nginx >&2 || die "apt-get install -y nginx failed; install nginx or leave nginx-* out of SERVERS"
    fi
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
    [[ -x $NGINX ]] || die "nginx not found after install"
fi
pin_and_clean_env
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

# The certificate: made now, in the temporary directory (no key is ever committed).
CERT_DIR=$WORK/cert
"$TLS_DIR/cert.sh" "$CERT_DIR" "$KEY" || die "could not make the certificate"
CERT=$CERT_DIR/cert.pem
KEY_FILE=$CERT_DIR/key.pem
CA=$CERT_DIR/ca.pem
log "certificate: $KEY ($(openssl x509 -in "$CERT" -noout -text | awk -F': ' '/Public Key Algorithm|ASN1 OID|Public-Key/ { printf "%s ", $2 }'))"

# Build.
declare -A BIN
selected() { [[ " ${SERVER_LIST[*]-} ${P99_SERVER_LIST[*]-} " == *" $1 "* ]]; }
if selected maitred; then
    log "building maitred's bench_server (release)"
    BIN[maitred]=$(cd "$ROOT" && cargo_exe --example bench_server)
fi
if selected hyper-tls; then
    log "building bench/peers/hyper-rustls-hello (release)"
    BIN[hyper-tls]=$(cargo_exe --manifest-path "$BENCH_DIR/peers/hyper-rustls-hello/Cargo.toml")
fi
log "building bench/tls/handshake-load (release)"
BIN[load]=$(cargo_exe --manifest-path "$TLS_DIR/handshake-load/Cargo.toml")

STATS_LUA=$WORK/stats.lua
write_stats_lua "$STATS_LUA"

# A free loopback port for nginx, which cannot report one it chose itself (a small race with other
# programs binding at the same moment; start_server then fails and the run is recorded as such).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# nginx_conf WORKERS LISTEN ACCESS_LOG -> path of a config for those settings
nginx_conf() {
    local dir=$WORK/nginx-$1-${2##*:} conf
    mkdir -p "$dir"
    conf=$dir/nginx.conf
    sed -e "s#@WORKERS@#$1#; s#@LISTEN@#$2#; s#@CERT@#$CERT#; s#@KEY@#$KEY_FILE#; s#@DIR@#$dir#g; s#@ACCESS_LOG@#$3#" \
        "$TLS_DIR/nginx.conf.in" >"$conf"
    printf '%s\n' "$conf"
}

# server_cmd SERVER SCENARIO -> CMD (and READY_ADDR for nginx), as bench/lib.sh's start_server wants
server_cmd() {
    local -a tls_args
    case $1 in
        maitred)
            # shellcheck disable=SC2046  # word splitting of the flag list is the point
            read -r -a tls_args <<<"$(CERT=$CERT KEY_FILE=$KEY_FILE envsubst_flags "$MAITRED_TLS_ARGS")"
            CMD=("${BIN[maitred]}" --listen https://127.0.0.1:0 --threads "$THREADS" "${tls_args[@]}" "${MAITRED_EXTRA[@]+"${MAITRED_EXTRA[@]}"}") ;;
        hyper-tls)
            CMD=("${BIN[hyper-tls]}" --listen 127.0.0.1:0 --cert "$CERT" --key "$KEY_FILE") ;;
        nginx-1|nginx-auto)
            local port workers=${1#nginx-}
            port=$(free_port)
            READY_ADDR=127.0.0.1:$port
            CMD=("$NGINX" -c "$(nginx_conf "$workers" "$READY_ADDR" "${NGINX_ACCESS_LOG:-off}")" -e "$WORK/nginx-$workers-$port/nginx-error.log") ;;
    esac
}
envsubst_flags() { # the flag string with $CERT and $KEY_FILE replaced (nothing else is expanded)
    local s=$1
    s=${s//\$CERT/$CERT}; s=${s//\$KEY_FILE/$KEY_FILE}
    printf '%s\n' "$s"
}

# verify ADDR: GET / over HTTPS, the chain verified against the benchmark CA, answers exactly
# "Hello, World!"; logs the negotiated protocol, suite and key exchange once per server.
declare -A TLS_PARAMS
verify() {
    local addr=$1 name=$2 out=$WORK/verify.out res
    res=$(curl -sS --max-time 10 --cacert "$CA" -o "$out" -w '%{http_code}' "https://$addr/" 2>&1) || { echo "curl: $res"; return 1; }
    [[ $res == 200 && "$(cat "$out")" == 'Hello, World!' ]] || { echo "GET / answered $res '$(head -c 100 "$out")'"; return 1; }
    if [[ -z ${TLS_PARAMS[$name]:-} ]]; then
        TLS_PARAMS[$name]=$(timeout 10 openssl s_client -connect "$addr" -servername localhost -alpn http/1.1 -brief </dev/null 2>&1 \
            | awk -F': ' '/^(Protocol version|Ciphersuite|Negotiated TLS1.3 group|Server Temp Key|ALPN protocol)/ { printf "%s%s=%s", sep, $1, $2; sep = "; " }')
        log "  $name negotiates: ${TLS_PARAMS[$name]}"
    fi
}

# Bracket any client run with /proc snapshots of the server and the machine.
bracket_begin() { B_CPU0=$(proc_cpu_ticks "$1"); B_MT0=$(machine_ticks); B_PO0=$(passive_opens); }
bracket_end() { # bracket_end PID SECS REQUESTS -> B_CPU_REQ (us), B_CPU_PCT, B_OTHER_PCT, B_CONN_REQ
    local cpu1 mt1 po1
    cpu1=$(proc_cpu_ticks "$1") || return 1
    mt1=$(machine_ticks); po1=$(passive_opens)
    B_CPU_REQ=$(awk -v a="$B_CPU0" -v b="$cpu1" -v t="$CLK_TCK" -v r="$3" 'BEGIN { printf "%.2f", (b - a) / t * 1e6 / r }')
    B_CPU_PCT=$(awk -v a="$B_CPU0" -v b="$cpu1" -v t="$CLK_TCK" -v s="$2" 'BEGIN { printf "%.0f", (b - a) / t * 100 / s }')
    # busy time of the whole machine minus the server's: the client and everything else
    B_OTHER_PCT=$(awk -v a="$B_MT0" -v b="$mt1" -v c0="$B_CPU0" -v c1="$cpu1" -v s="$2" -v t="$CLK_TCK" 'BEGIN {
        split(a, x, " "); split(b, y, " "); printf "%.0f", ((y[1] - x[1]) - (c1 - c0)) / t * 100 / s }')
    B_CONN_REQ=$(awk -v a="$B_PO0" -v b="$po1" -v r="$3" 'BEGIN { printf "%.3f", (b - a) / r }')
}

load_field() { # load_field FILE KEY: a key=value of handshake-load's result line
    awk -v k="$2" '$1 == "handshake-load" { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } exit }' "$1"
}

# run_load OUT SECS ARGS...: handshake-load on the client CPU, bounded in time.
run_load() {
    local out=$1 secs=$2
    shift 2
    timeout -k 5 $(( secs + 60 )) "${CLIENT_PIN[@]+"${CLIENT_PIN[@]}"}" "${BIN[load]}" --duration "$secs" "$@" >"$out" 2>"$out.err"
}

RAW=$WORK/rows.tsv          # hello, new, wrkclose
RAW_P99=$WORK/rows-p99.tsv  # p99
: >"$RAW"; : >"$RAW_P99"; : >"$WORK/client-all.txt"
FAILURES=()
record_failure() { # record_failure FILE SCENARIO ROUND SERVER REASON
    printf '%s\t%s\t%s\tFAILED\t%s\n' "$2" "$3" "$4" "$5" >>"$1"
    FAILURES+=("$2 round $3: $4: $5")
    log "$2 round $3: $4: FAILED: $5"
}

# Rows of RAW: scenario round server rps requests p50_ms p99_ms cpu_us_per_req cpu_pct other_pct
#              errors conns_per_req resumed detail
run_std() { # run_std SCENARIO ROUND SERVER
    local sc=$1 round=$2 name=$3 n=${SCEN_N[$1]} out="$WORK/$1.$3.r$2"
    if ! start_server "$name" "$sc" "$round"; then record_failure "$RAW" "$sc" "$round" "$name" "$START_ERR"; return 0; fi
    local pid=$PID addr=$ADDR
    log "$sc round $round: $name: pid $pid at https://$addr/"
    if ! verify "$addr" "$name" >"$WORK/why"; then stop_pid "$pid"; record_failure "$RAW" "$sc" "$round" "$name" "check failed: $(<"$WORK/why")"; return 0; fi
    local row
    case ${SCEN_KIND[$sc]} in
        hello|wrkclose)
            local -a args=()
            [[ ${SCEN_KIND[$sc]} == wrkclose ]] && args=(-H 'Connection: close')
            run_wrk "$out.warmup" "$n" "$WARMUP" "https://$addr/" "${args[@]+"${args[@]}"}" || true
            if ! measure "$pid" "${addr##*:}" "$out" "$n" "$DURATION" "https://$addr/" "${args[@]+"${args[@]}"}"; then
                stop_pid "$pid"; record_failure "$RAW" "$sc" "$round" "$name" "$M_ERR"; return 0
            fi
            row=$(printf '%s\t' "$sc" "$round" "$name" "$M_RPS" "$M_REQ" "$M_P50" "$M_P99" "$M_CPU_REQ" "$M_CPU_PCT" \
                  "$(( ${M_OTHER_PCT% *} + ${M_WRK_PCT/nan/0} ))" "$(( M_SOCKERR + M_NON2XX ))" "$M_CONN_REQ" "n/a" "$M_ERRDETAIL")
            ;;
        new)
            run_load "$out.warmup" "$WARMUP" --connect "$addr" --concurrency "$n" || true
            bracket_begin "$pid"
            if ! run_load "$out" "$DURATION" --connect "$addr" --concurrency "$n" && [[ -z $(load_field "$out" ok) ]]; then
                stop_pid "$pid"; record_failure "$RAW" "$sc" "$round" "$name" "handshake-load: $(tail -c 300 "$out.err" | tr '\n' ' ')"; return 0
            fi
            local ok; ok=$(load_field "$out" ok)
            if ! kill -0 "$pid" 2>/dev/null || (( ok == 0 )); then
                stop_pid "$pid"; record_failure "$RAW" "$sc" "$round" "$name" "no connection succeeded (or the server died): $(tail -c 300 "$out.err" | tr '\n' ' ')"; return 0
            fi
            bracket_end "$pid" "$(load_field "$out" elapsed_s)" "$ok"
            row=$(printf '%s\t' "$sc" "$round" "$name" "$(load_field "$out" rate)" "$ok" \
                  "$(awk -v u="$(load_field "$out" p50_us)" 'BEGIN { printf "%.3f", u / 1000 }')" \
                  "$(awk -v u="$(load_field "$out" p99_us)" 'BEGIN { printf "%.3f", u / 1000 }')" \
                  "$B_CPU_REQ" "$B_CPU_PCT" "$B_OTHER_PCT" "$(load_field "$out" failed)" "$B_CONN_REQ" "$(load_field "$out" resumed)" \
                  "failed=$(load_field "$out" failed) $(head -c 200 "$out.err" | tr '\n\t' '  ')")
            ;;
    esac
    stop_pid "$pid"
    printf '%s\n' "${row%$'\t'}" >>"$RAW"
    awk -F'\t' '{ printf "[tls/run.sh] %s round %s: %s: %s req/s, p50 %s ms, p99 %s ms, %s us CPU/req (%s%% of a core; others incl. client %s%%), %s conns/req, resumed %s, errors %s\n", $1, $2, $3, $4, $6, $7, $8, $9, $10, $12, $13, $11 }' <<<"${row%$'\t'}" >&2
    { printf '===== %s round %s: %s (https://%s/) =====\n' "$sc" "$round" "$name" "$addr"; cat "$out"; cat "$out.err" 2>/dev/null || true; } >>"$WORK/client-all.txt"
}

# p99: wrk (P99_CONNS keep-alive connections) without, with HANDSHAKE_RATE new TLS connections
# per second (handshake-load, started 1 s before wrk and stopped 1 s after), and without again.
# Rows of RAW_P99: scenario round server rps_without rps_with p99_without p99_with p99_with/without
#   hs_rate hs_p50_ms hs_p99_ms hs_failed us_per_req_without us_per_req_with errors p50_without
#   p50_with p99_before p99_after cpu_pct_with
run_p99() { # run_p99 SCENARIO ROUND SERVER
    local sc=$1 round=$2 name=$3 out="$WORK/$1.$3.r$2" url
    if ! start_server "$name" "$sc" "$round"; then record_failure "$RAW_P99" "$sc" "$round" "$name" "$START_ERR"; return 0; fi
    local pid=$PID addr=$ADDR port=${ADDR##*:}
    url="https://$addr/"
    log "$sc round $round: $name: pid $pid at $url"
    if ! verify "$addr" "$name" >"$WORK/why"; then stop_pid "$pid"; record_failure "$RAW_P99" "$sc" "$round" "$name" "check failed: $(<"$WORK/why")"; return 0; fi
    run_wrk "$out.warmup" "$P99_CONNS" "$WARMUP" "$url" || true
    if ! measure "$pid" "$port" "$out.without" "$P99_CONNS" "$DURATION" "$url"; then
        stop_pid "$pid"; record_failure "$RAW_P99" "$sc" "$round" "$name" "without: $M_ERR"; return 0
    fi
    local a_rps=$M_RPS a_p50=$M_P50 a_p99=$M_P99 a_cpu=$M_CPU_REQ a_err=$(( M_SOCKERR + M_NON2XX ))

    local lpid
    run_load "$out.load" $(( DURATION + 2 )) --connect "$addr" --rate "$HANDSHAKE_RATE" --threads "$LOAD_THREADS" &
    lpid=$!
    STARTED_PIDS+=("$lpid")
    sleep 1
    if ! measure "$pid" "$port" "$out.with" "$P99_CONNS" "$DURATION" "$url"; then
        wait "$lpid" || true; forget_pid "$lpid"
        stop_pid "$pid"; record_failure "$RAW_P99" "$sc" "$round" "$name" "with handshakes: $M_ERR"; return 0
    fi
    wait "$lpid" || true
    forget_pid "$lpid"
    local b_rps=$M_RPS b_p50=$M_P50 b_p99=$M_P99 b_cpu=$M_CPU_REQ b_err=$(( M_SOCKERR + M_NON2XX )) b_pct=$M_CPU_PCT
    if [[ -z $(load_field "$out.load" ok) ]]; then
        stop_pid "$pid"; record_failure "$RAW_P99" "$sc" "$round" "$name" "handshake-load gave no result: $(tail -c 300 "$out.load.err" | tr '\n' ' ')"; return 0
    fi

    if ! measure "$pid" "$port" "$out.without2" "$P99_CONNS" "$DURATION" "$url"; then
        stop_pid "$pid"; record_failure "$RAW_P99" "$sc" "$round" "$name" "without, after: $M_ERR"; return 0
    fi
    stop_pid "$pid"
    local row
    row=$(awk -v OFS='\t' -v sc="$sc" -v r="$round" -v s="$name" -v arps="$a_rps" -v a2rps="$M_RPS" -v brps="$b_rps" \
              -v ap99="$a_p99" -v a2p99="$M_P99" -v bp99="$b_p99" -v ap50="$a_p50" -v a2p50="$M_P50" -v bp50="$b_p50" \
              -v hsrate="$(load_field "$out.load" rate)" -v hsp50="$(load_field "$out.load" p50_us)" -v hsp99="$(load_field "$out.load" p99_us)" \
              -v hsfail="$(load_field "$out.load" failed)" -v acpu="$a_cpu" -v a2cpu="$M_CPU_REQ" -v bcpu="$b_cpu" \
              -v err=$(( a_err + b_err + M_SOCKERR + M_NON2XX )) -v bpct="$b_pct" 'BEGIN {
        wo = (ap99 + a2p99) / 2
        print sc, r, s, sprintf("%.0f", (arps + a2rps) / 2), brps, sprintf("%.3f", wo), bp99, sprintf("%.2f", bp99 / wo),
              hsrate, sprintf("%.3f", hsp50 / 1000), sprintf("%.3f", hsp99 / 1000), hsfail,
              sprintf("%.2f", (acpu + a2cpu) / 2), bcpu, err, sprintf("%.3f", (ap50 + a2p50) / 2), bp50, ap99, a2p99, bpct }')
    printf '%s\n' "$row" >>"$RAW_P99"
    awk -F'\t' '{ printf "[tls/run.sh] %s round %s: %s: p99 %s ms without, %s ms with %s new TLS conns/s (x%s; handshake p99 %s ms, %s failed); %s -> %s req/s; errors %s\n", $1, $2, $3, $6, $7, $9, $8, $11, $12, $4, $5, $15 }' <<<"$row" >&2
    { printf '===== %s round %s: %s without =====\n' "$sc" "$round" "$name"; cat "$out.without"
      printf '===== %s round %s: %s with handshakes =====\n' "$sc" "$round" "$name"; cat "$out.with" "$out.load" "$out.load.err"
      printf '===== %s round %s: %s without, after =====\n' "$sc" "$round" "$name"; cat "$out.without2"; } >>"$WORK/client-all.txt"
}

# ---------------------------------------------------------------------------------------------
# Resumption check (once, before the rounds): which clients make a full handshake per connection?
# nginx logs $ssl_session_reused per request; wrk with Connection: close, and handshake-load with
# and without --resume, each make 20+ connections to it. handshake-load also reports, per
# connection, what rustls saw; with --resume against maitred that shows maitred resumes sessions.
RESUMPTION=$WORK/resumption.txt
: >"$RESUMPTION"
resumption_check() {
    local alog=$WORK/nginx-access.log out=$WORK/resumption
    if (( wants_nginx )); then
        NGINX_ACCESS_LOG="$alog tls"
        if start_server nginx-1 resumption 0; then
            local pid=$PID addr=$ADDR
            : >"$alog"
            timeout 30 wrk -t1 -c1 -d1s -H 'Connection: close' "https://$addr/" >"$out.wrk" 2>&1 || true
            sleep 0.5
            awk -v who="wrk -H 'Connection: close' (OpenSSL)" '{ n++; if ($1 == "r") r++ } END { printf "  %-48s against nginx: %d connections, %d resumed, %d full (nginx $ssl_session_reused)\n", who, n, r, n - r }' "$alog" >>"$RESUMPTION"
            : >"$alog"
            run_load "$out.full" 1 --connect "$addr" --concurrency 1 || true
            sleep 0.5
            awk -v who="handshake-load (no session kept)" '{ n++; if ($1 == "r") r++ } END { printf "  %-48s against nginx: %d connections, %d resumed, %d full (nginx $ssl_session_reused)\n", who, n, r, n - r }' "$alog" >>"$RESUMPTION"
            : >"$alog"
            run_load "$out.resume" 1 --connect "$addr" --concurrency 1 --resume || true
            sleep 0.5
            awk -v who="handshake-load --resume" '{ n++; if ($1 == "r") r++ } END { printf "  %-48s against nginx: %d connections, %d resumed, %d full (nginx $ssl_session_reused)\n", who, n, r, n - r }' "$alog" >>"$RESUMPTION"
            stop_pid "$pid"
        else
            echo "  nginx did not start: $START_ERR" >>"$RESUMPTION"
        fi
        NGINX_ACCESS_LOG=off
    fi
    local s
    for s in maitred hyper-tls; do
        selected "$s" || continue
        if start_server "$s" resumption 0; then
            local pid=$PID addr=$ADDR mode
            for mode in full resume; do
                local -a extra=()
                [[ $mode == resume ]] && extra=(--resume)
                run_load "$out.$s.$mode" 1 --connect "$addr" --concurrency 1 "${extra[@]+"${extra[@]}"}" || true
                printf '  %-48s against %s: %s connections, %s resumed, %s full (client side, rustls)\n' \
                    "handshake-load${extra[*]+ ${extra[*]}}" "$s" "$(load_field "$out.$s.$mode" ok)" \
                    "$(load_field "$out.$s.$mode" resumed)" "$(load_field "$out.$s.$mode" full)" >>"$RESUMPTION"
            done
            stop_pid "$pid"
        else
            echo "  $s did not start: $START_ERR" >>"$RESUMPTION"
        fi
    done
}
NGINX_ACCESS_LOG=off
resumption_check
log "resumption:"; cat "$RESUMPTION" >&2

# ---------------------------------------------------------------------------------------------
# Rounds: the first server rotates every round.
log "scenarios: ${SCENARIO_LIST[*]}; servers: ${SERVER_LIST[*]-} (p99: ${P99_SERVER_LIST[*]-}); rounds: $ROUNDS; ${DURATION}s + ${WARMUP}s warm-up; key: $KEY; pin: $( (( PIN )) && echo "server cpu $SERVER_CPU, clients cpu $CLIENT_CPU" || echo off)"
for (( r = 1; r <= ROUNDS; r++ )); do
    for sc in "${SCENARIO_LIST[@]}"; do
        mapfile -t vs < <(servers_of "$sc")
        nv=${#vs[@]}
        for (( i = 0; i < nv; i++ )); do
            v=${vs[$(( (i + r - 1) % nv ))]}
            if [[ ${SCEN_KIND[$sc]} == p99 ]]; then run_p99 "$sc" "$r" "$v"; else run_std "$sc" "$r" "$v"; fi
        done
    done
done

# ---------------------------------------------------------------------------------------------
# Tables, targets, checks.
describe() {
    case ${SCEN_KIND[$1]} in
        hello)    echo "GET / over HTTPS, ${SCEN_N[$1]} keep-alive connections (wrk); ${DURATION}s" ;;
        new)      echo "GET / on a new TLS connection each, full handshake, ${SCEN_N[$1]} clients (handshake-load, no session kept); ${DURATION}s" ;;
        wrkclose) echo "GET / with Connection: close over HTTPS, ${SCEN_N[$1]} connections (wrk: resumes sessions, see the resumption lines); ${DURATION}s" ;;
        p99)      echo "$P99_CONNS keep-alive clients (wrk): without / with $HANDSHAKE_RATE new TLS connections per second (handshake-load) / without; ${DURATION}s each" ;;
    esac
}
TABLES=$WORK/tables.txt
: >"$TABLES"
for sc in "${SCENARIO_LIST[@]}"; do
    mapfile -t vs < <(servers_of "$sc")
    {
        echo "== $sc: $(describe "$sc")"
        if [[ ${SCEN_KIND[$sc]} == p99 ]]; then
            printf '%-11s %3s %9s %9s %9s %9s %8s %9s %9s %9s %7s %7s %6s\n' server ok 'req/s w/o' 'req/s hs' 'p99 w/o' 'p99 hs' 'hs/w/o' 'hs conn/s' 'hs p50' 'hs p99' 'us/req' 'us/req' errors
            printf '%-11s %3s %9s %9s %9s %9s %8s %9s %9s %9s %7s %7s %6s\n' '' '' '' '' ms ms '' achieved ms ms 'w/o' 'hs' ''
            for s in "${vs[@]}"; do
                ok=$(ok_count "$RAW_P99" "$sc" "$s")
                if (( ok == 0 )); then printf '%-11s %3s %9s\n' "$s" "0/$ROUNDS" FAILED; continue; fi
                printf '%-11s %3s %9.0f %9.0f %9.3f %9.3f %8.2f %9.1f %9.3f %9.3f %7.2f %7.2f %6s\n' "$s" "$ok/$ROUNDS" \
                    "$(col_median "$RAW_P99" "$sc" "$s" 4)" "$(col_median "$RAW_P99" "$sc" "$s" 5)" \
                    "$(col_median "$RAW_P99" "$sc" "$s" 6)" "$(col_median "$RAW_P99" "$sc" "$s" 7)" \
                    "$(col_median "$RAW_P99" "$sc" "$s" 8)" "$(col_median "$RAW_P99" "$sc" "$s" 9)" \
                    "$(col_median "$RAW_P99" "$sc" "$s" 10)" "$(col_median "$RAW_P99" "$sc" "$s" 11)" \
                    "$(col_median "$RAW_P99" "$sc" "$s" 13)" "$(col_median "$RAW_P99" "$sc" "$s" 14)" \
                    "$(( $(col_sum "$RAW_P99" "$sc" "$s" 15) + $(col_sum "$RAW_P99" "$sc" "$s" 12) ))"
            done
        else
            base=hyper-tls; [[ ${SCEN_KIND[$sc]} == hello ]] || base=nginx-1
            base_rps=$(col_median "$RAW" "$sc" "$base" 4)
            printf '%-11s %3s %9s %7s %10s %8s %8s %10s %5s %6s %9s %7s %6s\n' server ok 'req/s' 'spread%' "rps/$base" 'p50 ms' 'p99 ms' 'cpu us/req' 'cpu%' 'other%' 'conns/req' resumed errors
            for s in "${vs[@]}"; do
                ok=$(ok_count "$RAW" "$sc" "$s")
                if (( ok == 0 )); then printf '%-11s %3s %9s\n' "$s" "0/$ROUNDS" FAILED; continue; fi
                rps=$(col_median "$RAW" "$sc" "$s" 4)
                printf '%-11s %3s %9.0f %7s %10s %8.3f %8.3f %10.2f %5.0f %6s %9.3f %7s %6s\n' "$s" "$ok/$ROUNDS" "$rps" \
                    "$(spread "$RAW" "$sc" "$s" 4)" "$(ratio "$rps" "$base_rps")" \
                    "$(col_median "$RAW" "$sc" "$s" 6)" "$(col_median "$RAW" "$sc" "$s" 7)" "$(col_median "$RAW" "$sc" "$s" 8)" \
                    "$(col_median "$RAW" "$sc" "$s" 9)" "$(col_median "$RAW" "$sc" "$s" 10)" "$(col_median "$RAW" "$sc" "$s" 12)" \
                    "$( [[ ${SCEN_KIND[$sc]} == new ]] && col_sum "$RAW" "$sc" "$s" 13 || echo n/a)" "$(col_sum "$RAW" "$sc" "$s" 11)"
            done
        fi
        echo
    } >>"$TABLES"
done

TARGETS=$WORK/targets.txt
: >"$TARGETS"
cpu_exact_ratio() { exact_ratio "$(col_median "$RAW" "$1" "$3" 8)" "$(col_median "$RAW" "$1" "$2" 8)"; }  # other's us/req / maitred's
for sc in "${SCENARIO_LIST[@]}"; do
    case ${SCEN_KIND[$sc]} in
        hello)
            target "$sc: maitred / hyper-tls req/s" "$(exact_ratio "$(col_median "$RAW" "$sc" maitred 4)" "$(col_median "$RAW" "$sc" hyper-tls 4)")" ">=" 0.8
            target "  [cpu] $sc: hyper-tls / maitred us/req" "$(cpu_exact_ratio "$sc" maitred hyper-tls)" ">=" 0.8 ;;
        new)
            for ng in nginx-1 nginx-auto; do
                target "$sc: maitred / $ng new TLS connections/s" "$(exact_ratio "$(col_median "$RAW" "$sc" maitred 4)" "$(col_median "$RAW" "$sc" "$ng" 4)")" ">=" 0.7
                target "  [cpu] $sc: $ng / maitred us/connection" "$(cpu_exact_ratio "$sc" maitred "$ng")" ">=" 0.7
            done ;;
        p99)
            # The issue sets no threshold here: the ratio is reported, not judged.
            for s in "${P99_SERVER_LIST[@]+"${P99_SERVER_LIST[@]}"}"; do
                printf '  %-62s %8s  (no threshold; p99 %s ms -> %s ms)\n' "[info] p99: $s p99 with / without $HANDSHAKE_RATE handshakes/s" \
                    "$(col_median "$RAW_P99" "$sc" "$s" 8)" "$(col_median "$RAW_P99" "$sc" "$s" 6)" "$(col_median "$RAW_P99" "$sc" "$s" 7)" >>"$TARGETS"
            done ;;
    esac
done

CHECKS=$WORK/checks.txt
: >"$CHECKS"
check() { printf '  %-7s %s\n' "$1" "$2" >>"$CHECKS"; }
errs=$(awk -F'\t' '$4 != "FAILED" && $11 > 0 { printf "%s r%s %s: %s; ", $1, $2, $3, $14 }' "$RAW"
       awk -F'\t' '$4 != "FAILED" && ($15 > 0 || $12 > 0) { printf "%s r%s %s: %s client errors, %s handshake failures; ", $1, $2, $3, $15, $12 }' "$RAW_P99")
if [[ -z $errs ]]; then check OK "no socket errors, non-2xx responses or failed connections in any measured run"
else check PROBLEM "errors: $errs"; fi
for sc in "${SCENARIO_LIST[@]}"; do
    case ${SCEN_KIND[$sc]} in
        new)
            bad=$(awk -F'\t' -v sc="$sc" '$1 == sc && $4 != "FAILED" && ($13 != 0 || $12 < 0.95) { printf "%s r%s: %s resumed, %s conns/req; ", $3, $2, $13, $12 }' "$RAW")
            [[ -z $bad ]] && check OK "$sc: every connection a full handshake (0 resumed, per rustls on the client) and at least 0.95 accepted TCP connections per request (PassiveOpens; system-wide, so other programs' connections can push it above 1)" \
                          || check PROBLEM "$sc: $bad" ;;
        wrkclose)
            bad=$(awk -F'\t' -v sc="$sc" '$1 == sc && $4 != "FAILED" && $12 < 0.95 { printf "%s r%s: %s conns/req; ", $3, $2, $12 }' "$RAW")
            [[ -z $bad ]] && check OK "$sc: at least 0.95 accepted TCP connections per request (PassiveOpens, system-wide)" || check PROBLEM "$sc: $bad" ;;
        p99)
            bad=$(awk -F'\t' -v sc="$sc" -v r="$HANDSHAKE_RATE" '$1 == sc && $4 != "FAILED" && $9 < 0.9 * r { printf "%s r%s: %s/s; ", $3, $2, $9 }' "$RAW_P99")
            [[ -z $bad ]] && check OK "p99: handshake-load reached at least 90% of $HANDSHAKE_RATE new connections/s in every run" \
                          || check PROBLEM "p99: handshake-load fell behind $HANDSHAKE_RATE/s (the server or the client could not keep up): $bad" ;;
    esac
done
if (( ${#FAILURES[@]} == 0 )); then check OK "no failed runs"; else check PROBLEM "${#FAILURES[@]} failed run(s), listed below"; fi

ELAPSED=$(( SECONDS - T_START ))
mkdir -p "$RESULTS_DIR"
RAW_OUT=$RESULTS_DIR/tls-$(date +%Y%m%d-%H%M%S).txt
{
    echo "# maitred TLS benchmark (bench/tls/run.sh), $(date -Is); wall time ${ELAPSED}s"
    echo "# host: $(uname -srm); nproc: $(nproc); loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# git (at the start, when the binaries were built): $GIT_REV"
    echo "# rustc: $(rustc -V 2>/dev/null); wrk: $(wrk -v 2>&1 | head -n 1); openssl: $(openssl version); nginx: $( [[ -n $NGINX ]] && "$NGINX" -v 2>&1 || echo none)"
    echo "# SCENARIOS='$SCENARIOS' SERVERS='$SERVERS' P99_SERVERS='$P99_SERVERS' ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP THREADS=$THREADS KEY=$KEY P99_CONNS=$P99_CONNS HANDSHAKE_RATE=$HANDSHAKE_RATE LOAD_THREADS=$LOAD_THREADS PIN=$PIN SERVER_CPU=$SERVER_CPU CLIENT_CPU=$CLIENT_CPU MAITRED_TLS_ARGS='$MAITRED_TLS_ARGS' MAITRED_ARGS='$MAITRED_ARGS'"
    for s in "${!TLS_PARAMS[@]}"; do echo "# $s negotiates: ${TLS_PARAMS[$s]}"; done
    for s in "${!BIN[@]}"; do echo "# bin $s: ${BIN[$s]}"; done
    echo
    echo "## per-round rows: hello, new, wrkclose"
    printf 'scenario\tround\tserver\trps\trequests\tp50_ms\tp99_ms\tcpu_us_per_req\tcpu_pct\tother_pct\terrors\tconns_per_req\tresumed\tdetail\n'
    cat "$RAW"
    echo
    echo "## per-round rows: p99"
    printf 'scenario\tround\tserver\trps_without\trps_with\tp99_without_ms\tp99_with_ms\twith_over_without\ths_rate\ths_p50_ms\ths_p99_ms\ths_failed\tus_per_req_without\tus_per_req_with\terrors\tp50_without_ms\tp50_with_ms\tp99_before_ms\tp99_after_ms\tcpu_pct_with\n'
    cat "$RAW_P99"
    echo
    echo "## resumption"; cat "$RESUMPTION"
    echo
    echo "## medians"; cat "$TABLES"
    echo "## targets"; cat "$TARGETS"
    echo
    echo "## checks"; cat "$CHECKS"
    if (( ${#FAILURES[@]} > 0 )); then echo; echo "## failures"; printf '  %s\n' "${FAILURES[@]}"; fi
    echo
    echo "## full client output of every measured run"
    cat "$WORK/client-all.txt"
} >"$RAW_OUT"

echo "certificate: $KEY; negotiated:"
for s in "${!TLS_PARAMS[@]}"; do echo "  $s: ${TLS_PARAMS[$s]}"; done
echo "resumption (which client makes a full handshake per connection):"
cat "$RESUMPTION"
echo
cat "$TABLES"
echo "targets (medians; $ROUNDS round(s)):"
cat "$TARGETS"
echo
echo "checks:"
cat "$CHECKS"
if (( ${#FAILURES[@]} > 0 )); then echo; echo "failures:"; printf '  %s\n' "${FAILURES[@]}"; fi
echo
echo "wall time ${ELAPSED}s; raw per-round numbers: ${RAW_OUT#"$ROOT"/}"
(( ${#FAILURES[@]} == 0 )) || exit 1
exit 0
}
