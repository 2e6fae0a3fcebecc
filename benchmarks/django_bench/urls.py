from __future__ import annotations

from django.urls import path

from django_bench import views

urlpatterns = [
    path("floor/", views.floor),
    path("floor/store/", views.floor_store),
    path("floor/language/", views.floor_language),
    path("floor/hit/", views.floor_hit),
    path("stats/", views.stats),
    path("cache_page/", views.page_cache_page),
    path("cache_view/", views.page_cache_view),
    path("slow/cache_page/<int:run>/", views.slow_cache_page),
    path("slow/cache_view/<int:run>/", views.slow_cache_view),
    path("async/floor/", views.async_floor),
    path("async/cache_page/", views.page_cache_page_async),
    path("async/cache_view/", views.page_cache_view_async),
    path("mw/page/", views.page_middleware),
]
