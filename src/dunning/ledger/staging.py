"""Temporary staging tables for the CSV importer (`dunning.ledger.imports`).

An import streams the file's valid rows into a temporary table, then checks
and applies them with set-based SQL inside the same transaction.  The table
lives only in this connection, and disappears with a rollback, so an import
that fails leaves nothing behind.  On PostgreSQL the rows go in with COPY (the
fastest way in, see shared/reference/stack.md figure 5a); on SQLite with
batched `executemany`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model

from dunning.core.rows import MAX_REPORTED_ERRORS, RowError

# SQL types the staging tables use, per vendor.  SQLite stores datetimes as
# text in the form Django writes them, so `INSERT ... SELECT` copies them as is.
_TYPES = {
    "postgresql": {
        "int": "integer",
        "bigint": "bigint",
        "text": "text",
        "bool": "boolean",
        "time": "timestamptz",
    },
    "sqlite": {
        "int": "integer",
        "bigint": "integer",
        "text": "text",
        "bool": "integer",
        "time": "text",
    },
}
# Rows per `executemany` on SQLite: large enough to amortise the call, small
# enough that the buffer stays a few megabytes.
_SQLITE_BATCH = 5_000

Row = Sequence[Any]


class StagingTable:
    """A temporary table named `name` with `columns` as (name, type) pairs, `line` first."""

    def __init__(self, name: str, columns: Sequence[tuple[str, str]], *, key: str | None = None):
        self.name = name
        self.columns = tuple(columns)
        self.key = key  # a column to index, for lookups by it after loading

    @property
    def vendor(self) -> str:
        return connection.vendor

    def create(self) -> None:
        types = _TYPES[self.vendor]
        columns = ", ".join(f"{name} {types[kind]}" for name, kind in self.columns)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.name}")
            cursor.execute(f"CREATE TEMPORARY TABLE {self.name} ({columns})")

    def index(self) -> None:
        """Index the key and gather statistics once the rows are in, for the checks that follow.

        Building the index after loading is cheaper than maintaining it row by
        row; PostgreSQL never analyses temporary tables by itself, and without
        statistics it plans the joins against the ledger as if the table were tiny.
        """
        with connection.cursor() as cursor:
            if self.key:
                cursor.execute(f"CREATE INDEX {self.name}_{self.key} ON {self.name} ({self.key})")
            cursor.execute(f"ANALYZE {self.name}")

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.name}")

    @contextmanager
    def writer(self) -> Iterator[Callable[[Row], None]]:
        """Yield a function that stages one row (a tuple in the order of `columns`)."""
        names = ", ".join(name for name, _ in self.columns)
        if self.vendor == "postgresql":
            connection.ensure_connection()
            # Django's connection wraps a psycopg 3 connection; its COPY runs in
            # the transaction Django opened.  psycopg buffers the rows and sends
            # them in large chunks, so one COPY carries the whole file.
            raw = connection.connection
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY {self.name} ({names}) FROM STDIN") as copy,
            ):
                yield copy.write_row
            return

        times = [i for i, (_, kind) in enumerate(self.columns) if kind == "time"]
        adapt = connection.ops.adapt_datetimefield_value
        placeholders = ", ".join(["%s"] * len(self.columns))
        sql = f"INSERT INTO {self.name} ({names}) VALUES ({placeholders})"  # noqa: S608
        batch: list[Row] = []

        def write(row: Row) -> None:
            if times:
                row = list(row)
                for i in times:
                    value: datetime | None = row[i]
                    row[i] = adapt(value)
            batch.append(row)
            if len(batch) >= _SQLITE_BATCH:
                flush()

        def flush() -> None:
            with connection.cursor() as cursor:
                cursor.executemany(sql, batch)
            batch.clear()

        yield write
        flush()


# --- set-based checks over a staging table -----------------------------------------------


def first_faults(
    query: str, error: Callable[..., RowError], params: Sequence[Any] = ()
) -> tuple[list[RowError], int]:
    """Run a check whose `query` selects (line, ...) for each staged row at fault.

    Returns the first MAX_REPORTED_ERRORS of them as errors, in line order,
    and how many there are in all: the count comes from the same scan, as a
    window over the whole result.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT *, COUNT(*) OVER () FROM ({query}) faults "  # noqa: S608 - our SQL
            f"ORDER BY 1 LIMIT {MAX_REPORTED_ERRORS}",
            list(params),
        )
        found = cursor.fetchall()
    if not found:
        return [], 0
    return [error(*row[:-1]) for row in found], found[0][-1]


def repeated_ids(table: str) -> tuple[list[RowError], int]:
    """Rows of the file whose external_id an earlier row already used."""
    return first_faults(
        "SELECT line, first_line FROM (SELECT line, "  # noqa: S608
        f"MIN(line) OVER (PARTITION BY external_id) AS first_line FROM {table}) ids "
        "WHERE line <> first_line",
        lambda line, first: RowError(
            line, "external_id", f"repeated in the file (first on line {first})"
        ),
    )


def table(model: type[Model]) -> str:
    """The model's table name, quoted for this database."""
    return connection.ops.quote_name(model._meta.db_table)
