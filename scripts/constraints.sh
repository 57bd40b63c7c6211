#!/usr/bin/env bash
# Regenerate the constraints files from pyproject.toml's requirements (needs uv: pip install uv).
#
#   constraints-lowest.txt  every direct requirement at its declared floor (uv's lowest-direct
#                           resolution): what the lowest-versions job of .ci/run installs
#   constraints.txt         a whole test environment that passes, for a reproducible run:
#                           pip install -e ".[test]" -c constraints.txt
#                           (the versions installed where this runs are kept when allowed:
#                           run it where the suite passes)
#
# tests/test_packaging.py checks both against pyproject.toml: regenerate after changing a
# requirement.
set -euo pipefail
cd "$(dirname "$0")/.."
common=(pyproject.toml --all-extras --python-version 3.11 --quiet
    --custom-compile-command "scripts/constraints.sh")
uv pip compile "${common[@]}" --resolution lowest-direct -o constraints-lowest.txt
installed=$(mktemp)
trap 'rm -f "$installed"' EXIT
python -m pip freeze --exclude-editable 2>/dev/null | grep -v ' @ ' >"$installed" || true
uv pip compile "${common[@]}" --constraint "$installed" -o constraints.txt
