"""Database helpers the ledger and the engine share."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def update_each(instances: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write `fields` of each instance to its row: one UPDATE by primary key, executed many times.

    Django's `bulk_update` builds one CASE WHEN per field over every row; for
    the few dozen rows a batch changes, compiling that costs more than running
    the plain statements, which the driver prepares once.
    """
    if not instances:
        return
    meta = instances[0]._meta
    concrete = [meta.get_field(name) for name in fields]
    columns = [field.column for field in concrete if isinstance(field, models.Field)]
    if len(columns) != len(fields) or None in columns or meta.pk is None:
        raise ValueError(f"{meta.label}: only concrete columns can be updated, not {fields}")
    quote = connection.ops.quote_name
    sql = (
        f"UPDATE {quote(meta.db_table)} SET "  # noqa: S608 (model table and column names)
        + ", ".join(f"{quote(str(column))} = %s" for column in columns)
        + f" WHERE {quote(str(meta.pk.column))} = %s"
    )
    rows = [
        [
            *(
                field.get_db_prep_save(getattr(instance, field.attname), connection)
                for field in concrete
                if isinstance(field, models.Field)
            ),
            instance.pk,
        ]
        for instance in instances
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
