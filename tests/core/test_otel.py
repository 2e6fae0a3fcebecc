"""cacheplug.otel.instrument: spans of loads and lease waits, captured with the SDK's in-memory
exporter, and metrics read by an in-memory reader; hits are never traced."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _stampede import stampede
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from cacheplug import Cache
from cacheplug.otel import Instrumentation, instrument, key_pattern
from cacheplug.testing import RedisServer
from cacheplug.testing.proxy import TcpProxy

SECRET = "test-secret-key-not-for-production"


class Telemetry:
    """An SDK tracer and meter provider whose spans and metrics stay in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def instrument(self, cache: Cache, **options: Any) -> Instrumentation:
        return instrument(
            cache,
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            **options,
        )

    def spans(self, name: str = "cacheplug.load") -> list[ReadableSpan]:
        return [span for span in self.exporter.get_finished_spans() if span.name == name]

    def points(self, metric: str) -> list[tuple[dict[str, Any], Any]]:
        """``(attributes, value or histogram point)`` of each data point of ``metric``."""
        found = []
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for item in scope.metrics:
                    if item.name == metric:
                        for point in item.data.data_points:
                            value = getattr(point, "value", point)
                            found.append((dict(point.attributes), value))
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    telemetry = Telemetry()
    yield telemetry
    telemetry.tracer_provider.shutdown()
    telemetry.meter_provider.shutdown()


def test_a_miss_is_one_load_span_with_the_key_pattern_and_tags(
    cache: Cache, telemetry: Telemetry
) -> None:
    telemetry.instrument(cache, name="main")
    for _ in range(3):
        cache.get_or_load("product:42", lambda: "p", tags=["category:7"])
    [span] = telemetry.spans()
    attributes = dict(span.attributes or {})
    expected = {
        "db.operation.name": "get_or_load",
        "cacheplug.cache": "main",
        "cacheplug.namespace": "test",
        "cacheplug.key": "product:*",
        "cacheplug.tags": ("category:*",),
        "cacheplug.load.outcome": "stored",
        "cacheplug.load.waiters": 0,
    }
    if cache.store.shared:
        expected["db.system.name"] = "redis"
    assert attributes == expected
    assert span.status.status_code is StatusCode.UNSET
    assert telemetry.spans("cacheplug.lease_wait") == []


def test_hits_are_never_traced(cache: Cache) -> None:
    class Counting:
        started = 0

        def start(self, store_key: str, version_keys: Any, refresh: bool) -> Any:
            Counting.started += 1
            raise AssertionError("a load was traced")

    cache.set("k", "v")
    cache.trace_loads(Counting())  # type: ignore[arg-type]
    for _ in range(100):
        assert cache.get_or_load("k", lambda: "x") == "v"
        assert cache.get("k") == "v"
    assert Counting.started == 0
    assert cache.trace_loads(None) is not None


def test_a_loader_error_sets_the_status_and_type_but_records_no_message(
    cache: Cache, telemetry: Telemetry
) -> None:
    telemetry.instrument(cache)

    def fail() -> str:
        raise LookupError("alice@example.com not found")

    with pytest.raises(LookupError):
        cache.get_or_load("user:alice@example.com", fail)
    [span] = telemetry.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "LookupError"
    assert span.attributes["cacheplug.load.outcome"] == "error"
    assert span.attributes["cacheplug.key"] == "user:*"
    assert not span.events  # no exception event: its message may carry personal data
    assert "alice" not in repr(span.to_json())


def test_the_loaders_own_spans_nest_under_the_load(cache: Cache, telemetry: Telemetry) -> None:
    telemetry.instrument(cache)
    tracer = telemetry.tracer_provider.get_tracer("app")

    def load() -> str:
        with tracer.start_as_current_span("SELECT product"):
            return "p"

    cache.get_or_load("product:1", load)
    [load_span] = telemetry.spans()
    [query] = telemetry.spans("SELECT product")
    assert query.parent is not None
    assert query.parent.span_id == load_span.context.span_id


def test_callers_sharing_a_load_are_its_waiters(cache: Cache, telemetry: Telemetry) -> None:
    telemetry.instrument(cache)
    results, loads = stampede(cache, "hot", 4)
    assert (results, loads) == (["v"] * 4, 1)
    [span] = telemetry.spans()
    assert span.attributes is not None
    assert span.attributes["cacheplug.load.waiters"] == 3


