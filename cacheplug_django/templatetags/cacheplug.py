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
refused when the template is compiled: the token belongs to one client. A fragment whose
rendering read the client's state (the session, flash messages, the user, a CSRF token, a
cookie it sent) is shown to that client and not stored: the rule pages follow.
"""

from __future__ import annotations

from django import template
from django.http import HttpRequest
from django.template.base import FilterExpression, Node, NodeList, Parser, Token
from django.template.defaulttags import CsrfTokenNode
from django.utils.functional import empty
from django.utils.safestring import SafeString, mark_safe

from cacheplug import ConfigurationError
from cacheplug.integration import (
    FRAGMENT_OPTIONS,
    ClientReads,
    Watched,
    depends_on_of,
    fetch_fragment,
    fragment_key,
    fragment_options,
)
from cacheplug_django._request_facts import ReadWatch, signed_in

register = template.Library()

_KEYWORDS = FRAGMENT_OPTIONS


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
        resolved = {key: value.resolve(context) for key, value in self.options.items()}
        try:
            options = fragment_options(self.ttl.resolve(context), **resolved)
        except ConfigurationError as exc:
            raise template.TemplateSyntaxError(str(exc)) from None
        key = fragment_key(name, (value.resolve(context) for value in self.vary_on))
        request = getattr(context, "request", None) or context.get("request")

        def render() -> tuple[str, ClientReads]:
            # What rendering the fragment read of the client decides whether it is shared
            # (the core's rule); Django's records of the reads say.
            watch = ReadWatch(request) if isinstance(request, HttpRequest) else None
            with Watched[str](watch) as made:
                text = str(self.nodelist.render(context))
            return text, made.reads

        def csrf_token() -> str | None:
            # Only if something already evaluated it: evaluating it here would set a cookie.
            token = getattr(context.get("csrf_token"), "_wrapped", empty)
            return None if token is empty or not token else str(token)

        text = fetch_fragment(
            cache,
            key,
            render,
            options.ttl,
            csrf_token=csrf_token,
            signed_in=isinstance(request, HttpRequest) and signed_in(request),
            tags=list(options.tags),
            depends_on=depends_on_of(options, str),
            stale_ttl=options.stale_ttl,
        )
        return mark_safe(text)


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
