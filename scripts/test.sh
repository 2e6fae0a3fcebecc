#!/usr/bin/env bash
# The README's second command: install what the tests need from the committed lock
# (requirements/dev.lock: exact versions with hashes), then lint, type-check, build the docs
# site and run the whole suite. Works on a fresh Debian machine with Python 3.11 (as root it
# installs redis-server, PostgreSQL and Chromium with apt-get; otherwise it asks you to). Extra
# arguments go to pytest.
#
#   bash scripts/test.sh                 # everything, on the pinned set
#   bash scripts/test.sh -k stampede     # ... with pytest arguments
#
# CI (.ci/run) runs this, then scripts/test-matrix.sh (the built wheel, the oldest versions).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh

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

# PostgreSQL for the change-data-capture tests (a throwaway server each: initdb, pg_ctl).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v pg_config >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing postgresql (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL is not installed: run 'sudo apt-get install -y postgresql' first" >&2
    exit 1
  fi
fi

# Headless Chromium and its driver for the browser tests (tests/browser, driven by Selenium).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium and chromium-driver (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "Chromium is not installed: run 'sudo apt-get install -y chromium chromium-driver' first" >&2
    exit 1
  fi
fi

# Varnish and vmod_xkey (varnish-modules) for the edge-tier tests (a throwaway varnishd each:
# VarnishServer). Debian puts varnishd in /usr/sbin, off a plain user's PATH.
if { ! command -v varnishd >/dev/null 2>&1 && [ ! -x /usr/sbin/varnishd ]; } \
  || ! ls /usr/lib/*/varnish/vmods/libvmod_xkey.so >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing varnish and varnish-modules (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq varnish varnish-modules >/dev/null
  else
    echo "Varnish is not installed: run 'sudo apt-get install -y varnish varnish-modules' first" >&2
    exit 1
  fi
fi

locked_venv .venv requirements/dev.lock
echo "== installing this checkout into .venv (editable, no dependencies: the lock has them)"
install_cacheplug .venv -e .

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== mkdocs build --strict"
export NO_MKDOCS_2_WARNING=1  # a banner about a future major version, on every build
.venv/bin/mkdocs build --strict --quiet --site-dir .venv/site
echo "== pytest (pinned versions: requirements/dev.lock, this checkout)"
CACHEPLUG_LOCK=requirements/dev.lock CACHEPLUG_UNDER_TEST=checkout .venv/bin/pytest "$@"
