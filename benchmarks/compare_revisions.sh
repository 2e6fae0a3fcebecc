#!/usr/bin/env bash
# Runs the before/after benchmarks (overhead, waiters, stampede, django_views, flask_views)
# against two revisions of this repository, one benchmark at a time, OLD then NEW
# back to back, and prints each run's key lines labelled.
#
#   bash benchmarks/compare_revisions.sh OLD_REV [NEW_REV|worktree]
#
# NEW_REV defaults to "worktree": the current working tree (uncommitted changes included),
# copied without .git, .venv* and caches. A revision is extracted with
# `git archive REV | tar -x`. Each tree is run with PYTHONPATH=<tree>:<tree>/benchmarks from
# a directory outside the repository, so its own cacheplug, cacheplug_django and
# cacheplug_flask are imported and not the editable install of the venv (the setuptools
# finder the editable install adds sits after the path finder in sys.meta_path, so a tree
# on sys.path wins). That is proved, not assumed: a sitecustomize.py on PYTHONPATH logs
# where every process (spawned workers and gunicorn workers included) found those packages,
# and the script checks that each one came from the tree being measured.
#
# The sizes are modest (about 2 minutes a tree on 2 shared cores: 9 s overhead, 17 s waiters,
# 31 s stampede, 29 s django_views, 28 s flask_views on 2026-12-06) and identical for both
# trees; an option one tree's benchmark does not accept is dropped for both, with a note. Override them with the environment variables below, e.g.
#   OVERHEAD_OPTS="--rounds=31 --ops=500" bash benchmarks/compare_revisions.sh d663753
# Other knobs: PYTHON (default <repo>/.venv/bin/python), BENCHES (space-separated subset),
# BENCH_TIMEOUT (seconds per run, default 300), KEEP_TMP=1 (keep the trees and raw logs).
# Every script starts its own throwaway redis-server (cacheplug.testing.RedisServer of the
# tree under test), so redis-server must be on PATH.
set -euo pipefail

