"""``CachePlug``: the Flask extension."""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, Unpack, cast

from flask import Flask, current_app, has_app_context

from cacheplug import DEFAULT, Cache
from cacheplug.integration import (
    EdgePurges,
    EdgeSettings,
    ModelTagging,
    OutboxRelay,
    TaggedCache,
    Warmers,
    cookie_names,
    edge_settings,
    start_edge_purges,
)
from cacheplug_flask.config import build_cache, seed, validate
from cacheplug_flask.model_tags import learn_tables, model_tags, parents_of
from cacheplug_flask.outbox import SessionOutbox
from cacheplug_flask.sqlalchemy import SessionHooks

if TYPE_CHECKING:
    from cacheplug_flask.views import CachedViewOptions

T = TypeVar("T")
_EXTENSION = "cacheplug"


@dataclass
class _AppState:
    cache: Cache
    session: Callable[[], Any] | None = None
    hooks: SessionHooks | None = None
    models: Any = None  # the SQLAlchemy registry of the app's mapped classes, when known
    private_cookies: tuple[str, ...] = ()
    edge: EdgeSettings | None = None
    edge_purges: EdgePurges | None = None


class CachePlug(TaggedCache):
    """The Flask extension: ``CachePlug(app)`` or ``ext = CachePlug(); ext.init_app(app)``.

    Every :class:`cacheplug.Cache` method is available on the extension and acts on the
    current app's cache; reads also take ``depends_on=[Model, ...]`` (SQLAlchemy mapped
    classes), and those of what this context's session wrote and has not committed go around
    the cache (:class:`cacheplug.integration.TaggedCache`). ``config_prefix`` names the
    configuration keys (``CACHEPLUG_STORE``, ...; see ``cacheplug_flask.config``), so that an
    app can have several caches.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        sqlalchemy: Any = None,
        config_prefix: str = "CACHEPLUG",
    ) -> None:
        super().__init__(
            lambda: self._state.cache,
            ModelTagging(
                model_tags,
                parents_of,
                self._uncommitted,
                anything_uncommitted=self._anything_uncommitted,
                auto_default=lambda: self._setting("AUTO_DEPENDENCIES") is True,
                audit=self._audit,
            ),
        )
        self.config_prefix = config_prefix
        self.warmers = Warmers()
        self._last_state: tuple[Flask, _AppState] | None = None
        if app is not None:
            self.init_app(app, sqlalchemy=sqlalchemy)

    def init_app(self, app: Flask, *, sqlalchemy: Any = None) -> None:
        """Configure the cache for ``app`` (once per app); with ``sqlalchemy`` (Flask-SQLAlchemy's
        ``db``, a ``sessionmaker``, a ``scoped_session``, or an ``Engine``), commits invalidate
        what their writes touched.

        Every ``CACHEPLUG_*`` key is checked first: bad values raise
        :class:`~cacheplug.integration.SettingsError` (all of them at once); an unknown
        key raises too under ``app.testing`` or ``app.debug``, and is warned about otherwise."""
        states = app.extensions.setdefault(_EXTENSION, {})
        if self.config_prefix in states:
            raise RuntimeError(
                f"CachePlug({self.config_prefix!r}) is already set up for app {app.name!r}"
            )
        validate(app.config, self.config_prefix, strict_keys=app.testing or app.debug)
        seed(app.config, self.config_prefix)
        private = cookie_names(
            app.config[f"{self.config_prefix}_PRIVATE_COOKIES"],
            f"{self.config_prefix}_PRIVATE_COOKIES",
        )
        cache = build_cache(app.config, self.config_prefix)
        edge = edge_settings(app.config[f"{self.config_prefix}_EDGE"])
        state = _AppState(cache, private_cookies=private, edge=edge)
        state.edge_purges = start_edge_purges(cache, edge)
        if sqlalchemy is not None:
            # Weak: the session factory (often module-level) must not keep a torn-down app's
            # cache alive, nor send it invalidations.
            cache_ref = weakref.ref(cache)

            def invalidate(tags: list[str], again_after: float | None) -> None:
                target = cache_ref()
                if target is not None:
                    target.invalidate_tags(*tags, again_after=again_after)

            unknown_sql = app.config[f"{self.config_prefix}_UNKNOWN_SQL"]
            outbox = None
            if app.config[f"{self.config_prefix}_OUTBOX"]:
                outbox = SessionOutbox(cache, owner=app, edge=lambda: state.edge_purges)
            state.hooks = SessionHooks(
                invalidate, every_table=unknown_sql != "ignore", outbox=outbox
            )
            state.hooks.install(sqlalchemy)
            if hasattr(type(sqlalchemy), "engines"):  # Flask-SQLAlchemy: every bind's engine
                with app.app_context():
                    try:
                        engines = list(sqlalchemy.engines.values())
                    except (KeyError, RuntimeError):
                        engines = []  # db.init_app(app) comes later: found at first use
                for engine in engines:
                    state.hooks.watch(engine)
            if outbox is not None:
                outbox.relay_left_over(state.hooks.engines())
            session = getattr(sqlalchemy, "session", sqlalchemy)
            state.session = session if callable(session) else None
            state.models = getattr(getattr(sqlalchemy, "Model", None), "registry", None)
            if state.models is not None:
                learn_tables(state.models.mappers)  # their keys: which rows a read selects
        states[self.config_prefix] = state
        from cacheplug_flask.cli import command_group
        from cacheplug_flask.jinja import CachePlugExtension

        app.cli.add_command(command_group(self), name=self._command_name())
        if self.config_prefix == "CACHEPLUG":  # the app's main cache owns {% cacheplug %}
            app.jinja_env.add_extension(CachePlugExtension)
            app.jinja_env.cacheplug = self  # type: ignore[attr-defined]
        _close_at_exit(cache)

        @app.teardown_request
        def publish_stats(_: BaseException | None) -> None:
            # Counters summed over processes in the store (``flask cacheplug stats``), at
            # most every 10 s; a store that is down is skipped silently.
            cache.publish_stats(every=10.0)

    def _command_name(self) -> str:
        if self.config_prefix == "CACHEPLUG":
            return "cacheplug"
        return self.config_prefix.lower().replace("_", "-")

    # -- the current app's cache ------------------------------------------------------------

    @property
    def _state(self) -> _AppState:
        # Asked three times a page hit: the last app's state is kept, as one tuple (replaced
        # whole, so a thread serving another app never reads a mixed pair).
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        last = self._last_state
        if last is not None and last[0] is app:
            return last[1]
        try:
            state = cast(_AppState, app.extensions[_EXTENSION][self.config_prefix])
        except KeyError:
            raise RuntimeError(
                f"CachePlug({self.config_prefix!r}) is not set up for app {app.name!r}: "
                "call init_app(app) first"
            ) from None
        self._last_state = (app, state)
        return state

    @property
    def cache(self) -> Cache:
        """The current app's :class:`cacheplug.Cache`."""
        return self._state.cache

    @property
    def private_cookies(self) -> tuple[str, ...]:
        """The current app's ``CACHEPLUG_PRIVATE_COOKIES`` (``config_prefix`` first): cookies
        that identify somebody besides the session's."""
        return self._state.private_cookies

    @property
    def edge(self) -> EdgeSettings | None:
        """The current app's ``CACHEPLUG_EDGE``, checked (``None``: off)."""
        return self._state.edge

    def edge_purges(self) -> EdgePurges | None:
        """The queue purging the current app's edge cache (``None`` without a
        ``purge_url``): ``waiting()``, ``purged``, ``failures``, ``flush(timeout)``."""
        return self._state.edge_purges

    def _setting(self, name: str) -> Any:
        return current_app.config.get(f"{self.config_prefix}_{name}") if has_app_context() else None

    def _audit(self) -> bool:
        """``<prefix>_AUDIT_DEPENDENCIES``, or the app's debug mode when it is ``None``."""
        chosen = self._setting("AUDIT_DEPENDENCIES")
        if chosen is None:
            return has_app_context() and bool(current_app.debug)
        return chosen is True

    def _open_session(self) -> tuple[Any, SessionHooks] | None:
        """This context's session and the hooks watching it; None when there is none (no
        SQLAlchemy, or no session in this context: nothing uncommitted)."""
        state = self._state
        session_factory = state.session
        if session_factory is None or state.hooks is None:
            return None
        registry = getattr(session_factory, "registry", None)
        if registry is not None and not registry.has():
            return None
        return session_factory(), state.hooks

    def _anything_uncommitted(self) -> bool:
        """True when this context's session wrote and has not committed."""
        found = self._open_session()
        return found is not None and found[1].wrote(found[0])

    def _uncommitted(self, tags: list[str]) -> bool:
        """True when this context's session wrote something ``tags`` depend on and has not
        committed (see ``cacheplug_flask.sqlalchemy``)."""
        found = self._open_session()
        return found is not None and found[1].covers(found[0], tags)

    def cached_view(
        self, ttl: Any = DEFAULT, **options: Unpack[CachedViewOptions]
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Cache a view's responses (see ``cacheplug_flask.views.cached_view`` for the
        options and their defaults)."""
        from cacheplug_flask.views import cached_view

        return cached_view(self, ttl, **options)

    def mappers(self) -> list[Any]:
        """The mapped classes' mappers of the current app's SQLAlchemy (Flask-SQLAlchemy's
        ``db.Model.registry``), for naming models on the command line."""
        registry = self._state.models
        return [] if registry is None else list(registry.mappers)

    def outbox_relays(self) -> dict[str, OutboxRelay]:
        """The outbox relays the current app runs, by database (its URL, password hidden),
        for :class:`cacheplug.prometheus.CacheCollector` and the staff dashboard: one per
        database whose outbox the app wrote to or relays. Empty when the outbox is off
        (``CACHEPLUG_OUTBOX = False``) or the extension was given no SQLAlchemy."""
        hooks = self._state.hooks
        if hooks is None or hooks.outbox is None:
            return {}
        return hooks.outbox.relays()

    def warmer(self, name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
        """Register a warmer for ``flask cacheplug warm``."""
        return self.warmers.register(name)

    def close(self, app: Flask | None = None) -> None:
        """Close the cache of ``app`` (default: the current one): apply pending
        invalidations and release its connections."""
        target = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
        state = target.extensions.get(_EXTENSION, {}).get(self.config_prefix)
        if state is not None:
            if state.hooks is not None:
                state.hooks.uninstall()  # a module-level session outlives the app
            if state.edge_purges is not None:
                state.edge_purges.close()
            state.cache.close()


_open: weakref.WeakSet[Cache] = weakref.WeakSet()
_registered: list[bool] = []


def _close_at_exit(cache: Cache) -> None:
    # Pending invalidations must reach the store before the process ends.
    if not _registered:
        atexit.register(_close_all)
        _registered.append(True)
    _open.add(cache)


def _close_all() -> None:
    for cache in list(_open):
        cache.close(flush_timeout=2.0)
