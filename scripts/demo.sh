#!/usr/bin/env bash
# The README's first command: set up a virtualenv with cacheplug alone (no Redis, no
# framework) and run the example on the embedded in-process store.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
exec .venv/bin/python example_project/quickstart.py "$@"
