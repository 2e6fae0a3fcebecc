"""``{% cacheplug %}``: Jinja fragment caching, added to the app's Jinja environment by
``init_app``.

::

    {% cacheplug "sidebar", 300, g.locale, depends_on=["Product"], tags=["promo"] %}
        ...
    {% endcacheplug %}

Arguments: the fragment's name, its ttl in seconds (``none``: the cache's default), then any
values the fragment varies on. Keywords: ``depends_on`` (mapped class names, or classes),
``tags``, ``stale_ttl`` (the options of Django's tag, checked by the same code). A fragment
whose rendering read the client's state (the session, flashed messages, Flask-Login's user, a
CSRF token, a cookie it sent) is shown to that client and not stored: the rule pages follow.
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from markupsafe import Markup

from cacheplug.integration import (
    FRAGMENT_OPTIONS,
    ClientReads,
    Watched,
    depends_on_of,
    fetch_fragment,
    fragment_key,
    fragment_options,
)
from cacheplug_flask._request_facts import ReadWatch, csrf_token, in_request, signed_in

_KEYWORDS = FRAGMENT_OPTIONS


class CachePlugExtension(Extension):
    tags = {"cacheplug"}  # noqa: RUF012 - Jinja's own class attribute

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        positional: list[nodes.Expr] = []
        keywords: list[nodes.Keyword] = []
        while parser.stream.current.type != "block_end":
            if positional or keywords:
                parser.stream.expect("comma")
            if parser.stream.current.type == "name" and parser.stream.look().type == "assign":
                key = next(parser.stream).value
                if key not in _KEYWORDS:
                    known = ", ".join(_KEYWORDS)
                    parser.fail(
                        f"unknown option {key!r} of {{% cacheplug %}}; known: {known}", lineno
                    )
                next(parser.stream)
                keywords.append(nodes.Keyword(key, parser.parse_expression(), lineno=lineno))
            else:
                positional.append(parser.parse_expression())
        if len(positional) < 2:
            parser.fail(
                '{% cacheplug %} needs a fragment name and a ttl: {% cacheplug "name", 300 %}',
                lineno,
            )
        body = parser.parse_statements(("name:endcacheplug",), drop_needle=True)
        call = self.call_method(
            "_render",
            [positional[0], positional[1], nodes.List(positional[2:])],
            keywords,
        )
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _render(
        self,
        name: Any,
        ttl: Any,
        vary: list[Any],
        caller: Any,
        depends_on: Any = (),
        tags: Any = (),
        stale_ttl: Any = None,
    ) -> Markup:
        extension = self.environment.cacheplug  # type: ignore[attr-defined]
        options = fragment_options(ttl, stale_ttl=stale_ttl, tags=tags, depends_on=depends_on)
        models = depends_on_of(options, lambda model: _model(extension, model))

        def render() -> tuple[str, ClientReads]:
            # What rendering the fragment read of the client decides whether it is shared
            # (the core's rule); outside a request there is no client to read.
            watch = ReadWatch(extension.private_cookies) if has_request_context() else None
            with Watched[str](watch) as made:
                text = str(caller())
            return text, made.reads

        text = fetch_fragment(
            extension,
            fragment_key(name, vary),
            in_request(render),
            options.ttl,
            csrf_token=csrf_token,
            signed_in=signed_in(),
            tags=list(options.tags),
            depends_on=models,
            stale_ttl=options.stale_ttl,
        )
        return Markup(text)


def _model(extension: Any, model: Any) -> Any:
    if not isinstance(model, str):
        return model
    for mapper in extension.mappers():
        if model in (
            mapper.class_.__name__,
            f"{mapper.class_.__module__}.{mapper.class_.__name__}",
        ):
            return mapper.class_
    raise LookupError(f"unknown model {model!r} in {{% cacheplug %}}")
