"""One table of cases, run unchanged on both adapters (``site`` is the Django site, then the
Flask one): what each client got is the oracle, and where a case compares the adapters (the
304's headers, the errors' messages) both must give the same."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from parity_site import Reply, Site

from cacheplug import ConfigurationError

# The Django site's database (the Flask site has its own file): transactions of its own, so
# that a commit runs its hooks as in production.
pytestmark = pytest.mark.django_db(transaction=True)

FRESH_FOR = 10  # the ttl of /stale/ and of the "stale" fragment; stale_ttl=60 follows


def wait_until(found: Callable[[], bool], attempts: int = 500) -> None:
    """Poll (a background refresh runs on its own thread); fails if it never happens."""
    for _ in range(attempts):
        if found():
            return
        time.sleep(0.01)
    raise AssertionError("the background refresh never came")


# -- pages -----------------------------------------------------------------------------------


def test_a_page_renders_once_and_is_then_a_hit(site: Site) -> None:
    first = site.browser().get("/plain/")
    second = site.browser().get("/plain/")
    assert (first.status, second.status) == (200, 200)
    assert first.text == second.text == "plain page"
    assert site.renders["plain"] == 1
    # The miss (the client's own response) and the hit carry the same headers.
    assert first.headers == second.headers
    assert first.headers["etag"].startswith('"')
    assert first.headers["content-length"] == "10"


NOT_MODIFIED_HEADERS = {"cache-control", "content-location", "etag", "expires", "vary"}


@pytest.mark.parametrize("warm", [True, False], ids=["hit", "miss"])
def test_304_keeps_the_headers_the_200_carries(site: Site, warm: bool) -> None:
    """RFC 9110 §15.4.5: a 304 carries Cache-Control, Content-Location, Date, ETag, Expires
    and Vary as the 200 would (no server here adds Date)."""
    site.browser().get("/page/")  # teaches the process what /page/ varies on
    first = site.browser().get("/page/")
    etag = first.headers["etag"]
    renders = site.renders["page"]
    if not warm:
        site.clock.advance(301)  # expired: the 304 answers the client's own rendering
    reply = site.browser().get("/page/", headers={"If-None-Match": f'W/{etag}, "other"'})
    assert reply.status == 304
    assert reply.body == b""
    assert set(reply.headers) - {"content-length"} == NOT_MODIFIED_HEADERS
    for name in NOT_MODIFIED_HEADERS:
        # (Flask's session adds "Cookie" to Vary after the view, to the 200 and the 304.)
        assert reply.headers[name] == first.headers[name]
    assert site.renders["page"] == renders + (0 if warm else 1)


def test_head_has_no_body_and_the_length_of_the_get(site: Site) -> None:
    head_first = site.browser().head("/plain/")  # a miss: HEAD renders and stores
    get = site.browser().get("/plain/")
    head_hit = site.browser().head("/plain/")
    assert site.renders["plain"] == 1
    assert get.body == b"plain page"
    for head in (head_first, head_hit):
        assert head.status == 200
        assert head.body == b""
        assert head.headers["content-length"] == get.headers["content-length"] == "10"
        assert head.headers["etag"] == get.headers["etag"]


def test_vary_keeps_two_variants_apart(site: Site) -> None:
    english = {"Accept-Language": "en"}
    french = {"Accept-Language": "fr"}
    replies = [
        site.browser().get("/page/", headers=english),
        site.browser().get("/page/", headers=french),
        site.browser().get("/page/", headers=english),
        site.browser().get("/page/", headers=french),
        site.browser().get("/page/", headers=english),
    ]
    assert [reply.text for reply in replies] == [
        "page lang=en",
        "page lang=fr",
        "page lang=en",
        "page lang=fr",
        "page lang=en",
    ]
    # The first response taught the process what /page/ varies on: "en" rendered twice.
    assert site.renders["page"] == 3
    assert replies[0].headers["etag"] != replies[1].headers["etag"]


def test_stale_ttl_serves_the_expired_page_once_while_it_is_rendered_again(site: Site) -> None:
    assert site.browser().get("/stale/").text == "stale #1"
    site.clock.advance(FRESH_FOR + 1)
    assert site.browser().get("/stale/").text == "stale #1"  # stale, and refreshed behind
    wait_until(lambda: site.browser().get("/stale/").text == "stale #2")
    assert site.renders["stale"] == 2


def test_a_write_inside_an_open_transaction_reads_the_page_around_the_cache(
    site: Site,
) -> None:
    assert site.browser().get("/catalog/").text == " #1"
    # Before the commit, the writer's own read of the page sees its write...
    assert site.browser().get("/write/?name=apple").text == "apple #2"
    # ...and after it, everybody does.
    assert site.browser().get("/catalog/").text.startswith("apple #")
    assert site.browser().get("/catalog/").text == site.browser().get("/catalog/").text


# -- fragments -------------------------------------------------------------------------------


def _fragment(reply: Reply) -> str:
    assert reply.status == 200
    return reply.text.split("[", 1)[1].rstrip("]")


def test_a_fragment_that_reads_nothing_of_the_client_is_shared(site: Site) -> None:
    assert _fragment(site.browser().get("/fragment/plain/")) == "shared"
    assert _fragment(site.browser().get("/fragment/plain/")) == "shared"
    assert site.renders["fragment:plain"] == 1


@pytest.mark.parametrize("kind", ["session", "user"])
def test_a_fragment_that_reads_the_session_or_the_user_is_not_shared(site: Site, kind: str) -> None:
    alice, bob, anonymous = site.browser(), site.browser(), site.browser()
    alice.login("alice")
    bob.login("bob")
    label = "name" if kind == "session" else "user"
    assert _fragment(alice.get(f"/fragment/{kind}/")) == f"{label}=alice"
    assert _fragment(bob.get(f"/fragment/{kind}/")) == f"{label}=bob"
    assert _fragment(anonymous.get(f"/fragment/{kind}/")) == f"{label}="
    assert _fragment(alice.get(f"/fragment/{kind}/")) == f"{label}=alice"
    assert site.renders[f"fragment:{kind}"] == 4


@pytest.mark.parametrize("kind", ["csrf", "csrf-made-before"])
def test_a_fragment_holding_the_clients_csrf_token_is_not_shared(site: Site, kind: str) -> None:
    """``csrf-made-before``: the token was made before the fragment rendered (the form's
    token at the top of the page), so that the fragment's own use of it made nothing new."""
    one, other = site.browser(), site.browser()
    first = _fragment(one.get(f"/fragment/{kind}/"))
    second = _fragment(other.get(f"/fragment/{kind}/"))
    assert first.split("token=")[1]
    assert first != second
    assert site.renders[f"fragment:{kind}"] == 2


