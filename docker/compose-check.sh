#!/usr/bin/env bash
# Validate docker-compose.yml with Docker Compose itself (`config` needs no Docker engine): the
# default (development) view and the `prod` profile, and which services each one starts.
#
#   docker/compose-check.sh
#
# Uses `docker compose` (the v2 plugin) when present, else the standalone `docker-compose`
# (Debian's package is 1.29, which knows profiles and depends_on conditions).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
else
    echo "compose-check.sh: neither 'docker compose' nor 'docker-compose' is installed" >&2
    exit 1
fi
echo "compose-check.sh: using $("${compose[@]}" version 2>/dev/null | head -n 1)"

# The services `up` starts for the given options: from the resolved configuration, those with no
# profile or an enabled one (compose v1's `config --services` lists every service, v2's only the
# enabled ones, so the profiles are read from the resolved file, which both print).
services_of() {
    "${compose[@]}" -f docker-compose.yml "$@" config | python3 -c '
import sys, yaml
enabled = set(sys.argv[1:])
services = yaml.safe_load(sys.stdin)["services"]
print(" ".join(sorted(n for n, s in services.items() if not s.get("profiles") or enabled & set(s["profiles"]))))
' $( [ "${1:-}" = "--profile" ] && echo "$2" )
}

"${compose[@]}" -f docker-compose.yml config -q
dev="$(services_of)"
echo "compose-check.sh: default services: $dev"
[ "$dev" = "api" ] || { echo "compose-check.sh: plain 'docker compose up' should start only api, not: $dev" >&2; exit 1; }

"${compose[@]}" -f docker-compose.yml --profile prod config -q
prod="$(services_of --profile prod)"
echo "compose-check.sh: --profile prod services: $prod"
[ "$prod" = "api api-prod nginx" ] || { echo "compose-check.sh: --profile prod should add api-prod and nginx, not: $prod" >&2; exit 1; }

# The resolved prod configuration, for the log: replicas, grace period, health checks.
"${compose[@]}" -f docker-compose.yml --profile prod config | grep -nE 'replicas|stop_grace_period|condition|command|target' || true
echo "compose-check.sh: ok"
