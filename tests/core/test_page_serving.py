"""``cacheplug.integration.serve_page``: the answer a request gets is the page it was served,
not one a background refresh rendered meanwhile (on another thread, or another task)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from cacheplug.integration import (
    EnvironHeaders,
    Page,
    PagePolicy,
    PageRequest,
    aserve_page,
    serve_page,
)

POLICY = PagePolicy()
STALE = POLICY.page_of(200, [("Content-Type", "text/plain")], b"stale")
assert STALE is not None


def request() -> PageRequest:
    return PageRequest("GET", "example.com", "/", (), EnvironHeaders({}))


def rendering() -> tuple[Callable[[], str], Callable[[], tuple[str, Page | None]]]:
    def respond() -> str:
        return "fresh response"

    def render() -> tuple[str, Page | None]:
        return respond(), POLICY.page_of(200, [("Content-Type", "text/plain")], b"fresh")

    return respond, render


class RefreshedMeanwhile:
    """Serves the stored (stale) page and refreshes it on another thread, which finishes
    before the read returns: the order a busy machine can give a background refresh."""

    def get_or_load(self, key: str, loader: Callable[[], Any], ttl: Any = None, **kw: Any) -> Any:
        refresh = threading.Thread(target=loader)
        refresh.start()
        refresh.join()
        return STALE.record()

    async def aget_or_load(
        self, key: str, loader: Callable[[], Awaitable[Any]], ttl: Any = None, **kw: Any
    ) -> Any:
        await asyncio.create_task(loader())  # type: ignore[arg-type]
        return STALE.record()


def test_a_request_served_a_stale_page_answers_with_it() -> None:
    respond, render = rendering()
    answer = serve_page(RefreshedMeanwhile(), POLICY, request(), respond, render)
    assert answer.own is None
    assert answer.body == b"stale"


def test_an_async_request_served_a_stale_page_answers_with_it() -> None:
    respond, render = rendering()

    async def arespond() -> str:
        return respond()

    async def arender() -> tuple[str, Page | None]:
        return render()

    answer = asyncio.run(aserve_page(RefreshedMeanwhile(), POLICY, request(), arespond, arender))
    assert answer.own is None
    assert answer.body == b"stale"
