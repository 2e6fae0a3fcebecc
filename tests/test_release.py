"""The release engineering: the locks cover pyproject.toml's extras, the environment under test
is exactly its lock, and the package under test is the one the run meant (this checkout, or
the installed wheel with its data files).

``scripts/test.sh`` and ``scripts/test-matrix.sh`` say which lock and which package a run
uses, in ``CACHEPLUG_LOCK`` (default ``requirements/dev.lock``) and ``CACHEPLUG_UNDER_TEST``
(``checkout``, the default, or ``wheel``).
"""

from __future__ import annotations

import os
import re
import tomllib
from importlib import metadata, resources
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import cacheplug

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]

# Each lock, and the extras it is compiled from (scripts/upgrade-deps.sh).
LOCKS = {
    "requirements/dev.lock": sorted(EXTRAS),
    "requirements/demo.lock": ["django", "flask", "demo", "redis"],
    "requirements/oldest.lock": ["redis", "django", "flask", "demo", "test"],
}
# What `python -m venv` puts in every venv before the lock is installed.
VENV_SEEDS = {"pip", "setuptools"}

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.M)


def pins(lock: str) -> dict[str, Version]:
    """A lock's ``name==version`` lines, by canonical name."""
    text = (ROOT / lock).read_text()
    return {canonicalize_name(name): Version(version) for name, version in _PIN.findall(text)}


def requirements(extras: list[str]) -> list[Requirement]:
    return [Requirement(line) for extra in extras for line in EXTRAS[extra]]


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_package_an_extra_names_is_pinned_within_its_range(lock: str) -> None:
    pinned = pins(lock)
    wrong = []
    for requirement in requirements(LOCKS[lock]):
        name = canonicalize_name(requirement.name)
        if name not in pinned:
            wrong.append(f"{requirement}: not in {lock}")
        elif pinned[name] not in requirement.specifier:
            wrong.append(f"{requirement}: {lock} pins {pinned[name]}")
    assert not wrong, "run 'bash scripts/upgrade-deps.sh':\n" + "\n".join(wrong)


def test_the_oldest_lock_holds_every_direct_dependency_at_its_floor() -> None:
    pinned = pins("requirements/oldest.lock")
    above = []
    for requirement in requirements(LOCKS["requirements/oldest.lock"]):
        floors = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
        if floors and pinned[canonicalize_name(requirement.name)] != max(floors):
            above.append(f"{requirement}: pinned {pinned[canonicalize_name(requirement.name)]}")
    assert not above, "\n".join(above)


def test_the_demo_lock_agrees_with_the_dev_lock() -> None:
    dev = pins("requirements/dev.lock")
    differ = {
        name: (version, dev.get(name))
        for name, version in pins("requirements/demo.lock").items()
        if dev.get(name) != version
    }
    assert not differ


def test_the_environment_holds_exactly_the_lock() -> None:
    """Two installs from one lock give the same versions: every pin installed as pinned, and
    nothing else (but cacheplug itself and the venv's own seeds)."""
    lock = os.environ.get("CACHEPLUG_LOCK", "requirements/dev.lock")
    pinned = pins(lock)
    installed = {
        canonicalize_name(dist.metadata["Name"]): Version(dist.version)
        for dist in metadata.distributions()
    }
    installed.pop("cacheplug", None)
    for seed in VENV_SEEDS - set(pinned):
        installed.pop(seed, None)
    missing = {name: str(version) for name, version in pinned.items() if name not in installed}
    extra = {name: str(version) for name, version in installed.items() if name not in pinned}
    other = {
        name: f"{installed[name]} (lock: {version})"
        for name, version in pinned.items()
        if name in installed and installed[name] != version
    }
    assert (missing, extra, other) == ({}, {}, {}), f"the environment is not {lock}"


def test_the_package_under_test_is_the_one_the_run_means() -> None:
    under_test = os.environ.get("CACHEPLUG_UNDER_TEST", "checkout")
    location = Path(cacheplug.__file__).resolve().parent
    if under_test == "checkout":
        assert location == ROOT / "cacheplug"
    else:
        assert under_test == "wheel", f"CACHEPLUG_UNDER_TEST={under_test!r}"
        assert "site-packages" in location.parts, location
        assert not (ROOT / "cacheplug").exists(), "the source tree shadows the wheel"


@pytest.mark.parametrize("package", ["cacheplug", "cacheplug_django", "cacheplug_flask"])
def test_the_installed_package_has_its_data_files(package: str) -> None:
    files = resources.files(package)
    assert files.joinpath("py.typed").is_file()
    if package == "cacheplug":
        lua = {path.name for path in files.joinpath("stores", "redis", "lua").iterdir()}
        assert {"acquire_lease.lua", "invalidate.lua", "write.lua"} <= lua, lua


def test_the_version_has_one_source() -> None:
    assert metadata.version("cacheplug") == cacheplug.__version__
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert "version" not in PYPROJECT["project"]
