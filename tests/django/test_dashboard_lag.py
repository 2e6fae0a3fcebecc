"""The staff dashboard's figures include the configured change feed's lag (the same report
as ``cacheplug_stats``), and nothing when CDC is off or cannot run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import RequestFactory

from cacheplug_django import dashboard
from cacheplug_django._cache import DjangoCache

pytestmark = pytest.mark.django_db(transaction=True)


def lag(staff: User) -> Any:
    request = RequestFactory().get("/admin/cacheplug/data.json")
    request.user = staff
    response = dashboard.dashboard_data(request)
    assert response.status_code == 200
    return json.loads(response.content)["figures"]["change_feed_lag"]


def test_the_configured_change_feeds_lag_is_shown(cache: DjangoCache, settings: Any) -> None:
    staff = User.objects.create_user("ops", is_staff=True)
    assert lag(staff) is None  # CDC off
    settings.CACHEPLUG = {
        **settings.CACHEPLUG,
        "CDC": {"SOURCE": "debezium-redis", "STREAM": "inventory.public.x"},
    }
    found = lag(staff)
    if "STORE" not in settings.CACHEPLUG:
        assert found is None  # no Redis to read the stream from: the rest is still shown
    else:
        assert "inventory.public.x" in found["text"]
