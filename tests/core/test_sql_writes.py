"""Which tables and rows a statement writes: the shapes Django and SQLAlchemy send, raw SQL,
and everything unclear answered as "any row"."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cacheplug.integration import (
    ANY_ROW,
    TableWrite,
    WriteParser,
    any_row_tag,
    row_tag,
    stored_tags,
    table_tag,
    written_tags,
)
from cacheplug.integration._sql import EVERY_TABLE
from cacheplug.integration._table_tags import ALL_TABLES

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


EVERY = TableWrite(EVERY_TABLE, ANY_ROW)


def _any(*tables: str) -> list[TableWrite]:
    return [TableWrite(table, ANY_ROW) for table in tables]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # Reads, and statements that change no table's rows: no false alarm.
        ("SELECT 1", []),
        ("(SELECT id FROM t) UNION (SELECT id FROM u)", []),
        ("SELECT name FROM t WHERE note = 'go into town'", []),
        ("SELECT count(*) INTO @n FROM t", []),
        ("SELECT * FROM t INTO OUTFILE '/tmp/t.csv'", []),
        ("WITH x AS (SELECT 1) SELECT * FROM x", []),
        ("VALUES (1, 2)", []),
        ("TABLE t", []),
        ("SHOW TABLES", []),
        ("show standard_conforming_strings", []),
        ("DESCRIBE t", []),
        ("EXPLAIN SELECT * FROM t", []),
        ("EXPLAIN UPDATE t SET a = 1", []),
        ("EXPLAIN QUERY PLAN DELETE FROM t", []),
        ("EXPLAIN (ANALYZE false) DELETE FROM t", []),
        ("EXPLAIN (ANALYZE true) SELECT * FROM t", []),
        ("BEGIN", []),
        ("BEGIN IMMEDIATE", []),
        ("BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY", []),
        ("START TRANSACTION", []),
        ("COMMIT", []),
        ("END", []),
        ("ROLLBACK", []),
        ('ROLLBACK TO SAVEPOINT "s1_x1"', []),
        ('SAVEPOINT "s1_x1"', []),
        ('RELEASE SAVEPOINT "s1_x1"', []),
        ("SET search_path TO app", []),
        ("SET CONSTRAINTS ALL IMMEDIATE", []),
        ("RESET ALL", []),
        ("PRAGMA foreign_keys = ON", []),
        ('PRAGMA main.table_info("t")', []),
        ("DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t", []),
        ("DECLARE @n int", []),
        ("FETCH 10 FROM c", []),
        ("CLOSE c", []),
        ("LISTEN changes", []),
        ("NOTIFY changes, 'x'", []),
        ("UNLISTEN *", []),
        ("PREPARE q (int) AS UPDATE t SET a = $1", []),  # EXECUTE q runs it: every table
        ("DEALLOCATE q", []),
        ("ANALYZE t", []),
        ("VACUUM", []),
        ("LOCK TABLE t IN ACCESS EXCLUSIVE MODE", []),
        ("GRANT SELECT ON t TO reader", []),
        ("COMMENT ON TABLE t IS 'x'", []),
        ("COPY t TO STDOUT", []),
        ("COPY (SELECT * FROM t) TO STDOUT WITH CSV", []),
        ("LOAD 'auto_explain'", []),
        # DDL: as before, only what drops, alters, renames or refills tables and views.
        ("CREATE TABLE t2 (id int)", []),
        ("CREATE INDEX i ON t (a)", []),
        ("DROP INDEX i", []),
        ("DROP TABLE a, b CASCADE", _any("a", "b")),
        ('ALTER TABLE "new__t" RENAME TO "t"', _any("new__t", "t")),
        ("RENAME TABLE a TO b", _any("a", "b")),
        ("CREATE OR REPLACE VIEW v AS SELECT * FROM t", _any("v")),
        ("REFRESH MATERIALIZED VIEW CONCURRENTLY mv", _any("mv")),
        # Writes to a table the statement names: any row of it.
        ("COPY t FROM STDIN", _any("t")),
        ("COPY public.t (a, b) FROM '/tmp/t.csv' WITH (FORMAT csv)", _any("t")),
        ("COPY (DELETE FROM t RETURNING id) TO STDOUT", _any("t")),
        ("EXPLAIN ANALYZE UPDATE t SET a = 1", _any("t")),
        ("EXPLAIN ANALYSE VERBOSE DELETE FROM t", _any("t")),
        (  # new rows (keys picked by the database), as without EXPLAIN
            "EXPLAIN (ANALYZE, BUFFERS) INSERT INTO t (a) SELECT a FROM u",
            [TableWrite("t", ())],
        ),
        ("EXPLAIN (FORMAT JSON, ANALYZE\ttrue) UPDATE t SET a = 1", _any("t")),
        ("LOAD DATA INFILE '/tmp/t.csv' INTO TABLE t", _any("t")),
        (
            "LOAD DATA LOCAL INFILE 't.csv' REPLACE INTO TABLE shop.t FIELDS TERMINATED BY ','",
            _any("t"),
        ),
        ("LOAD XML LOCAL INFILE 't.xml' INTO TABLE t", _any("t")),
        ("SELECT * INTO TEMP t2 FROM t", _any("t2")),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", _any("t", "s")),
        ("REPLACE INTO t (id) VALUES (1)", _any("t")),
        ("WITH x AS (DELETE FROM t RETURNING id) INSERT INTO u SELECT id FROM x", _any("t", "u")),
        # Statements that may have written anything: every table.
        ("CALL refresh_prices()", [EVERY]),
        ("call refresh_prices(%s)", [EVERY]),
        ("DO $$ BEGIN UPDATE t SET a = 1; END $$", [EVERY]),
        ("EXECUTE q(1)", [EVERY]),
        ("EXEC dbo.refresh", [EVERY]),
        ("{call refresh_prices}", [EVERY]),
        ("BEGIN refresh_prices; END", [EVERY]),  # a procedural block, not a transaction
        ("DECLARE n NUMBER; BEGIN n := 1; END", [EVERY]),
        ("HANDLE t WITH CARE", [EVERY]),  # a keyword nobody knows
        ("INSERT ALL SELECT 1", [EVERY]),  # a write naming no table
        ("EXPLAIN ANALYZE CALL p()", [EVERY]),
        # Several statements: what each writes.
        ("SET x = 1; SELECT 2", []),
        ("UPDATE t SET a = 1; CALL p()", [*_any("t"), EVERY]),
        ("UPDATE t SET a = 'x; CALL p()'", _any("t")),
    ],
)
def test_what_a_statement_of_any_kind_writes(sql: str, expected: list[TableWrite]) -> None:
    assert WriteParser(PKS.get).writes(sql, None, False) == expected


def test_every_table_is_asked_only_for_a_statement_that_cannot_be_classified() -> None:
    parser = WriteParser(PKS.get)
    asked: list[str] = []

    def ignore() -> bool:
        asked.append("asked")
        return False

    assert parser.writes("SELECT 1", None, False, ignore) == []
    assert parser.writes("UPDATE t SET a = 1", None, False, ignore) == _any("t")
    assert asked == []
    assert parser.writes("CALL p()", None, False, ignore) == []
    assert parser.writes("UPDATE t SET a = 1; CALL p()", None, False, ignore) == _any("t")
    assert asked == ["asked", "asked"]


def test_a_write_of_every_table_reaches_every_entry_that_depends_on_a_table() -> None:
    no_parents: Callable[[str], tuple[str, ...]] = lambda table: ()  # noqa: E731
    assert written_tags(EVERY, None, no_parents) == [ALL_TABLES]
    assert stored_tags([table_tag("t")], no_parents) == [table_tag("t"), ALL_TABLES]
    assert stored_tags([row_tag("t", "1")], no_parents) == [
        row_tag("t", "1"),
        any_row_tag("t"),
        ALL_TABLES,
    ]
    assert stored_tags(["catalog"], no_parents) == ["catalog"]  # no table: left alone
