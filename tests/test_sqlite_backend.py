"""dunning.sqlite: Django's SQLite backend, converting each statement's placeholders once."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.backends.sqlite3.base import SQLiteCursorWrapper as DjangoCursor

from dunning.sqlite.base import _qmark

STATEMENTS = [
    "SELECT %s",
    "SELECT %s, %s FROM t WHERE a IN (%s, %s, %s)",
    "SELECT '100%%' || %s",
    "SELECT '%%s' || %s",  # a literal "%s": Django's escape stays a literal
    "SELECT 1",
]


@pytest.mark.parametrize("statement", STATEMENTS)
def test_conversion_is_djangos_own(statement: str) -> None:
    assert _qmark(statement) == DjangoCursor.convert_query(None, statement)  # type: ignore[arg-type]
    assert _qmark(statement) == _qmark(statement)  # the kept one


@pytest.mark.django_db
def test_statements_run_with_literal_percents_and_placeholders() -> None:
    with connection.cursor() as cursor:
        for _ in range(2):  # converted, then kept
            cursor.execute("SELECT %s, '100%%', '%%s' || %s", [7, "x"])
            assert cursor.fetchone() == (7, "100%", "%sx")


@pytest.mark.django_db
def test_named_parameters_go_djangos_way() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT %(a)s + %(b)s", {"a": 2, "b": 3})
        assert cursor.fetchone() == (5,)
