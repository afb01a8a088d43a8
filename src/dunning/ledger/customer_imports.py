"""The customers half of the CSV import (`dunning.ledger.imports`): checks and writes.

Customers are created or updated by external_id with the semantics of
`services.upsert_customer`: an empty cell keeps what is recorded, a new
customer needs a name, takes its country's time zone when it has only one
(else UTC), and a national phone number is read in the row's country or, when
the row has none, in the recorded one.  Each created or changed customer gets
the same `customer.created` / `customer.updated` event the API writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Field

from dunning.core import fields
from dunning.core.rows import ErrorList, RowError
from dunning.ledger.models import Customer, Event
from dunning.ledger.services import CUSTOMER_FIELDS
from dunning.ledger.staging import StagingTable, first_faults, table

STAGE = StagingTable(
    "dunning_import_customer",
    [
        ("line", "int"),
        ("external_id", "text"),
        ("name", "text"),
        ("email", "text"),
        ("phone", "text"),
        ("phone_needs_country", "bool"),
        ("locale", "text"),
        ("time_zone", "text"),
        ("default_time_zone", "text"),
        ("country", "text"),
        ("is_business", "bool"),
        ("metadata", "text"),
    ],
    key="line",
)

# Recorded customers are updated a chunk at a time: one query to read the
# chunk, one to lock them, two to write.  Memory stays flat whatever the file.
CHUNK = 1_000
_GIVEN = ("name", "email", "phone", "locale", "time_zone", "country", "is_business", "metadata")


def check(errors: ErrorList) -> None:
    """Find what only the ledger can tell: new customers without a name, phones to read."""
    customers = table(Customer)
    errors.extend(
        *first_faults(
            f"SELECT s.line FROM {STAGE.name} s LEFT JOIN {customers} c "  # noqa: S608
            "ON c.external_id = s.external_id WHERE c.id IS NULL AND s.name IS NULL",
            lambda line: RowError(line, "name", "required for a new customer"),
        )
    )
    _read_national_phones(errors)


def _read_national_phones(errors: ErrorList) -> None:
    """Read national numbers in the recorded country, and stage them in E.164."""
    customers = table(Customer)
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT s.line, s.phone, c.country FROM {STAGE.name} s "  # noqa: S608
                f"LEFT JOIN {customers} c ON c.external_id = s.external_id "
                "WHERE s.phone_needs_country AND s.line > %s ORDER BY s.line LIMIT %s",
                [last, CHUNK],
            )
            found = cursor.fetchall()
        if not found:
            return
        last = found[-1][0]
        numbers = []
        for line, phone, country in found:
            try:
                numbers.append((fields.normalize_phone(phone, country=country or ""), line))
            except fields.FieldError as error:
                errors.add(RowError(line, "phone", str(error)))
        with connection.cursor() as cursor:
            cursor.executemany(
                # The table name is a constant of this module, never input.
                f"UPDATE {STAGE.name} SET phone = %s WHERE line = %s",  # noqa: S608
                numbers,
            )


def apply(*, now: datetime, source: str) -> tuple[int, int]:
    """Write the staged customers and their events; return (created, updated).

    Recorded customers are updated first, a chunk at a time in Python, since
    each needs its own comparison and its own list of changes; the new ones
    are then created by one `INSERT ... SELECT`.
    """
    updated = _update_recorded(now=now, source=source)
    return _create_new(now=now, source=source), updated


def _update_recorded(*, now: datetime, source: str) -> int:
    customers = table(Customer)
    updated = last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT s.line, s.external_id, {', '.join(f's.{n}' for n in _GIVEN)} "  # noqa: S608
                f"FROM {STAGE.name} s JOIN {customers} c ON c.external_id = s.external_id "
                "WHERE s.line > %s ORDER BY s.line LIMIT %s",
                [last, CHUNK],
            )
            chunk = cursor.fetchall()
        if not chunk:
            return updated
        last = chunk[-1][0]
        updated += _update_chunk(chunk, now=now, source=source)


def _update_chunk(chunk: Sequence[Sequence[Any]], *, now: datetime, source: str) -> int:
    # Locked, so that an API request cannot change them between our read and our write.
    recorded = Customer.objects.select_for_update().in_bulk(
        [row[1] for row in chunk], field_name="external_id"
    )
    changed: list[tuple[Customer, list[str]]] = []
    for _line, external_id, *given in chunk:
        customer, values = recorded[external_id], _values(given)
        changes = sorted(name for name, value in values.items() if getattr(customer, name) != value)
        if changes:
            for name in changes:
                setattr(customer, name, values[name])
            customer.updated_at = now
            changed.append((customer, changes))
    Customer.objects.bulk_update(
        [customer for customer, _ in changed], fields=[*CUSTOMER_FIELDS, "updated_at"]
    )
    Event.objects.bulk_create(
        [
            Event(
                type="customer.updated",
                occurred_at=now,
                recorded_at=now,
                source=source,
                customer=customer,
                data={"changed": changes},
            )
            for customer, changes in changed
        ]
    )
    return len(changed)


def _create_new(*, now: datetime, source: str) -> int:
    """Create the staged customers not yet recorded, each with its `customer.created` event."""
    customers, events = table(Customer), table(Event)
    postgres = connection.vendor == "postgresql"
    at = connection.ops.adapt_datetimefield_value(now)
    # Empty cells take the model's defaults; the time zone, the row's country's.
    defaults = [
        _default("email"),
        _default("phone"),
        _default("locale"),
        _default("country"),
        _default("is_business"),
        json.dumps(_default("metadata")),
    ]
    jsonb = "::jsonb" if postgres else ""
    insert = (
        f"INSERT INTO {customers} (external_id, name, email, phone, locale, time_zone, "  # noqa: S608
        "country, is_business, metadata, created_at, updated_at) "
        "SELECT s.external_id, s.name, COALESCE(s.email, %s), COALESCE(s.phone, %s), "
        "COALESCE(s.locale, %s), COALESCE(s.time_zone, s.default_time_zone), "
        f"COALESCE(s.country, %s), COALESCE(s.is_business, %s), COALESCE(s.metadata, %s){jsonb}, "
        f"%s, %s FROM {STAGE.name} s WHERE NOT EXISTS "
        f"(SELECT 1 FROM {customers} r WHERE r.external_id = s.external_id) ORDER BY s.line"
    )
    event = (
        f"INSERT INTO {events} (type, occurred_at, recorded_at, source, customer_id, data) "
        "SELECT 'customer.created', %s, %s, %s, c.id, "
    )
    with connection.cursor() as cursor:
        if postgres:
            # One statement: the events come from the rows the INSERT returns.
            cursor.execute(
                f"WITH c AS ({insert} RETURNING id, external_id) {event}"
                "jsonb_build_object('external_id', c.external_id) FROM c ORDER BY c.id",
                [*defaults, at, at, at, at, source],
            )
            return cursor.rowcount
        # SQLite has one writer at a time (the transaction holds the write
        # lock), so the new customers are exactly those past the largest id.
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {customers}")  # noqa: S608
        (largest,) = cursor.fetchone()
        cursor.execute(insert, [*defaults, at, at])
        created = cursor.rowcount
        cursor.execute(
            f"{event}json_object('external_id', c.external_id) FROM {customers} c "
            "WHERE c.id > %s ORDER BY c.id",
            [at, at, source, largest],
        )
        return created


def _default(name: str) -> Any:
    field = Customer._meta.get_field(name)
    assert isinstance(field, Field)
    return field.get_default()


def _values(given: Sequence[Any]) -> dict[str, Any]:
    """The fields a row gives (its non-empty cells), typed as the model has them."""
    values = {name: value for name, value in zip(_GIVEN, given, strict=True) if value is not None}
    if "is_business" in values:
        values["is_business"] = bool(values["is_business"])  # SQLite stages 0 and 1
    if "metadata" in values:
        values["metadata"] = json.loads(values["metadata"])
    return values
