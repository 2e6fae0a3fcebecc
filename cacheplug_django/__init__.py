"""Django integration for cacheplug (the ``cacheplug_django`` app).

Not built yet: the app, ORM invalidation, view decorators and management commands arrive with
the Django adapter issue. Until then, use :class:`cacheplug.Cache` directly.
"""

from __future__ import annotations

__all__: list[str] = []