usage() {
    echo "usage: bash benchmarks/compare_revisions.sh OLD_REV [NEW_REV|worktree]" >&2
    exit 2
}
[[ $# -ge 1 && $# -le 2 ]] || usage
OLD_REV=$1
NEW_REV=${2:-worktree}

REPO=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
BENCHES=${BENCHES:-"overhead waiters stampede django_views flask_views"}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-300}

OVERHEAD_OPTS=${OVERHEAD_OPTS:-"--rounds=21 --ops=300"}
WAITERS_OPTS=${WAITERS_OPTS:-"--rounds=15 --processes=4 --threads=4"}
STAMPEDE_OPTS=${STAMPEDE_OPTS:-"--duration=5"}
DJANGO_VIEWS_OPTS=${DJANGO_VIEWS_OPTS:-"--rounds=11 --ops=200 --http-rounds=5 --duration=0.5"}
FLASK_VIEWS_OPTS=${FLASK_VIEWS_OPTS:-"--rounds=11 --ops=200 --http-rounds=5 --duration=0.5"}

command -v redis-server >/dev/null || { echo "redis-server is not on PATH" >&2; exit 1; }
[[ -x $PYTHON ]] || { echo "no python at $PYTHON" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cacheplug-compare.XXXXXX")
cleanup() {
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        echo "kept: $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT

# -- the trees ------------------------------------------------------------------------------

extract() { # extract REV DIR
    local rev=$1 dir=$2
    mkdir -p "$dir"
    if [[ $rev == worktree ]]; then
        tar -C "$REPO" -cf - \
            --exclude=./.git --exclude='./.venv*' --exclude='__pycache__' \
            --exclude=./.mypy_cache --exclude=./.pytest_cache --exclude=./.ruff_cache \
            --exclude=./.hypothesis --exclude=./.import_linter_cache . |
            tar -x -C "$dir"
    else
        git -C "$REPO" archive "$rev" | tar -x -C "$dir"
    fi
}

describe() { # describe REV
    if [[ $1 == worktree ]]; then
        local dirty
        dirty=$(git -C "$REPO" status --porcelain | wc -l)
        echo "worktree (HEAD $(git -C "$REPO" rev-parse --short HEAD), $dirty paths changed or untracked)"
    else
        echo "$1 ($(git -C "$REPO" log -1 --format='%h %cs %s' "$1" | cut -c1-90))"
    fi
}

OLD_DIR=$TMP/old
NEW_DIR=$TMP/new
OLD_LABEL="OLD $OLD_REV"
NEW_LABEL="NEW $NEW_REV"
extract "$OLD_REV" "$OLD_DIR"
extract "$NEW_REV" "$NEW_DIR"

# -- proof that each tree's own packages are imported ---------------------------------------

PROBE=$TMP/probe
mkdir -p "$PROBE" "$TMP/logs" "$TMP/cwd"
cat >"$PROBE/sitecustomize.py" <<'EOF'
# compare_revisions.sh: log where this process finds cacheplug's packages, by asking the
# finders after this one in sys.meta_path in order, as the import system would.
import os
import sys

_LOG = os.environ.get("CMP_IMPORT_LOG")
_NAMES = {"cacheplug", "cacheplug_django", "cacheplug_flask"}


class _CompareProbe:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] not in _NAMES or not _LOG:
            return None
        for finder in sys.meta_path:
            if finder is cls or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                with open(_LOG, "a") as log:
                    argv = " ".join(sys.argv)[:80]
                    log.write(f"{os.getpid()}\t{name}\t{spec.origin}\t{argv}\n")
                return spec
        return None


# The venv's editable install adds a finder that maps every cacheplug* module name to the
# checkout, submodules included: a module one tree lacks (cacheplug_django.models in an old
# revision, say) would be loaded from the checkout into that tree's package. Without it, each
# tree's packages are all there is.
sys.meta_path[:] = [
    finder
    for finder in sys.meta_path
    if not str(getattr(finder, "__module__", "")).startswith("__editable__")
]
sys.meta_path.insert(0, _CompareProbe)
EOF

run_in() { # run_in TREE LOGFILE COMMAND...: the tree's packages first, from a neutral cwd
    local tree=$1 log=$2
    shift 2
    (cd "$TMP/cwd" && env PYTHONPATH="$tree:$tree/benchmarks:$PROBE" CMP_IMPORT_LOG="$log" \
        PYTHONNOUSERSITE=1 "$@")
}

check_imports() { # check_imports TREE LOG: every logged origin must be inside TREE
    local tree=$1 log=$2
    if [[ ! -s $log ]]; then
        echo "  import check: nothing imported cacheplug (see the output above)"
        return 1
    fi
    local outside procs
    outside=$(awk -F'\t' -v t="$tree/" 'index($3, t) != 1' "$log")
    procs=$(cut -f1 "$log" | sort -u | wc -l)
    if [[ -n $outside ]]; then
        echo "  import check: FAILED, imported from outside $tree:"
        echo "$outside" | sed 's/^/    /'
        return 1
    fi
    echo "  import check: OK, $(wc -l <"$log") imports of cacheplug/_django/_flask in $procs processes, all from $tree"
}

echo "compare_revisions: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  $("$PYTHON" -c 'import sys, redis; print("python", sys.version.split()[0], "redis-py", redis.__version__)'), $(redis-server --version | cut -d' ' -f3)"
echo "  $OLD_LABEL: $(describe "$OLD_REV")  -> $OLD_DIR"
echo "  $NEW_LABEL: $(describe "$NEW_REV")  -> $NEW_DIR"
echo
echo "Where each tree's packages are imported from (PYTHONPATH=<tree>:<tree>/benchmarks):"
for side in OLD NEW; do
    if [[ $side == OLD ]]; then tree=$OLD_DIR; else tree=$NEW_DIR; fi
    log=$TMP/logs/import-check-$side.tsv
    echo "  $side:"
    if run_in "$tree" "$log" "$PYTHON" -c '
import cacheplug, cacheplug_django, cacheplug_flask
for m in (cacheplug, cacheplug_django, cacheplug_flask):
    print("    ", m.__name__, m.__file__)
' 2>&1; then
        check_imports "$tree" "$log" || true
    else
        echo "    import FAILED in this tree (its benchmarks will fail too)"
    fi
done
echo "  (editable install in the venv, for contrast: $(cd "$TMP/cwd" && "$PYTHON" -c 'import cacheplug; print(cacheplug.__file__)' 2>&1 | tail -1))"

# -- the benchmarks -------------------------------------------------------------------------

opts_for() { # the option string for a benchmark
    case $1 in
    overhead) echo "$OVERHEAD_OPTS" ;;
    waiters) echo "$WAITERS_OPTS" ;;
    stampede) echo "$STAMPEDE_OPTS" ;;
    django_views) echo "$DJANGO_VIEWS_OPTS" ;;
    flask_views) echo "$FLASK_VIEWS_OPTS" ;;
    *) echo "" ;;
    esac
}

