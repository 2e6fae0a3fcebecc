"""The parity site on Django: the views and templates of ``parity_flask``, written for Django
(``ROOT_URLCONF = "parity_django"``)."""

from __future__ import annotations

from collections import Counter

from django.contrib.auth import login as log_in
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path
from shop.models import Product

from cacheplug_django import cache_view

renders: Counter[str] = Counter()


class Tick:
    """Counts the renderings of the fragment it is placed in."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        renders[f"fragment:{self.name}"] += 1
        return ""


PAGE_HEADERS = {
    "Cache-Control": "public, max-age=60",
    "Expires": "Thu, 01 Jan 2037 00:00:00 GMT",
    "Content-Location": "/page/",
    "Vary": "Accept-Language",
    "Content-Type": "text/plain; charset=utf-8",
}


@cache_view(ttl=300)
def page(request: HttpRequest) -> HttpResponse:
    renders["page"] += 1
    language = request.headers.get("Accept-Language", "-")
    return HttpResponse(f"page lang={language}", headers=PAGE_HEADERS)


@cache_view(ttl=300)
def plain(request: HttpRequest) -> HttpResponse:
    renders["plain"] += 1
    return HttpResponse("plain page", content_type="text/plain")


@cache_view(ttl=10, stale_ttl=60)
def stale(request: HttpRequest) -> HttpResponse:
    renders["stale"] += 1
    return HttpResponse(f"stale #{renders['stale']}", content_type="text/plain")


@cache_view(ttl=300, depends_on=[Product])
def catalog(request: HttpRequest) -> HttpResponse:
    renders["catalog"] += 1
    names = ",".join(Product.objects.order_by("name").values_list("name", flat=True))
    return HttpResponse(f"{names} #{renders['catalog']}", content_type="text/plain")


def write(request: HttpRequest) -> HttpResponse:
    """Writes a product in a transaction and, before the commit, answers with the catalog."""
    with transaction.atomic():
        Product.objects.create(name=request.GET["name"])
        inside = catalog(request)
    return inside


def login(request: HttpRequest, name: str) -> HttpResponse:
    user, _ = User.objects.get_or_create(username=name)
    log_in(request, user)
    request.session["name"] = name
    return HttpResponse("ok")


FRAGMENTS = {
    "plain": '{% cacheplug "plain" 300 %}{{ tick }}shared{% endcacheplug %}',
    "session": '{% cacheplug "session" 300 %}{{ tick }}name={{ request.session.name }}'
    "{% endcacheplug %}",
    "user": '{% cacheplug "user" 300 %}{{ tick }}user={{ request.user.username }}'
    "{% endcacheplug %}",
    "csrf": '{% cacheplug "csrf" 300 %}{{ tick }}token={{ csrf_token }}{% endcacheplug %}',
    "csrf-made-before": '{{ csrf_token }}|{% cacheplug "csrf-made-before" 300 %}{{ tick }}'
    "token={{ csrf_token }}{% endcacheplug %}",
    "stale": '{% cacheplug "stale" 10 stale_ttl=60 %}{{ tick }}#{{ count }}{% endcacheplug %}',
}


def fragment(request: HttpRequest, kind: str) -> HttpResponse:
    template = engines["django"].from_string("{% load cacheplug %}[" + FRAGMENTS[kind] + "]")
    context = {"tick": Tick(kind), "count": renders[f"fragment:{kind}"] + 1}
    return HttpResponse(template.render(context, request), content_type="text/plain")


def bad_fragment(request: HttpRequest) -> HttpResponse:
    """A fragment tag with the options of the query string (``ttl``, ``stale_ttl``)."""
    source = '{% load cacheplug %}{% cacheplug "bad" ttl stale_ttl=stale_ttl %}x{% endcacheplug %}'
    values = {"ttl": request.GET.get("ttl"), "stale_ttl": request.GET.get("stale_ttl")}
    return HttpResponse(engines["django"].from_string(source).render(values, request))


urlpatterns = [
    path("page/", page),
    path("plain/", plain),
    path("stale/", stale),
    path("catalog/", catalog),
    path("write/", write),
    path("login/<str:name>/", login),
    path("fragment/<str:kind>/", fragment),
    path("bad-fragment/", bad_fragment),
]
