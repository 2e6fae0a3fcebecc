"""The footer of each shop page: how it was served (L1, the store, rendered) and in how long.

A cached page is stored with the placeholder and filled in on every response, so the footer
always tells about this request, not about the one that rendered the page. What the cache did
comes from :func:`cacheplug.integration.recording_calls`, open from the first hook of the
request to its teardown.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from html import escape

from flask import Flask, Response, g

from cacheplug.integration import recording_calls
from flask_shop.extensions import cache

PLACEHOLDER = b"<!--cacheplug:served-->"


def install(app: Flask) -> None:
    """Fill in the footer of ``app``'s pages."""

    @app.before_request
    def start() -> None:
        g.served_stack = stack = ExitStack()
        g.served_log = stack.enter_context(recording_calls())
        g.served_started = time.perf_counter()

    @app.after_request
    def footer(response: Response) -> Response:
        log = g.get("served_log")
        if log is None or response.is_streamed or PLACEHOLDER not in response.get_data():
            return response
        took = (time.perf_counter() - g.served_started) * 1000
        how = log.page_served("Redis" if cache.cache.store.shared else "the in-process store")
        markup = (
            f'<span id="served-how" data-outcome="{escape(log.page_outcome() or "")}">'
            f"{escape(how[:1].upper() + how[1:])}</span> "
            f'in <span id="served-ms">{took:.1f}</span> ms'
        )
        response.set_data(response.get_data().replace(PLACEHOLDER, markup.encode()))
        # The body now differs from the stored one on every request: its ETag no longer fits.
        response.headers.pop("ETag", None)
        return response

    @app.teardown_request
    def stop(_: BaseException | None) -> None:
        stack = g.pop("served_stack", None)
        if stack is not None:
            stack.close()
