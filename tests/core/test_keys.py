"""Key building: user keys become distinct, memcached-safe, cluster-friendly store keys."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from cacheplug import Cache, ConfigurationError, Store
from cacheplug.encoding._keys import (
    MAX_NAMESPACE_CHARS,
    MAX_NAMESPACE_VERSION,
    MAX_USER_KEY_BYTES,
    KeyBuilder,
    Purpose,
    hashed_form,
)

# -- strategies ------------------------------------------------------------------------------

# Every code point, lone surrogates and control characters included.
any_char = st.characters(exclude_categories=())
any_text = st.text(any_char, max_size=40)
long_text = st.text(any_char, min_size=150, max_size=400)
special_text = st.text(
    st.sampled_from([*"{}:#~ _ab0\t\n\r\x00\x7f\x80é\u2028\ud800", "\U0001f600"]),
    max_size=30,
)
printable_ascii = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


@st.composite
def near_limit(draw: st.DrawFn) -> str:
    """Keys of 199, 200 or 201 UTF-8 bytes, ASCII or ending in multi-byte characters."""
    size = draw(
        st.sampled_from([MAX_USER_KEY_BYTES - 1, MAX_USER_KEY_BYTES, MAX_USER_KEY_BYTES + 1])
    )
    tail = draw(st.sampled_from(["", "é", "€", "\U0001f600", " ", "}", "{"]))
    body_bytes = size - len(tail.encode("utf-8"))
    body = draw(st.text(printable_ascii, min_size=body_bytes, max_size=body_bytes))
    return body + tail


@st.composite
def lookalike(draw: st.DrawFn) -> str:
    """Keys shaped like other keys' hashed forms or like whole store keys."""
    other = draw(any_text | long_text)
    builder = KeyBuilder(draw(st.sampled_from(["default", "a", "b"])))
    purpose = draw(st.sampled_from(list(Purpose)))
    shapes = [
        hashed_form(other),
        builder.build(purpose, other),
        builder.build(purpose, other)[:-1],
        "#:{" + hashed_form(other),
        hashed_form(other) + "}",
        "{" + hashed_form(other),
    ]
    return draw(st.sampled_from(shapes))


user_keys = any_text | st.text(max_size=30) | long_text | special_text | near_limit() | lookalike()
namespaces = st.sampled_from(["a", "b", "ab", "a.b", "a-b", "default"]) | st.from_regex(
    rf"[A-Za-z0-9_.\-]{{1,{MAX_NAMESPACE_CHARS}}}", fullmatch=True
)
versions = st.sampled_from([0, 1, 11, MAX_NAMESPACE_VERSION]) | st.integers(
    0, MAX_NAMESPACE_VERSION
)
purposes = st.sampled_from(list(Purpose))

_MEMCACHED_KEY = re.compile(rb"[\x21-\x7e]{1,250}")


def hash_tag(store_key: str) -> str | None:
    """The Redis Cluster hash tag: between the first ``{`` and the first ``}`` after it,
    when that is non-empty; ``None`` when the whole key is hashed."""
    start = store_key.find("{")
    if start == -1:
        return None
    end = store_key.find("}", start + 1)
    if end == -1 or end == start + 1:
        return None
    return store_key[start + 1 : end]


# -- properties ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(user_keys, unique=True, min_size=2, max_size=12))
@example(["a", "a "])
@example(["", " "])
@example(["\ud83d\ude00", "\U0001f600"])
@example(["x" * 200, "x" * 201])
@example(["}", "_"])
@example(["a b", "a_b"])
def test_distinct_keys_give_distinct_store_keys(keys: list[str]) -> None:
    builder = KeyBuilder("default")
    built = [builder.build(Purpose.DATA, k) for k in keys]
    assert len(set(built)) == len(keys)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(namespaces, versions, purposes, user_keys), unique=True, min_size=2, max_size=12
    )
)
@example([("a", 0, Purpose.DATA, "k"), ("b", 0, Purpose.DATA, "k")])
@example([("a", 0, Purpose.DATA, "k"), ("a", 0, Purpose.LEASE, "k")])
@example([("a", 1, Purpose.DATA, "1:d:{k"), ("a", 11, Purpose.DATA, "d:{k")])
@example([("a", 0, Purpose.DATA, "x" * 300), ("a", 0, Purpose.LEASE, "x" * 300)])
def test_store_keys_are_distinct_across_namespaces_versions_and_purposes(
    specs: list[tuple[str, int, Purpose, str]],
) -> None:
    built = [KeyBuilder(ns, version).build(purpose, key) for ns, version, purpose, key in specs]
    assert len(set(built)) == len(specs)