def test_a_stale_fragment_is_served_once_then_refreshed(site: Site) -> None:
    assert _fragment(site.browser().get("/fragment/stale/")) == "#1"
    site.clock.advance(FRESH_FOR + 1)
    assert _fragment(site.browser().get("/fragment/stale/")) == "#1"
    wait_until(lambda: _fragment(site.browser().get("/fragment/stale/")) == "#2")
    assert site.renders["fragment:stale"] == 2


# -- settings errors -------------------------------------------------------------------------

BAD_PAGE_OPTIONS = [
    {"ttl": -1},
    {"ttl": 0},
    {"ttl": "soon"},
    {"ttl": 60, "stale_ttl": -1},
    {"ttl": 60, "stale_ttl": "later"},
    {"ttl": 60, "statuses": (99,)},
    {"ttl": 60, "statuses": "200"},
    {"ttl": 60, "statuses": ()},
]


@pytest.mark.parametrize("options", BAD_PAGE_OPTIONS, ids=repr)
def test_the_page_decorators_refuse_the_same_values_with_the_same_message(
    site: Site, options: dict[str, object]
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        site.decorator(**options)
    name = "cache_view()" if site.adapter == "django" else "cached_view()"
    message = str(refused.value).replace(name, "<decorator>")
    assert message == EXPECTED_PAGE_ERRORS[repr(options)]


_TTL_HINT = (
    "; pass a number of seconds > 0, None (no expiry), or leave ttl out (the cache's default)"
)
_STATUSES = "statuses must be HTTP status codes (ints 100-599) such as (200, 404), not "
EXPECTED_PAGE_ERRORS = {
    "{'ttl': -1}": "<decorator>: ttl must be a positive number of seconds or None, not -1"
    + _TTL_HINT,
    "{'ttl': 0}": "<decorator>: ttl must be a positive number of seconds or None, not 0"
    + _TTL_HINT,
    "{'ttl': 'soon'}": "<decorator>: ttl must be seconds (int or float) or None, not str"
    + _TTL_HINT,
    "{'ttl': 60, 'stale_ttl': -1}": "<decorator>: stale_ttl must be a number of seconds >= 0, "
    "not -1",
    "{'ttl': 60, 'stale_ttl': 'later'}": "<decorator>: stale_ttl must be a number of seconds "
    ">= 0, not 'later'",
    "{'ttl': 60, 'statuses': (99,)}": _STATUSES + "(99,)",
    "{'ttl': 60, 'statuses': '200'}": "statuses must be HTTP status codes such as (200, 404), "
    "not '200'",
    "{'ttl': 60, 'statuses': ()}": _STATUSES + "()",
}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("ttl=soon", "{% cacheplug %} ttl must be a number of seconds > 0 or None, not 'soon'"),
        ("ttl=-1", "{% cacheplug %} ttl must be a number of seconds > 0 or None, not '-1'"),
        (
            "ttl=60&stale_ttl=-1",
            "{% cacheplug %} stale_ttl must be a number of seconds >= 0 or None, not '-1'",
        ),
    ],
)
def test_the_fragment_tags_refuse_the_same_values_with_the_same_message(
    site: Site, query: str, message: str
) -> None:
    with pytest.raises(Exception) as refused:  # noqa: PT011 - each framework's own type
        site.browser().get(f"/bad-fragment/?{query}")
    assert str(refused.value) == message


def _entity_headers(reply: Reply) -> dict[str, str]:
    return {name: value for name, value in reply.headers.items() if name not in {"date"}}
