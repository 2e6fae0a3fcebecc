"""CachePlugMiddleware under ASGI: the same requests through the sync ``Client`` and the
``AsyncClient`` give the same answers (status, headers, body, cookies), render the same
views as often, store the same keys with the same tags and count the same hits, on Redis
with the L1 tier off and on; and a hit on the async path runs no code in a thread."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from asgiref.sync import iscoroutinefunction
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.csrf import get_token
from django.test import AsyncClient, AsyncRequestFactory, Client
from django.urls import path

from cacheplug_django import invalidate_pages
from cacheplug_django._cache import DjangoCache
from cacheplug_django.middleware import CachePlugMiddleware

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

renders: Counter[str] = Counter()


def page(request: HttpRequest) -> HttpResponse:
    renders["page"] += 1
    return HttpResponse("the page")


async def async_page(request: HttpRequest) -> HttpResponse:
    renders["async_page"] += 1
    return HttpResponse("the async page")


def form(request: HttpRequest) -> HttpResponse:
    renders["form"] += 1
    get_token(request)  # sets the CSRF cookie: never shared
    return HttpResponse("a form")


def who(request: HttpRequest) -> HttpResponse:
    renders["who"] += 1
    user = request.user
    return HttpResponse(f"hello {user.get_username() if user.is_authenticated else 'guest'}")


def by_language(request: HttpRequest) -> HttpResponse:
    renders["by_language"] += 1
    response = HttpResponse(f"lang={request.headers.get('Accept-Language', '-')}")
    response["Vary"] = "Accept-Language"
    return response


def own_etag(request: HttpRequest) -> HttpResponse:
    renders["own_etag"] += 1
    response = HttpResponse("tagged")
    response["ETag"] = '"v1"'
    response["Cache-Control"] = "max-age=60"
    return response


def status(request: HttpRequest, code: int) -> HttpResponse:
    renders[f"status:{code}"] += 1
    return HttpResponse(f"status {code}", status=code)


def reads_cookie(request: HttpRequest) -> HttpResponse:
    renders["reads_cookie"] += 1
    return HttpResponse(f"x={request.COOKIES.get('x', '-')}")


urlpatterns = [
    path("m/page/", page),
    path("m/async/", async_page),
    path("m/form/", form),
    path("m/who/", who),
    path("m/language/", by_language),
    path("m/etag/", own_etag),
    path("m/status/<int:code>/", status),
    path("m/cookie/", reads_cookie),
    path("mine/who/", who),
    path("named/", page, name="named"),
    path("off/", async_page),
]

RULES = [
    {"PATH": r"^/mine/", "TTL": 60, "PER_USER": True},
    {"VIEW": "named", "TTL": 60, "TAGS": ["named-tag"]},
    {"PATH": r"^/m/", "TTL": 60, "TAGS": "m-pages"},
]


@pytest.fixture(params=["L1 off", "L1 on"])
def pages(request: pytest.FixtureRequest, settings: Any, redis_url: str) -> Iterator[DjangoCache]:
    """``CACHEPLUG["PAGES"]`` = ``RULES`` on Redis, with the L1 tier off and on."""
    from cacheplug_django import cache

    options: dict[str, Any] = {"NAMESPACE": "tests", "STORE": redis_url, "PAGES": RULES}
    if request.param == "L1 on":
        options["L1"] = {"MAX_ENTRIES": 100, "ADMISSION": "lru"}
    settings.CACHEPLUG = options
    renders.clear()
    yield cache
    cache.reset()


# -- one table of requests, through both paths ------------------------------------------------

ETAG = "<the ETag last sent for this path>"


@dataclass(frozen=True)
class Get:
    path: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    who: str = ""  # "alice" or "bob": that user's session cookie; "x": a cookie x=1


@dataclass(frozen=True)
class Invalidate:
    path: str = ""
    view: str = ""
    tag: str = ""


Step = Get | Invalidate

STEPS: list[Step] = [
    Get("/m/page/"),  # miss
    Get("/m/page/"),  # hit
    Get("/m/page/", "HEAD"),
    Get("/m/page/", headers={"If-None-Match": ETAG}),
    Get("/m/page/", "HEAD", headers={"If-None-Match": ETAG}),
    Get("/m/page/", headers={"If-None-Match": '"something else"'}),
    Get("/m/page/?b=2&a=1"),
    Get("/m/page/?a=1&b=2"),  # the same query: a hit
    Get("/m/async/"),
    Get("/m/async/"),
    Get("/m/page/", headers={"Authorization": "Bearer abc"}),  # credentials: its own
    Get("/m/page/", who="alice"),  # a session: not shared
    Get("/m/form/"),
    Get("/m/form/"),
    Get("/m/who/"),  # reads the user: not shared
    Get("/m/who/"),
    Get("/mine/who/", who="alice"),
    Get("/mine/who/", who="alice"),
    Get("/mine/who/", who="bob"),
    Get("/mine/who/", who="bob"),
    Get("/mine/who/"),  # the page varies on Cookie: learnt on the first render,
    Get("/mine/who/"),  # stored under it on the second,
    Get("/mine/who/"),  # and a hit from then on
    Get("/m/language/", headers={"Accept-Language": "fr"}),
    Get("/m/language/", headers={"Accept-Language": "de"}),
    Get("/m/language/", headers={"Accept-Language": "fr"}),
    Get("/m/etag/"),
    Get("/m/etag/", headers={"If-None-Match": ETAG}),
    Get("/m/etag/", headers={"If-None-Match": 'W/"v1"'}),
    Get("/m/status/404/"),
    Get("/m/status/404/"),
    Get("/m/cookie/", who="x"),  # reads a cookie: not shared
    Get("/m/cookie/", who="x"),
    Get("/named/"),
    Get("/named/"),
    Get("/off/"),  # no rule
    Get("/off/"),
    Get("/m/page/", "POST"),  # refused by the CSRF check, never cached
    Invalidate(path="/m/page/"),
    Get("/m/page/"),
    Get("/m/page/"),
    Invalidate(tag="named-tag"),
    Get("/named/"),
    Get("/named/"),
    Invalidate(view="named"),
    Get("/named/"),
    Invalidate(tag="m-pages"),
    Get("/m/async/"),
    Get("/m/async/"),
]

Outcome = tuple[str, int, list[tuple[str, str]], bytes, list[str]]


@dataclass
class Run:
    """What a pass over ``STEPS`` saw."""

    outcomes: list[Outcome]
    renders: Counter[str]
    keys: list[bytes]
    counts: tuple[int, int]  # hits, misses
    l1_hits: int


def sessions() -> dict[str, str]:
    """The session cookie of alice and bob, logged in (made once, used by both passes)."""
    cookies = {}
    for name in ("alice", "bob"):
        client = Client()
        client.force_login(User.objects.create_user(name))
        cookies[name] = client.cookies["sessionid"].value
    return cookies


def bus_live(cache: DjangoCache, seconds: float = 5.0) -> bool:
    """Builds the cache and waits for its invalidation bus: until it is subscribed, the L1
    tier serves nothing (a pass would count L1 hits by how soon it came up)."""
    fills = cache.core.store.fills
    deadline = time.monotonic() + seconds
    while not fills.live:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


Send = Callable[[Get, dict[str, str], dict[str, str]], HttpResponseBase]


def run_steps(cache: DjangoCache, redis_url: str, sessions: dict[str, str], send: Send) -> Run:
    """``STEPS`` sent by ``send(step, headers, cookies)``, from an empty store (as a fresh
    process would; what logging alice and bob in invalidated is not the pages' doing)."""
    cache.reset()
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    if "L1" in django_settings.CACHEPLUG:
        assert bus_live(cache)  # else L1 would serve nothing for a while
    renders.clear()
    jars = {"x": {"x": "1"}, **{who: {"sessionid": key} for who, key in sessions.items()}}
    etags: dict[str, str] = {}
    outcomes: list[Outcome] = []
    for step in STEPS:
        if isinstance(step, Invalidate):
            if step.path or step.view:
                invalidate_pages(path=step.path or None, view=step.view or None)
            else:
                cache.invalidate_tags(step.tag)
            continue
        headers = {
            name: etags.get(step.path, '"none"') if value == ETAG else value
            for name, value in step.headers.items()
        }
        response = send(step, headers, jars.get(step.who, {}))
        if "ETag" in response:
            etags[step.path] = response["ETag"]
        outcomes.append(
            (
                f"{step.method} {step.path} {step.headers} {step.who}",
                response.status_code,
                sorted(response.items()),
                response.content if hasattr(response, "content") else b"",
                sorted(response.cookies),
            )
        )
    stats = cache.stats()
    # The pages and their tags; not the counters each process publishes now and then.
    keys = sorted(key for key in client.keys("*") if not key.startswith(b"tests:0:s:"))
    client.close()
    return Run(outcomes, Counter(renders), keys, (stats.hits, stats.misses), stats.l1_hits)


def through_client(step: Get, headers: dict[str, str], cookies: dict[str, str]) -> Any:
    client = Client()
    client.cookies.load(cookies)
    return client.generic(step.method, step.path, headers=headers)


@contextmanager
def through_async_client() -> Iterator[Send]:
    """Sends with the ``AsyncClient``, on one event loop for the whole pass (as a server
    has one)."""
    loop = asyncio.new_event_loop()

    def send(step: Get, headers: dict[str, str], cookies: dict[str, str]) -> Any:
        client = AsyncClient()
        client.cookies.load(cookies)
        return loop.run_until_complete(client.generic(step.method, step.path, headers=headers))

    try:
        yield send
    finally:
        loop.close()


def test_both_paths_answer_store_and_count_alike(
    pages: DjangoCache, redis_url: str, settings: Any
) -> None:
    cookies = sessions()
    through_sync = run_steps(pages, redis_url, cookies, through_client)
    with through_async_client() as send:
        through_async = run_steps(pages, redis_url, cookies, send)
    for sync_outcome, async_outcome in zip(
        through_sync.outcomes, through_async.outcomes, strict=True
    ):
        assert async_outcome == sync_outcome
    assert through_async.renders == through_sync.renders
    assert through_async.keys == through_sync.keys
    assert through_async.counts == through_sync.counts
    # The table exercises what it means to: hits, 304s, per-user pages, unshared pages.
    assert through_sync.renders["page"] == 9  # 3 misses, 2 unshared, POST refused, named: 3
    assert through_sync.renders["who"] == 2 + 2 + 2 + 2  # /m/who/; /mine/who/ per client
    assert [o[1] for o in through_sync.outcomes[:6]] == [200, 200, 200, 304, 304, 200]
    assert through_sync.counts[0] >= 10  # hits
    if "L1" in settings.CACHEPLUG:
        # Which hits L1 serves rather than Redis is not compared: it depends on when this
        # process hears its own fills and invalidations on the bus (a thread of its own).
        assert through_sync.l1_hits > 0
        assert through_async.l1_hits > 0


# -- no thread on a hit ------------------------------------------------------------------------


def executor_calls(loop: asyncio.AbstractEventLoop, calls: list[object]) -> None:
    """Record every function ``loop`` runs in a thread (``sync_to_async`` and
    ``asyncio.to_thread`` both go through ``run_in_executor``)."""
    run_in_executor = loop.run_in_executor

    def recorded(executor: Any, func: Callable[..., Any], *args: Any) -> Any:
        calls.append(func)
        return run_in_executor(executor, func, *args)

    loop.run_in_executor = recorded  # type: ignore[method-assign]


def test_a_hit_on_the_async_path_runs_nothing_in_a_thread(pages: DjangoCache) -> None:
    responded: list[str] = []

    async def get_response(request: HttpRequest) -> HttpResponseBase:
        responded.append(request.path)
        return HttpResponse("from the view")

    middleware = CachePlugMiddleware(get_response)
    assert iscoroutinefunction(middleware)
    factory = AsyncRequestFactory()

    async def requests() -> list[tuple[int, bytes, list[object]]]:
        found = []
        for _ in range(4):  # a miss, then hits (from L1 once it holds the page)
            calls: list[object] = []
            executor_calls(asyncio.get_running_loop(), calls)
            served = middleware(factory.get("/m/page/"))
            assert isinstance(served, Awaitable)
            response = await served
            found.append((response.status_code, response.content, calls))
        return found

    misses = pages.stats().misses
    found = asyncio.run(requests())
    assert [(status, body) for status, body, _ in found] == [(200, b"from the view")] * 4
    assert responded == ["/m/page/"]
    assert pages.stats().misses == misses + 1
    for _, _, calls in found[1:]:
        assert calls == []


def test_the_l1_tier_serves_async_hits_without_a_thread(settings: Any, redis_url: str) -> None:
    from cacheplug_django import cache

    settings.CACHEPLUG = {
        "NAMESPACE": "tests",
        "STORE": redis_url,
        "PAGES": RULES,
        "L1": {"MAX_ENTRIES": 100, "ADMISSION": "lru"},
    }
    renders.clear()
    assert bus_live(cache)

    async def get_response(request: HttpRequest) -> HttpResponseBase:
        return HttpResponse("from the view")

    middleware = CachePlugMiddleware(get_response)
    factory = AsyncRequestFactory()

    async def hit() -> list[object]:
        calls: list[object] = []
        executor_calls(asyncio.get_running_loop(), calls)
        served = middleware(factory.get("/m/page/"))
        assert isinstance(served, Awaitable)
        await served
        return calls

    async def requests() -> list[tuple[int, list[object]]]:
        found = []
        for _ in range(6):
            calls = await hit()
            found.append((cache.stats().l1_hits, calls))
        return found

    try:
        found = asyncio.run(requests())
    finally:
        cache.reset()
    assert found[-1][0] > found[0][0]  # hits came from the L1 tier
    assert [calls for _, calls in found[1:]] == [[]] * 5


def test_under_asgi_django_runs_the_middleware_asynchronously(
    pages: DjangoCache, settings: Any
) -> None:
    """Through Django's async handler, a hit costs no more threads than an async view
    served without any middleware (the handler's own: its signals, closing the response)."""
    settings.MIDDLEWARE = ["cacheplug_django.middleware.CachePlugMiddleware"]

    async def threads_of(path: str) -> int:
        calls: list[object] = []
        executor_calls(asyncio.get_running_loop(), calls)
        response = await AsyncClient().get(path)
        assert response.status_code == 200
        return len(calls)

    async def requests() -> tuple[int, int]:
        await threads_of("/m/async/")  # the miss
        await threads_of("/off/")
        return await threads_of("/m/async/"), await threads_of("/off/")

    hit, uncached = asyncio.run(requests())
    assert renders["async_page"] == 1 + 2  # the miss; /off/ twice
    settings.MIDDLEWARE = []
    assert asyncio.run(threads_of("/off/")) == uncached
    assert hit <= uncached


def test_a_per_user_page_of_a_session_is_answered_on_the_async_path(
    pages: DjangoCache, settings: Any, redis_client: redis.Redis
) -> None:
    """Placed below AuthenticationMiddleware, the middleware keys a per-user page by the
    session's user, which is loaded from the database: Django refuses that on the event loop
    (SynchronousOnlyOperation), so the async path does it in a thread, and answers and keys
    the page as the sync path does."""
    settings.MIDDLEWARE = [
        *[m for m in settings.MIDDLEWARE if "CachePlugMiddleware" not in m],
        "cacheplug_django.middleware.CachePlugMiddleware",
    ]
    cookies = sessions()
    order = ("alice", "bob", "alice", "bob")

    def sync_get(who: str) -> tuple[int, bytes]:
        client = Client()
        client.cookies["sessionid"] = cookies[who]
        response = client.get("/mine/who/")
        return response.status_code, response.content

    async def async_get(who: str) -> tuple[int, bytes]:
        client = AsyncClient()
        client.cookies["sessionid"] = cookies[who]
        response = await client.get("/mine/who/")
        return response.status_code, response.content

    async def async_requests() -> list[tuple[int, bytes]]:
        return [await async_get(who) for who in order]

    expected = [(200, b"hello alice"), (200, b"hello bob")] * 2
    assert [sync_get(who) for who in order] == expected
    assert renders["who"] == 2  # below the session middleware: cached per user
    # The async path keys the pages alike: it is served what the sync path stored...
    assert asyncio.run(async_requests()) == expected
    assert renders["who"] == 2
    # ...and stores them itself.
    pages.reset()
    redis_client.flushdb()
    assert asyncio.run(async_requests()) == expected
    assert renders["who"] == 4


def test_under_wsgi_the_middleware_stays_synchronous() -> None:
    def get_response(request: HttpRequest) -> HttpResponseBase:
        return HttpResponse("sync")

    middleware = CachePlugMiddleware(get_response)
    assert not iscoroutinefunction(middleware)
    assert not iscoroutinefunction(middleware.process_view)
    asynchronous = CachePlugMiddleware(_async_get_response)
    assert iscoroutinefunction(asynchronous.process_view)


async def _async_get_response(request: HttpRequest) -> HttpResponseBase:
    return HttpResponse("async")
