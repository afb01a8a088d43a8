"""Database helpers the ledger and the engine share."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connection, models
from django.db.models import Func


def update_each(instances: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write `fields` of each instance to its row, in one round trip.

    On PostgreSQL one UPDATE joins the rows to one array per column
    (`unnest`); elsewhere one UPDATE by primary key is prepared once and run
    for each row.  Django's `bulk_update` builds a CASE WHEN per field over
    every row, which for a batch's few dozen rows costs more to compile than
    the update itself.
    """
    if not instances:
        return
    meta = instances[0]._meta
    concrete = [meta.get_field(name) for name in fields]
    columns = [field for field in concrete if isinstance(field, models.Field)]
    pk = meta.pk
    if len(columns) != len(fields) or pk is None:
        raise ValueError(f"{meta.label}: only concrete columns can be updated, not {fields}")
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    values = [
        [field.get_db_prep_save(getattr(instance, field.attname), connection) for field in columns]
        for instance in instances
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            names = [quote(str(field.column)) for field in columns]
            arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in [pk, *columns])
            cursor.execute(
                f"UPDATE {table} AS t SET "  # noqa: S608 (model table and column names)
                + ", ".join(f"{name} = v.{name}" for name in names)
                + f" FROM unnest({arrays}) AS v(_pk, {', '.join(names)})"
                + f" WHERE t.{quote(str(pk.column))} = v._pk",
                [[instance.pk for instance in instances], *map(list, zip(*values, strict=True))],
            )
            return
        cursor.executemany(
            f"UPDATE {table} SET "  # noqa: S608 (model table and column names)
            + ", ".join(f"{quote(str(field.column))} = %s" for field in columns)
            + f" WHERE {quote(str(pk.column))} = %s",
            [[*row, instance.pk] for row, instance in zip(values, instances, strict=True)],
        )


def insert_rows(
    model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert plain tuples of `fields` values into `model`'s table; returns how many.

    For loading many rows at once (a simulation's history): no model instance
    is built, and each column's value goes through the one conversion its
    field needs on this database (datetimes, JSON), chosen once per column.
    Constraints are the table's own; nothing else is checked.
    """
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    concrete = [field for field in columns if isinstance(field, models.Field)]
    if len(concrete) != len(fields):
        raise ValueError(f"{meta.label}: only concrete columns can be inserted, not {fields}")
    convert = [_converter(field) for field in concrete]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608 (model table and column names)
        f"({', '.join(quote(str(field.column)) for field in concrete)}) "
        f"VALUES ({', '.join(['%s'] * len(concrete))})"
    )
    count = 0
    remaining = iter(rows)
    with connection.cursor() as cursor:
        while batch := list(itertools.islice(remaining, 5_000)):
            cursor.executemany(
                sql, [[f(value) for f, value in zip(convert, row, strict=True)] for row in batch]
            )
            count += len(batch)
    return count


def _converter(field: models.Field[Any, Any]) -> Callable[[Any], Any]:
    if isinstance(field, models.DateTimeField):
        return connection.ops.adapt_datetimefield_value
    if isinstance(field, models.JSONField | models.DecimalField | models.DateField):
        return lambda value: field.get_db_prep_save(value, connection)
    return lambda value: value


class PlusDays(Func):
    """A datetime expression plus whole `days`, computed by the database itself.

    Django's own `F(...) + timedelta` calls back into Python for every row on
    SQLite (its django_format_dtdelta function); SQLite's datetime() does the
    same in C, and PostgreSQL adds an interval.  On SQLite the result has whole
    seconds: fine for ranges measured in days.
    """

    output_field = models.DateTimeField()

    def __init__(self, expression: Any, days: int) -> None:
        self.days = int(days)
        super().__init__(expression, template=f"(%(expressions)s + interval '{self.days} days')")

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        template = f"datetime(%(expressions)s, '{self.days:+d} days')"
        return self.as_sql(compiler, connection, template=template, **extra_context)
