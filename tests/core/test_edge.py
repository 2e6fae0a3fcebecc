"""The edge tier's shared parts: the ``EDGE`` setting, edge keys and headers, and the purge
queue (batched, retried, never blocking) with an HTTP purger against a real local server."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Final

import pytest

from cacheplug import Cache, ConfigurationError, MemoryStore
from cacheplug.integration import (
    EDGE_KEYS,
    HEADER_STYLES,
    MAX_KEYS_BYTES,
    EdgePurges,
    EdgeSettings,
    HttpPurger,
    VarnishPurger,
    edge_headers,
    edge_key,
    edge_keys,
    edge_settings,
    is_edge_key,
    purge_after_landing,
)

WAIT: Final = 10.0

# -- the setting --------------------------------------------------------------------------


def test_the_setting_is_off_by_default_and_every_key_has_a_default() -> None:
    assert edge_settings(None) is None
    assert edge_settings({}) == EdgeSettings()
    assert EdgeSettings() == EdgeSettings(
        header="surrogate-key",
        s_maxage=3600,
        stale_while_revalidate=60,
        surrogate_control=False,
        purge_url=None,
        purge="xkey",
    )


def test_keys_in_any_case_as_flask_writes_them() -> None:
    upper = edge_settings({"HEADER": "xkey", "S_MAXAGE": 60, "PURGE_URL": "http://v:6081/"})
    lower = edge_settings({"header": "xkey", "s_maxage": 60, "purge_url": "http://v:6081/"})
    assert upper == lower
    assert upper is not None
    assert (upper.header, upper.s_maxage) == ("xkey", 60)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ConfigurationError) as raised:
        edge_settings(
            {
                "HEADR": "xkey",
                "HEADER": "etag",
                "S_MAXAGE": -1,
                "STALE_WHILE_REVALIDATE": True,
                "SURROGATE_CONTROL": "yes",
                "PURGE_URL": "varnish:6081",
                "PURGE": "purge-all",
            }
        )
    message = str(raised.value)
    for part in (
        "unknown key 'HEADR'",
        "HEADER must be one of",
        "S_MAXAGE must be whole seconds",
        "STALE_WHILE_REVALIDATE must be whole seconds",
        "SURROGATE_CONTROL must be True or False",
        "PURGE_URL must be an http",
        "PURGE must be one of",
    ):
        assert part in message
    assert set(EDGE_KEYS) >= {"HEADER", "S_MAXAGE", "PURGE_URL"}


def test_not_a_dict_is_refused_and_a_purge_url_password_never_printed() -> None:
    with pytest.raises(ConfigurationError, match="must be a dict"):
        edge_settings(["xkey"])
    with pytest.raises(ConfigurationError) as raised:
        edge_settings({"PURGE_URL": "ftp://admin:hunter2@varnish/"})
    assert "hunter2" not in str(raised.value)


# -- keys and headers ---------------------------------------------------------------------


def test_edge_keys_are_short_safe_and_stable() -> None:
    key = edge_key("shop:0:t:{db:t:shop_product}")
    assert is_edge_key(key)
    assert key == edge_key("shop:0:t:{db:t:shop_product}")
    assert key != edge_key("other:0:t:{db:t:shop_product}")  # the namespace is in the key
    assert edge_keys(["a", "b", "a"]) == [edge_key("a"), edge_key("b")]
    assert not is_edge_key("db:t:shop_product")


@pytest.mark.parametrize("style", sorted(HEADER_STYLES))
def test_a_shareable_page_gets_cache_control_and_its_keys(style: str) -> None:
    settings = EdgeSettings(header=style, s_maxage=600, stale_while_revalidate=30)
    headers = dict(edge_headers(settings, ["v1", "v2"]) or [])
    name, separator = HEADER_STYLES[style]
    assert headers["Cache-Control"] == "public, s-maxage=600, stale-while-revalidate=30"
    assert headers[name].split(separator) == [edge_key("v1"), edge_key("v2")]
    assert "Surrogate-Control" not in headers


def test_the_pages_own_cache_control_is_kept_and_its_own_s_maxage_wins() -> None:
    settings = EdgeSettings(s_maxage=600, stale_while_revalidate=0)
    own = dict(edge_headers(settings, ["v"], "max-age=60") or [])
    assert own["Cache-Control"] == "public, max-age=60, s-maxage=600"
    mine = dict(edge_headers(settings, ["v"], "public, s-maxage=5, max-age=0") or [])
    assert mine["Cache-Control"] == "public, s-maxage=5, max-age=0"


def test_surrogate_control_on_request() -> None:
    headers = dict(edge_headers(EdgeSettings(surrogate_control=True, s_maxage=90), ["v"]) or [])
    assert headers["Surrogate-Control"] == "max-age=90"


def test_a_page_whose_keys_do_not_fit_is_left_to_the_app() -> None:
    many = [f"version-{n}" for n in range(MAX_KEYS_BYTES // 14 + 10)]
    assert edge_headers(EdgeSettings(), many) is None
    assert edge_headers(EdgeSettings(), many[:100]) is not None


# -- the purge queue ----------------------------------------------------------------------


class Recorder:
    """A purger that records each batch, failing its first ``fail`` calls (as an edge that
    is down would)."""

    def __init__(self, fail: int = 0) -> None:
        self.batches: list[list[str]] = []
        self.fail = fail
        self.calls = 0

    def purge(self, keys: Sequence[str]) -> None:
        self.calls += 1
        if self.calls <= self.fail:
            raise OSError("edge down")
        self.batches.append(list(keys))


def test_keys_are_purged_in_batches_and_each_once() -> None:
    recorder = Recorder()
    purges = EdgePurges(recorder)
    keys = [f"k{n}" for n in range(1000)]
    purges.add(keys)
    purges.add(keys[:10])  # already waiting (or sent): purged again at most once
    assert purges.flush(WAIT)
    sent = [key for batch in recorder.batches for key in batch]
    assert set(sent) == set(keys)
    assert all(len(batch) <= 400 for batch in recorder.batches)
    assert purges.purged == len(sent)
    assert purges.waiting() == 0
    purges.close()


def test_a_failing_edge_gets_the_keys_again_with_backoff_and_adding_never_blocks() -> None:
    recorder = Recorder(fail=2)
    purges = EdgePurges(recorder)
    sent_by: list[int] = []
    original = recorder.purge

    def purge(keys: Sequence[str]) -> None:
        sent_by.append(threading.get_ident())
        original(keys)

    recorder.purge = purge  # type: ignore[method-assign]
    purges.add(["a", "b"])
    assert purges.flush(WAIT)
    assert threading.get_ident() not in sent_by  # sent by the purge thread, never the caller
    assert recorder.batches == [["a", "b"]]
    assert purges.failures == 2
    purges.close()


def test_too_many_waiting_keys_become_one_purge_of_the_namespace() -> None:
    recorder = Recorder(fail=10**9)
    purges = EdgePurges(recorder, everything=["ns-version"], max_waiting=50)
    purges.add(f"k{n}" for n in range(51))
    time.sleep(0.2)
    recorder.fail = 0  # the edge is back
    assert purges.flush(WAIT)
    assert [key for batch in recorder.batches for key in batch] == [edge_key("ns-version")]
    purges.close()


def test_close_reports_what_could_not_be_purged(caplog: pytest.LogCaptureFixture) -> None:
    purges = EdgePurges(Recorder(fail=10**9))
    purges.add(["never"])
    assert purges.close(timeout=0.3) is False
    assert "were not purged before shutdown" in caplog.text


def test_landed_invalidations_are_purged_by_the_keys_their_pages_carry() -> None:
    cache = Cache(MemoryStore(), namespace="edge-core")
    recorder = Recorder()
    purges = EdgePurges(recorder, everything=cache.version_keys())
    stop = purge_after_landing(cache, purges)
    try:
        page = dict(edge_headers(EdgeSettings(), cache.version_keys("product:1", "catalog")) or [])
        carried = set(page["Surrogate-Key"].split())
        cache.invalidate_tags("product:1")
        assert purges.flush(WAIT)
        purged = {key for batch in recorder.batches for key in batch}
        assert purged
        assert purged <= carried
        other = dict(edge_headers(EdgeSettings(), cache.version_keys("product:2")) or [])
        assert not purged & set(other["Surrogate-Key"].split()) - set(
            edge_keys(cache.version_keys())
        )
        stop()
        cache.invalidate_tags("product:3")
        time.sleep(0.1)
        assert purges.flush(WAIT)
        assert {key for batch in recorder.batches for key in batch} == purged
    finally:
        purges.close()
        cache.close()


# -- an HTTP purger, against a real server ------------------------------------------------


class _Purges(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []
    status = 200

    def _answer(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        type(self).seen.append((self.command, headers))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PURGE = do_BAN = _answer

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def purge_endpoint() -> Iterator[tuple[str, type[_Purges]]]:
    handler = type("Handler", (_Purges,), {"seen": [], "status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    server.shutdown()
    server.server_close()


def test_http_purger_sends_the_keys_in_one_header(
    purge_endpoint: tuple[str, type[_Purges]],
) -> None:
    url, handler = purge_endpoint
    HttpPurger(url).purge(["k1", "k2"])
    HttpPurger(url, header="Cache-Tag", separator=",", method="BAN").purge(["k3", "k4"])
    VarnishPurger(url).purge(["k5"])
    VarnishPurger(url, mode="ban").purge(["k6"])
    assert [
        (method, headers.get(name))
        for (method, headers), name in zip(
            handler.seen, ["surrogate-key", "cache-tag", "xkey-purge", "xkey-purge"], strict=True
        )
    ] == [("PURGE", "k1 k2"), ("BAN", "k3,k4"), ("PURGE", "k5"), ("BAN", "k6")]


def test_an_answer_but_2xx_is_a_failure_and_the_url_password_is_not_printed(
    purge_endpoint: tuple[str, type[_Purges]],
) -> None:
    url, handler = purge_endpoint
    handler.status = 405
    with pytest.raises(OSError, match="answered 405"):
        HttpPurger(url).purge(["k"])
    secret_url = url.replace("http://", "http://admin:hunter2@")
    assert "hunter2" not in repr(HttpPurger(secret_url))
    with pytest.raises(ValueError, match="mode"):
        VarnishPurger(url, mode="purge-all")


def test_an_unreachable_edge_is_a_failure_retried_later() -> None:
    from cacheplug.testing import free_port

    purger = HttpPurger(f"http://127.0.0.1:{free_port()}/", timeout=1.0)
    with pytest.raises(OSError, match="refused"):
        purger.purge(["k"])


# -- the outbox waits for the edge --------------------------------------------------------


def test_after_purged_runs_at_once_when_nothing_waits_else_once_the_queue_is_purged() -> None:
    recorder = Recorder(fail=3)
    purges = EdgePurges(recorder)
    ran: list[str] = []
    purges.after_purged(lambda: ran.append("idle"))
    assert ran == ["idle"]
    purges.add(["k"])
    purges.after_purged(lambda: ran.append("after k"))
    assert ran == ["idle"]  # the edge has not taken k yet
    assert purges.flush(WAIT)
    deadline = time.monotonic() + WAIT
    while ran == ["idle"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ran == ["idle", "after k"]
    assert recorder.batches == [["k"]]
    purges.close()


def test_a_relay_counts_a_row_delivered_only_once_the_edge_took_its_purge() -> None:
    from cacheplug.integration import deliver_after_edge, landed_invalidation

    cache = Cache(MemoryStore(), namespace="edge-outbox")
    recorder = Recorder(fail=10**9)
    purges = EdgePurges(recorder)
    purge_after_landing(cache, purges)
    try:
        invalidate = landed_invalidation(cache, lambda: purges)
        assert invalidate(["db:t:shop_product"]) is False  # the edge is down: the row stays

        class Relay:
            def __init__(self) -> None:
                self.rows: list[str] = []

            def delivered(self, row_id: str) -> None:
                self.rows.append(row_id)

        relay = Relay()
        deliver_after_edge(relay, "row-1", lambda: purges)  # type: ignore[arg-type]
        time.sleep(0.2)
        assert relay.rows == []  # not while the purge waits
        recorder.fail = 0
        assert purges.flush(WAIT + 30.0)
        deadline = time.monotonic() + WAIT
        while not relay.rows and time.monotonic() < deadline:
            time.sleep(0.01)
        assert relay.rows == ["row-1"]
        assert invalidate(["db:t:shop_product"]) is True
        deliver_after_edge(relay, "row-2")  # no edge: at once
        assert relay.rows == ["row-1", "row-2"]
    finally:
        purges.close(timeout=0.5)
        cache.close()


def test_a_steady_stream_of_new_keys_never_holds_back_what_was_purged_before() -> None:
    """A callback waits for the keys queued before it, not for an empty queue (which a site
    writing all the time may never see)."""

    class Gate:
        def __init__(self) -> None:
            self.open = threading.Event()
            self.batches: list[list[str]] = []

        def purge(self, keys: Sequence[str]) -> None:
            self.batches.append(list(keys))
            assert self.open.wait(WAIT)
            self.open.clear()  # the next batch waits for the test again

    gate = Gate()
    purges = EdgePurges(gate)
    ran: list[int] = []
    purges.add(["a"])
    deadline = time.monotonic() + WAIT
    while not gate.batches and time.monotonic() < deadline:
        time.sleep(0.01)
    purges.after_purged(lambda: ran.append(purges.waiting()))
    purges.add(["b"])  # a newer key, waiting behind the batch on its way
    flushed: list[bool] = []
    flusher = threading.Thread(target=lambda: flushed.append(purges.flush(WAIT)))
    flusher.start()
    gate.open.set()  # the edge takes ["a"]
    deadline = time.monotonic() + WAIT
    while not ran and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ran == [1]  # ran once "a" was purged, with "b" still on its way
    gate.open.set()  # and ["b"]
    flusher.join(WAIT)
    assert flushed == [True]
    assert gate.batches == [["a"], ["b"]]
    purges.close()


def test_batches_fit_what_the_purger_takes_a_call() -> None:
    recorder = Recorder()
    purges = EdgePurges(recorder, batch=3)
    purges.add(f"k{n}" for n in range(7))
    assert purges.flush(WAIT)
    assert [len(batch) for batch in recorder.batches] == [3, 3, 1]
    purges.close()
    with pytest.raises(ValueError, match="batch"):
        EdgePurges(recorder, batch=0)
