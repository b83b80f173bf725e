#!/usr/bin/env bash
# Install the maitred wheel from WHEEL_DIR (built by docker/build-wheel.sh) and an application's
# requirements with plain pip: no Rust toolchain, no source build of maitred. The Dockerfile's
# `api-venv` stage runs this, into the virtual environment the `api` image copies.
#
#   docker/install-wheel.sh WHEEL_DIR [REQUIREMENTS_FILE...]
#
# `--no-index --find-links WHEEL_DIR` for maitred: the wheel built here, never one from an index.
# Uses $PYTHON (default python3) -m pip.
set -euo pipefail

wheels="${1:?usage: docker/install-wheel.sh WHEEL_DIR [REQUIREMENTS_FILE...]}"
shift
python="${PYTHON:-python3}"
pip=("$python" -m pip install --no-cache-dir --disable-pip-version-check)
if [ "$(id -u)" -eq 0 ]; then pip+=(--root-user-action=ignore); fi

"${pip[@]}" --no-index --find-links "$wheels" --force-reinstall --no-deps maitred
for requirements in "$@"; do
    "${pip[@]}" -r "$requirements"
done
"$python" -c 'import maitred, maitred._maitred; print("maitred", maitred.__version__, "installed")'
