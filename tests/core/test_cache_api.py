"""The Cache facade's sync API, on the embedded store and on Redis."""

from __future__ import annotations

import pytest

from cacheplug import Cache, NotACounter
from cacheplug.testing import FakeClock


class Product:
    def __init__(self, pk: int, name: str) -> None:
        self.pk = pk
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Product) and (self.pk, self.name) == (other.pk, other.name)


def test_get_returns_default_for_a_missing_key(cache: Cache) -> None:
    assert cache.get("absent") is None
    assert cache.get("absent", default="fallback") == "fallback"


def test_set_then_get(cache: Cache) -> None:
    assert cache.set("product:1", Product(1, "lamp")) is True
    assert cache.get("product:1") == Product(1, "lamp")


@pytest.mark.parametrize("falsy", [None, 0, "", [], {}, False, 0.0])
def test_falsy_values_are_hits(cache: Cache, falsy: object) -> None:
    calls: list[int] = []

    def loader() -> object:
        calls.append(1)
        return falsy

    assert cache.get_or_load("falsy", loader) == falsy
    assert cache.get_or_load("falsy", loader) == falsy
    assert calls == [1]
    assert cache.get("falsy", default="missing") == falsy
    assert cache.stats().hits == 2


def test_get_or_load_loads_once_then_hits(cache: Cache) -> None:
    calls: list[int] = []

    def loader() -> dict[str, int]:
        calls.append(1)
        return {"views": 3}

    assert cache.get_or_load("page", loader, ttl=60) == {"views": 3}
    assert cache.get_or_load("page", loader, ttl=60) == {"views": 3}
    assert len(calls) == 1
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.loads) == (1, 1, 1)
    assert stats.bytes_written > 0
    assert stats.bytes_read > 0
    assert stats.hit_ratio == 0.5


def test_loader_exception_propagates_and_nothing_is_cached(cache: Cache) -> None:
    def broken() -> int:
        raise LookupError("row not found")

    with pytest.raises(LookupError, match="row not found"):
        cache.get_or_load("broken", broken)
    assert cache.get("broken", default="nothing") == "nothing"
    assert cache.get_or_load("broken", lambda: 7) == 7


def test_delete(cache: Cache) -> None:
    cache.set("k", 1)
    assert cache.delete("k") is True
    assert cache.delete("k") is False
    assert cache.get("k") is None


def test_add_only_when_absent(cache: Cache) -> None:
    assert cache.add("lock", "first") is True
    assert cache.add("lock", "second") is False
    assert cache.get("lock") == "first"


def test_get_many_returns_only_present_keys(cache: Cache) -> None:
    cache.set("a", 1)
    cache.set("b", None)
    assert cache.get_many(["a", "b", "c"]) == {"a": 1, "b": None}
    assert cache.get_many([]) == {}
    assert cache.get_many(iter(["a"])) == {"a": 1}
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (3, 1)


def test_set_many_and_delete_many(cache: Cache) -> None:
    assert cache.set_many({"x": 1, "y": [2], "z": "3"}, ttl=60) == []
    assert cache.get_many(["x", "y", "z"]) == {"x": 1, "y": [2], "z": "3"}
    assert cache.delete_many(["x", "y", "absent"]) == 2
    assert cache.get_many(["x", "y", "z"]) == {"z": "3"}


def test_incr_and_decr(cache: Cache) -> None:
    assert cache.incr("hits") == 1
    assert cache.incr("hits", 10) == 11
    assert cache.decr("hits", 3) == 8
    assert cache.get("hits") == 8


def test_incr_converts_an_integer_set_with_set(cache: Cache) -> None:
    cache.set("n", 41)
    assert cache.incr("n") == 42
    assert cache.get("n") == 42


def test_incr_refuses_non_integers(cache: Cache) -> None:
    cache.set("s", "text")
    cache.set("b", True)
    with pytest.raises(NotACounter, match="'s'"):
        cache.incr("s")
    with pytest.raises(NotACounter):
        cache.incr("b")
    with pytest.raises(TypeError):
        cache.incr("n", 1.5)  # type: ignore[arg-type]
    assert cache.get("s") == "text"


def test_incr_on_a_new_key_applies_the_ttl(cache: Cache) -> None:
    cache.incr("ttl-counter", ttl=30)
    remaining = cache.store.ttl_ms(cache.store_key("ttl-counter"))
    assert remaining is not None
    assert 0 < remaining <= 30_000


def test_default_ttl_and_explicit_ttl_reach_the_store(store: object) -> None:
    from cacheplug import Store

    assert isinstance(store, Store)
    cache = Cache(store, namespace="ttl", default_ttl=120, secret="s")
    cache.set("default", 1)
    cache.set("explicit", 1, ttl=5)
    cache.set("forever", 1, ttl=None)
    default = store.ttl_ms(cache.store_key("default"))
    explicit = store.ttl_ms(cache.store_key("explicit"))
    assert default is not None
    assert 60_000 < default <= 120_000
    assert explicit is not None
    assert 0 < explicit <= 5_000
    assert store.ttl_ms(cache.store_key("forever")) is None


def test_entries_go_stale_by_the_cache_clock(clocked_cache: Cache, clock: FakeClock) -> None:
    clocked_cache.set("k", "v", ttl=10)
    clock.advance(9)
    assert clocked_cache.get("k") == "v"
    clock.advance(2)
    assert clocked_cache.get("k") is None
    assert clocked_cache.get_many(["k"]) == {}
    assert clocked_cache.get_or_load("k", lambda: "fresh", ttl=10) == "fresh"


def test_namespaces_keep_caches_apart(store: object) -> None:
    from cacheplug import Store

    assert isinstance(store, Store)
    shop = Cache(store, namespace="shop", secret="s")
    blog = Cache(store, namespace="blog", secret="s")
    shop.set("home", "shop page")
    assert blog.get("home") is None
    blog.set("home", "blog page")
    assert shop.get("home") == "shop page"


def test_url_picks_the_store(redis_url: str) -> None:
    with Cache(redis_url, secret="s") as cache:
        assert type(cache.store).__name__ == "RedisStore"
        cache.set("k", 1)
        assert Cache.from_url(redis_url, secret="s").get("k") == 1
    assert type(Cache("memory://").store).__name__ == "MemoryStore"
    assert type(Cache().store).__name__ == "MemoryStore"


def test_stats_reset(cache: Cache) -> None:
    cache.get("x")
    assert cache.stats().misses == 1
    cache.reset_stats()
    assert cache.stats().misses == 0
    assert cache.stats().as_dict()["hit_ratio"] == 0.0


def test_store_argument_is_checked() -> None:
    with pytest.raises(TypeError, match="Store or a URL"):
        Cache(42)  # type: ignore[arg-type]


def test_large_payloads_are_compressed_when_asked(store: object) -> None:
    from cacheplug import Store

    assert isinstance(store, Store)
    secret = "s" if store.shared else None
    plain = Cache(store, namespace="plain", secret=secret)
    packed = Cache(store, namespace="packed", secret=secret, compress_min_bytes=1024)
    text = "the same sentence again and again. " * 2000
    plain.set("doc", text)
    packed.set("doc", text)
    plain_size = len(store.get(plain.store_key("doc")) or b"")
    packed_size = len(store.get(packed.store_key("doc")) or b"")
    assert packed_size < plain_size / 10
    assert packed.get("doc") == text
    assert packed.get_many(["doc"]) == {"doc": text}
    packed.set("small", "tiny")  # under the threshold: stored as it is
    assert packed.get("small") == "tiny"
