"""System checks (``manage.py check``) for the ``CACHEPLUG`` setting."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Warning

from cacheplug import ConfigurationError, store_from_url
from cacheplug_django.conf import SETTING, read_settings, store_url


def check_settings(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    """``cacheplug.E001``: the setting is malformed. ``cacheplug.E002``: its store cannot be
    used. ``cacheplug.W001``: entries on a shared store would not be signed."""
    try:
        current = read_settings()
    except (ConfigurationError, TypeError, ValueError) as exc:
        return [
            Error(
                f"{SETTING} is not valid: {exc}",
                hint="See cacheplug_django.conf for every key and its default.",
                id="cacheplug.E001",
            )
        ]
    try:
        url = store_url(current.store)
        store = None if url is None else store_from_url(url)
    except (ConfigurationError, ImportError) as exc:
        return [
            Error(
                f"{SETTING}['STORE'] cannot be used: {exc}",
                hint="Use a URL such as 'redis://127.0.0.1:6379/0', 'django:<CACHES alias>', "
                "or leave STORE out for the in-process store (pip install 'cacheplug[redis]' "
                "for Redis).",
                id="cacheplug.E002",
            )
        ]
    messages: list[CheckMessage] = []
    if store is not None:
        if store.shared and not current.options.get("secret"):
            messages.append(
                Warning(
                    f"{SETTING} uses a shared store without a secret: entries are stored as "
                    "unsigned JSON, and values JSON cannot hold are not cached.",
                    hint="Set SECRET_KEY (or CACHEPLUG['SECRET']).",
                    id="cacheplug.W001",
                )
            )
        store.close()
    return messages
