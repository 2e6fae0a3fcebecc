"""Flask integration for cacheplug (the ``CachePlug`` extension).

Not built yet: the extension, SQLAlchemy invalidation, view decorators and CLI arrive with the
Flask adapter issue. Until then, use :class:`cacheplug.Cache` directly.
"""

from __future__ import annotations

__all__: list[str] = []
