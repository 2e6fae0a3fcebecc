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
source scripts/_packages.sh

# redis-server for every Redis test; redis-cli (redis-tools) builds the test Redis Cluster.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  install_packages "redis-server is not installed" redis-server redis-tools || exit 1
fi

# PostgreSQL for the change-data-capture tests (a throwaway server each: initdb, pg_ctl).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v pg_config >/dev/null 2>&1; then
  install_packages "PostgreSQL is not installed" postgresql || exit 1
fi

# Headless Chromium and its driver for the browser tests (tests/browser, driven by Selenium).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  install_packages "Chromium is not installed" chromium chromium-driver || exit 1
fi

# Varnish and vmod_xkey for the edge-tier tests (a throwaway varnishd each: VarnishServer).
if varnish_missing; then
  install_packages "Varnish is not installed" varnish varnish-modules || exit 1
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
