#!/usr/bin/env bash
# The README's first command: set up .venv (requirements/demo.lock and cacheplug), then run the
# Django shop demo (example_project/django_shop/demo.py): a burst at an expired page with
# cacheplug and without, a table, a save reaching the cached page, then the shop keeps serving
# until Ctrl-C. Works on a fresh Debian machine with Python 3.11 (as root it installs
# python3-venv with apt-get if venv needs it).
#
#   bash scripts/demo.sh [--flask] [--once] [--redis URL] [--workers N] [--clients N] [--port P]
#                        [--metrics] [--edge]
#
# --flask runs the Flask shop instead; every other argument goes to the demo. --metrics
# serves Prometheus metrics at /metrics (cacheplug.prometheus.CacheCollector) on every worker.
# --edge runs a real Varnish (example_project/edge/cacheplug.vcl) in front of the shop (of its
# first worker, with several), gives it the catalog page and shows it served by Varnish, then
# purged there by key after a write; it needs varnishd and vmod_xkey (as root it installs
# varnish and varnish-modules with apt-get if they are missing).
set -euo pipefail
cd "$(dirname "$0")/.."

shop=django_shop
edge=0
args=()
for arg in "$@"; do
  case "$arg" in
    --flask) shop=flask_shop ;;
    --edge) edge=1; args+=("$arg") ;;
    *) args+=("$arg") ;;
  esac
done

# --edge: Varnish and vmod_xkey, as scripts/test.sh installs them.
source scripts/_packages.sh
if [ "$edge" = 1 ] && varnish_missing; then
  install_packages "--edge needs Varnish and vmod_xkey" varnish varnish-modules || exit 1
fi

# .venv holds requirements/demo.lock (the framework extras at the versions the tests pass
# with, hashes checked), unless it is already scripts/test.sh's (requirements/dev.lock, a
# superset); then this checkout goes in, without dependencies.
source scripts/_venv.sh
if [ "$(cat .venv/.lock-sha256 2>/dev/null)" != "$(sha256sum requirements/dev.lock | cut -d' ' -f1)" ]; then
  locked_venv .venv requirements/demo.lock
fi
echo "== installing cacheplug into .venv"
install_cacheplug .venv -e .
echo "== running example_project/$shop/demo.py ${args[*]:-}"
exec .venv/bin/python "example_project/$shop/demo.py" "${args[@]}"
