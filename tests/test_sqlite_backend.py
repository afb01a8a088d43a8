"""dunning.sqlite: Django's SQLite backend, converting each statement's placeholders once.

The tests open their own in-memory SQLite connection through the backend, so they
run whatever database the suite itself is on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db.backends.sqlite3.base import SQLiteCursorWrapper as DjangoCursor
from django.db.utils import ConnectionHandler

from dunning.sqlite.base import KEPT_UP_TO, SQLiteCursorWrapper, _qmark

STATEMENTS = [
    "SELECT %s",
    "SELECT %s, %s FROM t WHERE a IN (%s, %s, %s)",
    "SELECT '100%%' || %s",
    "SELECT '%%s' || %s",  # a literal "%s": Django's escape stays a literal
    "SELECT 1",
]


@pytest.fixture
def sqlite(django_db_blocker: Any) -> Iterator[Any]:
    handler = ConnectionHandler({"default": {"ENGINE": "dunning.sqlite", "NAME": ":memory:"}})
    connection = handler["default"]  # the handler's own, not the suite's
    with django_db_blocker.unblock():  # pytest-django guards the suite's databases
        yield connection
        connection.close()


@pytest.mark.parametrize("statement", STATEMENTS)
def test_the_conversion_is_djangos_own(statement: str) -> None:
    assert _qmark(statement) == DjangoCursor.convert_query(None, statement)  # type: ignore[arg-type]


def test_statements_run_through_the_backend_s_cursor_and_convert_once(sqlite: Any) -> None:
    statement = "SELECT %s, '100%%', '%%s' || %s"
    with sqlite.cursor() as cursor:
        assert isinstance(cursor.cursor, SQLiteCursorWrapper)
        before = _qmark.cache_info()
        for _ in range(3):
            cursor.execute(statement, [7, "x"])
            assert cursor.fetchone() == (7, "100%", "%sx")
        after = _qmark.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) in ((1, 2), (0, 3))


def test_long_statements_and_named_parameters_go_djangos_way(sqlite: Any) -> None:
    long = "SELECT %s /* " + "x" * KEPT_UP_TO + " */"
    with sqlite.cursor() as cursor:
        before = _qmark.cache_info()
        cursor.execute(long, [2])
        assert cursor.fetchone() == (2,)
        cursor.execute("SELECT %(a)s + %(b)s", {"a": 2, "b": 3})
        assert cursor.fetchone() == (5,)
        assert _qmark.cache_info() == before
