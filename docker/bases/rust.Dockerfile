# A stand-in for the official rust:<version>-slim-bookworm image, built by docker/bases.sh from the
# local Debian base and the Rust toolchain installed on the machine (no registry needed). Same
# layout as the official image: rustup and its proxies in /usr/local/cargo/bin, the toolchain in
# /usr/local/rustup, gcc and libc6-dev for linking.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
RUN rustc --version && cargo --version