accepts() { # accepts FILE --option: does the script declare this option?
    grep -q -- "\"${2}\"" "$1"
}

# The lines that carry the numbers: ratios, targets, latencies, loader calls, section
# headers; the per-second histograms and bar charts are left to the full log.
key_lines() {
    grep -E \
        -e '[0-9.]+x( |$)|target|MISSED|OK|loader calls|requests served|p50|p99|req/s|us/op|answered|hits|executions' \
        -e '^[0-9A-Za-z].*:?$' \
        -e 'Error|Traceback|FAILED|SKIPPED|timed out' "$1" |
        grep -v -E '^\s+[0-9]+-[0-9]+ *s \|' || true
}

declare -A STATUS DURATION
SECONDS_TOTAL_START=$SECONDS
for bench in $BENCHES; do
    echo
    echo "=================================================================================="
    echo "== $bench"
    old_file=$OLD_DIR/benchmarks/$bench.py
    new_file=$NEW_DIR/benchmarks/$bench.py
    args=()
    for opt in $(opts_for "$bench"); do
        name=${opt%%=*}
        missing=()
        [[ -f $old_file ]] && ! accepts "$old_file" "$name" && missing+=(OLD)
        [[ -f $new_file ]] && ! accepts "$new_file" "$name" && missing+=(NEW)
        if ((${#missing[@]})); then
            echo "   note: $opt dropped for both trees: not accepted by ${missing[*]}"
        else
            args+=("$opt")
        fi
    done
    echo "   options (both trees): ${args[*]:-(defaults)}"
    for side in OLD NEW; do
        if [[ $side == OLD ]]; then
            tree=$OLD_DIR label=$OLD_LABEL
        else
            tree=$NEW_DIR label=$NEW_LABEL
        fi
        out=$TMP/logs/$bench-$side.txt
        imports=$TMP/logs/$bench-$side-imports.tsv
        echo
        echo "---- $bench, $label ----"
        if [[ ! -f $tree/benchmarks/$bench.py ]]; then
            echo "   benchmarks/$bench.py does not exist in this tree: skipped" | tee "$out"
            STATUS[$bench-$side]="missing"
            continue
        fi
        start=$SECONDS
        rc=0
        run_in "$tree" "$imports" timeout --kill-after=15 "$BENCH_TIMEOUT" \
            "$PYTHON" "$tree/benchmarks/$bench.py" "${args[@]}" >"$out" 2>&1 || rc=$?
        DURATION[$bench-$side]=$((SECONDS - start))
        if ((rc == 124 || rc == 137)); then
            echo "   timed out after ${BENCH_TIMEOUT}s" >>"$out"
        fi
        cat "$out"
        echo "   [$bench $side: exit $rc, ${DURATION[$bench-$side]}s]"
        if ! check_imports "$tree" "$imports" && ((rc == 0)); then
            rc=99
        fi
        STATUS[$bench-$side]=$([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)")
    done
done

echo
echo "=================================================================================="
echo "== Key lines, OLD then NEW"
for bench in $BENCHES; do
    for side in OLD NEW; do
        if [[ $side == OLD ]]; then label=$OLD_LABEL; else label=$NEW_LABEL; fi
        echo
        echo "-- $bench, $label: ${STATUS[$bench-$side]:-not run}, ${DURATION[$bench-$side]:-0}s"
        [[ -f $TMP/logs/$bench-$side.txt ]] && key_lines "$TMP/logs/$bench-$side.txt" | sed 's/^/  /'
    done
done
echo
echo "total: $((SECONDS - SECONDS_TOTAL_START))s of benchmarks, finished $(date -u '+%H:%M:%S UTC')"
