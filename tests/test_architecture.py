"""The architecture rules of issue 17 that hold today, checked rather than hoped for.

- The import contracts in pyproject.toml (``[tool.importlinter]``): the core imports no
  framework, the adapters never import each other, the layers run one way (adapters ->
  integration -> Cache -> features -> engine -> encoding -> stores), and the engine imports
  no feature.
- Nothing outside ``cacheplug/`` imports a private module of the core: ruff's banned-api
  (TID251) lists every one of them, because ruff cannot glob.
- No module over 400 lines, and no class built on a chain of more than three project classes;
  today's offenders are listed here, and the lists may only shrink.
- No import cycle between the core's modules, counting imports inside functions and under
  ``TYPE_CHECKING`` (import-linter's layers cannot say "no cycle at all"): the cycles left are
  listed here, and the list may only shrink.

The lint tools come with the ``lint`` extra, which only the pinned set installs
(requirements/dev.lock; see pyproject.toml): the two tests that run them are collected where
the lock under test pins them, as ruff and mypy themselves run only there.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import pkgutil
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = ("cacheplug", "cacheplug_django", "cacheplug_flask")
LOCK = os.environ.get("CACHEPLUG_LOCK", "requirements/dev.lock")
LINT_PINNED = re.search(r"^import-linter==", (ROOT / LOCK).read_text(), re.M) is not None

MAX_LINES = 400
# Modules over MAX_LINES, each to be split: drop a name once its module is split; never add one.
LONG_MODULES: set[str] = set()

MAX_CHAIN = 3
# Classes built on a chain of more than MAX_CHAIN project classes. The Cache chain
# (CacheCore <- ReadPolicies <- Invalidations <- AsyncCacheAPI <- Cache) is gone: Cache composes
# an engine (EngineState <- Engine) and its Loads, Replicas and Invalidator components.
DEEP_CLASSES: set[str] = set()

# Today's import cycles between the core's modules (each a set of modules that import one
# another, directly or not), imports inside functions and under TYPE_CHECKING included. The
# Cache chain's friends (_locks, _inspect, _writes, _write_behind, _shared_stats, _decorators)
# imported Cache back, making one cycle of 11 files, and _config/_local another: the friends
# now take a cacheplug._engine.protocol.CacheState and CacheOptions has its own module. Drop a cycle
# once it is broken; never add one.
IMPORT_CYCLES: set[frozenset[str]] = set()

# Files outside cacheplug/ and tests/ that still import a private module of the core, each
# exempted from TID251 by name in pyproject.toml: drop a name once its file uses public names.
PRIVATE_IMPORT_EXCEPTIONS: set[str] = set()  # none left


def package_dir(package: str) -> Path:
    """Where a package's files are: this checkout, or the installed wheel under test."""
    spec = importlib.util.find_spec(package)
    assert spec is not None, package
    assert spec.submodule_search_locations, package
    return Path(next(iter(spec.submodule_search_locations)))


def source_files(package: str) -> Iterator[tuple[str, Path]]:
    """Each ``.py`` file of a package, as its path from the repository root and its file."""
    base = package_dir(package)
    for path in sorted(base.rglob("*.py")):
        yield f"{package}/{path.relative_to(base).as_posix()}", path


def module_name(relative: str) -> str:
    parts = relative.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def outermost_private(module: str) -> str | None:
    """``cacheplug.stores._redis_fills`` for itself, ``cacheplug._engine`` for
    ``cacheplug._engine.reads`` (banning a module bans its submodules), None if public."""
    parts = module.split(".")
    for position, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[: position + 1])
    return None


def core_private_modules() -> set[str]:
    found = {outermost_private(module_name(relative)) for relative, _ in source_files("cacheplug")}
    return {module for module in found if module is not None}


RUFF_LINT = PYPROJECT["tool"]["ruff"]["lint"]
BANNED = RUFF_LINT["flake8-tidy-imports"]["banned-api"]


# -- the import contracts ---------------------------------------------------------------------

