"""The parity site on Flask: the views and templates of ``parity_django``, written for Flask
(with Flask-SQLAlchemy, Flask-Login, and a CSRF token kept where Flask-WTF keeps it)."""

from __future__ import annotations

import secrets
from collections import Counter
from typing import Any

from flask import Flask, g, render_template_string, request, session
from flask_login import LoginManager, UserMixin, login_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cacheplug_flask import CachePlug

db = SQLAlchemy()
cache = CachePlug()
renders: Counter[str] = Counter()


class Product(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class Account(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name
        self.username = name


class Tick:
    """Counts the renderings of the fragment it is placed in."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        renders[f"fragment:{self.name}"] += 1
        return ""


def csrf_token() -> str:
    """Flask-WTF's ``generate_csrf`` in small: the token made once per request, kept in ``g``
    (its secret in the session)."""
    if "csrf_token" not in g:
        if "csrf" not in session:
            session["csrf"] = secrets.token_hex(8)
        g.csrf_token = f"{session['csrf']}.{secrets.token_hex(4)}"
    return str(g.csrf_token)


PAGE_HEADERS = {
    "Cache-Control": "public, max-age=60",
    "Expires": "Thu, 01 Jan 2037 00:00:00 GMT",
    "Content-Location": "/page/",
    "Vary": "Accept-Language",
    "Content-Type": "text/plain; charset=utf-8",
}

FRAGMENTS = {
    "plain": '{% cacheplug "plain", 300 %}{{ tick }}shared{% endcacheplug %}',
    "session": '{% cacheplug "session", 300 %}{{ tick }}name={{ session.get("name", "") }}'
    "{% endcacheplug %}",
    "user": '{% cacheplug "user", 300 %}{{ tick }}user='
    '{{ current_user.username if current_user.is_authenticated else "" }}{% endcacheplug %}',
    "csrf": '{% cacheplug "csrf", 300 %}{{ tick }}token={{ csrf_token() }}{% endcacheplug %}',
    "csrf-made-before": '{{ csrf_token() }}|{% cacheplug "csrf-made-before", 300 %}{{ tick }}'
    "token={{ csrf_token() }}{% endcacheplug %}",
    "stale": '{% cacheplug "stale", 10, stale_ttl=60 %}{{ tick }}#{{ count }}{% endcacheplug %}',
}


def create_app(store: str, database: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY="parity-secret",
        SQLALCHEMY_DATABASE_URI=database,
        CACHEPLUG_STORE=store,
        CACHEPLUG_NAMESPACE="parity",
    )
    db.init_app(app)
    cache.init_app(app, sqlalchemy=db)
    logins = LoginManager(app)
    logins.user_loader(Account)
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.get("/page/")
    @cache.cached_view(ttl=300)
    def page() -> Any:
        renders["page"] += 1
        language = request.headers.get("Accept-Language", "-")
        return f"page lang={language}", 200, PAGE_HEADERS

    @app.get("/plain/")
    @cache.cached_view(ttl=300)
    def plain() -> Any:
        renders["plain"] += 1
        return "plain page", 200, {"Content-Type": "text/plain"}

    @app.get("/stale/")
    @cache.cached_view(ttl=10, stale_ttl=60)
    def stale() -> Any:
        renders["stale"] += 1
        return f"stale #{renders['stale']}", 200, {"Content-Type": "text/plain"}

    @app.get("/catalog/")
    @cache.cached_view(ttl=300, depends_on=[Product])
    def catalog() -> Any:
        renders["catalog"] += 1
        names = ",".join(db.session.scalars(db.select(Product.name).order_by(Product.name)))
        return f"{names} #{renders['catalog']}", 200, {"Content-Type": "text/plain"}

    @app.get("/write/")
    def write() -> Any:
        """Writes a product in a transaction and, before the commit, answers with the
        catalog."""
        db.session.add(Product(name=request.args["name"]))
        db.session.flush()
        inside = catalog()
        db.session.commit()
        return inside

    @app.post("/login/<name>/")
    def login(name: str) -> str:
        login_user(Account(name))
        session["name"] = name
        return "ok"

    @app.get("/fragment/<kind>/")
    def fragment(kind: str) -> Any:
        context = {"tick": Tick(kind), "count": renders[f"fragment:{kind}"] + 1}
        text = render_template_string("[" + FRAGMENTS[kind] + "]", **context)
        return text, 200, {"Content-Type": "text/plain"}

    @app.get("/bad-fragment/")
    def bad_fragment() -> str:
        """A fragment tag with the options of the query string (``ttl``, ``stale_ttl``)."""
        source = '{% cacheplug "bad", ttl, stale_ttl=stale_ttl %}x{% endcacheplug %}'
        return render_template_string(
            source, ttl=request.args.get("ttl"), stale_ttl=request.args.get("stale_ttl")
        )

    with app.app_context():
        db.create_all()
    return app
