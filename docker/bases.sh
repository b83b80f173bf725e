#!/usr/bin/env bash
# Base images for the Dockerfile, made on this machine from Debian packages, for a Docker engine
# that cannot pull (no registry). Each stands in for the official image a user pulls:
#
#   RUST_IMAGE     rust:1.95-slim-bookworm              debian + gcc + this machine's Rust toolchain
#   PYTHON_IMAGE   python:3.12-slim-bookworm            debian + Debian's python3 (3.11) and pip
#   RUNTIME_IMAGE  gcr.io/distroless/cc-debian12:nonroot  libc6, libgcc-s1, libstdc++6, libssl3,
#                                                        tzdata, netbase, base-files; no shell
#   NGINX_IMAGE    nginx:1.28-alpine                    debian + Debian's nginx (1.22) and wget
#   (DEBIAN_IMAGE  debian:bookworm-slim                 `debootstrap --variant=minbase bookworm`)
#
#   docker/bases.sh ENV_FILE     build what is missing, write NAME=image lines to ENV_FILE
#
# The images are the cache: each tag ends in a key hashed from everything that defines the image
# (this script, docker/bases/*.Dockerfile, the Rust toolchain's `rustc -vV`), so an image is
# reused only when it was made from the same inputs; a changed input makes a new tag (and the old
# ones are removed). Debian packages come from the machine's apt sources (plain HTTP, signed):
# debootstrap on the machine, `apt-get` inside the small Dockerfiles (containers reach the Debian
# mirror), `apt-get download` for the distroless stand-in. Needs root (debootstrap).
set -euo pipefail

env_file="${1:?usage: docker/bases.sh ENV_FILE}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
RUNTIME_PACKAGES=(base-files libc6 libgcc-s1 libstdc++6 libgomp1 libssl3 tzdata netbase)
say() { printf 'bases.sh: %s\n' "$*" >&2; }

command -v rustc >/dev/null || { say "rustc not found (the Rust base copies this machine's toolchain)"; exit 1; }
sysroot="$(rustc --print sysroot)"
rust_version="$(rustc --version | awk '{print $2}')"
host_triple="$(rustc -vV | awk '/^host:/ {print $2}')"

key="$( { cat "$here/bases.sh" "$here"/bases/*.Dockerfile; rustc -vV; echo "$SUITE $MIRROR"; } | sha256sum | cut -c1-12)"
DEBIAN_IMAGE="maitred-base/debian:$SUITE-$key"
RUST_IMAGE="maitred-base/rust:$rust_version-$SUITE-$key"
PYTHON_IMAGE="maitred-base/python:$SUITE-$key"
RUNTIME_IMAGE="maitred-base/distroless-cc:$SUITE-$key"
NGINX_IMAGE="maitred-base/nginx:$SUITE-$key"

have() { docker image inspect "$1" >/dev/null 2>&1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# debian: debootstrap minbase, without apt's lists and downloaded packages.
if ! have "$DEBIAN_IMAGE"; then
    command -v debootstrap >/dev/null || { say "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
    say "debootstrap $SUITE from $MIRROR (about a minute)"
    debootstrap --variant=minbase "$SUITE" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
    rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/archives/*.deb
    tar --numeric-owner -C "$work/rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' --message "debootstrap --variant=minbase $SUITE" - "$DEBIAN_IMAGE" >/dev/null
    rm -rf "$work/rootfs"
    say "made $DEBIAN_IMAGE"
fi

# rust: the toolchain rustc runs from (without its documentation), behind rustup's proxies.
if ! have "$RUST_IMAGE"; then
    ctx="$work/rust"
    toolchain="$rust_version-$host_triple"
    mkdir -p "$ctx/rustup/toolchains/$toolchain" "$ctx/cargo/bin"
    tar -C "$sysroot" --exclude=./share/doc -c . | tar -C "$ctx/rustup/toolchains/$toolchain" -x
    printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\nauto_self_update = "disable"\n' \
        "$toolchain" > "$ctx/rustup/settings.toml"
    rustup_bin="$(command -v rustup || true)"
    if [ -n "$rustup_bin" ] && [ "$(basename "$(readlink -f "$rustup_bin")")" = rustup ]; then
        install -m 0755 "$(readlink -f "$rustup_bin")" "$ctx/cargo/bin/rustup"
        for tool in "$ctx/rustup/toolchains/$toolchain"/bin/*; do
            ln -s rustup "$ctx/cargo/bin/$(basename "$tool")"
        done
    else # no rustup here: link the toolchain's programs directly
        for tool in "$ctx/rustup/toolchains/$toolchain"/bin/*; do
            ln -s "../../rustup/toolchains/$toolchain/bin/$(basename "$tool")" "$ctx/cargo/bin/$(basename "$tool")"
        done
    fi
    say "building $RUST_IMAGE (toolchain $toolchain, $(du -sh "$ctx" | cut -f1))"
    docker build -q --force-rm -f "$here/bases/rust.Dockerfile" --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" \
        --label org.maitred.base-key="$key" -t "$RUST_IMAGE" "$ctx" >/dev/null
    rm -rf "$ctx"
    say "made $RUST_IMAGE"
fi

for name in python nginx; do
    var="${name^^}_IMAGE"
    if ! have "${!var}"; then
        mkdir -p "$work/$name"
        docker build -q --force-rm -f "$here/bases/$name.Dockerfile" --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" \
            --label org.maitred.base-key="$key" -t "${!var}" "$work/$name" >/dev/null
        say "made ${!var}"
    fi
done

# runtime (distroless stand-in): the packages' files only (no maintainer scripts, no dpkg, no
# shell), the users distroless has (root, nonroot 65532, nobody), /tmp, a home for nonroot.
if ! have "$RUNTIME_IMAGE"; then
    root="$work/runtime"
    mkdir -p "$work/debs" "$root"
    # The package versions of the Debian base (its apt lists were removed, so fetch them afresh).
    docker run --rm -v "$work/debs:/debs" "$DEBIAN_IMAGE" bash -c \
        'cd /tmp && apt-get update -qq && apt-get download -qq "$@" && chown '"$(id -u):$(id -g)"' ./*.deb && mv ./*.deb /debs/' _ "${RUNTIME_PACKAGES[@]}"
    for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
    mkdir -p "$root/tmp" "$root/home/nonroot" "$root/etc"
    chmod 1777 "$root/tmp"
    chown 65532:65532 "$root/home/nonroot"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > "$root/etc/group"
    tar --numeric-owner -C "$root" -c . | docker import \
        --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'USER 65532:65532' \
        --change 'WORKDIR /home/nonroot' --message "distroless/cc stand-in: ${RUNTIME_PACKAGES[*]}" \
        - "$RUNTIME_IMAGE" >/dev/null
    say "made $RUNTIME_IMAGE"
fi

# Old keys' images: no longer reachable from any input, so remove them (the engine is shared).
docker images --format '{{.Repository}}:{{.Tag}}' --filter 'reference=maitred-base/*' | while read -r image; do
    case "$image" in *"-$key") ;; *) say "removing stale $image"; docker rmi "$image" >/dev/null || true ;; esac
done

{
    echo "DEBIAN_IMAGE=$DEBIAN_IMAGE"
    echo "RUST_IMAGE=$RUST_IMAGE"
    echo "PYTHON_IMAGE=$PYTHON_IMAGE"
    echo "RUNTIME_IMAGE=$RUNTIME_IMAGE"
    echo "NGINX_IMAGE=$NGINX_IMAGE"
} > "$env_file"
say "base images ($key):"
sed 's/^/  /' "$env_file" >&2
