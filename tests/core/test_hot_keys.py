"""Hot-key detection: the keys read most, with estimated rates, at a sampled cost."""

from __future__ import annotations

from cacheplug import Cache
from cacheplug._engine.hotkeys import HotKeys
from cacheplug.testing import FakeClock


def test_the_most_read_keys_come_first_with_their_rates(clock: FakeClock) -> None:
    cache = Cache(clock=clock)
    cache.set("celebrity", 1)
    cache.set("regular", 2)
    for i in range(8_000):
        cache.get("celebrity")
        if i % 10 == 0:
            cache.get("regular")
            cache.get_or_load(f"cold:{i}", lambda: 0)
    clock.advance(2.0)
    top = cache.hot_keys(top=2)
    assert [key for key, _ in top] == ["celebrity", "regular"]
    rate = dict(top)["celebrity"]
    assert 3_000 < rate < 5_000  # about 8,000 reads in 2 s


def test_the_table_is_bounded_and_follows_the_traffic() -> None:
    now = [0.0]
    hot = HotKeys(capacity=4, sample_every=1, window=10.0, monotonic=lambda: now[0])
    for _ in range(100):
        hot.seen("old favourite")
    for i in range(50):
        hot.seen(f"one-off:{i}")
    assert len(hot.top(100)) == 4
    assert hot.top(1)[0][0] == "old favourite"
    for _ in range(5):  # the old favourite is read no more; a new one is
        now[0] += 10.0
        for _ in range(300):
            hot.seen("new favourite")
        hot.seen("tick")  # counts halve once per window
    assert hot.top(1)[0][0] == "new favourite"


def test_hot_keys_start_empty_and_can_be_cleared() -> None:
    hot = HotKeys(sample_every=1)
    assert hot.top() == []
    hot.seen("k")
    assert hot.top()[0][0] == "k"
    hot.clear()
    assert hot.top() == []
