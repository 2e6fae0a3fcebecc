"""The rule both adapters apply before storing a page or a fragment
(``cacheplug.integration.unshared_reason``), and the cookies that notice being read
(``CookieReads``): a page keyed by its client may read the cookies that identify the client,
as it may read the session; no other cookie, and a shared page or fragment none at all."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cacheplug.integration import ClientReads, CookieReads, PagePolicy, unshared_reason

IDENTITY = ("sessionid", "remember_token")


def test_a_cookie_identifying_the_client_is_a_per_user_pages_own() -> None:
    reads = ClientReads(identity_cookie_read=True)
    assert unshared_reason(reads, keyed_by_client=True) is None
    assert unshared_reason(reads) == "a cookie that identifies the client was read"


def test_any_other_cookie_is_never_the_keys_own() -> None:
    for reads in (
        ClientReads(cookie_read=True),
        ClientReads(cookie_read=True, identity_cookie_read=True, session=True, user=True),
    ):
        assert unshared_reason(reads, keyed_by_client=True) == "a cookie the client sent was read"
        assert unshared_reason(reads) is not None


def test_reads_combine_the_identity_cookie_too() -> None:
    combined = ClientReads(session=True) | ClientReads(identity_cookie_read=True)
    assert combined == ClientReads(session=True, identity_cookie_read=True)


def test_a_per_user_policy_stores_what_read_the_identity_cookie_a_shared_one_does_not() -> None:
    reads = ClientReads(session=True, user=True, identity_cookie_read=True)
    assert PagePolicy(per_user=True).page_of(200, [], b"hello alice", reads=reads) is not None
    assert PagePolicy().page_of(200, [], b"hello alice", reads=reads) is None
    other = ClientReads(session=True, user=True, cookie_read=True)
    assert PagePolicy(per_user=True).page_of(200, [], b"hello alice", reads=other) is None


def sent(**cookies: str) -> CookieReads:
    return CookieReads(cookies, IDENTITY)


@pytest.mark.parametrize(
    "read",
    [
        lambda c: c["sessionid"],
        lambda c: c.get("sessionid"),
        lambda c: "sessionid" in c,
    ],
    ids=["[]", "get", "in"],
)
def test_reading_an_identity_cookie_counts_apart(read: Callable[[CookieReads], object]) -> None:
    cookies = sent(sessionid="abc", theme="dark")
    read(cookies)
    assert (cookies.identity_read, cookies.read) == (True, False)
    assert cookies.names == {"sessionid"}
    cookies["theme"]
    assert (cookies.identity_read, cookies.read) == (True, True)
    assert cookies.names == {"sessionid", "theme"}


def test_a_cookie_the_client_did_not_send_is_not_counted() -> None:
    cookies = sent(theme="dark")
    assert cookies.get("sessionid") is None
    assert "remember_token" not in cookies
    with pytest.raises(KeyError):
        cookies["sessionid"]
    assert (cookies.identity_read, cookies.read, cookies.names) == (False, False, set())


def test_an_empty_identity_cookie_identifies_nobody() -> None:
    cookies = sent(remember_token="")
    assert cookies.get("remember_token") == ""
    assert (cookies.identity_read, cookies.read) == (False, True)


def test_reading_every_cookie_reads_each_kind_sent() -> None:
    only_identity = sent(sessionid="abc", remember_token="t")
    assert sorted(only_identity) == ["remember_token", "sessionid"]
    assert (only_identity.identity_read, only_identity.read) == (True, False)
    both = sent(sessionid="abc", theme="dark")
    assert dict(both.items()) == {"sessionid": "abc", "theme": "dark"}
    assert (both.identity_read, both.read) == (True, True)
    # A method of the wrapped cookies (Werkzeug's getlist, a dict's copy) may give any value.
    through_method = sent(theme="dark")
    assert through_method.copy() == {"theme": "dark"}
    assert through_method.read


def test_without_identity_cookies_every_read_is_a_cookie_read() -> None:
    cookies = CookieReads({"sessionid": "abc"})
    assert len(cookies) == 1  # the count alone reads no value
    assert not cookies.read
    cookies.get("sessionid")
    assert (cookies.identity_read, cookies.read) == (False, True)
    assert cookies.original == {"sessionid": "abc"}
