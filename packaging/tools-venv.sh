#!/usr/bin/env bash
# Create (or reuse) the venv with the wheel tools of requirements-build.txt.
#
#   packaging/tools-venv.sh DIR
#
# Reused when it exists and was made from the same requirements file; PYTHON is the base
# interpreter (default python3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:?usage: packaging/tools-venv.sh DIR}"
stamp="$dir/.requirements-build.txt"
if [ -x "$dir/bin/python" ] && cmp -s "$here/requirements-build.txt" "$stamp"; then
    exit 0
fi
rm -rf "$dir"
"${PYTHON:-python3}" -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-build.txt"
cp "$here/requirements-build.txt" "$stamp"