@settings(max_examples=200, deadline=None)
@given(user_keys, user_keys)
def test_a_key_never_collides_with_another_keys_hashed_form(key: str, other: str) -> None:
    builder = KeyBuilder("default")
    if key != other:
        assert builder.build(Purpose.DATA, key) != builder.build(Purpose.DATA, other)
    hashed = hashed_form(other)
    if hashed != other:
        assert builder.build(Purpose.DATA, hashed) != builder.build(Purpose.DATA, other)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["a", "x" * MAX_NAMESPACE_CHARS]) | namespaces,
    st.sampled_from([0, MAX_NAMESPACE_VERSION]) | versions,
    purposes,
    user_keys,
)
@example("x" * MAX_NAMESPACE_CHARS, MAX_NAMESPACE_VERSION, Purpose.DATA, "y" * 200)
@example("x" * MAX_NAMESPACE_CHARS, MAX_NAMESPACE_VERSION, Purpose.LOCK, "\U0001f600" * 200)
@example("a", 0, Purpose.DATA, "")
def test_every_store_key_is_a_valid_memcached_key(
    namespace: str, version: int, purpose: Purpose, key: str
) -> None:
    built = KeyBuilder(namespace, version).build(purpose, key)
    raw = built.encode("utf-8", "surrogatepass")
    assert len(raw) <= 250
    assert _MEMCACHED_KEY.fullmatch(raw), built
    assert built.isascii()
    assert built.isprintable()
    assert not any(c.isspace() for c in built)


@settings(max_examples=200, deadline=None)
@given(namespaces, versions, user_keys)
@example("a", 0, "}")
@example("a", 0, "}{")
@example("a", 0, "a}b{c}")
@example("a", 0, "{}")
@example("a", 0, "")
@example("a", 0, "x" * 300 + "}")
def test_an_entry_and_its_lease_share_a_cluster_hash_slot(
    namespace: str, version: int, key: str
) -> None:
    builder = KeyBuilder(namespace, version)
    data = builder.build(Purpose.DATA, key)
    lease = builder.build(Purpose.LEASE, key)
    data_tag = hash_tag(data)
    assert data_tag is not None, data  # otherwise Redis hashes the whole (differing) key
    assert data_tag == hash_tag(lease)
    assert key_slot(data.encode("ascii")) == key_slot(lease.encode("ascii"))


@settings(max_examples=200, deadline=None)
@given(user_keys)
def test_cache_store_key_matches_the_key_builder(key: str) -> None:
    cache = Cache(namespace="ns")
    expected = KeyBuilder("ns").build(Purpose.DATA, key)
    assert cache.store_key(key) == expected
    assert cache.store_key(key) == expected  # the memoized answer too


def test_store_keys_stay_correct_past_the_memo_size() -> None:
    cache = Cache(namespace="ns")
    builder = KeyBuilder("ns")
    keys = [f"item:{i}" for i in range(10_000)]
    for _ in range(2):
        for key in keys:
            assert cache.store_key(key) == builder.build(Purpose.DATA, key)
    assert len({cache.store_key(k) for k in keys}) == len(keys)


# -- readability -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["user:42", "a", "product:{7}:price", "~#:x", "x" * MAX_USER_KEY_BYTES]
)
def test_plain_keys_appear_verbatim(key: str) -> None:
    store_key = Cache(namespace="app").store_key(key)
    assert key in store_key
    assert store_key.startswith("app:")
    assert "#" not in store_key.split("{", 1)[0]


@pytest.mark.parametrize(
    ("key", "readable"),
    [
        ("x" * (MAX_USER_KEY_BYTES + 1), "x" * 32),
        ("report:" + "9" * 300, "report:999"),
        ("user 42", "user_42"),
        ("line\nbreak", "line_break"),
        ("tab\there", "tab_here"),
        ("nul\x00byte", "nul_byte"),
        ("café:1", "caf_:1"),
        ("ключ:1", "_:1"),
        ("emoji\U0001f600", "emoji_"),
        ("}leading-brace", "_leading-brace"),
        ("del\x7fchar", "del_char"),
    ],
)
def test_unusable_keys_are_hashed_with_a_readable_prefix(key: str, readable: str) -> None:
    store_key = Cache(namespace="app").store_key(key)
    assert key not in store_key
    assert readable in store_key
    assert "#" in store_key.split("{", 1)[0]  # marked as hashed
    assert re.search(r"~[0-9a-f]{40}\}$", store_key), store_key