class SignalOnWait:
    """Wraps a cache's load tracer: ``waiting`` is set once a load waits for another
    process's (the OTel trace is told as before)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.waiting = threading.Event()

    def start(self, store_key: str, version_keys: Any, refresh: bool) -> Any:
        return _Signalling(self.inner.start(store_key, version_keys, refresh), self.waiting)


class _Signalling:
    def __init__(self, inner: Any, event: threading.Event) -> None:
        self.inner = inner
        self.event = event

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def waiting(self) -> None:
        self.inner.waiting()
        self.event.set()


def test_a_lease_wait_is_a_child_span_of_the_waiting_load(
    redis_url: str, telemetry: Telemetry
) -> None:
    a = Cache(redis_url, namespace="lease", secret=SECRET)
    b = Cache(redis_url, namespace="lease", secret=SECRET)  # another process, as far as a knows
    telemetry.instrument(b)
    signal = SignalOnWait(b.trace_loads(None))
    b.trace_loads(signal)  # type: ignore[arg-type]
    try:
        loading = threading.Event()

        def load_once_b_waits() -> str:
            loading.set()  # a holds the lease while its loader runs
            assert signal.waiting.wait(10)
            return "from a"

        loader = threading.Thread(target=a.get_or_load, args=("k", load_once_b_waits))
        loader.start()
        assert loading.wait(10)
        assert b.get_or_load("k", lambda: "from b") == "from a"
        loader.join(10)
        [load_span] = telemetry.spans()
        [wait_span] = telemetry.spans("cacheplug.lease_wait")
        assert load_span.attributes is not None
        assert load_span.attributes["cacheplug.load.outcome"] == "waited"
        assert wait_span.parent is not None
        assert wait_span.parent.span_id == load_span.context.span_id
        [(_, waits)] = telemetry.points("cacheplug.lease_wait.duration")
        assert waits.count == 1
        assert telemetry.points("cacheplug.load.duration") == []
    finally:
        a.close()
        b.close()


def test_metrics_are_read_from_the_counters(cache: Cache, telemetry: Telemetry) -> None:
    telemetry.instrument(cache)
    cache.get_or_load("a", lambda: 1)
    cache.get_or_load("a", lambda: 1)
    cache.get("absent")
    labels = {"cacheplug.cache": "default", "cacheplug.namespace": "test"}
    hits = {attrs["cacheplug.tier"]: value for attrs, value in telemetry.points("cacheplug.hits")}
    assert hits == {"l1": 0, "store": 1, "stale": 0, "replica": 0}
    assert telemetry.points("cacheplug.misses") == [(labels, 2)]
    assert telemetry.points("cacheplug.loads") == [(labels, 1)]
    assert telemetry.points("cacheplug.coalesced") == [(labels, 0)]
    assert telemetry.points("cacheplug.errors") == [(labels, 0)]
    assert telemetry.points("cacheplug.invalidations.pending") == [(labels, 0)]
    assert telemetry.points("cacheplug.breaker.open") == [(labels, 0)]
    [(attributes, durations)] = telemetry.points("cacheplug.load.duration")
    assert attributes == labels
    assert durations.count == 1


def test_the_key_pattern_hides_what_may_be_personal() -> None:
    assert key_pattern("product:42") == "product:*"
    assert key_pattern("user:alice@example.com:orders") == "user:*"
    assert key_pattern("alice@example.com") == "*"
    assert key_pattern("homepage") == "*"


def test_a_key_pattern_of_ones_own_and_hashed_keys(cache: Cache, telemetry: Telemetry) -> None:
    telemetry.instrument(cache, key_pattern=lambda key: key.rsplit(":", 1)[0])
    cache.get_or_load("report:daily:2026", lambda: 1)
    cache.get_or_load("long:" + "x" * 300, lambda: 2)  # hashed in the store key
    first, second = telemetry.spans()
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["cacheplug.key"] == "report:daily"
    assert second.attributes["cacheplug.key"] == "long"


def test_uninstrument_stops_the_spans_and_the_metrics(cache: Cache, telemetry: Telemetry) -> None:
    instrumentation = telemetry.instrument(cache)
    with pytest.raises(RuntimeError, match="traced already"):
        telemetry.instrument(cache)
    cache.get_or_load("a", lambda: 1)
    instrumentation.uninstrument()
    cache.get_or_load("b", lambda: 2)
    assert len(telemetry.spans()) == 1
    assert telemetry.points("cacheplug.loads") == []
    telemetry.instrument(cache)  # may be instrumented again


def test_namespace_views_are_traced_with_their_namespace(
    cache: Cache, telemetry: Telemetry
) -> None:
    telemetry.instrument(cache)
    cache.namespace("catalog").get_or_load("k", lambda: 1)
    [span] = telemetry.spans()
    assert span.attributes is not None
    assert span.attributes["cacheplug.namespace"] == "test/catalog"


def test_async_loads_are_traced(cache: Cache, telemetry: Telemetry) -> None:
    telemetry.instrument(cache)
    tracer = telemetry.tracer_provider.get_tracer("app")

    async def load() -> str:
        await asyncio.sleep(0)
        with tracer.start_as_current_span("query"):
            return "v"

    async def main() -> list[str]:
        return list(await asyncio.gather(*(cache.aget_or_load("k", load) for _ in range(3))))

    assert asyncio.run(main()) == ["v"] * 3
    [span] = telemetry.spans()
    [query] = telemetry.spans("query")
    assert span.attributes is not None
    assert span.attributes["cacheplug.load.waiters"] == 2
    assert span.attributes["cacheplug.load.outcome"] == "stored"
    assert query.parent is not None
    assert query.parent.span_id == span.context.span_id


def test_without_an_sdk_loads_work_and_nothing_is_recorded(cache: Cache) -> None:
    instrumentation = instrument(cache)  # the global providers: the API's no-op ones
    assert cache.get_or_load("k", lambda: "v") == "v"
    assert cache.get_or_load("k", lambda: "x") == "v"
    instrumentation.uninstrument()


@pytest.mark.parametrize(
    ("module", "package", "extra"),
    [
        ("cacheplug.otel", "opentelemetry", "otel"),
        ("cacheplug.prometheus", "prometheus_client", "prometheus"),
    ],
)
def test_without_the_extra_the_error_says_what_to_install(
    module: str, package: str, extra: str
) -> None:
    code = f"import sys; sys.modules[{package!r}] = None; import {module}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert f"pip install 'cacheplug[{extra}]'" in result.stderr


def test_the_cache_imports_no_telemetry_package() -> None:
    code = (
        "import sys, cacheplug; c = cacheplug.Cache(); c.get_or_load('k', lambda: 1); "
        "print(sorted(m for m in ('opentelemetry', 'prometheus_client') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_each_way_a_load_ends_is_its_outcome(cache: Cache, telemetry: Telemetry) -> None:
    telemetry.instrument(cache)

    def invalidated_meanwhile() -> str:
        cache.invalidate("written")  # a write committed while the load ran
        return "old"

    cache.get_or_load("written", invalidated_meanwhile)
    cache.get_or_load("uncacheable", lambda: None, negative_ttl=0)  # None: never cached
    outcomes = [(span.attributes or {}).get("cacheplug.load.outcome") for span in telemetry.spans()]
    assert outcomes == ["invalidated", "not_stored"]


def test_a_store_that_is_down_is_an_uncached_load(
    redis_server: RedisServer, telemetry: Telemetry
) -> None:
    with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        cache = Cache(f"redis://127.0.0.1:{proxy.port}/0", namespace="down")
        telemetry.instrument(cache)
        proxy.cut()
        assert cache.get_or_load("k", lambda: 1) == 1
        [span] = telemetry.spans()
        assert span.attributes is not None
        assert span.attributes["cacheplug.load.outcome"] == "uncached"
        cache.close(flush_timeout=0)


def test_a_caller_that_stops_waiting_loads_without_storing(
    redis_url: str, telemetry: Telemetry
) -> None:
    a = Cache(redis_url, namespace="impatient", secret=SECRET)
    b = Cache(redis_url, namespace="impatient", secret=SECRET, wait_timeout=0)
    telemetry.instrument(b)
    release, loading = threading.Event(), threading.Event()

    def slow() -> str:
        loading.set()
        assert release.wait(10)
        return "from a"

    loader = threading.Thread(target=a.get_or_load, args=("k", slow))
    loader.start()
    try:
        assert loading.wait(10)  # a holds the lease
        assert b.get_or_load("k", lambda: "from b") == "from b"
    finally:
        release.set()
        loader.join(10)
    [span] = telemetry.spans()
    assert span.attributes is not None
    assert span.attributes["cacheplug.load.outcome"] == "wait_timeout"
    assert len(telemetry.spans("cacheplug.lease_wait")) == 1
    assert b.durations().lease_waits.count == 1
    assert b.durations().loads.count == 1
    a.close()
    b.close()
