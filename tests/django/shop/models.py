"""Models covering what the ORM hooks must handle: FKs, many-to-many, multi-table
inheritance, proxies, a model living in another database."""

from __future__ import annotations

from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=100)

    class Meta:
        app_label = "shop"


class Product(models.Model):
    name = models.CharField(max_length=100)
    price = models.IntegerField(default=0)
    categories = models.ManyToManyField(Category, related_name="products", blank=True)

    class Meta:
        app_label = "shop"


class CheapProduct(Product):
    """A proxy: same table as Product."""

    class Meta:
        proxy = True
        app_label = "shop"


class Review(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reviews")
    text = models.CharField(max_length=200)

    class Meta:
        app_label = "shop"


class Place(models.Model):
    name = models.CharField(max_length=100)

    class Meta:
        app_label = "shop"


class Restaurant(Place):
    """Multi-table inheritance: a row here and one in Place."""

    serves_pizza = models.BooleanField(default=False)

    class Meta:
        app_label = "shop"


class ArchivedOrder(models.Model):
    """Routed to the "other" database."""

    reference = models.CharField(max_length=50)

    class Meta:
        app_label = "shop"


class Profile(models.Model):
    """Written behind, by ``cacheplug_django.upsert_sink``."""

    handle = models.CharField(max_length=50, unique=True)
    name = models.CharField(max_length=100, default="")
    visits = models.IntegerField(default=0)
    write_order = models.CharField(max_length=26, default="")

    class Meta:
        app_label = "shop"
