# Shell functions shared by the benchmark scripts (bench/run.sh, bench/tls/run.sh): process
# bookkeeping and cleanup, tools, cargo builds, /proc readers, wrk runs and their parsing, one
# measured run bracketed by /proc snapshots, medians and targets. Sourced, never run: it defines
# functions only and starts nothing.
#
# The sourcing script provides:
#   log, die            progress and fatal-error printers
#   WORK                its temporary directory (removed by cleanup)
#   STARTED_PIDS        array of PIDs it started in the background (cleanup stops them)
#   CLIENT_PIN, SERVER_PIN, SERVER_ENV   command prefixes (arrays; pinning, clean environment)
#   WRK_TIMEOUT, START_TIMEOUT, CLK_TCK, STATS_LUA, TARGETS
#   server_cmd VARIANT SCENARIO   fills the array CMD with a server's command line (start_server)
# shellcheck shell=bash

# write_stats_lua FILE: the wrk Lua script every run uses. Its done() prints wrk's exact totals
# (requests, bytes read, errors by kind, latency percentiles in us), which its human-readable
# summary rounds. A script with only done() keeps wrk on its fast path (no Lua per request).
write_stats_lua() {
    cat >"$1" <<'EOF_LUA'
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("wrkstats requests=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d\n",
      summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50.0), latency:percentile(99.0)))
end
EOF_LUA
}

# A PID leaves the list once it has been reaped (forget_pid), so a number the kernel has since
# given to somebody else's process is never signalled; cleanup also checks the parent is us.
forget_pid() {
    local p keep=()
    for p in "${STARTED_PIDS[@]+"${STARTED_PIDS[@]}"}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    STARTED_PIDS=("${keep[@]+"${keep[@]}"}")
}
ours() { # ours PID: still alive and a child of this shell
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ $(awk '{ print $2 }' <<<"$stat") == "$$" ]]
}
cleanup() {
    local pid i
    exec 9>&- 2>/dev/null || true   # the idle-conns control FIFO, if open
    for pid in "${STARTED_PIDS[@]+"${STARTED_PIDS[@]}"}"; do
        ours "$pid" && kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]+"${STARTED_PIDS[@]}"}"; do
        for (( i = 0; i < 50; i++ )); do
            ours "$pid" || break
            sleep 0.1
        done
        ours "$pid" && kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}

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

cargo_exe() { # cargo_exe <cargo build args...>: builds, prints the path of the last executable
    local out exe
    out=$(cargo build --release --message-format=json-render-diagnostics "$@") \
        || die "build failed: cargo build --release $*"
    exe=$(grep -o '"executable":"[^"]*"' <<<"$out" | tail -n 1 | sed 's/^"executable":"//; s/"$//')
    [[ -n $exe && -x $exe ]] || die "could not find the executable built by: cargo build --release $*"
    printf '%s\n' "$exe"
}

# ---------------------------------------------------------------------------------------------
# /proc readers. A server is its process and its direct children (nginx's master and workers).

proc_family() { # proc_family PID -> PID and its children's PIDs, one per line
    echo "$1"
    # (pgrep reads each process's parent from /proc; /proc/PID/task/*/children would need
    # CONFIG_PROC_CHILDREN, which not every kernel has.)
    pgrep -P "$1" 2>/dev/null || true
}

