#!/usr/bin/env bash
# Hello-world requests/second: maitred vs. peers, in ONE run, alternating servers in rounds.
#
#   bench/hello.sh                                   # all servers, 3 rounds, 5 s each
#   SERVERS="hyper tiny-pool" ROUNDS=1 DURATION=3 bench/hello.sh
#
# Environment (defaults in brackets):
#   SERVERS        servers to measure, space-separated ["maitred hyper tiny-pool"]
#   ROUNDS         rounds; every round runs every server once [3]
#   DURATION       seconds of each measured wrk run [5]
#   WARMUP         seconds of the unmeasured wrk warm-up before each run [2]
#   CONNS          wrk connections [50]
#   THREADS        worker threads for maitred and tiny-pool [4]
#   PIN            1 = server on SERVER_CPU, wrk on CLIENT_CPU (taskset); 0 = no pinning [1]
#   SERVER_CPU     CPU list for the server [1]
#   CLIENT_CPU     CPU list for wrk [0]
#   START_TIMEOUT  seconds a server gets to print its address before it is killed [30]
#   RESULTS_DIR    where the raw per-round file goes [bench/results]
#
# Human-readable progress goes to stderr; the final table goes to stdout (and to the raw file).
# See bench/README.md for what every column means.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)

SERVERS=${SERVERS:-"maitred hyper tiny-pool"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-50}
THREADS=${THREADS:-4}
PIN=${PIN:-1}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
START_TIMEOUT=${START_TIMEOUT:-30}
RESULTS_DIR=${RESULTS_DIR:-"$BENCH_DIR/results"}

log() { printf '[hello.sh] %s\n' "$*" >&2; }
die() { printf '[hello.sh] error: %s\n' "$*" >&2; exit 1; }

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in ROUNDS DURATION WARMUP CONNS THREADS START_TIMEOUT; do
    is_uint "${!v}" && (( ${!v} > 0 )) || die "$v must be a positive integer (got '${!v}')"
done
read -r -a SERVER_LIST <<<"$SERVERS"
(( ${#SERVER_LIST[@]} > 0 )) || die "SERVERS is empty"
for s in "${SERVER_LIST[@]}"; do
    case $s in maitred|hyper|tiny-pool) ;; *) die "unknown server '$s' (known: maitred hyper tiny-pool)";; esac
done

# ---------------------------------------------------------------------------------------------
# Process bookkeeping: every server we start is recorded here and killed on exit, whatever happens.
STARTED_PIDS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/maitred-hello-bench.XXXXXX")

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]+"${STARTED_PIDS[@]}"}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${STARTED_PIDS[@]+"${STARTED_PIDS[@]}"}"; do
        local i
        for i in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Tools.
ensure_wrk() {
    command -v wrk >/dev/null 2>&1 && return 0
    log "wrk not found; installing with apt-get"
    # Another apt run may be in progress (its log ends with "done" when finished): wait, bounded.
    if [[ -f /tmp/apt.log ]]; then
        local waited=0
        until [[ "$(tail -n 1 /tmp/apt.log 2>/dev/null)" == *done* ]]; do
            (( waited < 600 )) || die "timed out waiting for the background apt run (/tmp/apt.log)"
            sleep 2; waited=$((waited + 2))
        done
    fi
    apt-get install -y wrk >&2 || die "apt-get install -y wrk failed; install wrk and rerun"
    command -v wrk >/dev/null 2>&1 || die "wrk still not found after install"
}
ensure_wrk
command -v cargo >/dev/null 2>&1 || die "cargo not found"
if (( PIN )); then
    command -v taskset >/dev/null 2>&1 || die "taskset not found (util-linux); or run with PIN=0"
    SERVER_PIN=(taskset -c "$SERVER_CPU")
    CLIENT_PIN=(taskset -c "$CLIENT_CPU")
else
    SERVER_PIN=()
    CLIENT_PIN=()
fi
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------------------------------------
# Build. Binary paths come from cargo's own JSON messages, so CARGO_TARGET_DIR etc. are honoured.
# cargo_exe <cargo build args...>: builds, prints the path of the last executable produced.
cargo_exe() {
    local out exe
    out=$(cargo build --release --message-format=json-render-diagnostics "$@") \
        || die "build failed: cargo build --release $*"
    exe=$(grep -o '"executable":"[^"]*"' <<<"$out" | tail -n 1 | sed 's/^"executable":"//; s/"$//')
    [[ -n $exe && -x $exe ]] || die "could not find the executable built by: cargo build --release $*"
    printf '%s\n' "$exe"
}

