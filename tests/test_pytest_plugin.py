"""cacheplug's pytest plugin as its users meet it: three small projects (a Django site, a
Flask app, a service on the core alone; ``tests/plugin_user/``) whose own test suites use
the fixtures ``cacheplug_isolated``, ``cacheplug_disabled`` and ``cacheplug_calls``. Each
runs in a pytest subprocess of its own — its rootdir, its ``pytest.ini``, its conftest —
with the plugin loaded from its entry point, on this run's real Redis server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROJECTS = Path(__file__).resolve().parent / "plugin_user"


def run_pytest(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **env}
    environment.pop("DJANGO_SETTINGS_MODULE", None)  # the project's pytest.ini chooses
    environment.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-c", "pytest.ini", *args],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def outcome(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """``{"passed": 8, ...}`` from pytest's summary line."""
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    return {word: int(count) for count, word in re.findall(r"(\d+) (\w+)", summary)}


PROJECT_REDIS = [
    ("django_bookstore", "BOOKSTORE_REDIS_URL"),
    ("flask_bakery", "BAKERY_REDIS_URL"),
    ("core_weather", "WEATHER_REDIS_URL"),
]
TESTS = {"django_bookstore": 9, "flask_bakery": 8, "core_weather": 7}


@pytest.mark.parametrize(("project", "variable"), PROJECT_REDIS)
def test_a_projects_suite_passes_with_the_fixtures(
    redis_url: str, project: str, variable: str
) -> None:
    # The three projects share the Redis database and reuse key names from test to test:
    # only the fixtures keep them apart.
    result = run_pytest(PROJECTS / project, {variable: redis_url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcome(result) == {"passed": TESTS[project]}, result.stdout


@pytest.mark.parametrize("switch", ["isolated", "disabled"])
@pytest.mark.parametrize(("project", "variable"), PROJECT_REDIS)
def test_a_projects_suite_notices_a_switch_that_does_nothing(
    redis_url: str, tmp_path: Path, project: str, variable: str, switch: str
) -> None:
    """The projects' tests are not vacuous: with ``Cache.isolated`` (or ``disabled``) made a
    no-op by a plugin loaded first, some of them fail."""
    (tmp_path / "sabotage.py").write_text(
        "from contextlib import nullcontext\n"
        "from cacheplug import Cache\n"
        f"Cache.{switch} = lambda self, *args: nullcontext()\n"
    )
    result = run_pytest(
        PROJECTS / project,
        {variable: redis_url, "PYTHONPATH": str(tmp_path)},
        "-p",
        "sabotage",
    )
    assert outcome(result).get("failed", 0) > 0, result.stdout


def test_the_plugin_says_what_it_needs(tmp_path: Path) -> None:
    """Without Django and without a ``cacheplug_cache`` of the project's, or with one that
    gives something else than a cache, a test that asks for a fixture errors, saying what to
    do."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_forgot.py").write_text("def test_isolated(cacheplug_isolated):\n    pass\n")
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "conftest.py").write_text(
        "import pytest\n\n@pytest.fixture\ndef cacheplug_cache():\n    return 'my cache'\n"
    )
    (wrong / "test_wrong.py").write_text("def test_calls(cacheplug_disabled):\n    pass\n")
    result = run_pytest(tmp_path, {})
    assert outcome(result) == {"errors": 2}, result.stdout
    assert "no cacheplug cache to act on" in result.stdout
    assert "define a fixture 'cacheplug_cache' in conftest.py" in result.stdout
    assert "cacheplug_cache gave 'my cache', which is not a cache" in result.stdout
