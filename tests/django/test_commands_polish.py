"""The management commands as a user meets them: ``--json`` on warm and flush, the verbosity
levels (``-v 0`` quiet, ``-v 2`` more), ``self.style``, the progress line at a terminal, and
``cacheplug_stats --watch N`` (refreshing until Ctrl-C, which ends it normally: a real
Ctrl-C is sent in tests/parity/test_cli_parity.py)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from shop.models import Product

from cacheplug.integration import _watch
from cacheplug_django._cache import DjangoCache

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str, **options: Any) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


# -- --json ----------------------------------------------------------------------------------


def test_warm_prints_one_json_document(cache: DjangoCache) -> None:
    Product.objects.create(name="hammer")
    Product.objects.create(name="saw")
    out, _ = run("cacheplug_warm", "--only", "products", "answer", "--workers", "2", "--json")
    document = json.loads(out)  # the whole output is the document
    assert document["keys"] == 3
    assert document["failed"] == []
    assert document["dry_run"] is False
    assert document["workers"] == 2
    runs = {run["name"]: run for run in document["warmers"]}
    assert [runs["answer"]["keys"], runs["products"]["keys"]] == [1, 2]
    assert runs["products"]["error"] is None
    assert isinstance(document["seconds"], float)
    assert cache.get("answer") == 42


def test_a_failed_warmer_is_in_the_document_and_the_command_still_fails(
    cache: DjangoCache,
) -> None:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="warmer\\(s\\) failed: broken"):
        call_command(
            "cacheplug_warm", "--only", "answer", "broken", "--json", stdout=out, stderr=err
        )
    document = json.loads(out.getvalue())
    assert document["failed"] == ["broken"]
    broken = next(run for run in document["warmers"] if run["name"] == "broken")
    assert broken["error"] == "RuntimeError: the database is on fire"
    assert "Traceback" in err.getvalue()  # the traceback goes to stderr, not into the JSON


def test_a_dry_run_document_names_the_warmers(cache: DjangoCache) -> None:
    document = json.loads(run("cacheplug_warm", "--dry-run", "--json")[0])
    assert document["dry_run"] is True
    assert document["warmers"] == [{"name": "answer"}, {"name": "broken"}, {"name": "products"}]
    assert cache.get("answer") is None


def test_flush_prints_one_json_document_for_each_way(cache: DjangoCache) -> None:
    cache.set("tagged", 1, tags=["promo"])
    cache.set("plain", 1)
    document = json.loads(run("cacheplug_flush", "--tag", "promo", "--json")[0])
    assert document == {
        "namespace": "tests",
        "flushed": "tags",
        "tags": ["promo"],
        "message": "invalidated tag(s): promo",
    }
    assert cache.get("tagged") is None
    document = json.loads(run("cacheplug_flush", "--key", "plain", "missing", "--json")[0])
    assert (document["flushed"], document["removed"], document["missing"]) == (
        "keys",
        ["plain"],
        ["missing"],
    )
    document = json.loads(run("cacheplug_flush", "--model", "shop.Product", "--json")[0])
    assert document["flushed"] == "tags"
    assert "db:t:shop_product" in document["tags"]
    assert document["message"] == "invalidated everything depending on shop.Product"
    document = json.loads(run("cacheplug_flush", "--namespace", "reports", "--json")[0])
    assert (document["flushed"], document["namespace"]) == ("namespace", "tests/reports")
    document = json.loads(run("cacheplug_flush", "--all", "--yes", "--json")[0])
    assert (document["flushed"], document["namespace"]) == ("all", "tests")


# -- verbosity and style ---------------------------------------------------------------------


def test_verbosity_0_prints_nothing_on_success(cache: DjangoCache) -> None:
    cache.set("tagged", 1, tags=["promo"])
    assert run("cacheplug_warm", "--only", "answer", verbosity=0) == ("", "")
    assert run("cacheplug_warm", "--dry-run", verbosity=0) == ("", "")
    assert run("cacheplug_flush", "--tag", "promo", verbosity=0) == ("", "")
    assert run("cacheplug_flush", "--all", "--yes", verbosity=0) == ("", "")
    cache.core.write_behind("views", lambda entries: None, durable=False)
    assert run("cacheplug_writebehind", "--once", verbosity=0) == ("", "")
    assert cache.get("tagged") is None


def test_verbosity_0_still_prints_the_json_asked_for(cache: DjangoCache) -> None:
    out, err = run("cacheplug_warm", "--only", "answer", "--json", verbosity=0)
    assert json.loads(out)["keys"] == 1
    assert err == ""


def test_verbosity_2_says_more(cache: DjangoCache) -> None:
    Product.objects.create(name="hammer")
    normal, _ = run("cacheplug_warm", "--only", "products")
    more, _ = run("cacheplug_warm", "--only", "products", verbosity=2)
    assert "started" not in normal
    assert "running 1 warmer(s), 1 at a time: products" in more
    assert "products: started" in more
    assert "products: 1 key(s) in " in more
    normal, _ = run("cacheplug_flush", "--model", "shop.Product")
    more, _ = run("cacheplug_flush", "--model", "shop.Product", verbosity=2)
    assert "tags:" not in normal
    assert "tags: db:t:shop_product" in more
    assert "counters" not in run("cacheplug_stats")[0]
    assert "  bytes_written " in run("cacheplug_stats", verbosity=2)[0]


def test_the_commands_style_their_lines(cache: DjangoCache) -> None:
    green = "\x1b[32;1m"  # Django's SUCCESS
    out, _ = run("cacheplug_warm", "--only", "answer", force_color=True)
    assert f"{green}warmed 1 key(s)" in out
    assert "\x1b[" not in out.splitlines()[0]  # a warmer's own line is plain
    out, _ = run("cacheplug_flush", "--tag", "promo", force_color=True)
    assert out.startswith(f"{green}invalidated tag(s): promo")
    out, _ = run("cacheplug_warm", "--only", "answer", "--json", force_color=True)
    assert "\x1b[" not in out  # a document is never coloured
    json.loads(out)
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "cacheplug_warm", "--only", "broken", force_color=True, stdout=io.StringIO(), stderr=err
        )
    assert err.getvalue().startswith("\x1b[31;1mbroken failed")  # ERROR


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_shows_a_progress_line(cache: DjangoCache) -> None:
    Product.objects.bulk_create(Product(name=f"p{i}") for i in range(25))
    out = Terminal()
    call_command("cacheplug_warm", "--only", "products", "answer", stdout=out, stderr=io.StringIO())
    shown = out.getvalue()
    assert "\r\x1b[Kwarming: 0/2 warmer(s) done, 0 key(s)" in shown
    # The warmers run in name order: answer's one key, then products' every 10th.
    assert "warming: 1/2 warmer(s) done, 1 key(s) (answer)" in shown
    assert "warming: 1/2 warmer(s) done, 11 key(s) (products)" in shown
    assert "warming: 1/2 warmer(s) done, 21 key(s) (products)" in shown
    # Every line the command prints starts on a cleared line: the status never mixes in.
    lines = [line.rsplit("\r\x1b[K", 1)[-1] for line in shown.split("\n")]
    assert "products: 25 key(s)" in lines
    assert "answer: 1 key(s)" in lines
    assert any(line.startswith("warmed 26 key(s) with 2 warmer(s)") for line in lines)
    assert shown.endswith(" 0 failed\n")  # the status was cleared when the run ended
    quiet = Terminal()
    call_command("cacheplug_warm", "--only", "answer", verbosity=0, stdout=quiet)
    assert quiet.getvalue() == ""


# -- --watch ---------------------------------------------------------------------------------


class Interrupted:
    """A ``sleep`` that makes traffic between refreshes, then presses Ctrl-C."""

    def __init__(self, cache: DjangoCache, refreshes: int) -> None:
        self.cache = cache
        self.left = refreshes
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt
        self.cache.get_or_load(f"k{self.left}", lambda: 1)
        self.cache.core.publish_stats()


def test_stats_watch_refreshes_until_ctrl_c(
    cache: DjangoCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleep = Interrupted(cache, refreshes=3)
    monkeypatch.setattr(_watch, "sleep", sleep)
    try:
        out, _ = run("cacheplug_stats", "--watch", "0.5")
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the command: it should end the watch normally")
    assert sleep.slept == [0.5, 0.5, 0.5]
    assert out.count("-- every 0.5 s, ") == 3
    loads = [line for line in out.splitlines() if line.startswith("loads ")]
    assert [line.split()[1] for line in loads] == ["0", "1", "2"]


def test_stats_watch_json_is_one_document_a_line(
    cache: DjangoCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_watch, "sleep", Interrupted(cache, refreshes=2))
    out, _ = run("cacheplug_stats", "--watch", "1", "--json")
    documents = [json.loads(line) for line in out.splitlines()]
    assert [document["stats"]["loads"] for document in documents] == [0, 1]


def test_stats_watch_at_a_terminal_redraws_the_screen(
    cache: DjangoCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_watch, "sleep", Interrupted(cache, refreshes=2))
    out = Terminal()
    call_command("cacheplug_stats", "--watch", "3", stdout=out, stderr=io.StringIO())
    screens = out.getvalue().split(_watch.CLEAR_SCREEN)
    assert screens[0] == ""  # the first refresh clears the screen too
    assert len(screens) == 3
    assert all(screen.startswith("every 3 s, ") for screen in screens[1:])
    assert "Ctrl-C stops\nstore " in screens[1]


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf", "soon"])
def test_stats_watch_needs_seconds_above_0(cache: DjangoCache, seconds: str) -> None:
    with pytest.raises(CommandError, match="--watch takes the seconds between refreshes"):
        run("cacheplug_stats", "--watch", seconds)
