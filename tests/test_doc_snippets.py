"""Every code block of README.md and docs/*.md is run, so the docs cannot drift from the code.

How each kind of block is checked (conventions: ``doc_snippets.py`` and ``docs/index.md``):

- ``python``: executed in a fresh namespace made of its setup's preamble (below); it fails
  the test if it raises. ``django-settings`` blocks are then applied with
  ``override_settings`` and checked (system checks, a round trip through each cache), and a
  ``flask`` block's ``create_app()`` is called.
- ``django``: rendered with Django's template engine (``{% load cacheplug %}`` and all) in
  the test project, twice: the second render is a hit.
- ``jinja``: rendered twice by the Jinja environment of a Flask app with ``CachePlug``.
- ``bash``: checked with ``bash -n``. Then, line by line: ``python manage.py cacheplug_*``
  runs in-process (``call_command``) in the Django test project; ``flask ... cacheplug ...``
  runs in-process (Click's runner) against a small Flask app; both must exit 0. Other
  commands are not run (installers, servers, the demo, the whole test suite): every repository
  path they name must exist, and every ``pip install`` extra must be declared in
  pyproject.toml.
- ``text`` and ``mermaid``: not code (``doc_snippets.NOT_CODE``); counted, not run.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import io
import re
import shlex
import subprocess
import threading
import tomllib
from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from doc_snippets import NOT_CODE, PAGES, ROOT, RUN_LANGUAGES, SETUPS, Block, all_blocks
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from cacheplug import Cache
from cacheplug.testing.cluster import RedisClusterSetup
from cacheplug_flask import CachePlug

BLOCKS = all_blocks()
SECRET = "docs-secret-not-for-production"
LOCAL_REDIS = "redis://127.0.0.1:6379"
LOCAL_CLUSTER = "redis+cluster://127.0.0.1:7000"

# The names a python block may use without defining them, by setup.
CORE_PREAMBLE = f"""
import asyncio
import functools
from cacheplug import *
from cacheplug import RedisStore
from cacheplug.testing import FakeClock

SECRET_KEY = {SECRET!r}
cache = Cache({LOCAL_REDIS + "/0"!r}, namespace="docs", secret=SECRET_KEY)
key, keys, value = "docs:key", ["docs:a", "docs:b"], {{"name": "teapot"}}
mapping = {{"docs:a": 1, "docs:b": 2}}
uid, pid = 7, 42

class Product:
    def __init__(self, pk=42, name="teapot"):
        self.pk, self.name = pk, name

def loader():
    return {{"loaded": True}}

load = render_home = load_profile = loader

def db_load(uid):
    return {{"id": uid}}

async def fetch_async():
    return {{"fetched": True}}

def save(value):
    return value

save_to_db = save

def callback(store_key):
    pass
"""

DJANGO_PREAMBLE = """
from django.test import RequestFactory
from shop.models import Category, Product, Review

request = RequestFactory().get("/")
"""

FLASK_PREAMBLE = """
from flask import Blueprint, Flask, g
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

db = SQLAlchemy()

