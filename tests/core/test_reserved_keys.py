"""Pages and fragments live in a key space no application key can name: whatever string an
application passes to ``set``/``get``/``delete``, it neither reads nor replaces a page or a
fragment (the key it would need is a ``ReservedKey``, stored under another digest)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cacheplug import Cache, MemoryStore
from cacheplug.integration import (
    NOTHING_READ,
    Page,
    PagePolicy,
    PageRequest,
    fetch_fragment,
    fragment_key,
)

POLICY = PagePolicy()
REQUEST = PageRequest(method="GET", host="testserver", path="/d/page/", query=(), headers={})


def page(cache: Cache, rendered: list[str]) -> bytes:
    def render() -> Page:
        rendered.append("page")
        return Page(200, (("Content-Type", "text/html"),), b"the real page")

    return POLICY.fetch(cache, REQUEST, render, ttl=300).body


def fragment(cache: Cache, rendered: list[str]) -> str:
    def render() -> tuple[str, object]:
        rendered.append("fragment")
        return "the real fragment", NOTHING_READ

    return fetch_fragment(cache, fragment_key("sidebar", ["en"]), render, 300)  # type: ignore[arg-type]


def names_to_try(cache: Cache) -> list[str]:
    """Every string an application could think of to reach the page or the fragment."""
    page_key = POLICY.key(REQUEST, ())
    fragment_key_ = fragment_key("sidebar", ["en"])
    found = [str(page_key), str(fragment_key_), "page:http://testserver/d/page/?"]
    for key in (page_key, fragment_key_):
        store_key = cache.store_key(key)
        found.append(store_key)
        found.append(store_key.split(":{", 1)[1][:-1])  # the hashed form inside the braces
        found.append(store_key.split(":{", 1)[1].split("~")[0])  # its readable prefix
    return list(dict.fromkeys(found))


def assert_untouched(cache: Cache, rendered: list[str], name: str) -> None:
    assert cache.get(name) in (None, "forged")
    assert page(cache, rendered) == b"the real page"
    assert fragment(cache, rendered) == "the real fragment"
    assert rendered == ["page", "fragment"], name  # both still the cached originals


def test_no_application_key_reads_or_replaces_a_page_or_a_fragment(cache: Cache) -> None:
    rendered: list[str] = []
    assert page(cache, rendered) == b"the real page"
    assert fragment(cache, rendered) == "the real fragment"
    names = names_to_try(cache)
    for name in names:
        assert cache.get(name) is None, name  # nothing of the page or fragment is readable
    for name in names:
        cache.set(name, "forged")
        cache.delete(name)
        cache.set(name, "forged")
        assert_untouched(cache, rendered, name)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.text(max_size=300) | st.from_regex(r"(page|fragment):[ -~]{0,80}"))
def test_any_string_at_all(name: str) -> None:
    cache = Cache(MemoryStore(), namespace="test")
    rendered: list[str] = []
    page(cache, rendered)
    fragment(cache, rendered)
    cache.set(name, "forged")
    assert_untouched(cache, rendered, name)
    cache.delete(name)
    assert_untouched(cache, rendered, name)


@pytest.mark.parametrize("name", ["page:x", "fragment:sidebar:abc"])
def test_a_reserved_key_and_the_same_string_are_different_entries(cache: Cache, name: str) -> None:
    from cacheplug.integration import ReservedKey

    reserved = ReservedKey(name)
    assert reserved != name
    assert name != reserved
    assert cache.store_key(reserved) != cache.store_key(name)
    cache.set(name, "application")
    assert cache.get_or_load(reserved, lambda: "library") == "library"
    assert cache.get(name) == "application"
