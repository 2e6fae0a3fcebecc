"""The outbox's backlog in the staff dashboard's figures and markup
(cacheplug.integration.dashboard_figures / dashboard_html): rows waiting and the oldest one's
age per database, "not readable" (and nothing of the error) for one that cannot be read."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence

import pytest

from cacheplug import Cache, MemoryStore
from cacheplug.integration import OutboxRelay, dashboard_figures, dashboard_html

WRITTEN_AT = 1_000_000.0  # when a row says it was written (seconds since the epoch)


class FixedOutbox:
    """An outbox table holding rows written at fixed times; ``down``: it cannot be read."""

    def __init__(self, created: Sequence[float], down: bool = False) -> None:
        self.created = list(created)
        self.down = down

    def due(self, written_before: float, limit: int) -> Sequence[tuple[str, str]]:
        return []

    def delete(self, ids: Sequence[str]) -> None: ...

    def waiting(self, excluding: Sequence[str]) -> tuple[int, float | None]:
        if self.down:  # as a driver says it, credentials and all
            raise sqlite3.OperationalError("cannot reach postgresql://app:hunter2@db/shop")
        return len(self.created), min(self.created, default=None)


def relay(outbox: FixedOutbox) -> OutboxRelay:
    # Nothing is delivered here: the dashboard only asks the relay for its backlog.
    return OutboxRelay(outbox, lambda tags: True, lambda: pytest.fail("no lease is taken"))


@pytest.fixture
def cache() -> Iterator[Cache]:
    with Cache(MemoryStore(), namespace="dashboard") as made:
        yield made


def test_each_databases_backlog(cache: Cache) -> None:
    relays = {
        "default": relay(FixedOutbox([WRITTEN_AT + 5, WRITTEN_AT])),
        "<archive>": relay(FixedOutbox([])),
    }
    figures = dashboard_figures(cache, outbox=relays)
    default = figures["outbox"]["default"]
    assert default["rows"] == 2
    assert default["oldest_age_seconds"] >= 1_700_000_000 - WRITTEN_AT  # written in 1970
    assert default["relayed"] == 0
    assert figures["outbox"]["<archive>"] == {
        "rows": 0,
        "oldest_age_seconds": None,
        "relayed": 0,
    }
    html = dashboard_html(figures)
    assert "default: 2 rows, oldest " in html
    assert "&lt;archive&gt;: 0 rows, relayed 0" in html  # escaped
    assert "<archive>" not in html


def test_a_database_that_cannot_be_read_says_so_and_nothing_of_its_error(cache: Cache) -> None:
    figures = dashboard_figures(cache, outbox={"default": relay(FixedOutbox([1.0], down=True))})
    assert figures["outbox"] == {
        "default": {
            "rows": None,
            "oldest_age_seconds": None,
            "relayed": 0,
            "error": "not readable",
        }
    }
    html = dashboard_html(figures)
    assert "default: not readable, relayed 0" in html
    assert "hunter2" not in html + json.dumps(figures)


def test_not_configured_without_relays(cache: Cache) -> None:
    for outbox in (None, {}):
        figures = dashboard_figures(cache, outbox=outbox)
        assert figures["outbox"] is None
        assert '<th scope="row">outbox backlog</th><td>not configured</td>' in (
            dashboard_html(figures)
        )
