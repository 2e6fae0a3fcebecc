"""The extension itself: configuration, several apps and caches, the Jinja fragment tag, and
the CLI through Flask's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask, render_template_string
from flask_shop import Product, cache, create_app, db
from jinja2 import TemplateSyntaxError

from cacheplug import ConfigurationError, MemoryStore, RedisStore
from cacheplug_flask import CachePlug


def test_defaults_are_seeded_and_the_secret_comes_from_secret_key() -> None:
    app = Flask("plain")
    app.config["SECRET_KEY"] = "k"
    ext = CachePlug(app)
    assert app.config["CACHEPLUG_NAMESPACE"] == "default"
    assert app.config["CACHEPLUG_DEFAULT_TTL"] == 300.0
    with app.app_context():
        assert isinstance(ext.cache.store, MemoryStore)
        assert ext.cache._engine._codec.signed


def test_init_app_twice_is_refused() -> None:
    app = Flask("twice")
    ext = CachePlug(app)
    with pytest.raises(RuntimeError, match="already set up"):
        ext.init_app(app)


def test_several_apps_and_several_caches(redis_url: str) -> None:
    ext = CachePlug()
    sessions = CachePlug(config_prefix="CACHEPLUG_SESSIONS")
    one, two = Flask("one"), Flask("two")
    two.config["CACHEPLUG_STORE"] = redis_url
    two.config["CACHEPLUG_SESSIONS_NAMESPACE"] = "sessions"
    for app in (one, two):
        ext.init_app(app)
        sessions.init_app(app)
    with one.app_context():
        ext.set("k", "one")
        assert isinstance(ext.cache.store, MemoryStore)
    with two.app_context():
        assert ext.get("k") is None
        assert isinstance(ext.cache.store, RedisStore)
        assert sessions.cache.namespace_name == "sessions"
        ext.set("k", "two")
        assert sessions.get("k") is None
    with one.app_context():
        assert ext.get("k") == "one"
    with pytest.raises(RuntimeError, match="not set up"), Flask("three").app_context():
        ext.get("k")
    assert "cacheplug-sessions" in two.cli.commands


def test_bad_configuration_is_explained() -> None:
    app = Flask("bad")
    app.config["CACHEPLUG_STORE"] = "mongodb://x"
    with pytest.raises(ConfigurationError, match="unknown store URL scheme"):
        CachePlug(app)
    app = Flask("bad-l1")
    app.config["CACHEPLUG_L1"] = {"max_entrie": 5}
    with pytest.raises(ConfigurationError, match="CACHEPLUG_L1"):
        CachePlug(app)


def test_jinja_fragments(app: Flask) -> None:
    source = (
        '{% cacheplug "side", 300, lang, depends_on=["Product"] %}'
        "{{ products|map(attribute='name')|join(',') }}|{{ marker }}{% endcacheplug %}"
    )
    with app.app_context():
        db.session.add(Product(name="hammer"))
        db.session.commit()

        def render(lang: str, marker: str) -> str:
            products = db.session.scalars(db.select(Product).order_by(Product.name)).all()
            return render_template_string(source, products=products, lang=lang, marker=marker)

        assert render("en", "1") == "hammer|1"
        assert render("en", "2") == "hammer|1"
        assert render("fr", "3") == "hammer|3"
        db.session.add(Product(name="axe"))
        db.session.commit()
        assert render("en", "4") == "axe,hammer|4"
        with pytest.raises(TemplateSyntaxError, match="needs a fragment name and a ttl"):
            render_template_string('{% cacheplug "x" %}{% endcacheplug %}')
        with pytest.raises(TemplateSyntaxError, match="unknown option"):
            render_template_string('{% cacheplug "x", 5, depend_on=[] %}{% endcacheplug %}')


def test_cli(app: Flask) -> None:
    runner = app.test_cli_runner()
    with app.app_context():
        db.session.add(Product(name="hammer"))
        db.session.commit()
    result = runner.invoke(args=["cacheplug", "warm", "--only", "names"])
    assert result.exit_code == 0, result.output
    assert "names: 1 key(s)" in result.output
    assert "warmed 1 key(s) with 1 warmer(s)" in result.output
    result = runner.invoke(args=["cacheplug", "inspect", "name:1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["state"] == "fresh"
    result = runner.invoke(args=["cacheplug", "flush", "--model", "Product"])
    assert result.exit_code == 0, result.output
    assert "everything depending on Product" in result.output
    result = runner.invoke(args=["cacheplug", "inspect", "name:1"])
    assert "state      outdated" in result.output
    result = runner.invoke(args=["cacheplug", "stats", "--json"])
    assert json.loads(result.output)["namespace"] == app.config["CACHEPLUG_NAMESPACE"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["warm", "--only", "nope"], "unknown warmer(s): nope (known: broken, names)"),
        (["warm"], "warmer(s) failed: broken"),
        (["flush", "--model", "Nope"], "unknown model 'Nope'; nothing was flushed"),
        (["flush", "--all"], "pass --yes when not at a terminal"),
        (["flush"], "choose one of"),
        (["inspect", "nope"], "no entry under 'nope'"),
    ],
)
def test_cli_bad_input(app: Flask, args: list[str], message: str) -> None:
    with app.app_context():
        cache.set("kept", 1)
    result = app.test_cli_runner().invoke(args=["cacheplug", *args])
    assert result.exit_code != 0
    assert message in result.output
    with app.app_context():
        assert cache.get("kept") == 1  # nothing was flushed


def test_create_app_twice_in_one_process(tmp_path: Path) -> None:
    first = create_app(None, f"sqlite:///{tmp_path / 'a.sqlite3'}")
    second = create_app(None, f"sqlite:///{tmp_path / 'b.sqlite3'}")
    with first.app_context():
        cache.set("k", 1)
    with second.app_context():
        assert cache.get("k") is None


def test_cli_writebehind(app: Flask) -> None:
    from cacheplug import QueuedWrite

    received: list[QueuedWrite] = []
    with app.app_context():
        queue = cache.write_behind("counts", received.extend, durable=cache.cache.store.shared)
        queue.put("k", 1)
    result = app.test_cli_runner().invoke(args=["cacheplug", "writebehind", "--once"])
    assert result.exit_code == 0, result.output
    assert "drained 1 write(s) from 1 queue(s)" in result.output
    assert [entry.value for entry in received] == [1]
    result = app.test_cli_runner().invoke(
        args=["cacheplug", "writebehind", "--once", "--only", "x"]
    )
    assert result.exit_code != 0
    assert "unknown queue(s): x" in result.output


def test_requests_publish_the_counters_that_stats_reads_in_other_processes(
    redis_url: str,
) -> None:
    """The first request of a process publishes its counters (later ones at most every 10 s):
    another process's ``flask cacheplug stats`` counts them."""
    serving, asking = CachePlug(), CachePlug()
    web, cli = Flask("web"), Flask("cli")
    for app, ext in ((web, serving), (cli, asking)):
        app.config.update(CACHEPLUG_STORE=redis_url, CACHEPLUG_NAMESPACE="published-stats")
        ext.init_app(app)
    with web.app_context():
        serving.set("greeting", "hello")

    @web.get("/")
    def index() -> str:
        return str(serving.get("greeting"))

    assert web.test_client().get("/").get_data(as_text=True) == "hello"
    result = cli.test_cli_runner().invoke(args=["cacheplug", "stats", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["stats"]["hits"] >= 1
    assert report["store"] == f"RedisStore({redis_url!r})"  # readable, password redacted
    serving.close(web)
    asking.close(cli)
