"""VarnishServer and the edge VCLs (example_project/edge) against a real varnishd.

The backend is a small HTTP server in a thread that counts the requests it gets per path, so
that "was it served from the cache" is read from the backend rather than guessed from
headers. A path is ``/<kind>/<token>``: the kind chooses the caching headers, the token (one
per test) makes the keys of each test its own, so that the tests share a Varnish per VCL and
still cannot purge one another's pages.
"""

from __future__ import annotations

import http.client
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cacheplug.testing import VarnishServer
from cacheplug.testing._setups import wait_until
from cacheplug.testing.varnish import flatten_counters, point_backend

EDGE = Path(__file__).resolve().parent.parent / "example_project" / "edge"
VCLS = {"xkey": EDGE / "cacheplug.vcl", "ban": EDGE / "cacheplug-ban.vcl"}
SHARED = "public, s-maxage=300"


def headers_for(kind: str, token: str) -> dict[str, str]:
    """The caching headers the backend sends for a kind of page."""
    if kind == "tagged":
        return {"Cache-Control": SHARED, "xkey": f"{token}-k1 {token}-k2"}
    if kind == "k3":
        return {"Cache-Control": SHARED, "xkey": f"{token}-k3"}
    if kind == "browser-only":  # cacheable by a browser, not marked for a shared cache
        return {"Cache-Control": "public, max-age=300", "xkey": f"{token}-k1"}
    if kind == "cookie":
        return {"Cache-Control": SHARED, "xkey": f"{token}-k1", "Set-Cookie": "session=abc"}
    if kind in ("private", "no-store"):  # s-maxage, overruled by what the builtin VCL reads
        return {"Cache-Control": f"{kind}, s-maxage=300", "xkey": f"{token}-k1"}
    if kind == "surrogate":
        return {"Cache-Control": SHARED, "Surrogate-Key": f"{token}-s1 {token}-s2"}
    if kind == "cache-tag":
        return {"Cache-Control": SHARED, "Cache-Tag": f"{token}-c1,{token}-c2"}
    raise AssertionError(kind)


