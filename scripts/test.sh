#!/usr/bin/env bash
# The whole test suite, from a fresh clone: venv, project with test extras, the
# interop peers (js-libp2p from npm, py-libp2p from PyPI in its own venv), lint,
# types, then pytest. Safe to re-run: each step skips work already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PYTHON" -m venv .venv
fi
echo "== installing peerwire with test extras"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test,fast]'

echo "== installing interop peers"
bash interop/setup.sh

echo "== ruff"
.venv/bin/ruff check src tests
echo "== mypy (strict, src/)"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
