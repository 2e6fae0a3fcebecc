"""The footer of each shop page: how it was served (L1, the store, rendered) and in how long.

A cached page is stored with the placeholder and filled in on every response, so the footer
always tells about this request, not about the one that rendered the page. It sits above
CachePlugMiddleware (``settings.MIDDLEWARE``) and reads what the cache did from
:func:`cacheplug.integration.recording_calls`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from html import escape

from django.http import HttpRequest, HttpResponse

from cacheplug.integration import recording_calls
from cacheplug_django import cache

PLACEHOLDER = b"<!--cacheplug:served-->"


class ServedFooter:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        with recording_calls() as log:
            response = self.get_response(request)
        if response.streaming or PLACEHOLDER not in response.content:
            return response
        took = (time.perf_counter() - started) * 1000
        store = "Redis" if cache.core.store.shared else "the in-process store"
        how = log.page_served(store)
        footer = (
            f'<span id="served-how" data-outcome="{escape(log.page_outcome() or "")}">'
            f"{escape(how[:1].upper() + how[1:])}</span> "
            f'in <span id="served-ms">{took:.1f}</span> ms'
        )
        response.content = response.content.replace(PLACEHOLDER, footer.encode())
        response["Content-Length"] = str(len(response.content))
        # The body now differs from the stored one on every request: its ETag no longer fits.
        if response.has_header("ETag"):
            del response["ETag"]
        return response