class Backend:
    """A threaded HTTP server that answers ``/<kind>/<token>`` and counts requests by path."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        lock = threading.Lock()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    backend.hits[self.path] += 1
                    count = backend.hits[self.path]
                _, kind, token = self.path.split("/")
                body = f"{self.path} answer {count}\n".encode()
                self.send_response(200)
                for name, value in headers_for(kind, token).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Answer:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: str


def ask(
    varnish: VarnishServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", varnish.port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        body = response.read().decode()
        return Answer(response.status, response.reason, response.headers, body)
    finally:
        connection.close()


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    server = Backend()
    yield server
    server.close()


@pytest.fixture(scope="module", params=sorted(VCLS))
def varnish(request: pytest.FixtureRequest, backend: Backend) -> Iterator[VarnishServer]:
    """One Varnish per VCL for the module; each test uses paths and keys of its own."""
    with VarnishServer(backend.port, vcl=VCLS[request.param]) as server:
        yield server


@pytest.fixture
def token() -> str:
    return uuid.uuid4().hex[:12]


def test_a_shared_page_is_served_from_the_cache(
    varnish: VarnishServer, backend: Backend, token: str
) -> None:
    path = f"/tagged/{token}"
    first = ask(varnish, path)
    second = ask(varnish, path)
    assert (first.status, first.headers["X-Cache"]) == (200, "MISS")
    assert (second.status, second.headers["X-Cache"]) == (200, "HIT")
    assert second.body == first.body == f"{path} answer 1\n"
    assert backend.hits[path] == 1
    assert second.headers["Age"] is not None
    assert len(second.headers["X-Varnish"].split()) == 2  # this request's id, the object's
    assert second.headers["xkey"] is None  # the keys are for Varnish only...
    debug = ask(varnish, path, headers={"X-Cacheplug-Debug": "1"})
    assert debug.headers["xkey"] == f"{token}-k1 {token}-k2"  # ...unless asked for


@pytest.mark.parametrize("method", ["PURGE", "BAN"])
def test_a_key_purges_the_pages_it_tags_and_no_other(
    varnish: VarnishServer, backend: Backend, token: str, method: str
) -> None:
    tagged, other = f"/tagged/{token}", f"/k3/{token}"
    for path in (tagged, other, tagged, other):
        ask(varnish, path)
    assert ask(varnish, tagged).headers["X-Cache"] == "HIT"
    assert (backend.hits[tagged], backend.hits[other]) == (1, 1)

    partial = ask(varnish, "/", method, {"xkey-purge": f"{token}-k"})  # a prefix of k1, k2
    assert partial.status == 200
    assert ask(varnish, tagged).headers["X-Cache"] == "HIT"

    purged = ask(varnish, "/", method, {"xkey-purge": f"  unknown-key {token}-k2 "})
    assert purged.status == 200
    if method == "PURGE" and varnish.vcl_source.name == "cacheplug.vcl":
        assert purged.reason == "Purged 1"
    again = ask(varnish, tagged)
    assert (again.headers["X-Cache"], again.body) == ("MISS", f"{tagged} answer 2\n")
    assert ask(varnish, other).headers["X-Cache"] == "HIT"
    assert (backend.hits[tagged], backend.hits[other]) == (2, 1)


def test_keys_that_would_be_a_regular_expression_are_refused(
    varnish: VarnishServer, backend: Backend, token: str
) -> None:
    path = f"/tagged/{token}"
    ask(varnish, path)
    refused = ask(varnish, "/", "BAN", {"xkey-purge": ".*"})
    assert refused.status == 400
    assert ask(varnish, "/", "BAN").status == 400  # no keys at all
    assert ask(varnish, path).headers["X-Cache"] == "HIT"


def test_a_page_without_s_maxage_is_never_stored(
    varnish: VarnishServer, backend: Backend, token: str
) -> None:
    path = f"/browser-only/{token}"
    answers = [ask(varnish, path) for _ in range(3)]
    assert [answer.headers["X-Cache"] for answer in answers] == ["MISS"] * 3
    assert backend.hits[path] == 3


@pytest.mark.parametrize("kind", ["cookie", "private", "no-store"])
def test_a_page_that_sets_a_cookie_or_is_private_or_no_store_is_never_stored(
    varnish: VarnishServer, backend: Backend, token: str, kind: str
) -> None:
    path = f"/{kind}/{token}"
    answers = [ask(varnish, path) for _ in range(3)]
    assert [answer.headers["X-Cache"] for answer in answers] == ["MISS"] * 3
    assert backend.hits[path] == 3
    if kind == "cookie":
        assert all(answer.headers["Set-Cookie"] == "session=abc" for answer in answers)


def test_a_request_with_a_cookie_is_not_answered_from_the_cache(
    varnish: VarnishServer, backend: Backend, token: str
) -> None:
    path = f"/tagged/{token}"
    ask(varnish, path)
    assert ask(varnish, path).headers["X-Cache"] == "HIT"
    with_cookie = ask(varnish, path, headers={"Cookie": "session=abc"})
    assert (with_cookie.headers["X-Cache"], with_cookie.body) == ("MISS", f"{path} answer 2\n")
    assert backend.hits[path] == 2


@pytest.mark.parametrize(
    ("kind", "keys"), [("surrogate", "{t}-s1 {t}-s2"), ("cache-tag", "{t}-c1 {t}-c2")]
)
def test_surrogate_key_and_cache_tag_are_keys_too(
    varnish: VarnishServer, backend: Backend, token: str, kind: str, keys: str
) -> None:
    path = f"/{kind}/{token}"
    ask(varnish, path)
    debug = ask(varnish, path, headers={"X-Cacheplug-Debug": "1"})
    assert (debug.headers["X-Cache"], debug.headers["xkey"]) == ("HIT", keys.format(t=token))
    second_key = keys.format(t=token).split()[1]
    assert ask(varnish, "/", "PURGE", {"xkey-purge": second_key}).status == 200
    assert ask(varnish, path).headers["X-Cache"] == "MISS"
    assert backend.hits[path] == 2


def test_stop_and_start_again_on_the_same_port_with_an_empty_cache(
    backend: Backend, token: str
) -> None:
    path = f"/tagged/{token}"
    with VarnishServer(backend.port, vcl=VCLS["xkey"]) as varnish:
        port = varnish.port
        ask(varnish, path)
        assert ask(varnish, path).headers["X-Cache"] == "HIT"
        varnish.stop()
        assert not varnish.running
        with pytest.raises(ConnectionRefusedError):
            ask(varnish, path)
        varnish.start()
        assert varnish.running
        assert varnish.port == port
        after = ask(varnish, path)
        assert (after.headers["X-Cache"], after.body) == ("MISS", f"{path} answer 2\n")
        assert wait_until(lambda: varnish.counters()["MAIN.n_object"] == 1, 10, 0.05)


def test_counters_report_hits_misses_and_objects(
    varnish: VarnishServer, backend: Backend, token: str
) -> None:
    before = varnish.counters()
    path = f"/tagged/{token}"
    for _ in range(3):
        ask(varnish, path)

    def counted() -> bool:
        now = varnish.counters()
        return (
            now["MAIN.cache_hit"] - before["MAIN.cache_hit"] >= 2
            and now["MAIN.cache_miss"] - before["MAIN.cache_miss"] >= 1
        )

    assert wait_until(counted, 10, 0.05)  # workers add their counts now and then
    now = varnish.counters()
    assert now["MAIN.cache_hit"] - before["MAIN.cache_hit"] == 2
    assert now["MAIN.backend_req"] - before["MAIN.backend_req"] == 1
    assert now["MAIN.n_object"] >= 1


def test_the_backend_of_the_copied_vcl_is_the_one_asked_for() -> None:
    text = (EDGE / "cacheplug.vcl").read_text()
    pointed = point_backend(text, "10.0.0.7", 4321)
    assert '.host = "10.0.0.7";' in pointed
    assert '.port = "4321";' in pointed
    assert pointed.replace('"10.0.0.7"', '"127.0.0.1"').replace('"4321"', '"8000"') == text
    with pytest.raises(ValueError, match="backend default"):
        point_backend('vcl 4.1;\nbackend other { .host = "x"; .port = "1"; }\n', "h", 1)


def test_counters_read_the_layouts_of_varnish_6_and_7() -> None:
    hit = {"description": "Cache hits", "flag": "c", "format": "i", "value": 4}
    assert flatten_counters({"version": 1, "counters": {"MAIN.cache_hit": hit}}) == {
        "MAIN.cache_hit": 4
    }
    assert flatten_counters({"timestamp": "2024-01-01T00:00:00", "MAIN.cache_hit": hit}) == {
        "MAIN.cache_hit": 4
    }


@pytest.mark.parametrize("mode", ["xkey", "ban"])
def test_cacheplugs_varnish_purger_drops_the_pages_of_its_keys_and_no_other(
    varnish: VarnishServer, backend: Backend, token: str, mode: str
) -> None:
    from cacheplug.integration import VarnishPurger

    tagged, other = f"/tagged/{token}", f"/k3/{token}"
    for path in (tagged, other, tagged, other):
        ask(varnish, path)
    assert ask(varnish, tagged).headers["X-Cache"] == "HIT"
    VarnishPurger(varnish.url + "/", mode=mode).purge([f"{token}-k2", f"{token}-absent"])
    assert ask(varnish, tagged).headers["X-Cache"] == "MISS"
    assert ask(varnish, other).headers["X-Cache"] == "HIT"
    assert backend.hits[tagged] == 2
