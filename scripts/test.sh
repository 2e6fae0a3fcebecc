#!/usr/bin/env bash
# The README's second command: install what the tests need, then lint, type-check and run
# the whole suite. Works on a fresh Debian machine with Python 3.11 (as root it installs
# redis-server with apt-get; otherwise it asks you to). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# redis-server for every Redis test; redis-cli (redis-tools) builds the test Redis Cluster.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing redis-server and redis-tools (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
  else
    echo "redis-server is not installed: run 'sudo apt-get install -y redis-server redis-tools' first" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  python3 -m venv .venv
fi
echo "== installing cacheplug[test]"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