if LINT_PINNED:

    def test_the_import_contracts_hold() -> None:
        contracts = PYPROJECT["tool"]["importlinter"]["contracts"]
        assert {contract["type"] for contract in contracts} >= {
            "forbidden",
            "independence",
            "layers",
        }
        result = subprocess.run(
            [Path(sys.executable).with_name("lint-imports"), "--no-cache", "--no-logo"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        report = result.stdout + result.stderr
        assert result.returncode == 0, report
        for contract in contracts:  # each one was read and checked, not silently dropped
            assert f"{contract['name']} KEPT" in report, report
        assert f"Contracts: {len(contracts)} kept, 0 broken." in report, report

    def test_ruff_bans_every_private_module_outside_the_core_and_its_tests() -> None:
        private = sorted(core_private_modules())
        probe = "".join(f"import {module}\n" for module in private) + "".join(
            f"print({module})\n" for module in private
        )

        def banned_in(filename: str) -> set[str]:
            result = subprocess.run(
                [
                    Path(sys.executable).with_name("ruff"),
                    "check",
                    "--no-cache",
                    "--output-format=json",
                    "--stdin-filename",
                    filename,
                    "-",
                ],
                cwd=ROOT,
                input=probe,
                capture_output=True,
                text=True,
            )
            assert result.returncode in (0, 1), result.stderr
            return {
                re.search(r"`([\w.]+)` is banned", found["message"]).group(1)  # type: ignore[union-attr]
                for found in json.loads(result.stdout)
                if found["code"] == "TID251"
            }

        for outside in ("benchmarks/probe.py", "cacheplug_django/probe.py", "example_probe.py"):
            assert banned_in(outside) == set(private), outside
        for inside in ("cacheplug/probe.py", "cacheplug/stores/probe.py", "tests/core/probe.py"):
            assert banned_in(inside) == set(), inside


# -- the banned-api list ----------------------------------------------------------------------


def test_the_banned_api_lists_exactly_the_private_modules_of_the_core() -> None:
    """A new private module is banned outside the core the day it appears; a moved one is
    unlisted (ruff cannot glob ``cacheplug._*``)."""
    listed = {name for name in BANNED if name.startswith("cacheplug.")}
    private = core_private_modules()
    assert sorted(private - listed) == [], "add to [tool.ruff.lint.flake8-tidy-imports.banned-api]"
    assert sorted(listed - private) == [], "no such module: drop it from the banned-api list"
    for name in listed:
        assert BANNED[name]["msg"].startswith("private: use the public API"), name


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (``from a import b`` counts ``a.b`` too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_only_the_listed_files_outside_the_core_are_exempt_from_the_ban() -> None:
    exempt = {
        pattern
        for pattern, codes in RUFF_LINT["per-file-ignores"].items()
        if any("TID251".startswith(code) for code in codes)
    }
    assert exempt == {"cacheplug/**", "tests/**"} | PRIVATE_IMPORT_EXCEPTIONS
    for relative in sorted(PRIVATE_IMPORT_EXCEPTIONS):
        private = {
            name
            for name in imports_of(ROOT / relative)
            if any(name == banned or name.startswith(banned + ".") for banned in BANNED)
        }
        assert private, f"{relative} imports no private module now: drop its exception"


# -- module size, class depth -----------------------------------------------------------------


def test_no_module_grows_over_400_lines() -> None:
    long = {
        relative
        for package in PACKAGES
        for relative, path in source_files(package)
        if len(path.read_text().splitlines()) > MAX_LINES
    }
    assert sorted(long - LONG_MODULES) == [], "over 400 lines: find the second job inside"
    assert sorted(LONG_MODULES - long) == [], "no longer over 400 lines: drop it from the list"


def all_project_modules() -> None:
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            importlib.import_module(info.name)


def project_classes() -> Iterator[type]:
    """Every class the project's modules define, nested or not (found from ``object``)."""
    seen: set[type] = set()
    pending: list[type] = [object]
    while pending:
        for subclass in type.__subclasses__(pending.pop()):
            if subclass not in seen:
                seen.add(subclass)
                pending.append(subclass)
    for klass in seen:
        if in_project(klass):
            yield klass


def in_project(klass: type) -> bool:
    module = vars(klass).get("__module__")  # a descriptor on some builtin types
    return isinstance(module, str) and module.split(".")[0] in PACKAGES


@cache
def chain(klass: type) -> int:
    """The longest line of project classes from ``klass`` up through its bases, itself
    included."""
    bases = [base for base in klass.__bases__ if in_project(base)]
    return 1 + max(map(chain, bases), default=0)


def test_no_class_is_built_on_a_chain_of_more_than_three_project_classes() -> None:
    all_project_modules()
    classes = list(project_classes())
    assert len(classes) > 100  # the walk found the project's classes
    deep = {
        f"{klass.__module__}.{klass.__qualname__}" for klass in classes if chain(klass) > MAX_CHAIN
    }
    assert sorted(deep - DEEP_CLASSES) == [], "compose a state object instead of inheriting"
    assert sorted(DEEP_CLASSES - deep) == [], "no longer deep: drop it from the list"


# -- import cycles ----------------------------------------------------------------------------


def imported_modules(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``module`` imports anywhere in ``source``: at the top,
    inside functions, under ``TYPE_CHECKING``. ``from a import b`` imports ``a.b`` when that
    is a module, else ``a``; a module imports the nearest ``known`` module above a name."""

    def nearest(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    package = module if is_package else module.rpartition(".")[0]
    found: set[str | None] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(nearest(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                origin = f"{base}.{node.module}" if node.module else base
            else:
                origin = node.module or ""
            for alias in node.names:
                submodule = f"{origin}.{alias.name}"
                found.add(submodule if submodule in known else nearest(origin))
    return {name for name in found if name is not None and name != module}


def import_cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: set[frozenset[str]] = set()
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        cycles.add(frozenset(component))
    return cycles


def core_import_graph() -> dict[str, set[str]]:
    files = {module_name(relative): path for relative, path in source_files("cacheplug")}
    known = set(files)
    return {
        module: imported_modules(path.read_text(), module, path.name == "__init__.py", known)
        for module, path in files.items()
    }


def test_the_cycle_finder_counts_imports_inside_functions_and_for_typing() -> None:
    source = """
from typing import TYPE_CHECKING
from . import b
if TYPE_CHECKING:
    from pkg.c import Thing
def f():
    from .d import helper
    import pkg.e.inner
"""
    known = {"pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d", "pkg.e"}
    assert imported_modules(source, "pkg.a", False, known) == {
        "pkg.b",
        "pkg.c",
        "pkg.d",
        "pkg.e",
    }
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}, "f": {"f"}}
    assert import_cycles(graph) == {frozenset("abc")}


def test_no_new_import_cycle_in_the_core() -> None:
    graph = core_import_graph()
    assert len(graph) > 50  # the walk found the core's modules
    found = import_cycles(graph)
    new = sorted(sorted(cycle) for cycle in found - IMPORT_CYCLES)
    assert new == [], "an import cycle: the lower module must not import the upper one"
    gone = sorted(sorted(cycle) for cycle in IMPORT_CYCLES - found)
    assert gone == [], "no longer a cycle: drop it from IMPORT_CYCLES"
