#!/usr/bin/env bash
# Build the static-file server (the `maitred` binary, no Python) from the current checkout and
# copy it to OUT_DIR. The Dockerfile's `static-build` stage runs this (and docker/cache-deps.sh,
# for the placeholder build); it works outside Docker too.
#
#   docker/build-static.sh OUT_DIR
#
# `--locked`: the build uses Cargo.lock exactly (fails if it is out of date). The copy has its
# debug line tables removed when `strip` is available (the release profile keeps them for
# profiling; an image does not need them). Extra cargo flags can be passed in CARGO_BUILD_FLAGS.
set -euo pipefail

out="${1:?usage: docker/build-static.sh OUT_DIR}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# shellcheck disable=SC2086  # CARGO_BUILD_FLAGS is a list of words on purpose.
cargo build --release --locked --bin maitred ${CARGO_BUILD_FLAGS:-}

target_dir="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$out"
install -m 0755 "$target_dir/release/maitred" "$out/maitred.tmp"
if command -v strip >/dev/null 2>&1; then
    strip --strip-debug "$out/maitred.tmp"
fi
mv -f "$out/maitred.tmp" "$out/maitred"
"$out/maitred" --version
