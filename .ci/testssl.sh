#!/usr/bin/env bash
# testssl.sh (Debian package testssl.sh) against a maitred TLS listener on 127.0.0.1; fails if it
# reports any vulnerability or any weak protocol or cipher (issue 14).
#
#   .ci/testssl.sh                    build the hello example, start it on a TLS listener, scan it
#   .ci/testssl.sh --against H:P      scan a listener that is already running (e.g. nginx, to see
#                                     the policy fail), nothing is built or started
#
# What runs: `testssl -p -s -f -P -U` (protocols, standard cipher categories, forward secrecy,
# server preferences, vulnerabilities), JSON to a file. Left out, on purpose: -S (server defaults:
# the certificate; ours is a throw-away one from a private CA made at run time, so its trust,
# lifetime, revocation URIs and CAA records are a deployment's concern, not the server's), -h
# (HTTP headers such as HSTS: the application's), -c (client simulation) and -E (each cipher per
# protocol, slow; -s and -f already cover what is offered). About 70 s on a busy 2-core machine.
#
# Which findings count (any one fails the check):
#   * every finding of the checks above (protocols, grease, ciphers, pfs, serverPreferences,
#     vulnerabilities) with severity LOW, MEDIUM, HIGH or CRITICAL (testssl's flat JSON has no
#     section field; certificate and HTTP-header ids, should any appear, do not count: cert*,
#     DNS_CAA*, OCSP*, HSTS*, security_headers, banner_*, cookie_*, ...);
#   * any finding with severity WARN or FATAL anywhere (a check that could not run is not a pass);
#   * and, so that the scan cannot pass by not reaching the server: TLS 1.2 and TLS 1.3 must be
#     reported offered and SSLv2, SSLv3, TLS 1.0 and TLS 1.1 not offered.
# INFO and OK findings never count. The whole JSON stays in target/testssl/ for reading.
#
# Needs: testssl (Debian package testssl.sh; .ci/run installs it), openssl, python3, cargo.
set -euo pipefail

ROOT="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel 2>/dev/null \
        || (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd))"
cd "$ROOT"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
WORK="$TARGET_DIR/testssl"
JSON="$WORK/testssl.json"
START_TIMEOUT="${TESTSSL_START_TIMEOUT:-60}"
# The certificate flags for `--listen https://127.0.0.1:0` ($CERT and $KEY are replaced below).
MAITRED_TLS_ARGS="${MAITRED_TLS_ARGS:-}"

log() { printf 'testssl: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

AGAINST=""
case "${1:-}" in
    "") ;;
    --against) [ $# -eq 2 ] || die "usage: .ci/testssl.sh [--against HOST:PORT]"; AGAINST=$2 ;;
    *) die "usage: .ci/testssl.sh [--against HOST:PORT]" ;;
esac

TESTSSL=$(command -v testssl || command -v testssl.sh || true)
[ -n "$TESTSSL" ] || die "testssl not found (Debian package testssl.sh; .ci/run installs it)"
for tool in openssl python3; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found"
done
rm -rf "$WORK"
mkdir -p "$WORK"

SERVER_PID=""
cleanup() {
    local rc=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ] && [ -f "$WORK/server.log" ]; then
        log "server log, last 20 lines:"; tail -n 20 "$WORK/server.log" | sed 's/^/    | /' >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "$AGAINST" ]; then
    command -v cargo >/dev/null 2>&1 || die "cargo not found"
    bench/tls/cert.sh "$WORK/cert" ec || die "could not make the test certificate"
    CERT="$WORK/cert/cert.pem"; KEY="$WORK/cert/key.pem"
    tls_args="${MAITRED_TLS_ARGS:---tls-cert $CERT --tls-key $KEY}"
    tls_args=${tls_args//\$CERT/$CERT}; tls_args=${tls_args//\$KEY/$KEY}
    log "cargo build --release --example hello"
    cargo build --release --example hello
    exe="$TARGET_DIR/release/examples/hello"
    [ -x "$exe" ] || die "build succeeded but $exe does not exist"
    # shellcheck disable=SC2086  # the flag list is split into words on purpose
    env RUST_LOG=maitred::server=info "$exe" --listen https://127.0.0.1:0 $tls_args </dev/null >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    deadline=$(( $(date +%s) + START_TIMEOUT ))
    while :; do
        AGAINST=$(grep -aoE 'listening on https?://127\.0\.0\.1:[0-9]+' "$WORK/server.log" | head -n 1 | sed -E 's#^listening on https?://##' || true)
        [ -n "$AGAINST" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { SERVER_PID=""; die "the server exited before reporting its address"; }
        [ "$(date +%s)" -lt "$deadline" ] || die "no 'listening on' line within ${START_TIMEOUT}s"
        sleep 0.2
    done
    # It must really be TLS, with the chain the test CA signed.
    out=$(openssl s_client -connect "$AGAINST" -servername localhost -CAfile "$WORK/cert/ca.pem" -verify_return_error -brief </dev/null 2>&1) \
        || die "openssl s_client could not complete a verified handshake with $AGAINST: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
    log "maitred (pid $SERVER_PID) serves TLS on $AGAINST: $(printf '%s' "$out" | grep -E '^(Protocol version|Ciphersuite)' | tr '\n' ' ')"
fi

case "$AGAINST" in
    127.0.0.1:*|localhost:*|\[::1\]:*) ;;
    *) die "refusing to scan $AGAINST: loopback only (127.0.0.1, localhost, [::1])" ;;