def test_the_readable_prefix_of_a_hashed_key_is_bounded() -> None:
    key = "k" * 5000
    store_key = Cache().store_key(key)
    assert len(store_key) < 250
    assert "k" * 32 in store_key


def test_keys_over_the_byte_limit_are_hashed_even_if_few_characters() -> None:
    ascii_key = "a" * MAX_USER_KEY_BYTES
    assert ascii_key in Cache().store_key(ascii_key)
    assert ascii_key + "a" not in Cache().store_key(ascii_key + "a")


# -- round trips through real stores ---------------------------------------------------------

_AWKWARD_KEYS = [
    "user:42",
    "user 42",
    "user_42",
    "",
    " ",
    "}",
    "{",
    "{}",
    "a}b",
    "\ud800",
    "\udfff\ud800",
    "\U0001f600",
    "\x00",
    "\n",
    "x" * 200,
    "x" * 201,
    "é" * 100,
    hashed_form("user 42"),
    "default:0:d:{user:42}",
]


def test_awkward_keys_keep_their_own_values(store: Store) -> None:
    cache = Cache(store, secret="s" if store.shared else None)
    for index, key in enumerate(_AWKWARD_KEYS):
        assert cache.set(key, index) is True
    for index, key in enumerate(_AWKWARD_KEYS):
        assert cache.get(key) == index, key
    assert cache.get_many(_AWKWARD_KEYS) == {k: i for i, k in enumerate(_AWKWARD_KEYS)}


# -- key types -------------------------------------------------------------------------------

_NON_STR_KEYS: list[Any] = [42, b"x", None, ("a",)]

_OPERATIONS: dict[str, Callable[[Cache, Any], object]] = {
    "get": lambda cache, key: cache.get(key),
    "set": lambda cache, key: cache.set(key, 1),
    "get_or_load": lambda cache, key: cache.get_or_load(key, lambda: 1),
    "delete": lambda cache, key: cache.delete(key),
    "get_many": lambda cache, key: cache.get_many([key]),
    "get_many-mixed": lambda cache, key: cache.get_many(["fine", key]),
    "store_key": lambda cache, key: cache.store_key(key),
}


@pytest.mark.parametrize("key", _NON_STR_KEYS, ids=repr)
@pytest.mark.parametrize("operation", list(_OPERATIONS))
def test_non_str_keys_are_rejected(cache: Cache, operation: str, key: Any) -> None:
    with pytest.raises(TypeError, match="keys must be str"):
        _OPERATIONS[operation](cache, key)


@pytest.mark.parametrize("key", [["a"], {"a": 1}, {"a"}], ids=repr)
@pytest.mark.parametrize("operation", list(_OPERATIONS))
def test_unhashable_keys_are_rejected_with_the_same_message(
    cache: Cache, operation: str, key: Any
) -> None:
    with pytest.raises(TypeError, match="keys must be str"):
        _OPERATIONS[operation](cache, key)


def test_a_rejected_key_writes_nothing(cache: Cache) -> None:
    calls: list[int] = []

    def loader() -> int:
        calls.append(1)
        return 1

    with pytest.raises(TypeError):
        cache.get_or_load(42, loader)  # type: ignore[arg-type]
    assert calls == []
    assert cache.get("42") is None


# -- namespaces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "namespace", ["", "a:b", "x" * (MAX_NAMESPACE_CHARS + 1), "a b", "a{b}", "ns\n", "é"]
)
def test_invalid_namespaces_are_refused(namespace: str) -> None:
    with pytest.raises(ConfigurationError):
        Cache(namespace=namespace)


@pytest.mark.parametrize("namespace", ["a", "x" * MAX_NAMESPACE_CHARS, "my-app_v2.cache"])
def test_valid_namespaces_are_accepted(namespace: str) -> None:
    assert Cache(namespace=namespace).namespace_name == namespace


def test_namespaces_on_one_store_do_not_see_each_other(store: Store) -> None:
    secret = "s" if store.shared else None
    first = Cache(store, namespace="first", secret=secret)
    second = Cache(store, namespace="second", secret=secret)
    first.set("k", "from first")
    assert second.get("k") is None
    second.set("k", "from second")
    assert first.get("k") == "from first"
    assert second.get("k") == "from second"
    first.delete("k")
    assert second.get("k") == "from second"
    assert first.store_key("k") != second.store_key("k")