declare -A BIN
for s in "${SERVER_LIST[@]}"; do
    [[ -n ${BIN[$s]:-} ]] && continue
    log "building $s (release)"
    case $s in
        maitred)
            [[ -f $ROOT/examples/hello.rs ]] \
                || die "examples/hello.rs does not exist yet; run with SERVERS=\"hyper tiny-pool\""
            BIN[$s]=$(cd "$ROOT" && cargo_exe --example hello) ;;
        hyper)
            BIN[$s]=$(cargo_exe --manifest-path "$BENCH_DIR/peers/hyper-hello/Cargo.toml") ;;
        tiny-pool)
            BIN[$s]=$(cargo_exe --manifest-path "$BENCH_DIR/peers/tiny-pool/Cargo.toml") ;;
    esac
    log "  -> ${BIN[$s]}"
done

server_cmd() { # server_cmd NAME -> fills array CMD
    case $1 in
        maitred)   CMD=("${BIN[$1]}" --listen 127.0.0.1:0 --threads "$THREADS") ;;
        hyper)     CMD=("${BIN[$1]}" --listen 127.0.0.1:0) ;;
        tiny-pool) CMD=("${BIN[$1]}" --listen 127.0.0.1:0 --threads "$THREADS") ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# /proc readers.

# utime+stime of the whole process (all threads, including exited ones), in clock ticks.
proc_cpu_ticks() {
    local stat rest
    stat=$(<"/proc/$1/stat") || return 1
    rest=${stat##*) }            # drop "pid (comm) "; comm may contain spaces and ')'
    # rest starts at field 3 (state); utime is field 14, stime field 15.
    awk '{ print $12 + $13 }' <<<"$rest"
}

# Sum of "voluntary nonvoluntary" context switches over all live threads.
# /proc/PID/status only reports the main thread's counters, hence the walk over task/*.
proc_ctxsw() {
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '
        /^voluntary_ctxt_switches:/    { v += $2 }
        /^nonvoluntary_ctxt_switches:/ { n += $2 }
        END { printf "%d %d\n", v, n }'
}

proc_status_field() { # proc_status_field PID FIELD -> first number after "FIELD:"
    awk -v f="$2:" '$1 == f { print $2; exit }' "/proc/$1/status"
}

# ---------------------------------------------------------------------------------------------
# wrk output parsing.
to_ms() { # "452.00us" / "1.23ms" / "1.01s" / "1.50m" -> milliseconds
    awk -v x="$1" 'BEGIN {
        if (x ~ /us$/)      { sub(/us$/, "", x); printf "%.3f", x / 1000 }
        else if (x ~ /ms$/) { sub(/ms$/, "", x); printf "%.3f", x }
        else if (x ~ /s$/)  { sub(/s$/,  "", x); printf "%.3f", x * 1000 }
        else if (x ~ /m$/)  { sub(/m$/,  "", x); printf "%.3f", x * 60000 }
        else if (x ~ /h$/)  { sub(/h$/,  "", x); printf "%.3f", x * 3600000 }
        else                { printf "nan" } }'
}

wrk_field() { # wrk_field FILE KEY
    local f=$1
    case $2 in
        rps)      awk '/^Requests\/sec:/ { print $2; exit }' "$f" ;;
        requests) awk '/ requests in / { print $1; exit }' "$f" ;;
        p50)      to_ms "$(awk '$1 == "50%" { print $2; exit }' "$f")" ;;
        p99)      to_ms "$(awk '$1 == "99%" { print $2; exit }' "$f")" ;;
        errors)   # socket errors (connect+read+write+timeout) + non-2xx/3xx responses
            awk '/Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
                 /Non-2xx or 3xx responses:/ { e += $NF }
                 END { print e + 0 }' "$f" ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# One measurement: start, discover address, warm up, measure, stop.
# Appends one TSV row to $RAW_TSV, or a FAILED row.

RAW_TSV=$WORK/rows.tsv
: >"$RAW_TSV"
FAILURES=()

record_failure() { # record_failure ROUND SERVER REASON
    printf '%s\t%s\tFAILED\t%s\n' "$1" "$2" "$3" >>"$RAW_TSV"
    FAILURES+=("round $1: $2: $3")
    log "round $1: $2: FAILED: $3"
}

stop_server() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for (( i = 0; i < 50; i++ )); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "  pid $pid ignored SIGTERM for 5 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