class Product(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(default="")

bp = Blueprint("shop", __name__)
"""

KNOWN_SETTINGS = frozenset({"INSTALLED_APPS", "MIDDLEWARE", "CACHEPLUG", "CACHES", "SECRET_KEY"})


def test_every_block_has_a_known_language_and_setup() -> None:
    wrong = []
    for block in BLOCKS:
        if block.language in NOT_CODE:
            continue
        if block.language not in RUN_LANGUAGES:
            wrong.append(
                f"{block.id}: language {block.language!r} (name one of "
                f"{sorted(RUN_LANGUAGES | set(NOT_CODE))})"
            )
        elif block.setup not in SETUPS[block.language]:
            wrong.append(
                f"{block.id}: setup {block.setup!r} (known: {sorted(SETUPS[block.language])})"
            )
    assert not wrong, "\n".join(wrong)


def test_not_code_blocks_are_what_they_say() -> None:
    diagram_types = ("graph", "flowchart", "sequenceDiagram", "stateDiagram", "classDiagram")
    for block in BLOCKS:
        if block.language == "mermaid":
            assert block.code.lstrip().startswith(diagram_types), block.id


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def doc_cluster() -> Iterator[RedisClusterSetup]:
    with RedisClusterSetup() as cluster:
        yield cluster


@pytest.fixture
def made_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Cache]]:
    """Every ``Cache`` a block makes, closed after it."""
    made: list[Cache] = []
    original = Cache.__init__

    def init(self: Cache, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Cache, "__init__", init)
    yield made
    for cache in made:
        cache.close(flush_timeout=1.0)


def localize(code: str, redis_url: str, cluster_url: str | None = None) -> str:
    """The block with the documented addresses replaced by the test servers'."""
    code = code.replace(LOCAL_REDIS, redis_url.removesuffix("/0"))
    if cluster_url is not None:
        code = code.replace(LOCAL_CLUSTER, cluster_url)
    return code


def run_python(code: str, namespace: dict[str, Any], name: str) -> None:
    """Execute ``code`` (top-level ``await`` allowed) in ``namespace``."""
    compiled = compile(code, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    try:
        result = eval(compiled, namespace)  # a coroutine when the block awaits
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    finally:
        for value in namespace.values():  # e.g. queue.start()'s: stop its worker
            if isinstance(value, threading.Event):
                value.set()


def preamble(source: str, **names: Any) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "docs_snippet", **names}
    exec(compile(source, "preamble", "exec", dont_inherit=True), namespace)
    return namespace


# -- python ----------------------------------------------------------------------------------


def _params(language: str) -> list[Any]:
    """The blocks of ``language``; those that reach Django's database get one (transactions
    commit for real, as invalidation after commit needs)."""
    params = []
    for block in BLOCKS:
        if block.language != language:
            continue
        django = block.setup.startswith("django") or "manage.py" in block.code
        marks = [pytest.mark.django_db(transaction=True)] if django else []
        params.append(pytest.param(block, id=block.id, marks=marks))
    return params


@pytest.mark.parametrize("block", _params("python"))
def test_python_block(
    block: Block, request: pytest.FixtureRequest, made_caches: list[Cache], redis_url: str
) -> None:
    runners: dict[str, Callable[[Block, pytest.FixtureRequest, str], None]] = {
        "core": _run_core,
        "cluster": _run_cluster,
        "django": _run_django,
        "django-settings": _run_django_settings,
        "flask": _run_flask,
    }
    runners[block.setup](block, request, redis_url)


def _run_core(block: Block, request: pytest.FixtureRequest, redis_url: str) -> None:
    code = localize(block.code, redis_url)
    run_python(code, preamble(localize(CORE_PREAMBLE, redis_url)), block.id)


def _run_cluster(block: Block, request: pytest.FixtureRequest, redis_url: str) -> None:
    cluster: RedisClusterSetup = request.getfixturevalue("doc_cluster")
    namespace = preamble(localize(CORE_PREAMBLE, cluster.url.replace("redis+cluster", "redis")))
    namespace["cache"].close()
    namespace["cache"] = Cache(cluster.url, namespace="docs", secret=SECRET)
    run_python(localize(block.code, redis_url, cluster.url), namespace, block.id)


def _django_cache() -> Any:
    from cacheplug_django import cache

    return cache


def _run_django(block: Block, request: pytest.FixtureRequest, redis_url: str) -> None:
    from cacheplug_django.warmers import _warmers

    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setattr(_warmers, "_registry", dict(_warmers._registry))  # a block's warmers
    try:
        run_python(localize(block.code, redis_url), preamble(DJANGO_PREAMBLE), block.id)
    finally:
        _django_cache().reset()


def _run_django_settings(block: Block, request: pytest.FixtureRequest, redis_url: str) -> None:
    from django.core.cache import caches
    from django.test import override_settings
    from django.utils.module_loading import import_string

    from cacheplug_django.backends import close_shared_cores
    from cacheplug_django.checks import check_settings

    cluster_url = None
    if LOCAL_CLUSTER in block.code:
        cluster_url = request.getfixturevalue("doc_cluster").url
    namespace: dict[str, Any] = {}
    run_python(localize(block.code, redis_url, cluster_url), namespace, block.id)
    defined = {name for name in namespace if name.isupper()}
    assert defined, f"{block.id}: a settings block that sets nothing"
    assert defined <= KNOWN_SETTINGS, f"the test cannot check {sorted(defined - KNOWN_SETTINGS)}"
    for app in namespace.get("INSTALLED_APPS", []):
        if isinstance(app, str):
            import_module(app)
    for middleware in namespace.get("MIDDLEWARE", []):
        if isinstance(middleware, str):
            import_string(middleware)
    overrides: dict[str, Any] = {
        name: namespace[name] for name in ("CACHES", "CACHEPLUG") if name in namespace
    }
    if "SECRET_KEY" in namespace:
        overrides["SECRET_KEY"] = namespace["SECRET_KEY"]
    try:
        with override_settings(**overrides):
            for alias in namespace.get("CACHES", {}):
                caches[alias].set("docs", [1, 2])
                assert caches[alias].get("docs") == [1, 2]
            if "CACHEPLUG" in namespace:
                assert check_settings() == []
                cache = _django_cache()
                cache.set("docs", [1, 2])
                assert cache.get("docs") == [1, 2]
                cache.reset()
    finally:
        close_shared_cores()
        _django_cache().reset()


def _run_flask(block: Block, request: pytest.FixtureRequest, redis_url: str) -> None:
    request.getfixturevalue("monkeypatch").chdir(request.getfixturevalue("tmp_path"))
    namespace = preamble(FLASK_PREAMBLE)
    try:
        run_python(localize(block.code, redis_url), namespace, block.id)
        create_app = namespace.get("create_app")
        if create_app is not None:
            namespace["app"] = app = create_app()
            with app.app_context():
                namespace["db"].create_all()
    finally:
        for value in list(namespace.values()):
            if isinstance(value, Flask):
                for state in value.extensions.get("cacheplug", {}).values():
                    state.cache.close()


# -- templates -------------------------------------------------------------------------------


@pytest.mark.parametrize("block", _params("django"))
def test_django_template_block(block: Block) -> None:
    from django.template import engines
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.LANGUAGE_CODE = "en"
    template = engines["django"].from_string(block.code)
    try:
        first = template.render({"products": []}, request)
        assert template.render({"products": []}, request) == first
    finally:
        _django_cache().reset()


@pytest.mark.parametrize("block", _params("jinja"))
def test_jinja_block(block: Block, redis_url: str) -> None:
    from flask import g, render_template_string

    app, _ = flask_shop(redis_url)
    try:
        with app.test_request_context("/"):
            g.locale = "en"
            first = render_template_string(block.code, products=[])
            assert render_template_string(block.code, products=[]) == first
    finally:
        app.extensions["cacheplug"]["CACHEPLUG"].cache.close()


def flask_shop(redis_url: str) -> tuple[Any, list[Any]]:
    """A small Flask + Flask-SQLAlchemy shop with ``CachePlug``: one product, a warmer
    ``products`` and a write-behind queue ``views`` (what the CLI pages name)."""
    db = SQLAlchemy()

    class Product(db.Model):  # type: ignore[name-defined,misc]
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(default="")

    app = Flask("docs_shop")
    app.config.update(
        SECRET_KEY=SECRET,
        SQLALCHEMY_DATABASE_URI="sqlite://",
        CACHEPLUG_STORE=redis_url,
        CACHEPLUG_NAMESPACE="docs-flask",
    )
    db.init_app(app)
    ext = CachePlug(app, sqlalchemy=db)
    sunk: list[Any] = []

    @ext.warmer("products")
    def warm_products() -> Iterator[str]:
        for product in db.session.scalars(db.select(Product)):
            key = f"product-name:{product.id}"
            ext.get_or_load(key, functools.partial(getattr, product, "name"), depends_on=[Product])
            yield key

    with app.app_context():
        db.create_all()
        db.session.add(Product(id=1, name="teapot"))
        db.session.commit()
        ext.write_behind("views", sunk.extend)
    return app, sunk


# -- bash ------------------------------------------------------------------------------------

_REPO_DIRS = frozenset(
    {
        "scripts",
        "example_project",
        "benchmarks",
        "docs",
        "tests",
        "cacheplug",
        "cacheplug_django",
        "cacheplug_flask",
    }
)


def _commands(code: str) -> Iterator[list[str]]:
    for line in code.replace("\\\n", " ").splitlines():
        for part in re.split(r"\s*(?:&&|;)\s*", line):
            words = shlex.split(part, comments=True)
            if words:
                yield words


@pytest.mark.parametrize("block", _params("bash"))
def test_bash_block(block: Block, request: pytest.FixtureRequest, redis_url: str) -> None:
    checked = subprocess.run(["bash", "-n"], input=block.code, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    flask_app: Any = None
    django_ready: list[bool] = []
    try:
        for words in _commands(block.code):
            if words[:2] == ["python", "manage.py"] and words[2].startswith("cacheplug_"):
                _manage_py(words[2:], request, django_ready)
            elif words[0] == "flask" and "cacheplug" in words:
                if flask_app is None:
                    flask_app, _ = flask_shop(redis_url)
                _flask_cli(flask_app, words)
            else:
                _check_not_run(words, extras)
    finally:
        if flask_app is not None:
            flask_app.extensions["cacheplug"]["CACHEPLUG"].cache.close()
        if any(w[:2] == ["python", "manage.py"] for w in _commands(block.code)):
            _django_cache().reset()


def _check_not_run(words: list[str], extras: set[str]) -> None:
    for word in words:
        path = word.split("=", 1)[-1]
        if path.split("/")[0] in _REPO_DIRS and "/" in path and not any(c in path for c in "*<>"):
            assert (ROOT / path).exists(), f"{path} named in a command does not exist"
    if "install" in words and any(w.endswith("pip") for w in words):
        for word in words:
            for named in re.findall(r"\[([^\]]+)\]", word):
                assert set(named.split(",")) <= extras, f"unknown extra in {word}"


def _manage_py(argv: list[str], request: pytest.FixtureRequest, ready: list[bool]) -> None:
    from django.core.management import call_command

    from cacheplug_django.warmers import registered

    product = import_module("shop.models").Product

    if not ready:
        ready.append(True)
        monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
        # The test project's "broken" warmer exists to fail: leave it out here.
        monkeypatch.setattr(
            "cacheplug_django.management.commands.cacheplug_warm.registered",
            lambda: {n: w for n, w in registered().items() if n != "broken"},
        )
        product.objects.create(pk=1, name="teapot")
        _django_cache().core.write_behind("views", lambda entries: None, durable=False)
    out = io.StringIO()
    call_command(*argv, stdout=out, stderr=io.StringIO())


def _flask_cli(app: Any, words: list[str]) -> None:
    args = words[1:]
    if args[:1] == ["--app"]:
        args = args[2:]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, f"{shlex.join(words)}: {result.output}"


def test_the_docs_name_every_page_of_docs_in_the_index() -> None:
    index = (ROOT / "docs" / "index.md").read_text()
    for page in sorted((ROOT / "docs").glob("*.md")):
        if page.name != "index.md":
            assert f"({page.name}" in index, f"docs/index.md does not link {page.name}"


# What a page of a published package must not point at: the developers' own design notes
# beside the repository, their issue tracker's numbers, sections of a document users lack.
OUTSIDE_REFERENCES = re.compile(r"\.\./shared|ARCHITECTURE|\bissues? #?\d|#\d+\b(?!\w)")


def test_the_docs_refer_to_nothing_outside_the_repository() -> None:
    found = [
        f"{page.relative_to(ROOT)}:{number}: {line.strip()}"
        for page in PAGES
        for number, line in enumerate(page.read_text().splitlines(), start=1)
        if OUTSIDE_REFERENCES.search(line)
    ]
    assert not found, "\n".join(found)


def test_the_readme_opens_with_the_install_lines_and_both_quickstarts() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:60])
    for needed in (
        'pip install "cacheplug[django,redis]"',
        'pip install "cacheplug[flask,redis]"',
        "INSTALLED_APPS",
        "CACHEPLUG = {",
        "@cache_view(",
        "depends_on=",
        "CachePlug(app",
        "cached_view(",
    ):
        assert needed in first_screen, f"README.md's first 60 lines lack {needed!r}"
    quickstarts = [block for block in BLOCKS if block.page == "README.md" and block.line <= 60]
    assert {block.setup for block in quickstarts} >= {"django-settings", "django", "flask"}


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of ``page``."""
    found = set()
    for block_free in re.sub(r"```.*?```", "", page.read_text(), flags=re.S).splitlines():
        heading = re.match(r"#+ (.*)", block_free)
        if heading:
            found.add(re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-"))
    return found


def test_links_between_pages_resolve() -> None:
    broken = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
