#!/usr/bin/env bash
# Build CPython 3.14 (with the GIL) or 3.14t (free-threaded) from Debian's source package and
# cache it outside the checkout, so that a warm CI run does not rebuild it.
#
#   packaging/cpython.sh 3.14     prints the path of a python3.14 interpreter
#   packaging/cpython.sh 3.14t    prints the path of a free-threaded python3.14t interpreter
#
# Only CPython 3.11 is installed on the CI machines and python.org cannot be reached; Debian's
# source package `python3.14` carries CPython's release tarball (`*.orig.tar.xz`). The tarball is
# pinned by version and SHA-256 below (the mirror here serves this upload from its pool; sid's
# index may already name a newer one). The cache key is the tarball's hash plus the configure
# flags plus RECIPE (bump it when the build steps change), so a changed recipe never reuses a
# stale build. A build counts only once `.complete` is written; anything else is rebuilt.
#
# Modest options to save time: no PGO, no LTO, no test modules, `make -j2`, tests skipped.
#
# Environment:
#   MAITRED_CI_CACHE   cache root (default /var/cache/maitred-ci)
set -euo pipefail

DEB_VERSION=3.14.7-1
UPSTREAM_VERSION=3.14.7
ORIG_SHA256=3b48dac8fb59f62eaa67ac83c1eb12bda1b7a08406dd286e252c11a66be27f81
POOL_URL=http://deb.debian.org/debian/pool/main/p/python3.14
RECIPE=1

flavour="${1:-}"
case "$flavour" in
    3.14)  extra_flags=();               exe=python3.14 ;;
    3.14t) extra_flags=(--disable-gil);  exe=python3.14t ;;
    *) echo "usage: $0 3.14|3.14t" >&2; exit 2 ;;
esac

CACHE="${MAITRED_CI_CACHE:-/var/cache/maitred-ci}"
# A shared libpython, found through an rpath: the Rust tests embed this interpreter
# (`PYO3_PYTHON=... cargo test --features python`), and an embedding executable linked to a
# static libpython cannot load the standard library's extension modules.
flags=(--with-ensurepip=install --disable-test-modules --enable-shared "${extra_flags[@]}")
key=$(printf '%s\n' "$ORIG_SHA256" "${flags[*]}" "rpath" "$RECIPE" | sha256sum | cut -c1-12)
prefix="$CACHE/cpython-$flavour-$UPSTREAM_VERSION-$key"

if [ -x "$prefix/bin/$exe" ] && [ -f "$prefix/.complete" ]; then
    echo "$prefix/bin/$exe"
    exit 0
fi

log() { printf 'cpython.sh: %s\n' "$*" >&2; }
mkdir -p "$CACHE/src"
tarball="$CACHE/src/python3.14_$UPSTREAM_VERSION.orig.tar.xz"
if ! echo "$ORIG_SHA256  $tarball" | sha256sum -c --status 2>/dev/null; then
    log "fetching Debian source python3.14 $DEB_VERSION"
    curl -sSf --retry 3 -o "$tarball.part" "$POOL_URL/python3.14_$UPSTREAM_VERSION.orig.tar.xz"
    echo "$ORIG_SHA256  $tarball.part" | sha256sum -c --status \
        || { log "SHA-256 mismatch for the downloaded tarball"; rm -f "$tarball.part"; exit 1; }
    mv "$tarball.part" "$tarball"
fi

build=$(mktemp -d "${TMPDIR:-/tmp}/cpython-$flavour.XXXXXX")
trap 'rm -rf "$build"' EXIT
log "building CPython $flavour ($UPSTREAM_VERSION) into $prefix (a cold cache takes a while)"
tar -xJf "$tarball" -C "$build"
cd "$build/Python-$UPSTREAM_VERSION"
rm -rf "$prefix"
./configure --prefix="$prefix" "${flags[@]}" LDFLAGS="-Wl,-rpath,$prefix/lib" >"$build/configure.log" 2>&1 \
    || { tail -40 "$build/configure.log" >&2; exit 1; }
make -j2 >"$build/make.log" 2>&1 || { tail -60 "$build/make.log" >&2; exit 1; }
make install >"$build/install.log" 2>&1 || { tail -60 "$build/install.log" >&2; exit 1; }
"$prefix/bin/$exe" -c 'import ssl, zlib, sys; print(sys.version)' >&2
touch "$prefix/.complete"
echo "$prefix/bin/$exe"
