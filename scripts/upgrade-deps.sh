#!/usr/bin/env bash
# Recompile the committed locks in requirements/ from pyproject.toml's extras (and
# requirements/tools.in), taking the newest releases that the supported ranges allow.
# Upgrading is a commit like any other: run this, then `bash scripts/test.sh`, then commit
# the changed *.lock files, and CI checks them.
#
#   bash scripts/upgrade-deps.sh               # everything to the newest allowed release
#   bash scripts/upgrade-deps.sh django        # one package (and what it needs) only
#
# The locks are for CPython 3.11 on Linux, the platform the tests run on.
set -euo pipefail
cd "$(dirname "$0")/.."

uv=.venv/bin/uv
if [ ! -x "$uv" ]; then
  echo "uv is not in .venv: run 'bash scripts/test.sh' once first (it installs the locked tools)" >&2
  exit 1
fi

upgrade=(--upgrade)
if [ "$#" -gt 0 ]; then
  upgrade=()
  for package in "$@"; do upgrade+=(--upgrade-package "$package"); done
fi

compile() {
  local output=$1
  shift
  "$uv" pip compile --quiet --generate-hashes --python-version 3.11 --python-platform linux \
    --custom-compile-command "bash scripts/upgrade-deps.sh" --output-file "$output" "$@"
}

# Everything a developer and CI use: every extra, the test tools, lint, docs, benchmarks,
# and the build/release tools.
compile requirements/dev.lock "${upgrade[@]}" pyproject.toml requirements/tools.in --all-extras
# The demo (scripts/demo.sh): the framework extras (and prometheus, for --metrics) alone, at
# the versions dev.lock has.
compile requirements/demo.lock pyproject.toml requirements/build.in --extra django --extra flask --extra demo \
  --extra redis --extra prometheus --constraint requirements/dev.lock
# The floors: each direct dependency at the oldest release pyproject.toml admits, so the
# suite proves the ranges users install against (what they pull in is the newest that fits).
compile requirements/oldest.lock --resolution lowest-direct pyproject.toml \
  --extra redis --extra django --extra flask --extra demo --extra test
echo "== recompiled requirements/*.lock; now run 'bash scripts/test.sh' and commit them"
git --no-pager diff --stat -- requirements/ || true
