from __future__ import annotations

from django.urls import path

from shop import views

urlpatterns = [
    path("catalog/", views.catalog),
    path("products/<int:pk>/", views.product_detail),
    path("places/", views.places),
    path("restaurants/<int:pk>/", views.restaurant_detail),
    path("archive/", views.archive),
]