esac

log "$TESTSSL -p -s -f -P -U https://$AGAINST (JSON: $JSON)"
t0=$(date +%s)
# testssl's own exit status is not the verdict (it is non-zero for some findings, zero for
# others); the JSON is. It must exist and parse.
# Bounded as a whole too (TESTSSL_TIMEOUT seconds; about 80 s are needed on a busy machine).
timeout -k 10 "${TESTSSL_TIMEOUT:-900}" \
    "$TESTSSL" --quiet --color 0 --warnings off --ip one --connect-timeout 10 --openssl-timeout 10 \
    --jsonfile "$JSON" -p -s -f -P -U "https://$AGAINST" >"$WORK/testssl.txt" 2>&1 || true
log "testssl took $(( $(date +%s) - t0 )) s; report: $WORK/testssl.txt"
[ -s "$JSON" ] || die "testssl wrote no JSON; its output: $(tail -n 5 "$WORK/testssl.txt" | tr '\n' ' ')"

python3 - "$JSON" <<'EOF_PY'
"""Apply the policy in .ci/testssl.sh's header to testssl's flat JSON (a list of findings)."""
import json
import sys

BAD = {"LOW", "MEDIUM", "HIGH", "CRITICAL"}
ALWAYS_BAD = {"WARN", "FATAL"}
NOT_COUNTED_PREFIXES = ("cert", "DNS_CAA", "OCSP", "HSTS", "HPKP", "security_headers", "banner_",
                        "cookie_", "HTTP_", "X-", "app_banner", "intermediate_cert", "pre_128cipher",
                        "clientsimulation", "service", "scanTime", "engine_problem")

try:
    with open(sys.argv[1]) as f:
        findings = json.load(f)
except ValueError as e:  # e.g. testssl cut short by the timeout: the file is not whole
    print(f"testssl: FAILED: {sys.argv[1]} is not valid JSON ({e}); was testssl cut short?")
    sys.exit(1)
if isinstance(findings, dict):  # --jsonfile-pretty shape, in case someone switches it
    findings = [x for sec in findings["scanResult"][0].values() if isinstance(sec, list) for x in sec]

by_id = {x.get("id"): x for x in findings}
bad = []
for x in findings:
    sev, ident = x.get("severity", ""), x.get("id", "")
    if sev in ALWAYS_BAD:
        bad.append(x)
    elif sev in BAD and not ident.startswith(NOT_COUNTED_PREFIXES):
        bad.append(x)

expect = {"SSLv2": "not offered", "SSLv3": "not offered", "TLS1": "not offered",
          "TLS1_1": "not offered", "TLS1_2": "offered", "TLS1_3": "offered"}
problems = []
for ident, want in expect.items():
    got = by_id.get(ident, {}).get("finding", "(missing)")
    ok = got.startswith("not offered") if want == "not offered" else (got.startswith("offered") and "not" not in got)
    if not ok:
        problems.append(f"{ident}: want '{want}', testssl says '{got}'")

print(f"testssl: {len(findings)} findings; protocols: " +
      ", ".join(f"{i}={by_id.get(i, {}).get('finding', '?')}" for i in expect))
for x in bad:
    print(f"testssl: COUNTED {x.get('severity')} {x.get('id')}: {x.get('finding')}")
for p in problems:
    print(f"testssl: PROTOCOLS {p}")
if bad or problems:
    print(f"testssl: FAILED: {len(bad)} counted finding(s), {len(problems)} protocol problem(s)")
    sys.exit(1)
print("testssl: passed: no vulnerability, no weak protocol or cipher (policy: .ci/testssl.sh)")
EOF_PY
