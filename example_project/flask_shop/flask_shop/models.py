from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, SmallInteger, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flask_shop.extensions import db

# The same data model as the Django shop: categories, products, reviews.
product_categories = Table(
    "product_categories",
    db.metadata,
    Column("product_id", ForeignKey("product.id"), primary_key=True),
    Column("category_id", ForeignKey("category.id"), primary_key=True),
)


class Category(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    products: Mapped[list[Product]] = relationship(
        secondary=product_categories, back_populates="categories"
    )


class Product(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    categories: Mapped[list[Category]] = relationship(
        secondary=product_categories, back_populates="products", order_by="Category.name"
    )
    reviews: Mapped[list[Review]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="Review.id"
    )


class Review(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    product: Mapped[Product] = relationship(back_populates="reviews")
    rating: Mapped[int] = mapped_column(SmallInteger)  # 1 to 5
    text: Mapped[str] = mapped_column(Text, default="")
