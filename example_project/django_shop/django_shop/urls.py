from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from shop import views

urlpatterns = [
    path("", views.home, name="home"),
    path("catalog/", views.catalog, name="catalog"),
    path("catalog/uncached/", views.catalog_uncached, name="catalog-uncached"),
    path("products/<int:pk>/", views.product_detail, name="product"),
    # The staff dashboard, a page of the admin (before the admin's own URLs).
    path("admin/cacheplug/", include("cacheplug_django.dashboard")),
    path("admin/", admin.site.urls),
]

if settings.TOOLBAR:
    urlpatterns.append(path("__debug__/", include("debug_toolbar.urls")))
