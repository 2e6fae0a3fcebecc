"""The command-line operations both adapters share: warm, flush, stats, inspect."""

from __future__ import annotations

import json

import pytest

from cacheplug import Cache
from cacheplug.integration import OperationError, Warmers, flush, inspect_report, stats_report, warm


def test_warmers_run_count_and_report(cache: Cache) -> None:
    warmers = Warmers()

    @warmers.register("keys")
    def keys() -> object:
        for i in range(25):
            cache.set(f"k{i}", i)
            yield i

    @warmers.register("number")
    def number() -> int:
        return 3

    @warmers.register("broken")
    def broken() -> None:
        raise RuntimeError("boom")

    out: list[str] = []
    err: list[str] = []
    progress: list[str] = []
    warm(
        warmers.all(),
        only=["keys", "number"],
        workers=2,
        out=out.append,
        err=err.append,
        progress=progress.append,
    )
    assert "keys: 25 key(s)" in out
    assert "number: 3 key(s)" in out
    assert out[-1].startswith("warmed 28 key(s) with 2 warmer(s)")
    assert progress == ["keys: 10 keys", "keys: 20 keys"]
    assert cache.get("k24") == 24
    with pytest.raises(OperationError, match="broken"):
        warm(warmers.all(), out=out.append, err=err.append)
    assert "boom" in err[-1]
    with pytest.raises(
        OperationError, match=r"unknown warmer\(s\): nope \(known: broken, keys, number\)"
    ):
        warm(warmers.all(), only=["nope"], out=out.append, err=err.append)
    dry: list[str] = []
    warm(warmers.all(), dry_run=True, out=dry.append, err=err.append)
    assert dry == [
        "would run broken",
        "would run keys",
        "would run number",
        "3 warmer(s); nothing was run",
    ]


def test_a_warmer_name_is_unique() -> None:
    warmers = Warmers()

    def first() -> None: ...

    def second() -> None: ...

    warmers.register("x")(first)
    warmers.register("x")(first)  # the same function again (a module imported twice): fine
    with pytest.raises(ValueError, match="two warmers named 'x'"):
        warmers.register("x")(second)


def test_flush_each_way(cache: Cache) -> None:
    cache.set("tagged", 1, tags="t")
    cache.set("plain", 1)
    nested = cache.namespace("reports")
    nested.set("r", 1)
    assert flush(cache, tags=["t"]) == "invalidated tag(s): t"
    assert cache.get("tagged") is None
    assert flush(cache, keys=["plain", "gone"]) == "removed 'plain'\nno entry under 'gone'"
    assert flush(cache, namespace="reports").startswith("flushed namespace")
    assert nested.get("r") is None
    cache.set("plain", 1)
    with pytest.raises(OperationError, match="nothing was flushed"):
        flush(cache, everything=True, confirm=lambda question: False)
    assert cache.get("plain") == 1
    assert "flushed every entry" in flush(cache, everything=True, confirm=lambda q: True)
    assert cache.get("plain") is None
    with pytest.raises(OperationError, match="say what to flush"):
        flush(cache)


def test_reports(cache: Cache) -> None:
    cache.get_or_load("a", lambda: 1)
    cache.publish_stats()
    assert json.loads(stats_report(cache, as_json=True))["stats"]["loads"] == 1
    assert "loads       1" in stats_report(cache)
    assert "state      fresh" in inspect_report(cache, "a")
    with pytest.raises(OperationError, match="no entry under 'b'"):
        inspect_report(cache, "b")
