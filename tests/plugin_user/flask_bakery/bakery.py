"""A small Flask app: a bakery whose menu and prices are cached by cacheplug."""

from __future__ import annotations

import os

from flask import Flask

from cacheplug_flask import CachePlug

cache = CachePlug()
baked: list[str] = []  # one item per computation, for the tests to count


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["CACHEPLUG_STORE"] = os.environ["BAKERY_REDIS_URL"]
    app.config["CACHEPLUG_NAMESPACE"] = "bakery"
    cache.init_app(app)

    @app.get("/menu")
    @cache.cached_view(ttl=60)
    def menu() -> str:
        return ", ".join(todays_breads())

    return app


@cache.cached(ttl=600, key="breads")
def todays_breads() -> list[str]:
    baked.append("breads")
    return ["baguette", "rye", "sourdough"]


def price(bread: str) -> str:
    return cache.get_or_load(f"price:{bread}", lambda: _weigh_and_price(bread), ttl=60)


def _weigh_and_price(bread: str) -> str:
    baked.append(f"price:{bread}")
    return "3.20"
