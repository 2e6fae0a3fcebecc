"""``{% cacheplug %}``: Jinja fragment caching, added to the app's Jinja environment by
``init_app``.

::

    {% cacheplug "sidebar", 300, g.locale, depends_on=["Product"], tags=["promo"] %}
        ...
    {% endcacheplug %}

Arguments: the fragment's name, its ttl in seconds (``none``: the cache's default), then any
values the fragment varies on. Keywords: ``depends_on`` (mapped class names, or classes),
``tags``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from markupsafe import Markup

from cacheplug import DEFAULT

_KEYWORDS = ("depends_on", "tags")


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
    ) -> Markup:
        extension = self.environment.cacheplug  # type: ignore[attr-defined]
        digest = hashlib.blake2b(
            "|".join(str(value) for value in vary).encode("utf-8", "surrogatepass"), digest_size=16
        ).hexdigest()
        models = [_model(extension, model) for model in _listed(depends_on)]
        text = extension.get_or_load(
            f"fragment:{name}:{digest}",
            lambda: str(caller()),
            DEFAULT if ttl is None else ttl,
            tags=_listed(tags),
            depends_on=models,
        )
        return Markup(text)


def _listed(value: Any) -> list[Any]:
    if not value:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return list(value)


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
