"""The shop in Django's admin (``/admin/``): every save here invalidates the cached pages that
show the row, like any other ORM write."""

from __future__ import annotations

from django.contrib import admin

from shop.models import Category, Product, Review


class ReviewInline(admin.TabularInline):
    model = Review
    extra = 0


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "price_cents")
    search_fields = ("name",)
    filter_horizontal = ("categories",)
    inlines = (ReviewInline,)


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name",)


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("product", "rating", "text")
    list_filter = ("rating",)
