#!/usr/bin/env bash
# The README's first command: set up .venv with cacheplug and the Django extra, then run the
# Django shop demo (example_project/django_shop/demo.py): a burst at an expired page with
# cacheplug and without, a table, a save reaching the cached page, then the shop keeps serving
# until Ctrl-C. Works on a fresh Debian machine with Python 3.11 (as root it installs
# python3-venv with apt-get if venv needs it).
#
#   bash scripts/demo.sh [--flask] [--once] [--redis URL] [--workers N] [--clients N] [--port P]
#
# --flask runs the Flask shop instead; every other argument goes to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

shop=django_shop
extras=django
args=()
for arg in "$@"; do
  case "$arg" in
    --flask) shop=flask_shop; extras=flask,demo ;;
    *) args+=("$arg") ;;
  esac
done
for arg in "$@"; do
  case "$arg" in
    --redis|--redis=*) extras="$extras,redis" ;;
  esac
done
if [ -n "${CACHEPLUG_STORE:-}" ]; then
  extras="$extras,redis"
fi

# A .venv without a working pip (venv failed half-way before) is made again.
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  rm -rf .venv
  if ! python3 -m venv .venv >/dev/null 2>&1; then
    rm -rf .venv
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      echo "== installing python3-venv (apt-get)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv .venv
    else
      echo "python3 -m venv failed: install python3-venv (sudo apt-get install -y python3-venv)" >&2
      exit 1
    fi
  fi
fi
echo "== installing cacheplug[$extras] into .venv"
# pip's warnings (an editable install, a mirror in the pip config) only matter on failure.
if ! { .venv/bin/python -m pip install -q --upgrade pip &&
       .venv/bin/python -m pip install -q -e ".[$extras]"; } 2>.venv/pip-install.log; then
  cat .venv/pip-install.log >&2
  exit 1
fi
echo "== running example_project/$shop/demo.py ${args[*]:-}"
exec .venv/bin/python "example_project/$shop/demo.py" "${args[@]}"
