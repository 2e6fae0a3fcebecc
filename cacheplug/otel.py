"""OpenTelemetry for a cache: a span for every load, and metrics read from its counters.

``instrument(cache)`` makes the cache follow its loads (``Cache.trace_loads``) and registers
observable instruments whose callbacks read ``Cache.stats()`` when the metric reader collects.
Hits are never traced nor timed; a load costs a few microseconds more while no SDK is
configured (the API's no-op tracer and meter).

Spans (``INTERNAL``, the loader's own spans nest under ``cacheplug.load``):

- ``cacheplug.load``: a miss this process resolves (loading, or waiting for another
  process's load) or a background refresh. Attributes: ``db.system.name`` (``"redis"`` on a
  Redis store), ``db.operation.name`` (``"get_or_load"`` or ``"refresh"``), ``cacheplug.cache``,
  ``cacheplug.namespace``, ``cacheplug.key`` (the key's *pattern*, see :func:`key_pattern`),
  ``cacheplug.tags`` (their patterns), ``cacheplug.load.outcome`` (``stored``, ``waited``,
  ``error``, ...: see ``docs/observability.md``), ``cacheplug.load.waiters`` (callers of this
  process that shared the load), ``error.type`` when the loader raised (its message is not
  recorded: it may carry data).
- ``cacheplug.lease_wait``: its child, while another process holds the key's lease.

Needs ``pip install 'cacheplug[otel]'`` (the API; the application brings the SDK and its
exporters); see ``docs/observability.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final

try:
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.trace import Span, Status, StatusCode, TracerProvider
except ImportError as exc:  # the error says what to install, not just what is missing
    raise ImportError(
        f"cacheplug.otel needs opentelemetry-api ({exc}); "
        "install it with: pip install 'cacheplug[otel]'"
    ) from exc

from cacheplug import Cache, LoadTrace, LoadTracer, __version__

__all__ = ["Instrumentation", "instrument", "key_pattern"]

_SCOPE: Final = "cacheplug"
_TAG_MARKERS: Final = (":t:{", ":t#:{")  # a tag's version key (see encoding/_keys.Purpose.TAG)


def key_pattern(key: str) -> str:
    """What spans show of a key: its first ``:``-separated part, the rest as ``*``
    (``"product:42"`` -> ``"product:*"``); a key without ``:`` is ``"*"``, since it may be an
    e-mail address or a user name as well as a constant. Pass your own to :func:`instrument`
    to show more; never one that reveals secrets or personal data."""
    head, separator, _ = key.partition(":")
    return head + ":*" if separator else "*"


def _user_part(store_key: str) -> str:
    """The key (or a hashed key's readable prefix) inside a store key
    ``<namespace>:<version>:<purpose>:{<key>}``."""
    inner = store_key[store_key.find("{") + 1 : -1]
    return inner.split("~", 1)[0] if "#:{" in store_key else inner


class Instrumentation:
    """What :func:`instrument` set up; :meth:`uninstrument` undoes it."""

    def __init__(self, cache: Cache, tracer: _Tracer, meter: metrics.Meter, name: str) -> None:
        self.cache = cache
        self.name = name
        self._tracer = tracer
        self._active = True
        labels = {"cacheplug.cache": name, "cacheplug.namespace": cache.namespace_name}
        self._labels = labels
        counted = (
            ("cacheplug.misses", "misses", "{lookup}", "Lookups the cache could not answer"),
            ("cacheplug.loads", "loads", "{load}", "Loader calls"),
            (
                "cacheplug.coalesced",
                "coalesced",
                "{call}",
                "Callers that got another caller's load instead of loading",
            ),
            ("cacheplug.errors", "errors", "{error}", "Store calls that failed"),
        )
        meter.create_observable_counter(
            "cacheplug.hits",
            [self._hits],
            unit="{lookup}",
            description="Lookups answered by the cache, by tier (l1, store, stale, replica)",
        )
        for instrument_name, field, unit, text in counted:
            meter.create_observable_counter(
                instrument_name, [self._counter(field)], unit=unit, description=text
            )
        meter.create_observable_up_down_counter(
            "cacheplug.invalidations.pending",
            [self._pending],
            unit="{invalidation}",
            description="Invalidations waiting for the store",
        )
        meter.create_observable_gauge(
            "cacheplug.breaker.open",
            [self._breaker],
            description="1 while the circuit breaker refuses store calls",
        )

    def uninstrument(self) -> None:
        """Stop tracing the cache's loads; its instruments report nothing from now on (an
        instrument cannot be removed from a meter)."""
        if self._active:
            self._active = False
            if self.cache.trace_loads(None) is not self._tracer:
                raise RuntimeError("the cache's load tracer was replaced meanwhile")

    # -- the callbacks: read when the metric reader collects ------------------------------

    def _hits(self, options: CallbackOptions) -> Iterator[Observation]:
        if not self._active:
            return
        for tier, count in self.cache.stats().hits_by_tier().items():
            yield Observation(count, {**self._labels, "cacheplug.tier": tier})

    def _counter(self, field: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            if not self._active:
                return []
            return [Observation(getattr(self.cache.stats(), field), self._labels)]

        return observe

    def _pending(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self._active:
            return []
        return [Observation(len(self.cache.pending_invalidations()), self._labels)]

    def _breaker(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self._active:
            return []
        return [Observation(1 if self.cache.breaker.is_open else 0, self._labels)]


def instrument(
    cache: Cache,
    *,
    name: str = "default",
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    key_pattern: Callable[[str], str] = key_pattern,
) -> Instrumentation:
    """Trace ``cache``'s loads and report its counters, with ``tracer_provider`` and
    ``meter_provider`` (default: the global ones). ``name`` is the ``cacheplug.cache``
    attribute; ``key_pattern(key)`` says what spans show of a key or a tag (see
    :func:`key_pattern`). Namespace views of the cache are traced too; instrument a cache once.
    """
    tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider)
    meter = metrics.get_meter(_SCOPE, __version__, meter_provider)
    redis = type(cache.store).__module__.startswith("cacheplug.stores.redis")
    load_tracer = _Tracer(tracer, meter, name, key_pattern, "redis" if redis else None)
    previous = cache.trace_loads(load_tracer)
    if previous is not None:
        cache.trace_loads(previous)
        raise RuntimeError(
            "this cache's loads are traced already: uninstrument() the first instrumentation"
        )
    return Instrumentation(cache, load_tracer, meter, name)


class _Tracer(LoadTracer):
    """Makes a :class:`_Trace` for each load."""

    def __init__(
        self,
        tracer: trace.Tracer,
        meter: metrics.Meter,
        name: str,
        pattern: Callable[[str], str],
        system: str | None,
    ) -> None:
        self.tracer = tracer
        self.name = name
        self.pattern = pattern
        self.system = system
        self.load_duration = meter.create_histogram(
            "cacheplug.load.duration", unit="s", description="How long loader calls took"
        )
        self.wait_duration = meter.create_histogram(
            "cacheplug.lease_wait.duration",
            unit="s",
            description="How long callers waited for another process's load of the key",
        )

    def start(self, store_key: str, version_keys: Sequence[str], refresh: bool) -> LoadTrace:
        key = self.pattern(_user_part(store_key))
        tags = [
            self.pattern(_user_part(version_key))
            for version_key in version_keys
            if any(marker in version_key for marker in _TAG_MARKERS)
        ]
        attributes: dict[str, Any] = {
            "db.operation.name": "refresh" if refresh else "get_or_load",
            "cacheplug.cache": self.name,
            "cacheplug.namespace": store_key.split(":", 1)[0],
            "cacheplug.key": key,
        }
        if self.system is not None:
            attributes["db.system.name"] = self.system
        if tags:
            attributes["cacheplug.tags"] = tags
        span = self.tracer.start_span("cacheplug.load", attributes=attributes)
        return _Trace(self, span, attributes)


class _Trace(LoadTrace):
    """One load's span (and its lease wait's)."""

    __slots__ = ("_attributes", "_owner", "_span", "_wait")

    def __init__(self, owner: _Tracer, span: Span, attributes: dict[str, Any]) -> None:
        self._owner = owner
        self._span = span
        self._attributes = attributes
        self._wait: Span | None = None

    def active(self) -> AbstractContextManager[Any]:
        # The error is recorded by end(), without its message.
        return trace.use_span(self._span, record_exception=False, set_status_on_exception=False)

    def waiting(self) -> None:
        context = trace.set_span_in_context(self._span)
        self._wait = self._owner.tracer.start_span(
            "cacheplug.lease_wait",
            context,
            attributes={
                "cacheplug.cache": self._owner.name,
                "cacheplug.key": self._attributes["cacheplug.key"],
            },
        )

    def wait_over(self, seconds: float) -> None:
        self._owner.wait_duration.record(seconds, self._metric_attributes())
        if self._wait is not None:
            self._wait.end()
            self._wait = None

    def loading(self) -> None:
        return None

    def loaded(self, seconds: float) -> None:
        self._owner.load_duration.record(seconds, self._metric_attributes())

    def end(self, outcome: str, waiters: int, error: BaseException | None) -> None:
        span = self._span
        span.set_attribute("cacheplug.load.outcome", outcome)
        span.set_attribute("cacheplug.load.waiters", waiters)
        if error is not None:
            span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(Status(StatusCode.ERROR))
        if self._wait is not None:  # a wait cut short by an error
            self._wait.end()
        span.end()

    def _metric_attributes(self) -> dict[str, Any]:
        # The key is left out: one time series per key pattern would be too many.
        attributes = self._attributes
        return {
            "cacheplug.cache": attributes["cacheplug.cache"],
            "cacheplug.namespace": attributes["cacheplug.namespace"],
        }
