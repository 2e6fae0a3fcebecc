"""Flask integration for cacheplug: the ``CachePlug`` extension.

::

    from cacheplug_flask import CachePlug

    cache = CachePlug()

    def create_app():
        app = Flask(__name__)
        app.config["CACHEPLUG_STORE"] = "redis://127.0.0.1:6379/0"  # absent: embedded store
        db.init_app(app)
        cache.init_app(app, sqlalchemy=db)
        return app

    @app.get("/products/<int:pid>")
    @cache.cached_view(ttl=300, tags=lambda pid: [instance_tag(Product, pid)])
    def product(pid): ...

SQLAlchemy commits invalidate what their writes touched; ``flask cacheplug ...`` warms,
flushes and inspects the cache.
"""

from __future__ import annotations

from cacheplug_flask.extension import CachePlug
from cacheplug_flask.model_tags import instance_tag, model_tags
from cacheplug_flask.sinks import upsert_sink

__all__ = ["CachePlug", "instance_tag", "model_tags", "upsert_sink"]
