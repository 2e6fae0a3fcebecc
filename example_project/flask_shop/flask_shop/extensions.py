from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy

from cacheplug_flask import CachePlug
from cacheplug_flask.outbox import outbox_table

db = SQLAlchemy()
cache = CachePlug()
# The transactional outbox: each writing transaction also records what it wrote here, so an
# invalidation that cannot reach the cache when it commits is delivered later.
outbox_table(db.metadata)