# utime+stime of the whole process (all threads, including exited ones), in clock ticks.
proc_cpu_ticks() {
    local stat rest p total=0
    stat=$(<"/proc/$1/stat") || return 1
    for p in $(proc_family "$1"); do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        rest=${stat##*) }            # drop "pid (comm) "; comm may contain spaces and ')'
        total=$(( total + $(awk '{ print $12 + $13 }' <<<"$rest") ))   # fields 14 and 15 of the full line
    done
    echo "$total"
}

# Sum of "voluntary nonvoluntary" context switches over all live threads.
proc_ctxsw() {
    local p
    for p in $(proc_family "$1"); do cat /proc/"$p"/task/*/status 2>/dev/null; done | awk '
        /^voluntary_ctxt_switches:/    { v += $2 }
        /^nonvoluntary_ctxt_switches:/ { n += $2 }
        END { printf "%d %d\n", v, n }'
}

proc_status_field() { # proc_status_field PID FIELD -> "FIELD:" summed over the family (kB for Vm*)
    local p
    for p in $(proc_family "$1"); do cat "/proc/$p/status" 2>/dev/null; done \
        | awk -v f="$2:" '$1 == f { t += $2 } END { print t + 0 }'
}

# TCP connections accepted by the kernel in this network namespace so far (all listeners; other
# programs on the machine add to it, so the per-request ratio is approximate).
passive_opens() {
    awk '$1 == "Tcp:" { if (!h) { for (i = 1; i <= NF; i++) if ($i == "PassiveOpens") c = i; h = 1 }
                        else { print $c; exit } }' /proc/net/snmp
}

# Busy and stolen time of the whole machine so far, in clock ticks: "busy steal".
machine_ticks() {
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $9; exit }' /proc/stat
}

# TIME_WAIT sockets of connections to or from PORT (either side may have closed first).
time_wait_on() {
    ss -Htn state time-wait "( sport = :$1 or dport = :$1 )" 2>/dev/null | wc -l
}

# ESTABLISHED server-side sockets on PORT.
established_on() {
    ss -Htn state established "( sport = :$1 )" 2>/dev/null | wc -l
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
        requests|bytes|connect|read|write|status|timeout|p50_us|p99_us) # exact, from done()
            awk -v k="$2" '$1 == "wrkstats" { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } exit }' "$f" ;;
        p50)      awk -v u="$(wrk_field "$f" p50_us)" 'BEGIN { printf "%.3f", u / 1000 }' ;;
        p99)      awk -v u="$(wrk_field "$f" p99_us)" 'BEGIN { printf "%.3f", u / 1000 }' ;;
        sockerr)  # connect + read + write + timeout
            awk '$1 == "wrkstats" { for (i = 2; i <= NF; i++) { split($i, kv, "=")
                     if (kv[1] ~ /^(connect|read|write|timeout)$/) e += kv[2] } print e + 0; exit }' "$f" ;;
    esac
}

# run_wrk OUT CONNS SECONDS URL [wrk args...]: one wrk run on the client CPU, bounded in time.
# Uses the stats script unless the arguments name another (-s).
run_wrk() {
    local out=$1 conns=$2 secs=$3 url=$4
    shift 4
    local -a script=(-s "$STATS_LUA")
    [[ " $* " == *" -s "* ]] && script=()
    # /usr/bin/time (if installed) records wrk's own CPU time in $out.time.
    local -a timer=()
    [[ -x /usr/bin/time ]] && timer=(/usr/bin/time -o "$out.time" -f 'wrkcpu %U %S')
    timeout -k 5 $(( secs + WRK_TIMEOUT + 30 )) "${CLIENT_PIN[@]+"${CLIENT_PIN[@]}"}" \
        "${timer[@]+"${timer[@]}"}" wrk -t1 -c"$conns" -d"${secs}s" --timeout "${WRK_TIMEOUT}s" "${script[@]+"${script[@]}"}" "$@" "$url" >"$out" 2>&1
}

stop_pid() { # stop_pid PID: SIGTERM, then SIGKILL after 5 s
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
    forget_pid "$pid"
}

# start_server VARIANT SCENARIO ROUND: sets PID and ADDR; on failure sets START_ERR, returns 1.
# The server prints `listening on http://ADDR` (or https://), unless server_cmd set READY_ADDR
# (an address chosen beforehand, e.g. nginx's): then the server is up once ADDR accepts a TCP
# connection.
# (Not to be called in $(...): the server must be a child of this shell, recorded in STARTED_PIDS.)
start_server() {
    local name=$1 sc=$2 round=$3 t0 slog
    local -a CMD
    slog="$WORK/$sc.$name.r$round.log"
    READY_ADDR=""
    server_cmd "$name" "$sc"
    log "$sc round $round: $name: ${SERVER_PIN[*]+${SERVER_PIN[*]} }${CMD[*]}"
    # env and taskset both exec, so $! is the server's own PID.
    "${SERVER_ENV[@]}" "${SERVER_PIN[@]+"${SERVER_PIN[@]}"}" "${CMD[@]}" >"$slog" 2>&1 </dev/null &
    PID=$!
    STARTED_PIDS+=("$PID")
    ADDR=""
    START_ERR=""
    t0=$SECONDS
    while :; do
        if [[ -n $READY_ADDR ]]; then
            timeout 2 bash -c "exec 3<>/dev/tcp/${READY_ADDR%:*}/${READY_ADDR##*:}" 2>/dev/null && ADDR=$READY_ADDR
        else
            ADDR=$(grep -aoE 'listening on https?://[^ ]+' "$slog" 2>/dev/null | head -n 1 \
                   | sed -E 's#^listening on https?://##; s/[^0-9]+$//') || true
        fi
        [[ -n $ADDR ]] && return 0
        if ! kill -0 "$PID" 2>/dev/null; then
            wait "$PID" 2>/dev/null || true
            forget_pid "$PID"
            START_ERR="exited before printing its address; output: $(tail -c 300 "$slog" | tr '\n' ' ')"
            return 1
        fi
        if (( SECONDS - t0 >= START_TIMEOUT )); then
            stop_pid "$PID"
            START_ERR="no 'listening on http://ADDR' line (or connection to READY_ADDR) within ${START_TIMEOUT}s (killed); output: $(tail -c 300 "$slog" | tr '\n' ' ')"
            return 1
        fi
        sleep 0.05
    done
}

# measure PID PORT OUT CONNS SECS URL [wrk args]: one measured wrk run bracketed by /proc
# snapshots, with the server port's ESTABLISHED sockets counted half-way through.
# Sets M_* variables; returns 1 (with M_ERR) if wrk or the server failed.
measure() {
    local pid=$1 port=$2 out=$3 conns=$4 secs=$5 url=$6 wrc=0 wpid
    shift 6
    local cpu0 cpu1 cs0 cs1 po0 po1
    local mt0 mt1
    mt0=$(machine_ticks)
    local tw0 tw1
    tw0=$(time_wait_on "$port")
    cpu0=$(proc_cpu_ticks "$pid"); cs0=$(proc_ctxsw "$pid"); po0=$(passive_opens)
    run_wrk "$out" "$conns" "$secs" "$url" --latency "$@" &
    wpid=$!
    STARTED_PIDS+=("$wpid")
    sleep "$(awk -v s="$secs" 'BEGIN { print s / 2 }')"
    M_EST_MID=$(established_on "$port")
    wait "$wpid" || wrc=$?
    forget_pid "$wpid"
    po1=$(passive_opens); mt1=$(machine_ticks); tw1=$(time_wait_on "$port")
    # Connections on this port closed during the run, beyond wrk's own at its end: a per-port
    # lower bound on reconnections (a close leaves a TIME_WAIT socket unless it was a reset, as
    # wrk's exit with responses in flight often is).
    M_TW=$(( tw1 - tw0 ))
    if ! kill -0 "$pid" 2>/dev/null; then M_ERR="server died during the measured run"; return 1; fi
    cpu1=$(proc_cpu_ticks "$pid"); cs1=$(proc_ctxsw "$pid")
    M_RPS=$(wrk_field "$out" rps); M_REQ=$(wrk_field "$out" requests)
    if (( wrc != 0 )) || [[ -z $M_RPS || -z $M_REQ ]] || (( M_REQ == 0 )) || ! grep -q '^wrkstats ' "$out"; then
        M_ERR="wrk exit $wrc / no requests; wrk said: $(tail -c 300 "$out" | tr '\n' ' ')"
        return 1
    fi
    M_P50=$(wrk_field "$out" p50); M_P99=$(wrk_field "$out" p99)
    M_SOCKERR=$(wrk_field "$out" sockerr); M_NON2XX=$(wrk_field "$out" status)
    M_READ=$(wrk_field "$out" bytes)
    M_ERRDETAIL="connect=$(wrk_field "$out" connect),read=$(wrk_field "$out" read),write=$(wrk_field "$out" write),timeout=$(wrk_field "$out" timeout),non2xx=$M_NON2XX"
    M_CPU=$(awk -v a="$cpu0" -v b="$cpu1" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
    M_CPU_REQ=$(awk -v c="$M_CPU" -v r="$M_REQ" 'BEGIN { printf "%.2f", c * 1e6 / r }')
    M_CPU_PCT=$(awk -v c="$M_CPU" -v s="$secs" 'BEGIN { printf "%.0f", c * 100 / s }')
    # wrk's CPU% and everything else's (other processes, and kernel work not charged to either;
    # out of 100 x CPUs), over the same window: how much the machine was shared.
    M_WRK_PCT=$(awk -v s="$secs" '$1 == "wrkcpu" { printf "%.0f", ($2 + $3) * 100 / s; f = 1 } END { if (!f) print "nan" }' "$out.time" 2>/dev/null || echo nan)
    M_OTHER_PCT=$(awk -v a="$mt0" -v b="$mt1" -v c="$M_CPU" -v w="$M_WRK_PCT" -v s="$secs" -v t="$CLK_TCK" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        busy = (y[1] - x[1]) / t; steal = (y[2] - x[2]) / t
        if (w == "nan") { print "nan", sprintf("%.0f", steal * 100 / s); exit }
        printf "%.0f %.0f\n", (busy - c - w * s / 100) * 100 / s, steal * 100 / s }')
    read -r M_VOL M_INVOL < <(awk -v a="$cs0" -v b="$cs1" 'BEGIN { split(a, x, " "); split(b, y, " "); print y[1] - x[1], y[2] - x[2] }')
    M_CTX_REQ=$(awk -v v="$M_VOL" -v i="$M_INVOL" -v r="$M_REQ" 'BEGIN { printf "%.3f", (v + i) / r }')
    M_ACCEPTED=$(( po1 - po0 ))
    M_CONN_REQ=$(awk -v a="$M_ACCEPTED" -v r="$M_REQ" 'BEGIN { printf "%.4f", a / r }')
    M_KIB_RESP=$(awk -v b="$M_READ" -v r="$M_REQ" 'BEGIN { printf "%.2f", b / r / 1024 }')
    M_HWM=$(proc_status_field "$pid" VmHWM); M_RSS=$(proc_status_field "$pid" VmRSS)
    M_THREADS=$(proc_status_field "$pid" Threads)
    return 0
}

median() { sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

col_median() { # col_median FILE SCENARIO SERVER COLUMN
    awk -F'\t' -v sc="$2" -v s="$3" -v c="$4" '$1 == sc && $3 == s && $4 != "FAILED" { print $c }' "$1" | median
}
col_median_expr() { # col_median_expr FILE SCENARIO SERVER AWK-EXPRESSION: median of a per-row value
    awk -F'\t' -v sc="$2" -v s="$3" '$1 == sc && $3 == s && $4 != "FAILED" { print '"$4"' }' "$1" | median
}
ok_count() { awk -F'\t' -v sc="$2" -v s="$3" '$1 == sc && $3 == s && $4 != "FAILED"' "$1" | wc -l; }
col_sum() { awk -F'\t' -v sc="$2" -v s="$3" -v c="$4" '$1 == sc && $3 == s && $4 != "FAILED" { t += $c } END { print t + 0 }' "$1"; }
spread() { # spread FILE SCENARIO SERVER COLUMN: (max - min) / median, percent
    local m; m=$(col_median "$@")
    awk -F'\t' -v sc="$2" -v s="$3" -v c="$4" -v m="$m" '$1 == sc && $3 == s && $4 != "FAILED" {
            if (n++ == 0 || $c < lo) lo = $c; if (n == 1 || $c > hi) hi = $c }
        END { if (m + 0 > 0) printf "%.0f", (hi - lo) * 100 / m; else print "n/a" }' "$1"
}
# ratio A B [DECIMALS]: A / B to 2 decimals unless told; "n/a" when either is missing or B is 0.
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN { if (a == "nan" || b == "nan" || b + 0 == 0) print "n/a"; else printf ("%." d "f"), a / b }'; }

# The same ratio unrounded, for `target`: a rounded one would call 0.998 "1.00" and MET.
exact_ratio() { ratio "$1" "$2" 6; }

target() { # target DESCRIPTION VALUE OP THRESHOLD (VALUE "n/a" or "nan": NOT MEASURED)
    # VALUE is compared as given (pass exact_ratio's, not ratio's) and shown to 3 decimals.
    local desc=$1 val=$2 op=$3 thr=$4 verdict shown
    if [[ $val == n/a || $val == nan || -z $val ]]; then verdict="NOT MEASURED"; shown=$val
    else
        shown=$(awk -v v="$val" 'BEGIN { printf "%.3f", v }')
        if awk -v v="$val" -v t="$thr" -v op="$op" 'BEGIN { exit !((op == ">=" && v >= t) || (op == "<=" && v <= t) || (op == "==" && v == t)) }'
        then verdict=MET; else verdict="NOT MET"; fi
    fi
    printf '  %-62s %8s  (%s %-3s)  %s\n' "$desc" "$shown" "$op" "$thr" "$verdict" >>"$TARGETS"
}

# pin_and_clean_env: sets SERVER_PIN / CLIENT_PIN (taskset, when PIN=1), CLK_TCK, and
# SERVER_ENV, which starts the servers with no RUST_LOG (it could hide the "listening on" line)
# and no MAITRED_* settings from the caller's environment but MAITRED_ARGS and MAITRED_TLS_ARGS.
pin_and_clean_env() {
    if (( PIN )); then
        command -v taskset >/dev/null 2>&1 || die "taskset not found (util-linux); or run with PIN=0"
        SERVER_PIN=(taskset -c "$SERVER_CPU")
        CLIENT_PIN=(taskset -c "$CLIENT_CPU")
    else
        SERVER_PIN=()
        CLIENT_PIN=()
    fi
    CLK_TCK=$(getconf CLK_TCK)
    SERVER_ENV=(env -u RUST_LOG)
    local var
    while IFS= read -r var; do
        [[ $var == MAITRED_ARGS || $var == MAITRED_TLS_ARGS ]] && continue
        SERVER_ENV+=(-u "$var")
        log "note: not passing $var from the environment to the servers"
    done < <(compgen -e | grep '^MAITRED_' || true)
}
