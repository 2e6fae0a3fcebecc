"""{% cacheplug %}: a fragment rendered once, kept per vary-on value, invalidated by writes to
the models it depends on, and never allowed to capture a CSRF token."""

from __future__ import annotations

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.template.loader import render_to_string
from shop.models import Product

from cacheplug_django._cache import DjangoCache

pytestmark = pytest.mark.django_db(transaction=True)


class Products:
    """A lazy product list that counts how often the fragment evaluated it."""

    evaluated = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        Products.evaluated += 1
        return iter(Product.objects.order_by("name"))


def render(lang: str, marker: str) -> str:
    return render_to_string(
        "shop/sidebar.html", {"products": Products(), "lang": lang, "marker": marker}
    ).strip()


def test_a_fragment_is_rendered_once_per_vary_value_and_follows_writes(cache: DjangoCache) -> None:
    Products.evaluated = 0
    Product.objects.create(name="hammer", price=1)
    assert render("en", "first") == "hammer=1;first|first"
    assert render("en", "second") == "hammer=1;first|second"  # the fragment came from the cache
    assert render("fr", "third") == "hammer=1;third|third"
    assert Products.evaluated == 2
    Product.objects.update(price=2)
    assert render("en", "fourth") == "hammer=2;fourth|fourth"


def test_tags_and_a_ttl_from_a_variable(cache: DjangoCache) -> None:
    template = Template(
        '{% load cacheplug %}{% cacheplug name ttl tags="promo" %}{{ value }}{% endcacheplug %}'
    )
    context = {"name": "promo", "ttl": None}
    assert template.render(Context({**context, "value": "a"})) == "a"
    assert template.render(Context({**context, "value": "b"})) == "a"
    cache.invalidate_tags("promo")
    assert template.render(Context({**context, "value": "c"})) == "c"


def test_html_is_kept_as_rendered(cache: DjangoCache) -> None:
    template = Template(
        '{% load cacheplug %}{% cacheplug "x" 60 %}<b>{{ v }}</b>{% endcacheplug %}'
    )
    assert template.render(Context({"v": "<i>"})) == "<b>&lt;i&gt;</b>"
    assert template.render(Context({"v": "other"})) == "<b>&lt;i&gt;</b>"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('{% cacheplug "x" %}{% endcacheplug %}', "needs a fragment name and a ttl"),
        ('{% cacheplug "x" 60 %}{% csrf_token %}{% endcacheplug %}', "csrf_token"),
        ('{% cacheplug "x" 60 depend_on="shop.Product" %}{% endcacheplug %}', "unknown option"),
    ],
)
def test_mistakes_are_reported_when_the_template_compiles(source: str, message: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=message):
        Template("{% load cacheplug %}" + source)


def test_a_bad_ttl_is_reported(cache: DjangoCache) -> None:
    template = Template('{% load cacheplug %}{% cacheplug "x" ttl %}v{% endcacheplug %}')
    with pytest.raises(TemplateSyntaxError, match="ttl must be a number"):
        template.render(Context({"ttl": "soon"}))


def test_an_unknown_model_is_reported(cache: DjangoCache) -> None:
    template = Template(
        '{% load cacheplug %}{% cacheplug "x" 60 depends_on="shop.Nope" %}v{% endcacheplug %}'
    )
    with pytest.raises(LookupError, match=r"shop\.Nope"):
        template.render(Context({}))


def test_a_fragment_using_a_csrf_token_variable_is_never_shared(cache: DjangoCache) -> None:
    from django.test import RequestFactory

    template = Template(
        '{% load cacheplug %}{% cacheplug "form" 60 %}<input value="{{ csrf_token }}">'
        "{% endcacheplug %}"
    )
    from django.template import RequestContext

    first = template.render(RequestContext(RequestFactory().get("/")))
    second = template.render(RequestContext(RequestFactory().get("/")))
    assert first != second  # each client got a token of its own
