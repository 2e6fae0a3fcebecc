"""Secrets never reach output: store ``repr``, stats (``manage.py cacheplug_stats`` and
``flask cacheplug stats``, text and JSON), the fail-open log lines and exception messages
are grepped for the password, for every form of store URL."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import redis
from django.core.management import call_command
from flask import Flask

from cacheplug import Cache, CacheUnavailable, ConfigurationError, redact, store_from_url
from cacheplug.stores import RedisClusterStore
from cacheplug.testing import RedisServer, free_port
from cacheplug_django import cache as django_cache
from cacheplug_flask import CachePlug

PASSWORD = "S3cr#t/p@ss?w"  # holds the characters a URL parser trips on
ENCODED = "S3cr%23t%2Fp%40ss%3Fw"
SECRETS = (PASSWORD, ENCODED, "S3cr")
SIGNING = "redaction-test-signing-key"


def url_forms(port: int) -> list[str]:
    """Every form of store URL that can carry a password, on ``port``."""
    return [
        f"redis://:{ENCODED}@127.0.0.1:{port}/0",
        f"redis://default:{ENCODED}@127.0.0.1:{port}/0",
        f"redis://127.0.0.1:{port}/0?password={ENCODED}",
        f"redis://127.0.0.1:{port}/0?socket_timeout=0.2&password={ENCODED}",
        f"rediss://:{ENCODED}@127.0.0.1:{port}/0",
        f"unix://:{ENCODED}@/tmp/cacheplug-no-such.sock?db=0",
        f"unix:///tmp/cacheplug-no-such.sock?db=0&password={ENCODED}",
        f"redis+sentinel://:{ENCODED}@127.0.0.1:{port},127.0.0.1:{free_port()}/mymaster/0"
        f"?sentinel_password={ENCODED}",
        f"redis+cluster://:{ENCODED}@127.0.0.1:{port},127.0.0.1:{free_port()}",
        f"redis+cluster://127.0.0.1:{port}?password={ENCODED}",
    ]


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} in {text!r}"


def everything_said(exc: BaseException) -> str:
    """An exception's message and those of every exception a traceback of it shows."""
    said = []
    current: BaseException | None = exc
    while current is not None:
        said.append(f"{type(current).__name__}: {current}")
        shown = current.__cause__ is not None or not current.__suppress_context__
        current = (current.__cause__ or current.__context__) if shown else None
    return "\n".join(said)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://u:pw@h:1/0", "redis://u:***@h:1/0"),
        ("redis://:p@ss/w?rd@h:1/0", "redis://:***@h:1/0"),
        ("redis://secret@h/0", "redis://***@h/0"),
        ("redis://h/0?db=0&password=p#w&x&socket_timeout=1", "redis://h/0?db=0&password=***&socket_timeout=1"),
        ("redis+sentinel://u:pw@a:1,b:2/m/0?sentinel_password=s", "redis+sentinel://u:***@a:1,b:2/m/0?sentinel_password=***"),
        ("redis+cluster://:pw@a:1,b:2", "redis+cluster://:***@a:1,b:2"),
        ("unix:///tmp/r.sock?password=pw", "unix:///tmp/r.sock?password=***"),
        ("memcached://u:pw@h", "memcached://u:***@h"),
        ("redis:/:pw@h", "redis:***@h"),
        ("u:pw@h:1", "u:***@h:1"),
        ("redis://:pa ss@h", "redis://:***@h"),
        ("in 'redis://:pw@h/0'; known: redis://", "in 'redis://:***@h/0'; known: redis://"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)  # fmt: skip
