from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy

from cacheplug_flask import CachePlug

db = SQLAlchemy()
cache = CachePlug()
