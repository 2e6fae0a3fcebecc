#!/usr/bin/env bash
# What CI runs after scripts/test.sh: build the sdist and the wheel, check them with twine,
# then run the whole suite twice against the *installed wheel* (not this checkout), once on
# the pinned versions (requirements/dev.lock) and once on the oldest supported ones
# (requirements/oldest.lock). A data file missing from the wheel (Lua scripts, py.typed, ...)
# or a floor in pyproject.toml that no longer works fails here. Run scripts/test.sh first:
# it makes .venv, which builds the distributions. Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
root=$PWD

echo "== python -m build (sdist, then the wheel from the sdist)"
rm -rf dist
.venv/bin/python -m build --no-isolation --outdir dist . >.venv/build.log 2>&1 || {
  cat .venv/build.log >&2
  exit 1
}
ls dist
echo "== twine check"
.venv/bin/twine check --strict dist/*
wheel=$(ls dist/*.whl)

# The tests run from a copy of the repository without the packages, so that only the
# installed wheel can be imported.
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
git ls-files -z --cached --others --exclude-standard |
  grep -z -v -E '^(cacheplug|cacheplug_django|cacheplug_flask)/' |
  xargs -0 cp --parents -t "$tree"

run_suite() {
  local name=$1 lock=$2
  shift 2
  locked_venv ".venv-$name" "$lock"
  install_cacheplug ".venv-$name" --force-reinstall "$root/$wheel"
  echo "== pytest ($name: $lock, the installed wheel $(basename "$wheel"))"
  (cd "$tree" && CACHEPLUG_LOCK="$lock" CACHEPLUG_UNDER_TEST=wheel \
    "$root/.venv-$name/bin/pytest" -p no:cacheprovider "$@")
}

run_suite wheel requirements/dev.lock "$@"
run_suite oldest requirements/oldest.lock "$@"