def test_redact_hides_the_password_of_every_url_form(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize("index", range(10))
def test_repr_logs_and_errors_of_a_store_that_is_down(
    index: int, caplog: pytest.LogCaptureFixture
) -> None:
    url = url_forms(free_port())[index]
    store = store_from_url(url)
    assert_no_secret(repr(store))
    cache = Cache(store, namespace="r", secret=SIGNING)
    assert_no_secret(repr(cache))
    with caplog.at_level(logging.DEBUG):
        assert cache.get_or_load("k", lambda: "loaded") == "loaded"  # fail-open: logged
        assert cache.set("k", "v") is False
    assert "falling through" in caplog.text
    assert_no_secret(caplog.text)
    strict = Cache(store, namespace="r", secret=SIGNING, strict=True)
    with pytest.raises(CacheUnavailable) as raised:
        strict.get("k")
    assert_no_secret(everything_said(raised.value))
    cache.close()


@pytest.mark.parametrize(
    "url",
    [
        f"memcached://user:{ENCODED}@127.0.0.1:11211",
        f"user:{ENCODED}@127.0.0.1:6379",
        f"redis:/:{ENCODED}@127.0.0.1:6379/0",
        f"redis://:{PASSWORD}@127.0.0.1:6379/0",  # unencoded, as people type it
        f"redis+cluster://:{PASSWORD}@127.0.0.1:7000",
        f"redis+sentinel://:{ENCODED}@127.0.0.1:26379/mymaster/0?nope=1",
        f"redis+sentinel://:{ENCODED}@127.0.0.1:notaport/mymaster",
        f"redis+sentinel://:{ENCODED}@127.0.0.1:26379",
        f"redis+cluster://:{ENCODED}@127.0.0.1:7000/3",
        f"redis+cluster://:{ENCODED}@127.0.0.1:7000?nope=1",
        f"memory://?max_entries=many&password={ENCODED}",
    ],
)
def test_configuration_errors_never_quote_the_password(url: str) -> None:
    with pytest.raises((ConfigurationError, ValueError)) as raised:
        store_from_url(url).close()
    assert_no_secret(everything_said(raised.value))


def test_a_cluster_that_is_down_logs_no_password(caplog: pytest.LogCaptureFixture) -> None:
    store = RedisClusterStore(f"redis+cluster://user:{ENCODED}@127.0.0.1:{free_port()}")
    cache = Cache(store, namespace="r", secret=SIGNING)
    with caplog.at_level(logging.DEBUG):
        assert cache.get_or_load("k", lambda: 1) == 1
        cache.invalidate("k")
    assert "falling through" in caplog.text
    assert_no_secret(caplog.text)
    assert_no_secret(repr(store))
    cache.close()


# -- the stats commands, on a real redis-server that needs the password -----------------------


@pytest.fixture(scope="module")
def protected() -> Iterator[RedisServer]:
    with RedisServer() as server:
        with redis.Redis(port=server.port) as client:
            client.config_set("requirepass", PASSWORD)  # after start: its PING check passes
        yield server


def reachable_forms(server: RedisServer) -> list[str]:
    return [url for url in url_forms(server.port) if url.startswith("redis://")]


def test_manage_py_cacheplug_stats_prints_no_password(
    protected: RedisServer, settings: object
) -> None:
    for url in reachable_forms(protected):
        settings.CACHEPLUG = {"STORE": url, "NAMESPACE": "r"}  # type: ignore[attr-defined]
        try:
            django_cache.core.set("k", 1)
            for args in ((), ("--json",)):
                out = io.StringIO()
                call_command("cacheplug_stats", *args, stdout=out)
                text = out.getvalue()
                assert "127.0.0.1" in text
                assert_no_secret(text)
                if args:
                    assert_no_secret(json.dumps(json.loads(text)))
        finally:
            django_cache.reset()


def test_flask_cacheplug_stats_prints_no_password(protected: RedisServer) -> None:
    for url in reachable_forms(protected):
        app = Flask(__name__)
        app.config.update(CACHEPLUG_STORE=url, CACHEPLUG_SECRET=SIGNING)
        extension = CachePlug(app)
        try:
            with app.app_context():
                extension.cache.set("k", 1)
            runner = app.test_cli_runner()
            for args in ([], ["--json"]):
                result = runner.invoke(args=["cacheplug", "stats", *args])
                assert result.exit_code == 0, result.output
                assert "127.0.0.1" in result.output
                assert_no_secret(result.output)
        finally:
            with app.app_context():
                extension.cache.close()
