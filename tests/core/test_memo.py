"""The bounded memo hot paths share: a dict that forgets everything once full."""

from __future__ import annotations

from cacheplug._memo import MEMO_ENTRIES, BoundedMemo
from cacheplug.encoding._codec import _Known, _KnownRecords
from cacheplug.encoding._keys import KeyBuilder


def test_remember_stores_and_returns_the_value() -> None:
    memo: BoundedMemo[str, int] = BoundedMemo(3)
    assert memo.remember("a", 1) == 1
    assert memo.remember("b", 2) == 2
    assert memo == {"a": 1, "b": 2}
    assert memo.get("a") == 1


def test_a_full_memo_is_cleared_before_the_next_entry() -> None:
    memo: BoundedMemo[str, int] = BoundedMemo(3)
    for number, key in enumerate("abc"):
        memo.remember(key, number)
    assert len(memo) == 3
    memo.remember("c", 9)  # full: even a known key starts over (it refills as keys are used)
    assert memo == {"c": 9}
    memo.remember("d", 4)
    assert memo == {"c": 9, "d": 4}


def test_the_default_bound() -> None:
    memo: BoundedMemo[int, int] = BoundedMemo()
    for number in range(MEMO_ENTRIES):
        memo.remember(number, number)
    assert len(memo) == MEMO_ENTRIES == 4096
    memo.remember(-1, -1)
    assert memo == {-1: -1}


def test_the_data_key_memo_stays_bounded() -> None:
    keys = KeyBuilder("memo")
    built = [keys.data(f"k{number}") for number in range(MEMO_ENTRIES + 10)]
    assert len(keys._data_keys) == 10
    assert keys.data(f"k{MEMO_ENTRIES + 9}") == built[-1]


def test_known_records_count_bytes_from_zero_after_any_clear() -> None:
    known = _KnownRecords()
    known.max_entries = 2
    for key in ("a", "b", "c"):  # the third clears the memo by count
        known.remember_record(key, _Known(b"x" * 10, 1.0, 2.0, 0.0, (), bytes))
    assert list(known) == ["c"]
    assert known.bytes == 10
    known.remember_record("big", _Known(b"x" * (known.MAX_BYTES - 5), 1.0, 2.0, 0.0, (), bytes))
    assert "big" not in known  # over the per-record bound: not kept
    assert known.bytes == 10
    known.clear()
    assert known.bytes == 0


def test_known_records_are_cleared_when_their_bytes_would_pass_the_bound() -> None:
    known = _KnownRecords()
    record = b"x" * known.MAX_RECORD_BYTES
    fit = known.MAX_BYTES // known.MAX_RECORD_BYTES
    for number in range(fit):
        known.remember_record(f"k{number}", _Known(record, 1.0, 2.0, 0.0, (), bytes))
    assert (len(known), known.bytes) == (fit, known.MAX_BYTES)
    known.remember_record("one more", _Known(record, 1.0, 2.0, 0.0, (), bytes))
    assert list(known) == ["one more"]
    assert known.bytes == known.MAX_RECORD_BYTES
