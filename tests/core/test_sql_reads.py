"""What the read parser says a statement reads: the tables of a SELECT, and the rows when its
only condition names them by primary key (Django's and SQLAlchemy's statements as they send
them)."""

from __future__ import annotations

from typing import Any

import pytest

from cacheplug.integration._reads import ReadParser, TableRead
from cacheplug.integration._sql import ANY_ROW, EVERY_TABLE

PKS = {"shop_product": "id", "shop_review": "id", "shop_category": "id", "product": "id"}
parser = ReadParser(PKS.get)

P = '"shop_product"."id", "shop_product"."name", "shop_product"."price"'


@pytest.mark.parametrize(
    ("sql", "params", "expected"),
    [
        # Django: get(pk=...), a filter, a related manager, select_related, prefetch_related
        (
            f'SELECT {P} FROM "shop_product" WHERE "shop_product"."id" = %s LIMIT 21',
            (3,),
            [TableRead("shop_product", (3,))],
        ),
        (
            f'SELECT {P} FROM "shop_product" WHERE "shop_product"."price" > %s',
            (1,),
            [TableRead("shop_product", ANY_ROW)],
        ),
        (
            'SELECT "shop_review"."id" FROM "shop_review" WHERE "shop_review"."product_id" = %s',
            (1,),
            [TableRead("shop_review", ANY_ROW)],
        ),
        (
            f'SELECT "shop_review"."id", {P} FROM "shop_review" INNER JOIN "shop_product" ON '
            '("shop_review"."product_id" = "shop_product"."id") WHERE "shop_review"."id" = %s',
            (1,),
            [TableRead("shop_review", (1,)), TableRead("shop_product", ANY_ROW)],
        ),
        (
            'SELECT ("shop_product_categories"."product_id") AS "_prefetch_related_val_product_id",'
            ' "shop_category"."id", "shop_category"."name" FROM "shop_category" INNER JOIN '
            '"shop_product_categories" ON ("shop_category"."id" = '
            '"shop_product_categories"."category_id") WHERE '
            '"shop_product_categories"."product_id" IN (%s, %s)',
            (1, 2),
            [
                TableRead("shop_category", ANY_ROW),
                TableRead("shop_product_categories", ANY_ROW),
            ],
        ),
        (
            'SELECT COUNT(*) AS "__count" FROM "shop_product" '
            'WHERE "shop_product"."id" IN (%s, %s)',
            (1, 2),
            [TableRead("shop_product", (1, 2))],
        ),
        ('SELECT 1 AS "a" FROM "shop_product" LIMIT 1', (), [TableRead("shop_product", ANY_ROW)]),
        # SQLAlchemy: session.get(), a select with named parameters
        (
            "SELECT product.id, product.name FROM product WHERE product.id = ?",
            (5,),
            [TableRead("product", (5,))],
        ),
        (
            "SELECT product.id FROM product WHERE product.id = %(pk_1)s",
            {"pk_1": 7},
            [TableRead("product", (7,))],
        ),
        # raw SQL: several tables, subqueries, CTEs, schema-qualified, functions
        (
            "SELECT a.x FROM shop_product a, shop_category AS c WHERE a.id = c.id",
            (),
            [TableRead("shop_product", ANY_ROW), TableRead("shop_category", ANY_ROW)],
        ),
        (
            "SELECT * FROM shop_product WHERE id IN (SELECT product_id FROM shop_review "
            "WHERE id = %s)",
            (1,),
            [TableRead("shop_product", ANY_ROW), TableRead("shop_review", ANY_ROW)],
        ),
        (
            "WITH cheap AS (SELECT id FROM shop_product WHERE price < 5) SELECT * FROM cheap",
            (),
            [TableRead("shop_product", ANY_ROW)],
        ),
        (
            'SELECT * FROM "public"."shop_product" WHERE "id" = $1 FOR UPDATE',
            (9,),
            [TableRead("shop_product", (9,))],
        ),
        (
            "SELECT EXTRACT(YEAR FROM created) FROM shop_review",
            (),
            [TableRead("shop_review", ANY_ROW)],
        ),
        ("SELECT * FROM generate_series(1, 3)", (), [TableRead(EVERY_TABLE, ANY_ROW)]),
        ("SELECT 'FROM x' AS s", (), []),
        ("TABLE shop_product", (), [TableRead("shop_product", ANY_ROW)]),
        # not reads
        ('UPDATE "shop_product" SET "price" = %s', (1,), []),
        ("SAVEPOINT s1", (), []),
        ("SELECT 1", (), []),
    ],
)
def test_what_a_statement_reads(sql: str, params: Any, expected: list[TableRead]) -> None:
    assert parser.reads(sql, params) == expected


def test_a_key_read_of_a_table_whose_key_is_not_known_reads_any_row() -> None:
    unknown = ReadParser(lambda table: None)
    assert unknown.reads("SELECT * FROM t WHERE t.id = %s", (1,)) == [TableRead("t", ANY_ROW)]


def test_a_condition_on_another_column_or_more_parameters_reads_any_row() -> None:
    assert parser.reads(
        "SELECT * FROM shop_product WHERE shop_product.id = %s AND price > %s", (1, 2)
    ) == [TableRead("shop_product", ANY_ROW)]
    assert parser.reads("SELECT * FROM shop_product WHERE name = %s", ("x",)) == [
        TableRead("shop_product", ANY_ROW)
    ]
