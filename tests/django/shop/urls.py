from __future__ import annotations

from django.urls import path

from shop import page_views, views

urlpatterns = [
    path("catalog/", views.catalog),
    path("products/<int:pk>/", views.product_detail),
    path("places/", views.places),
    path("restaurants/<int:pk>/", views.restaurant_detail),
    path("archive/", views.archive),
    path("pages/catalog/", page_views.catalog),
    path("pages/products/<int:pk>/", page_views.product),
    path("pages/greeting/", page_views.greeting),
    path("pages/dashboard/", page_views.dashboard),
    path("pages/echo/", page_views.echo),
    path("pages/sets-cookie/", page_views.sets_cookie),
    path("pages/private/", page_views.private),
    path("pages/vary-star/", page_views.vary_star),
    path("pages/by-language/", page_views.by_language),
    path("pages/with-form/", page_views.with_form),
    path("pages/stream/", page_views.stream),
    path("pages/status/<int:code>/", page_views.status),
    path("pages/gone/", page_views.status_404_allowed),
    path("pages/slow/", page_views.slow),
    path("pages/form/", page_views.form_post),
    path("plain/catalog/", page_views.plain_catalog, name="plain-catalog"),
    path("plain/other/", page_views.plain_catalog, name="plain-other"),
    path("plain/form/", page_views.plain_form),
    path("pages/async-catalog/", page_views.async_catalog),
    path("pages/async-dashboard/", page_views.async_dashboard),
    path("pages/remembers-visitor/", page_views.remembers_visitor),
    path("pages/token-auth/", page_views.token_auth),
    path("pages/moved/", page_views.moved),
    path("pages/localized/", page_views.localized),
]