run_one() { # run_one ROUND SERVER
    local round=$1 name=$2
    local slog="$WORK/$name.r$round.log" wlog="$WORK/$name.r$round.wrk" pid addr="" t0
    local -a CMD
    server_cmd "$name"
    log "round $round: $name: starting: ${SERVER_PIN[*]+${SERVER_PIN[*]} }${CMD[*]}"
    # taskset execs the server, so $! is the server's own PID.
    "${SERVER_PIN[@]+"${SERVER_PIN[@]}"}" "${CMD[@]}" >"$slog" 2>&1 </dev/null &
    pid=$!
    STARTED_PIDS+=("$pid")

    t0=$SECONDS
    while :; do
        addr=$(grep -aoE 'listening on http://[^ ]+' "$slog" 2>/dev/null | head -n 1 \
               | sed -E 's#^listening on http://##; s/[^0-9]+$//') || true
        [[ -n $addr ]] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            record_failure "$round" "$name" "exited before printing its address; output: $(tail -c 300 "$slog" | tr '\n' ' ')"
            return 0
        fi
        if (( SECONDS - t0 >= START_TIMEOUT )); then
            stop_server "$pid"
            local hint=""
            [[ $name == maitred ]] && hint=" (if the example logs through env_logger, its line may need RUST_LOG=info)"
            record_failure "$round" "$name" "no 'listening on http://ADDR' line within ${START_TIMEOUT}s (killed)$hint; output: $(tail -c 300 "$slog" | tr '\n' ' ')"
            return 0
        fi
        sleep 0.1
    done
    log "round $round: $name: pid $pid at http://$addr/"

    # Warm-up (unmeasured). timeout(1) is a safety net in case wrk itself wedges.
    timeout $((WARMUP + 30)) "${CLIENT_PIN[@]+"${CLIENT_PIN[@]}"}" \
        wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://$addr/" >"$wlog.warmup" 2>&1 || true

    if ! kill -0 "$pid" 2>/dev/null; then
        record_failure "$round" "$name" "died during warm-up"
        wait "$pid" 2>/dev/null || true
        return 0
    fi

    local cpu0 cpu1 cs0 cs1 wrc=0
    cpu0=$(proc_cpu_ticks "$pid"); cs0=$(proc_ctxsw "$pid")
    timeout $((DURATION + 30)) "${CLIENT_PIN[@]+"${CLIENT_PIN[@]}"}" \
        wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://$addr/" >"$wlog" 2>&1 || wrc=$?
    if ! kill -0 "$pid" 2>/dev/null; then
        record_failure "$round" "$name" "died during the measured run"
        wait "$pid" 2>/dev/null || true
        return 0
    fi
    cpu1=$(proc_cpu_ticks "$pid"); cs1=$(proc_ctxsw "$pid")
    local hwm threads
    hwm=$(proc_status_field "$pid" VmHWM)
    threads=$(proc_status_field "$pid" Threads)
    stop_server "$pid"

    local rps requests p50 p99 errors
    rps=$(wrk_field "$wlog" rps); requests=$(wrk_field "$wlog" requests)
    p50=$(wrk_field "$wlog" p50); p99=$(wrk_field "$wlog" p99); errors=$(wrk_field "$wlog" errors)
    if (( wrc != 0 )) || [[ -z $rps || -z $requests ]] || (( requests == 0 )); then
        record_failure "$round" "$name" "wrk exit $wrc / no requests; wrk said: $(tail -c 300 "$wlog" | tr '\n' ' ')"
        return 0
    fi

    # Derived per-request numbers.
    local row
    row=$(awk -v r="$round" -v n="$name" -v rps="$rps" -v req="$requests" -v p50="$p50" -v p99="$p99" \
              -v c0="$cpu0" -v c1="$cpu1" -v tck="$CLK_TCK" -v cs0="$cs0" -v cs1="$cs1" \
              -v hwm="$hwm" -v th="$threads" -v err="$errors" 'BEGIN {
        split(cs0, a, " "); split(cs1, b, " ")
        vol = b[1] - a[1]; inv = b[2] - a[2]
        cpu_s = (c1 - c0) / tck
        printf "%s\t%s\t%.2f\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.4f\t%d\t%d\t%.1f\t%d\t%d\n",
            r, n, rps, req, p50, p99, cpu_s, cpu_s * 1e6 / req, (vol + inv) / req,
            vol, inv, hwm / 1024, th, err }')
    printf '%s\n' "$row" >>"$RAW_TSV"
    awk -F'\t' '{ printf "[hello.sh] round %s: %s: %s req/s, p50 %s ms, p99 %s ms, %s us CPU/req, %s ctxsw/req, %s MiB, %s threads, %s errors\n",
                  $1, $2, $3, $5, $6, $8, $9, $12, $13, $14 }' <<<"$row" >&2

    # Keep the full wrk output for the raw file.
    { printf '===== round %s: %s (http://%s/) =====\n' "$round" "$name" "$addr"; cat "$wlog"; } >>"$WORK/wrk-all.txt"
}

