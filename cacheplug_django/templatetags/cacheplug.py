"""``{% cacheplug %}``: template fragment caching with tags, model dependencies and
stampede protection.

::

    {% load cacheplug %}
    {% cacheplug "sidebar" 300 request.LANGUAGE_CODE depends_on="shop.Product,shop.Category" %}
        ...
    {% endcacheplug %}

Arguments: the fragment's name, its ttl in seconds (``None``: the cache's default), then any
values the fragment varies on. Keywords: ``depends_on`` (models, comma-separated
``app.Model``), ``tags`` (comma-separated), ``stale_ttl``. A ``{% csrf_token %}`` inside is
refused when the template is compiled: the token belongs to one client.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django import template
from django.template.base import FilterExpression, Node, NodeList, Parser, Token
from django.template.defaulttags import CsrfTokenNode
from django.utils.functional import empty
from django.utils.safestring import SafeString, mark_safe

from cacheplug import DEFAULT

register = template.Library()

_KEYWORDS = ("depends_on", "tags", "stale_ttl")


class CachePlugNode(Node):
    def __init__(
        self,
        nodelist: NodeList,
        name: FilterExpression,
        ttl: FilterExpression,
        vary_on: list[FilterExpression],
        options: dict[str, FilterExpression],
    ) -> None:
        self.nodelist = nodelist
        self.name = name
        self.ttl = ttl
        self.vary_on = vary_on
        self.options = options

    def render(self, context: template.Context) -> SafeString:
        from cacheplug_django._state import cache

        name = self.name.resolve(context)
        ttl = self.ttl.resolve(context)
        if ttl is not None and not isinstance(ttl, int | float):
            try:
                ttl = float(ttl)
            except (TypeError, ValueError) as exc:
                raise template.TemplateSyntaxError(
                    f"{{% cacheplug %}} ttl must be a number or None, not {ttl!r}"
                ) from exc
        vary = "|".join(str(value.resolve(context)) for value in self.vary_on)
        digest = hashlib.blake2b(vary.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        options = {key: value.resolve(context) for key, value in self.options.items()}
        request = context.get("request")

        rendering = object()  # identifies this call's own rendering

        def render() -> str:
            # A CSRF token used anywhere inside ({{ csrf_token }}, an included form) makes
            # the fragment this client's only: Django flags the request when a token is taken.
            meta = getattr(request, "META", None)
            flagged = meta.pop("CSRF_COOKIE_NEEDS_UPDATE", None) if meta is not None else None
            text = str(self.nodelist.render(context))
            used = False
            if meta is not None:
                used = bool(meta.get("CSRF_COOKIE_NEEDS_UPDATE"))
                if flagged is not None or used:
                    meta["CSRF_COOKIE_NEEDS_UPDATE"] = flagged or used
            # Without the request in the context, look for the token itself in the output
            # (only if something already evaluated it: evaluating it here would set a cookie).
            token = getattr(context.get("csrf_token"), "_wrapped", empty)
            if used or (token is not empty and token and str(token) in text):
                raise _Unshared(text, rendering)
            return text

        try:
            text = cache.get_or_load(
                f"fragment:{name}:{digest}",
                render,
                DEFAULT if ttl is None else ttl,
                tags=_names(options.get("tags")),
                depends_on=_names(options.get("depends_on")),
                stale_ttl=options.get("stale_ttl", DEFAULT),
            )
        except _Unshared as unshared:
            # Ours to show if we rendered it; another request's (a waiter's) is not.
            text = (
                unshared.text if unshared.owner is rendering else str(self.nodelist.render(context))
            )
        return mark_safe(text)


class _Unshared(Exception):
    """A fragment that may not be stored (it holds this client's CSRF token)."""

    def __init__(self, text: str, owner: object) -> None:
        super().__init__("the fragment holds a CSRF token")
        self.text = text
        self.owner = owner


def _names(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(part) for part in value]


@register.tag("cacheplug")
def do_cacheplug(parser: Parser, token: Token) -> CachePlugNode:
    bits = token.split_contents()
    if len(bits) < 3:
        raise template.TemplateSyntaxError(
            f"'{bits[0]}' needs a fragment name and a ttl: {{% cacheplug \"name\" 300 %}}"
        )
    positional: list[str] = []
    options: dict[str, FilterExpression] = {}
    for bit in bits[1:]:
        key, equals, value = bit.partition("=")
        if equals and key in _KEYWORDS:
            options[key] = parser.compile_filter(value)
        elif equals and key.isidentifier() and not key.startswith(("'", '"')):
            raise template.TemplateSyntaxError(
                f"unknown option {key!r} of {{% cacheplug %}}; known: {', '.join(_KEYWORDS)}"
            )
        else:
            positional.append(bit)
    nodelist = parser.parse(("endcacheplug",))
    parser.delete_first_token()
    if nodelist.get_nodes_by_type(CsrfTokenNode):
        raise template.TemplateSyntaxError(
            "{% csrf_token %} inside {% cacheplug %} would hand one client's token to others: "
            "move it out of the cached fragment"
        )
    return CachePlugNode(
        nodelist,
        parser.compile_filter(positional[0]),
        parser.compile_filter(positional[1]),
        [parser.compile_filter(bit) for bit in positional[2:]],
        options,
    )
