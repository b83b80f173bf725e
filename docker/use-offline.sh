#!/usr/bin/env bash
# Point cargo and pip at docker/offline/ when it holds crates or wheels (CI fills it; for a user
# it holds only its README and nothing changes: the build uses crates.io and PyPI).
#
#   docker/use-offline.sh     # in the build directory, as root (a Dockerfile RUN)
#
# vendor/ present: writes .cargo/config.toml here, replacing crates-io with the vendored sources
# (cargo then needs no network; `--locked` still checks them against Cargo.lock).
# wheels/ present: writes /etc/pip.conf with no-index and find-links (pip needs no network).
# Both files stay in the build stage; the final images copy only what was built.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
offline="$root/docker/offline"

if [ -d "$offline/vendor" ]; then
    mkdir -p "$root/.cargo"
    cat > "$root/.cargo/config.toml" <<TOML
[source.crates-io]
replace-with = "offline-vendor"

[source.offline-vendor]
directory = "$offline/vendor"

[net]
offline = true
TOML
    echo "use-offline.sh: cargo uses $offline/vendor ($(ls "$offline/vendor" | wc -l) crates)"
else
    echo "use-offline.sh: cargo uses crates.io"
fi

if [ -d "$offline/wheels" ]; then
    printf '[global]\nno-index = true\nfind-links = %s\n' "$offline/wheels" > /etc/pip.conf
    echo "use-offline.sh: pip uses $offline/wheels ($(ls "$offline/wheels" | wc -l) files)"
else
    echo "use-offline.sh: pip uses PyPI"
fi