# ---------------------------------------------------------------------------------------------
# Rounds. The starting server rotates every round so no server always runs first (or last).
log "servers: ${SERVER_LIST[*]}; rounds: $ROUNDS; ${DURATION}s measured + ${WARMUP}s warm-up; $CONNS conns; pin: $( (( PIN )) && echo "server cpu $SERVER_CPU, wrk cpu $CLIENT_CPU" || echo off)"
: >"$WORK/wrk-all.txt"
n=${#SERVER_LIST[@]}
for (( r = 1; r <= ROUNDS; r++ )); do
    for (( i = 0; i < n; i++ )); do
        run_one "$r" "${SERVER_LIST[$(( (i + r - 1) % n ))]}"
    done
done

# ---------------------------------------------------------------------------------------------
# Table: medians over successful rounds.
median() { sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

col_median() { # col_median SERVER COLUMN
    awk -F'\t' -v s="$1" -v c="$2" '$2 == s && $3 != "FAILED" { print $c }' "$RAW_TSV" | median
}

hyper_rps=$(col_median hyper 3)
TABLE=$WORK/table.txt
{
    printf '%-10s %3s %10s %8s %9s %8s %8s %11s %10s %9s %7s %6s\n' \
        server ok 'req/s' 'spread%' 'rps/hyper' 'p50 ms' 'p99 ms' 'cpu us/req' 'ctxsw/req' 'RSS MiB' threads errors
    for s in "${SERVER_LIST[@]}"; do
        ok=$(awk -F'\t' -v s="$s" '$2 == s && $3 != "FAILED"' "$RAW_TSV" | wc -l)
        errs=$(awk -F'\t' -v s="$s" '$2 == s && $3 != "FAILED" { e += $14 } END { print e + 0 }' "$RAW_TSV")
        if (( ok == 0 )); then
            printf '%-10s %3s %10s\n' "$s" "0/$ROUNDS" "FAILED"
            continue
        fi
        rps=$(col_median "$s" 3)
        ratio=$(awk -v a="$rps" -v b="$hyper_rps" 'BEGIN { if (b == "nan" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }')
        # spread% = (max - min) / median of req/s over the successful rounds: the noise you are looking at.
        spread=$(awk -F'\t' -v s="$s" -v m="$rps" '$2 == s && $3 != "FAILED" {
                     if (n++ == 0 || $3 < lo) lo = $3; if (n == 1 || $3 > hi) hi = $3 }
                 END { if (m + 0 > 0) printf "%.0f", (hi - lo) * 100 / m; else print "n/a" }' "$RAW_TSV")
        printf '%-10s %3s %10.0f %8s %9s %8.3f %8.3f %11.2f %10.3f %9.1f %7.0f %6d\n' \
            "$s" "$ok/$ROUNDS" "$rps" "$spread" "$ratio" \
            "$(col_median "$s" 5)" "$(col_median "$s" 6)" "$(col_median "$s" 8)" \
            "$(col_median "$s" 9)" "$(col_median "$s" 12)" "$(col_median "$s" 13)" "$errs"
    done
} >"$TABLE"

# ---------------------------------------------------------------------------------------------
# Raw file.
mkdir -p "$RESULTS_DIR"
stamp=$(date +%Y%m%d-%H%M%S)
RAW_OUT=$RESULTS_DIR/hello-$stamp.txt
{
    echo "# maitred hello-world benchmark, $(date -Is)"
    echo "# host: $(uname -srm); nproc: $(nproc); loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit') $(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo '(dirty)')"
    echo "# rustc: $(rustc -V 2>/dev/null); wrk: $(wrk -v 2>&1 | head -n 1)"
    echo "# SERVERS='$SERVERS' ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS THREADS=$THREADS PIN=$PIN SERVER_CPU=$SERVER_CPU CLIENT_CPU=$CLIENT_CPU CLK_TCK=$CLK_TCK"
    for s in "${SERVER_LIST[@]}"; do echo "# bin $s: ${BIN[$s]}"; done
    echo
    echo "## per-round rows (rss_mib = VmHWM; cpu_s = utime+stime delta over the measured wrk run)"
    printf 'round\tserver\trps\trequests\tp50_ms\tp99_ms\tcpu_s\tcpu_us_per_req\tctxsw_per_req\tvol_ctxsw\tinvol_ctxsw\trss_mib\tthreads\terrors\n'
    cat "$RAW_TSV"
    echo
    echo "## medians"
    cat "$TABLE"
    echo
    echo "## full wrk output of every measured run"
    cat "$WORK/wrk-all.txt"
} >"$RAW_OUT"

cat "$TABLE"
if (( ${#FAILURES[@]} > 0 )); then
    echo
    echo "failures:"
    printf '  %s\n' "${FAILURES[@]}"
fi
echo
echo "raw per-round numbers: ${RAW_OUT#"$ROOT"/}"
(( ${#FAILURES[@]} == 0 ))
