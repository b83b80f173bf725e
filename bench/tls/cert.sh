#!/usr/bin/env bash
# Makes a throw-away certificate and key for the TLS benchmarks and CI checks, at run time (no
# private key is ever committed):
#
#   bench/tls/cert.sh DIR [ec|rsa]     -> DIR/cert.pem, DIR/key.pem (PKCS#8), DIR/ca.pem
#
# A private CA signs the leaf, so a client can verify the chain (curl --cacert DIR/ca.pem,
# Python's ssl with cafile=DIR/ca.pem). Leaf: CN=localhost, subjectAltName DNS:localhost and
# IP:127.0.0.1, ::1; serverAuth; valid for 30 days from now. Key type: `ec` (default)
# = ECDSA P-256 for both CA and leaf, the kind certbot issues by default; `rsa` = RSA 2048.
# The handshake's cost depends mostly on this choice (an RSA-2048 signature costs the server
# several times an ECDSA P-256 one), so every result names it.
#
# Needs openssl(1) (1.1.1 or later). Exit status non-zero, with one line, on any failure.
set -euo pipefail

die() { printf 'cert.sh: error: %s\n' "$*" >&2; exit 1; }
(( $# >= 1 && $# <= 2 )) || die "usage: cert.sh DIR [ec|rsa]"
dir=$1
kind=${2:-ec}
command -v openssl >/dev/null 2>&1 || die "openssl not found (Debian package openssl)"
case $kind in
    ec)  keyopts=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256) ;;
    rsa) keyopts=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048) ;;
    *)   die "key type must be ec or rsa (got '$kind')" ;;
esac
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.cert.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(
    cd "$tmp"
    umask 077
    openssl genpkey "${keyopts[@]}" -out ca.key
    openssl req -x509 -new -key ca.key -subj "/CN=maitred benchmark CA" -days 31 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out ca.pem
    openssl genpkey "${keyopts[@]}" -out key.pem
    openssl req -new -key key.pem -subj "/CN=localhost" -out leaf.csr
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature$([[ $kind == rsa ]] && echo ,keyEncipherment)" \
        "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" >leaf.ext
    openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
        -extfile leaf.ext -out cert.pem
    chmod 644 ca.pem cert.pem
) >"$tmp/openssl.log" 2>&1 || die "openssl failed: $(tail -n 3 "$tmp/openssl.log" | tr '\n' ' ')"
mv "$tmp/cert.pem" "$tmp/key.pem" "$tmp/ca.pem" "$dir/"
openssl verify -CAfile "$dir/ca.pem" "$dir/cert.pem" >/dev/null || die "the new certificate does not verify"
