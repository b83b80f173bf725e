# A stand-in for the official python:<version>-slim-bookworm image, built by docker/bases.sh from
# the local Debian base with Debian's own Python (3.11 in bookworm; the official image builds its
# own CPython, 3.12 by default in the Dockerfile). Like the official image: `python`, `python3`
# and `pip` on PATH, pip may install into the system (no EXTERNALLY-MANAGED marker), no compiler.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 python3-pip python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED \
    && ln -s python3 /usr/bin/python
ENV LANG=C.UTF-8
RUN python --version && pip --version
CMD ["python3"]
