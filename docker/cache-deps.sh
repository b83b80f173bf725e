#!/usr/bin/env bash
# Dependency caching for the Docker build: compile every dependency once against placeholder
# sources, so the image layer holding the compiled dependencies is rebuilt only when Cargo.toml
# or Cargo.lock change, not on every edit to src/.
#
#   docker/cache-deps.sh static    # then: COPY src; docker/build-static.sh OUT
#   docker/cache-deps.sh wheel     # then: COPY src python README.md LICENSE; docker/build-wheel.sh OUT
#
# Run it in a directory holding Cargo.toml and Cargo.lock (and pyproject.toml for `wheel`) but
# no sources yet: it refuses to run where src/ exists, so it can never touch a real checkout.
# It builds the placeholders with the same script as the real build (same profile, flags and
# features, so the cached dependency artifacts are the ones the real build reuses), then removes
# the placeholders AND the placeholder crate's own build outputs. The removal matters: COPY keeps
# the files' modification times, which are usually older than the placeholder build, and cargo
# would otherwise take the placeholder's fingerprint as up to date and ship an empty binary.
set -euo pipefail

mode="${1:?usage: docker/cache-deps.sh static|wheel}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

[ -f Cargo.toml ] && [ -f Cargo.lock ] || { echo "cache-deps.sh: needs Cargo.toml and Cargo.lock in $root" >&2; exit 1; }
if [ -e src ]; then
    echo "cache-deps.sh: $root/src exists; this script only runs before the sources are copied in" >&2
    exit 1
fi

created=()
placeholder() { # placeholder PATH CONTENT: create PATH (and its directories) unless it exists
    if [ ! -e "$1" ]; then
        mkdir -p "$(dirname "$1")"
        printf '%s\n' "$2" > "$1"
        created+=("$1")
    fi
}
placeholder src/lib.rs "// placeholder for dependency caching"
placeholder src/bin/maitred.rs "fn main() {}"

scratch="$(mktemp -d)"
case "$mode" in
    static)
        "$here/build-static.sh" "$scratch"
        ;;
    wheel)
        [ -f pyproject.toml ] || { echo "cache-deps.sh: wheel mode needs pyproject.toml" >&2; exit 1; }
        placeholder python/maitred/__init__.py "# placeholder for dependency caching"
        placeholder README.md "placeholder"
        placeholder LICENSE "placeholder"
        "$here/build-wheel.sh" "$scratch"
        ;;
    *)
        echo "cache-deps.sh: unknown mode $mode (static or wheel)" >&2
        exit 2
        ;;
esac
rm -rf "$scratch"

# Remove the placeholders (and the directories they made), then the placeholder crate's outputs.
for path in "${created[@]}"; do rm -f "$path"; done
rm -rf src
[ -d python ] && find python -depth -type d -empty -delete
target_dir="${CARGO_TARGET_DIR:-$root/target}"
for profile_dir in "$target_dir"/release "$target_dir"/*/release; do
    [ -d "$profile_dir" ] || continue
    rm -rf "$profile_dir"/.fingerprint/maitred-* "$profile_dir"/build/maitred-* \
        "$profile_dir"/deps/maitred-* "$profile_dir"/deps/libmaitred-* "$profile_dir"/deps/_maitred* \
        "$profile_dir"/maitred "$profile_dir"/maitred.d "$profile_dir"/libmaitred.*
done
rm -rf "$target_dir"/wheels
echo "cache-deps.sh: dependencies for '$mode' compiled and cached; placeholders removed"
