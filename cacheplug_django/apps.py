"""The ``cacheplug_django`` app: hooks ORM writes and registers the system checks when
Django is ready; settings are read on first use and again after they change."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.signals import request_finished, setting_changed


class CachePlugConfig(AppConfig):
    name = "cacheplug_django"
    label = "cacheplug"
    verbose_name = "cacheplug"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cacheplug_django import _state
        from cacheplug_django.checks import check_settings

        checks.register(check_settings, checks.Tags.caches)
        setting_changed.connect(_setting_changed, dispatch_uid="cacheplug")
        request_finished.connect(_request_finished, dispatch_uid="cacheplug")
        _state.hooks.install()


def _setting_changed(setting: str, **_: Any) -> None:
    from cacheplug_django import _request_facts, _state
    from cacheplug_django.conf import SETTING

    _request_facts.forget(setting)
    if setting in (SETTING, "SECRET_KEY", "SECRET_KEY_FALLBACKS", "CACHES"):
        _state.cache.reset()


def _request_finished(**_: Any) -> None:
    from cacheplug_django import _state

    _state.publish_stats()
