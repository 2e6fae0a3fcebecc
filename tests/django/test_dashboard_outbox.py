"""The outbox's backlog on the staff dashboard (the JSON the admin page polls, and its
markup): the rows waiting in each database's table and the oldest one's age, through the
relays ``cacheplug_django.outbox_relays()`` hands out; "not configured" with the outbox off."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import RequestFactory

import cacheplug_django
from cacheplug_django import _state, dashboard
from cacheplug_django._cache import DjangoCache
from cacheplug_django.models import OutboxEntry

pytestmark = pytest.mark.django_db(transaction=True)

WRITTEN_AT = 1_000_000.0  # when a row says it was written (seconds since the epoch)


def data(staff: User) -> Any:
    request = RequestFactory().get("/admin/cacheplug/data.json")
    request.user = staff
    response = dashboard.dashboard_data(request)
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_relays_the_adapter_runs_are_handed_out(cache: DjangoCache) -> None:
    User.objects.create_user("writer")  # a write: the default database's relay is made
    relays = cacheplug_django.outbox_relays()
    assert relays["default"] is _state._relays["default"]
    relays.clear()  # a copy
    assert "default" in cacheplug_django.outbox_relays()


def test_the_backlog_of_rows_left_in_the_table(cache: DjangoCache) -> None:
    staff = User.objects.create_user("ops", is_staff=True)  # delivered by its writer
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM cacheplug_outbox")  # what setting the database up wrote
    for row_id, written_at in (("dead-writer", WRITTEN_AT), ("cache-down", WRITTEN_AT + 60)):
        OutboxEntry.objects.create(id=row_id, tags='["db:t:shop_product"]', created_at=written_at)
    found = data(staff)
    backlog = found["figures"]["outbox"]["default"]
    assert backlog["rows"] == 2
    assert backlog["oldest_age_seconds"] >= 1_700_000_000 - WRITTEN_AT  # written in 1970
    assert backlog["relayed"] == _state._relays["default"].relayed
    assert "error" not in backlog
    assert "default: 2 rows, oldest " in found["html"]


def test_not_configured_with_the_outbox_off(cache: DjangoCache, settings: Any) -> None:
    User.objects.create_user("writer")
    settings.CACHEPLUG = {**settings.CACHEPLUG, "OUTBOX": False}
    staff = User.objects.create_user("ops", is_staff=True)
    assert cacheplug_django.outbox_relays() == {}
    found = data(staff)
    assert found["figures"]["outbox"] is None
    assert '<th scope="row">outbox backlog</th><td>not configured</td>' in found["html"]
