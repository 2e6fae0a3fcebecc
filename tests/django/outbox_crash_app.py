"""One process of a Django app for test_outbox_crash: ``python outbox_crash_app.py DB REDIS_URL
ACTION``, DB a SQLite file's path or a ``postgresql://`` URL. ``prime`` makes the database and
caches the price (10); ``write-exit`` and ``write-kill`` commit the price 11 (the cache is cut
off: the invalidation cannot land), then exit normally or SIGKILL themselves right after the
commit returned; ``read`` is a new process reading the price for 5 s, then 3 s more, printing
every value it saw in each window, in order (a line each).

With ``CRASH_EDGE_URL`` set, the app purges that edge (``EDGE``'s ``PURGE_URL``, the ``http``
style) after its invalidations: ``write-wait-kill`` commits the price 11 and SIGKILLs itself 3 s
later (time for its relay to delete the rows it counts delivered); ``relay`` is a new process
that runs its outbox relay until the edge took a purge (or 20 s), printing the purges sent."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent


def database_setting(database: str) -> dict[str, str]:
    """``DATABASES["default"]`` for a SQLite file's path or a ``postgresql://`` URL."""
    url = urlsplit(database)
    if url.scheme != "postgresql":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": database}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": url.path.lstrip("/"),
        "USER": url.username or "postgres",
        "HOST": url.hostname or "127.0.0.1",
        "PORT": str(url.port or 5432),
    }


def setup(database: str, redis_url: str) -> None:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))  # outbox_watch
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="outbox-crash-tests",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "cacheplug_django",
            "shop",
        ],
        DATABASES={"default": database_setting(database)},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        CACHEPLUG={
            "STORE": redis_url,
            "NAMESPACE": "crash",
            "DEFAULT_TTL": 600,
            **edge_setting(),
        },
    )
    django.setup()


def edge_setting() -> dict[str, object]:
    edge = os.environ.get("CRASH_EDGE_URL")
    if edge is None:
        return {}
    return {"EDGE": {"HEADER": "surrogate-key", "PURGE": "http", "PURGE_URL": edge}}


def price() -> int:
    from shop.models import Product

    from cacheplug_django import cache

    return cache.get_or_load(  # type: ignore[no-any-return]
        "price", lambda: Product.objects.get(name="hammer").price, depends_on=[Product]
    )


def main() -> None:
    database, redis_url, action = sys.argv[1:4]
    setup(database, redis_url)
    from django.core.management import call_command
    from django.db import transaction
    from shop.models import Product

    if action == "prime":
        call_command("migrate", run_syncdb=True, verbosity=0)
        Product.objects.create(name="hammer", price=10)
        print(price(), flush=True)
    elif action in ("write-exit", "write-kill", "write-wait-kill"):
        with transaction.atomic():
            hammer = Product.objects.get(name="hammer")
            hammer.price = 11
            hammer.save()
        print("committed", flush=True)
        if action == "write-wait-kill":
            time.sleep(3.0)  # the relay runs about every second
        if action != "write-exit":
            os.kill(os.getpid(), signal.SIGKILL)
    elif action == "relay":
        from cacheplug_django import cache, edge_purges

        cache.core  # noqa: B018 - built: its relay starts on the rows left over
        deadline = time.monotonic() + 20.0
        purges = edge_purges()
        while purges is not None and purges.purged == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        print(0 if purges is None else purges.purged, flush=True)
    elif action == "read":
        from outbox_watch import report

        report(price)


if __name__ == "__main__":
    main()
