"""The staff dashboard as a Flask blueprint: what this process's cache is doing, refreshing
on its own (the figures: :func:`cacheplug.integration.dashboard_figures`).

The app says who may see it::

    from cacheplug_flask.dashboard import dashboard_blueprint

    app.register_blueprint(
        dashboard_blueprint(cache, allowed=lambda: current_user.is_authenticated
                            and current_user.is_admin),
        url_prefix="/cacheplug",
    )

``allowed()`` is asked on every request of the blueprint (the page and the JSON it polls);
``False`` answers 403. The page refreshes every ``refresh_seconds`` (``?refresh=N``
overrides it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request, url_for

from cacheplug.integration import (
    OperationError,
    dashboard_figures,
    dashboard_html,
    dashboard_page,
    refresh_interval,
)
from cacheplug_flask.cdc import stats_feed
from cacheplug_flask.extension import CachePlug

__all__ = ["dashboard_blueprint"]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cacheplug</title>
<style>body{{font-family:sans-serif;margin:2em}}th{{text-align:left;padding-right:2em}}</style>
</head><body><h1>cacheplug</h1>{body}</body></html>"""


def dashboard_blueprint(
    cache: CachePlug,
    *,
    allowed: Callable[[], bool],
    name: str = "cacheplug_dashboard",
    refresh_seconds: float = 5.0,
) -> Blueprint:
    """A blueprint serving the dashboard of ``cache`` (the current app's) at its root and
    the figures at ``data.json``, to whoever ``allowed()`` lets in."""
    blueprint = Blueprint(name, __name__)

    def figures() -> dict[str, Any]:
        # The configured change feed's lag too (None when CDC is off or cannot run here).
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            feed = stats_feed(app, cache.cache, cache.config_prefix, cache.mappers())
        except OperationError:
            feed = None
        return dashboard_figures(cache.cache, change_feed=feed, outbox=cache.outbox_relays())

    @blueprint.before_request
    def check() -> None:
        if not allowed():
            abort(403)

    @blueprint.get("/")
    def page() -> Response:
        body = dashboard_page(
            figures(),
            url_for(f"{name}.data"),
            refresh_interval(request.args.get("refresh"), refresh_seconds),
        )
        response = Response(PAGE.format(body=body), mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    @blueprint.get("/data.json")
    def data() -> Response:
        found = figures()
        response = jsonify({"figures": found, "html": dashboard_html(found)})
        response.headers["Cache-Control"] = "no-store"
        return response

    return blueprint
