"""Views cached whole with @cache_view, each exercising one rule of what may be shared."""

from __future__ import annotations

import threading
import time
from collections import Counter

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.middleware.csrf import get_token

from cacheplug_django import cache_view, instance_tag
from shop.models import Product

renders: Counter[str] = Counter()
_lock = threading.Lock()


def rendered(name: str) -> None:
    with _lock:
        renders[name] += 1


@cache_view(ttl=300, depends_on=[Product])
def catalog(request: HttpRequest) -> HttpResponse:
    rendered("catalog")
    return HttpResponse(",".join(f"{p.name}={p.price}" for p in Product.objects.order_by("name")))


@cache_view(ttl=300, tags=lambda request, pk: [instance_tag(Product, pk)])
def product(request: HttpRequest, pk: int) -> HttpResponse:
    rendered(f"product:{pk}")
    found = Product.objects.filter(pk=pk).first()
    return HttpResponse(f"{found.name}={found.price}" if found else "missing")


@cache_view(ttl=300)
def greeting(request: HttpRequest) -> HttpResponse:
    rendered("greeting")
    user = request.user
    return HttpResponse(f"hello {user.get_username() if user.is_authenticated else 'guest'}")


@cache_view(ttl=300, per_user=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    rendered("dashboard")
    user = request.user
    return HttpResponse(f"dashboard of {user.get_username() if user.is_authenticated else 'guest'}")


@cache_view(ttl=300)
def echo(request: HttpRequest) -> HttpResponse:
    """Echoes the query: one entry per canonical query string."""
    rendered("echo")
    return HttpResponse("&".join(f"{k}={v}" for k, v in sorted(request.GET.items())))


@cache_view(ttl=300)
def sets_cookie(request: HttpRequest) -> HttpResponse:
    rendered("sets_cookie")
    response = HttpResponse(f"cookie {renders['sets_cookie']}")
    response.set_cookie("seen", "1")
    return response


@cache_view(ttl=300)
def private(request: HttpRequest) -> HttpResponse:
    rendered("private")
    response = HttpResponse(f"private {renders['private']}")
    response["Cache-Control"] = request.GET.get("cc", "PRIVATE, max-age=60")
    return response


@cache_view(ttl=300)
def vary_star(request: HttpRequest) -> HttpResponse:
    rendered("vary_star")
    response = HttpResponse(f"star {renders['vary_star']}")
    response["Vary"] = "*"
    return response


@cache_view(ttl=300)
def by_language(request: HttpRequest) -> HttpResponse:
    rendered("by_language")
    response = HttpResponse(f"lang={request.headers.get('Accept-Language', '-')}")
    response["Vary"] = "Accept-Language"
    return response


@cache_view(ttl=300)
def with_form(request: HttpRequest) -> HttpResponse:
    rendered("with_form")
    return HttpResponse(f'<input name="csrfmiddlewaretoken" value="{get_token(request)}">')


@cache_view(ttl=300)
def stream(request: HttpRequest) -> StreamingHttpResponse:
    rendered("stream")
    return StreamingHttpResponse(iter([b"a", b"b"]))


@cache_view(ttl=300)
def status(request: HttpRequest, code: int) -> HttpResponse:
    rendered(f"status:{code}")
    return HttpResponse(f"status {code} #{renders[f'status:{code}']}", status=code)


@cache_view(ttl=300, statuses=(200, 404))
def status_404_allowed(request: HttpRequest) -> HttpResponse:
    rendered("status_404_allowed")
    return HttpResponse("gone", status=404)


@cache_view(ttl=300)
def slow(request: HttpRequest) -> HttpResponse:
    rendered("slow")
    time.sleep(0.2)
    return HttpResponse("slow page")


@cache_view(ttl=300)
def form_post(request: HttpRequest) -> HttpResponse:
    rendered("form_post")
    return HttpResponse(f"{request.method} #{renders['form_post']}")


def plain_catalog(request: HttpRequest) -> HttpResponse:
    """Not decorated: cached (or not) by CachePlugMiddleware's rules."""
    rendered("plain_catalog")
    return HttpResponse(",".join(f"{p.name}={p.price}" for p in Product.objects.order_by("name")))


def plain_form(request: HttpRequest) -> HttpResponse:
    rendered("plain_form")
    return HttpResponse(f'<input value="{get_token(request)}">')


@cache_view(ttl=300, depends_on=[Product])
async def async_catalog(request: HttpRequest) -> HttpResponse:
    rendered("async_catalog")
    names = [f"{p.name}={p.price}" async for p in Product.objects.order_by("name")]
    return HttpResponse(",".join(names))


@cache_view(ttl=300)
def remembers_visitor(request: HttpRequest) -> HttpResponse:
    rendered("remembers_visitor")
    request.session["visitor"] = renders["remembers_visitor"]
    return HttpResponse(f"visitor {renders['remembers_visitor']}")


@cache_view(ttl=300, per_user=True)
def token_auth(request: HttpRequest) -> HttpResponse:
    """Authenticates by a header itself (as a token-auth API view does)."""
    rendered("token_auth")
    return HttpResponse(f"account of {request.headers.get('Authorization', 'nobody')}")


@cache_view(ttl=300, statuses=(200, 301))
def moved(request: HttpRequest) -> HttpResponse:
    rendered("moved")
    response = HttpResponse(status=301)
    response["Location"] = "/pages/catalog/"
    return response


@cache_view(ttl=300)
def localized(request: HttpRequest) -> HttpResponse:
    from django.utils.translation import get_language

    rendered("localized")
    return HttpResponse(f"lang={get_language()}")


@cache_view(ttl=300, per_user=True)
async def async_dashboard(request: HttpRequest) -> HttpResponse:
    """Per user, ``async def``: the user a page is keyed by is loaded off the event loop."""
    rendered("async_dashboard")
    return HttpResponse(f"async dashboard #{renders['async_dashboard']}")
