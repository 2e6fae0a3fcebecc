"""Which tables and rows a statement writes: the shapes Django and SQLAlchemy send, raw SQL,
and everything unclear answered as "any row"."""

from __future__ import annotations

import pytest

from cacheplug.integration import ANY_ROW, TableWrite, WriteParser

PKS = {"shop_product": "id", "shop_restaurant": "place_ptr_id", "tags": "id"}


@pytest.fixture
def parser() -> WriteParser:
    return WriteParser(PKS.get)


@pytest.mark.parametrize(
    ("sql", "params", "expected"),
    [
        # Django's Model.save() of an existing row, and QuerySet.filter(pk=...).update().
        (
            'UPDATE "shop_product" SET "name" = %s, "price" = %s WHERE "shop_product"."id" = %s',
            ["x", 3, 42],
            [TableWrite("shop_product", (42,))],
        ),
        # The deletion collector.
        (
            'DELETE FROM "shop_product" WHERE "shop_product"."id" IN (%s, %s, %s)',
            [1, 2, 3],
            [TableWrite("shop_product", (1, 2, 3))],
        ),
        # MySQL quoting, unqualified column, MTI child's key column.
        (
            "UPDATE `shop_restaurant` SET `serves_pizza` = %s WHERE `place_ptr_id` = %s",
            [True, 7],
            [TableWrite("shop_restaurant", (7,))],
        ),
        # Anything else in the WHERE: any row.
        (
            'UPDATE "shop_product" SET "price" = %s WHERE "shop_product"."price" < %s',
            [1, 2],
            [TableWrite("shop_product", ANY_ROW)],
        ),
        (
            'UPDATE "shop_product" SET "price" = %s WHERE "shop_product"."id" = %s AND "x" = %s',
            [1, 2, 3],
            [TableWrite("shop_product", ANY_ROW)],
        ),
        ('UPDATE "shop_product" SET "price" = %s', [1], [TableWrite("shop_product", ANY_ROW)]),
        ('DELETE FROM "shop_product"', [], [TableWrite("shop_product", ANY_ROW)]),
        # The key of another table in the WHERE is not this table's row.
        (
            'UPDATE "shop_product" SET "a" = %s WHERE "other"."id" = %s',
            [1, 2],
            [TableWrite("shop_product", ANY_ROW)],
        ),
        # Literals (raw SQL): not placed, so any row.
        (
            "UPDATE shop_product SET price = 10 WHERE id = 1",
            None,
            [TableWrite("shop_product", ANY_ROW)],
        ),
        # INSERT: new rows only, unless it names the keys; several new rows with keys the
        # database picks (bulk_create) may take a key a cached miss stands for: any row.
        (
            'INSERT INTO "shop_product" ("name", "price") VALUES (%s, %s) RETURNING "id"',
            ["a", 1],
            [TableWrite("shop_product", ())],
        ),
        (
            'INSERT INTO "shop_product" ("name", "price") VALUES (%s, %s), (%s, %s) RETURNING "id"',
            ["a", 1, "b", 2],
            [TableWrite("shop_product", ANY_ROW)],
        ),
        (
            'INSERT INTO "shop_product" ("id", "name") VALUES (%s, %s), (%s, %s)',
            [5, "a", 6, "b"],
            [TableWrite("shop_product", (5, 6))],
        ),
        (
            'INSERT INTO "shop_product" ("id", "name") SELECT "id", "name" FROM "old"',
            [],
            [TableWrite("shop_product", ANY_ROW)],
        ),
        # Upserts change existing rows.
        (
            'INSERT INTO "shop_product" ("id", "name") VALUES (%s, %s) ON CONFLICT("id") DO UPDATE '
            'SET "name" = EXCLUDED."name"',
            [5, "a"],
            [TableWrite("shop_product", ANY_ROW)],
        ),
        (
            "INSERT INTO `shop_product` (`id`) VALUES (%s) ON DUPLICATE KEY UPDATE `id` = `id`",
            [5],
            [TableWrite("shop_product", ANY_ROW)],
        ),
        (
            'INSERT OR REPLACE INTO "shop_product" ("id") VALUES (?)',
            [5],
            [TableWrite("shop_product", ANY_ROW)],
        ),
        ("REPLACE INTO shop_product (id) VALUES (%s)", [5], [TableWrite("shop_product", ANY_ROW)]),
        # Schema-qualified names, comments, trailing semicolons.
        (
            '/* app */ UPDATE "public"."shop_product" SET "a" = %s WHERE "shop_product"."id" = %s;',
            [1, 9],
            [TableWrite("shop_product", (9,))],
        ),
        (
            'TRUNCATE "shop_product", "tags" RESTART IDENTITY CASCADE',
            None,
            [TableWrite("shop_product", ANY_ROW), TableWrite("tags", ANY_ROW)],
        ),
        ("DROP TABLE IF EXISTS shop_product", None, [TableWrite("shop_product", ANY_ROW)]),
        (
            "WITH gone AS (DELETE FROM shop_product WHERE id > 3 RETURNING id) SELECT * FROM gone",
            None,
            [TableWrite("shop_product", ANY_ROW)],
        ),
        # Unquoted names are case-insensitive; quoted ones are kept.
        (
            "UPDATE SHOP_PRODUCT SET price = %s WHERE ID = %s",
            [1, 5],
            [TableWrite("shop_product", (5,))],
        ),
        # Shapes not recognised, and several statements: every table named, any row.
        (
            "UPDATE OR IGNORE shop_product SET price = 1",
            None,
            [TableWrite("shop_product", ANY_ROW)],
        ),
        (
            "UPDATE shop_product AS p SET price = 1 WHERE p.id = %s",
            [1],
            [TableWrite("shop_product", ANY_ROW)],
        ),
        (
            "UPDATE shop_product, tags SET shop_product.price = 1",
            None,
            [TableWrite("shop_product", ANY_ROW), TableWrite("tags", ANY_ROW)],
        ),
        (
            "DELETE tags FROM tags JOIN shop_product ON tags.id = shop_product.id",
            None,
            [TableWrite("tags", ANY_ROW), TableWrite("shop_product", ANY_ROW)],
        ),
        (
            "MERGE INTO shop_product USING staging ON shop_product.id = staging.id "
            "WHEN MATCHED THEN UPDATE SET price = staging.price",
            None,
            [TableWrite("shop_product", ANY_ROW), TableWrite("staging", ANY_ROW)],
        ),
        (
            "UPDATE shop_product SET price = 1 WHERE id = %s; DELETE FROM tags",
            [3],
            [TableWrite("shop_product", ANY_ROW), TableWrite("tags", ANY_ROW)],
        ),
        # Reads write nothing.
        ('SELECT "id" FROM "shop_product" WHERE "id" = %s FOR UPDATE', [1], []),
        ("WITH x AS (SELECT 1) SELECT * FROM x", None, []),
        ("SAVEPOINT s1", None, []),
        # Unknown tables: only "any row" can be said.
        (
            'UPDATE "unknown" SET "a" = %s WHERE "unknown"."id" = %s',
            [1, 2],
            [TableWrite("unknown", ANY_ROW)],
        ),
    ],
)
def test_what_a_statement_writes(
    parser: WriteParser, sql: str, params: object, expected: list[TableWrite]
) -> None:
    assert parser.writes(sql, params, False) == expected


def test_executemany_gathers_the_keys_of_every_batch(parser: WriteParser) -> None:
    sql = 'UPDATE "shop_product" SET "name" = %s WHERE "shop_product"."id" = %s'
    assert parser.writes(sql, [("a", 1), ("b", 2)], True) == [TableWrite("shop_product", (1, 2))]
    sql = 'INSERT INTO "shop_product" ("id", "name") VALUES (%s, %s)'
    assert parser.writes(sql, [(3, "a"), (4, "b")], True) == [TableWrite("shop_product", (3, 4))]


def test_parameters_that_do_not_fit_the_statement_mean_any_row(parser: WriteParser) -> None:
    sql = 'UPDATE "shop_product" SET "name" = %s WHERE "shop_product"."id" = %s'
    assert parser.writes(sql, {"name": "x", "id": 1}, False) == [
        TableWrite("shop_product", ANY_ROW)
    ]
    assert parser.writes(sql, ["only one"], False) == [TableWrite("shop_product", ANY_ROW)]
    escaped = 'UPDATE "shop_product" SET "name" = \'100%%s\' WHERE "shop_product"."id" = %s'
    assert parser.writes(escaped, [1], False) == [TableWrite("shop_product", ANY_ROW)]
