"""No import cycle between the modules of an adapter (``cacheplug_django``,
``cacheplug_flask``), counting imports inside functions and under ``TYPE_CHECKING``, as
``tests/test_architecture.py`` checks the core's.

Django's setting once imported its middleware for the page rules (the middleware, its views
and the cache built from the setting importing the setting back), and Flask's commands and
``cached_view`` named the extension that adds them: the page rules have their own module below
both, and the commands and views name only what they use of the extension (a ``Protocol``).
"""

from __future__ import annotations

import pytest
from test_architecture import import_cycles, imported_modules, module_name, source_files

ADAPTERS = ("cacheplug_django", "cacheplug_flask")

# Import cycles left between an adapter's modules, each with the reason it has to stay: none
# today. Drop a cycle once it is broken; never add one.
ADAPTER_IMPORT_CYCLES: dict[frozenset[str], str] = {}


def adapter_import_graph(package: str) -> dict[str, set[str]]:
    """Which of ``package``'s modules each of its modules imports."""
    files = {module_name(relative): path for relative, path in source_files(package)}
    known = set(files)
    return {
        module: imported_modules(path.read_text(), module, path.name == "__init__.py", known)
        for module, path in files.items()
    }


@pytest.mark.parametrize("package", ADAPTERS)
def test_no_new_import_cycle_in_an_adapter(package: str) -> None:
    graph = adapter_import_graph(package)
    assert len(graph) > 5  # the walk found the adapter's modules
    listed = {cycle for cycle in ADAPTER_IMPORT_CYCLES if min(cycle).split(".")[0] == package}
    found = import_cycles(graph)
    new = sorted(sorted(cycle) for cycle in found - listed)
    assert new == [], "an import cycle: the lower module must not import the upper one"
    gone = sorted(sorted(cycle) for cycle in listed - found)
    assert gone == [], "no longer a cycle: drop it from ADAPTER_IMPORT_CYCLES"
