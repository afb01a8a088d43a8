"""CSV import of customers and invoices: streamed, checked, then written all or nothing.

The file is read one physical line at a time (memory stays flat whatever its
size); each row is parsed by the pure functions of `dunning.core.rows`, and
the valid ones are staged in a temporary table.  Once the whole file has been
read, set-based SQL finds what needs the ledger to judge (unknown customers,
ids already recorded, ids repeated in the file).  If anything at all is wrong,
the transaction is rolled back and the result lists the errors by line and
column; otherwise the staged rows are written with `INSERT ... SELECT` and the
import is recorded as an event.

Invoices are only ever added: an id already in the ledger is an error, since
an import that silently changed recorded invoices could rewrite amounts a
customer has been told about.  Customers are created or updated, as the API's
`upsert_customer` does.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from django.db import connection, transaction

from dunning.core import rows
from dunning.core.rows import Columns, ErrorList, RowError
from dunning.ledger import customer_imports
from dunning.ledger.models import Customer, Event, Invoice
from dunning.ledger.services import record_event
from dunning.ledger.staging import StagingTable, first_faults, repeated_ids, table

SOURCE = "import"
# A physical line longer than this is not a row of a CSV file (an unclosed
# quote or a binary file); reading it whole would defeat streaming.
MAX_LINE_BYTES = 1 << 20
# Report progress every so many rows: often enough for a smooth bar, rarely
# enough to cost nothing.
PROGRESS_EVERY = 10_000

Progress = Callable[[int], None]
Source = BinaryIO | str | Path


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did, or why it did nothing."""

    kind: str  # "customers" or "invoices"
    rows: int  # data rows read (blank rows are not counted)
    created: int = 0
    updated: int = 0
    totals: dict[str, int] = field(default_factory=dict)  # currency -> minor units imported
    errors: tuple[RowError, ...] = ()  # the first rows.MAX_REPORTED_ERRORS, by line
    error_count: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def unchanged(self) -> int:
        return self.rows - self.created - self.updated if self.ok else 0


class FileStop(Exception):
    """The file cannot be read past this point (bad encoding, broken CSV)."""

    def __init__(self, error: RowError):
        super().__init__(str(error))
        self.error = error


class LineReader:
    """The file's physical lines as text, counting lines and bytes as it goes.

    Decoding line by line lets a bad byte be reported with its line number.
    UTF-8 never uses the byte of a newline inside a character, so splitting
    the bytes at newlines never cuts a character in two.
    """

    def __init__(self, binary: BinaryIO):
        self.binary = binary
        self.bytes_read = 0

    def __iter__(self) -> Iterator[str]:
        number = 0
        readline = self.binary.readline
        while raw := readline(MAX_LINE_BYTES):
            number += 1
            self.bytes_read += len(raw)
            if len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise FileStop(RowError(number, None, "longer than 1 MiB: is this a CSV file?"))
            try:
                # Spreadsheets save "CSV UTF-8" with a byte order mark; it is not data.
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise FileStop(
                    RowError(number, None, "not valid UTF-8 text (save the file as CSV UTF-8)")
                ) from None


def read_rows(
    binary: BinaryIO,
    *,
    columns: Columns,
    parser: Callable[[dict[str, int]], Callable[[list[str], int], Any]],
    stage: Callable[[Any], None],
    errors: ErrorList,
    on_progress: Progress | None = None,
) -> int:
    """Parse every row of the file, stage the valid ones, collect the errors; return the row count.

    `parser(positions)` makes the row parser for the header found: it returns
    a row tuple, or the row's errors as a list.
    Line numbers are those of the file, header included, where the row starts
    (a quoted value may span lines).
    """
    lines = LineReader(binary)
    reader = csv.reader(lines)
    count = 0
    try:
        header = next(reader, None)
        if header is None:
            errors.add(
                RowError(
                    1,
                    None,
                    f"the file is empty: the first line must name the "
                    f"columns ({','.join(columns.required)})",
                )
            )
            return 0
        at, header_errors = rows.read_header(header, columns=columns)
        if header_errors:
            for error in header_errors:
                errors.add(error)
            return 0
        parse, width, ended = parser(at), len(header), reader.line_num
        for cells in reader:
            line, ended = ended + 1, reader.line_num
            if len(cells) != width:
                if rows.is_blank(cells):
                    continue
                width_error = rows.check_width(cells, line=line, header=header)
                if width_error:
                    count += 1
                    errors.add(width_error)
                    continue
                cells = cells[:width]  # trailing empty cells, as spreadsheets add
            parsed = parse(cells, line)
            if type(parsed) is list:
                if not rows.is_blank(cells):
                    count += 1
                    for error in parsed:
                        errors.add(error)
                continue
            stage(parsed)
            count += 1
            if on_progress and count % PROGRESS_EVERY == 0:
                on_progress(lines.bytes_read)
    except FileStop as stop:
        errors.add(stop.error)
    except csv.Error as error:
        errors.add(
            RowError(reader.line_num, None, f"not readable as CSV ({error}); is a quote left open?")
        )
    if on_progress:
        on_progress(lines.bytes_read)
    return count


def opened(source: Source) -> AbstractContextManager[BinaryIO]:
    if isinstance(source, str | Path):
        return Path(source).open("rb")
    return nullcontext(source)


def source_name(source: Source) -> str:
    if isinstance(source, str | Path):
        return Path(source).name
    return str(getattr(source, "name", "") or "")


# --- invoices ----------------------------------------------------------------------------

_INVOICE_STAGE = StagingTable(
    "dunning_import_invoice",
    [
        ("line", "int"),
        ("external_id", "text"),
        ("customer", "text"),
        ("number", "text"),
        ("currency", "text"),
        ("amount_due", "bigint"),
        ("issued_at", "time"),
        ("due_at", "time"),
        ("collection_method", "text"),
        ("status", "text"),
        ("lines", "text"),
        ("context", "text"),
    ],
)


def import_invoices(
    source: Source, *, now: datetime, on_progress: Progress | None = None
) -> ImportResult:
    """Add every invoice in the CSV file, or none of them.  See the module docstring."""
    errors = ErrorList()
    totals: dict[str, int] = {}
    stage = _INVOICE_STAGE

    with opened(source) as binary, transaction.atomic():
        stage.create()
        _sort_in_memory()
        with stage.writer() as write:

            def stage_row(row: rows.InvoiceRow) -> None:
                write(row)
                totals[row.currency] = totals.get(row.currency, 0) + row.amount_due

            count = read_rows(
                binary,
                columns=rows.INVOICE_COLUMNS,
                parser=rows.invoice_parser,
                stage=stage_row,
                errors=errors,
                on_progress=on_progress,
            )
        stage.index()
        _check_invoices(errors)
        if errors.count:
            transaction.set_rollback(True)
            return ImportResult(
                "invoices", rows=count, errors=errors.first(), error_count=errors.count
            )
        created = _write_invoices(now=now, expected=count)
        record_event(
            type="invoices.imported",
            now=now,
            source=SOURCE,
            data={
                "file": source_name(source),
                "invoices": created,
                "totals": dict(sorted(totals.items())),
            },
        )
        stage.drop()
    return ImportResult(
        "invoices", rows=count, created=created, totals=dict(sorted(totals.items()))
    )


def _sort_in_memory() -> None:
    """Let PostgreSQL sort a large file's rows in memory, for this transaction only.

    The checks and the insert sort the staged rows (by external_id, by line);
    with the default 4 MB a million rows spill to disk several times over.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '64MB'")


def _check_invoices(errors: ErrorList) -> None:
    customers, invoices = table(Customer), table(Invoice)
    errors.extend(
        *first_faults(
            f"SELECT s.line FROM {_INVOICE_STAGE.name} s "  # noqa: S608
            f"LEFT JOIN {customers} c ON c.external_id = s.customer WHERE c.id IS NULL",
            lambda line: RowError(
                line, "customer", "no customer with this external_id (import customers first)"
            ),
        )
    )
    errors.extend(*repeated_ids(_INVOICE_STAGE.name))
    errors.extend(
        *first_faults(
            f"SELECT s.line FROM {_INVOICE_STAGE.name} s "  # noqa: S608
            f"JOIN {invoices} i ON i.external_id = s.external_id",
            lambda line: RowError(
                line,
                "external_id",
                "an invoice with this external_id is already recorded (the "
                "import only adds invoices; change recorded ones in the API)",
            ),
        )
    )


def _write_invoices(*, now: datetime, expected: int) -> int:
    """Insert the staged invoices and their `invoice.created` events; return how many.

    One `invoice.created` event per invoice, as the API writes, so a customer's
    timeline shows an imported invoice like any other, and the engine that
    follows events sees no difference.  Invoice ids follow the file's order.
    """
    customers, invoices, events = table(Customer), table(Invoice), table(Event)
    at = connection.ops.adapt_datetimefield_value(now)
    postgres = connection.vendor == "postgresql"
    json = "::jsonb" if postgres else ""
    # An invoice of nothing is paid on issue, as services.upsert_invoice has it.
    insert = (
        f"INSERT INTO {invoices} (external_id, number, customer_id, currency, amount_due, "  # noqa: S608
        "amount_paid, amount_remaining, issued_at, due_at, status, collection_method, lines, "
        "context, paid_at, created_at, updated_at) "
        "SELECT s.external_id, s.number, c.id, s.currency, s.amount_due, 0, s.amount_due, "
        "s.issued_at, s.due_at, CASE WHEN s.amount_due = 0 THEN 'paid' ELSE s.status END, "
        f"s.collection_method, s.lines{json}, s.context{json}, "
        "CASE WHEN s.amount_due = 0 THEN s.issued_at END, %s, %s "
        f"FROM {_INVOICE_STAGE.name} s JOIN {customers} c ON c.external_id = s.customer "
        "ORDER BY s.line"
    )
    event = (
        f"INSERT INTO {events} (type, occurred_at, recorded_at, source, customer_id, "
        "invoice_id, data) SELECT 'invoice.created', i.issued_at, %s, %s, i.customer_id, i.id, "
    )
    with connection.cursor() as cursor:
        if postgres:
            # One statement: the events are built from the rows the INSERT
            # returns, instead of joining a large ledger_invoice back by
            # external_id.  They come back in the order they were inserted.
            cursor.execute(
                f"WITH i AS ({insert} RETURNING id, customer_id, issued_at, amount_due, "
                f"currency, due_at) {event} jsonb_build_object('amount_due', i.amount_due, "
                "'currency', i.currency, 'due_at', i.due_at) FROM i",
                [at, at, at, SOURCE],
            )
            created = cursor.rowcount
        else:
            # SQLite has one writer at a time (this transaction holds the
            # write lock), so the new invoices are exactly those past the
            # largest id.  It stores datetimes as UTC text, "2026-03-15 00:00:00".
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {invoices}")  # noqa: S608
            (largest,) = cursor.fetchone()
            cursor.execute(insert, [at, at])
            created = cursor.rowcount
            cursor.execute(
                f"{event} json_object('amount_due', i.amount_due, 'currency', i.currency, "
                "'due_at', replace(i.due_at, ' ', 'T') || '+00:00') "
                f"FROM {invoices} i WHERE i.id > %s ORDER BY i.id",
                [at, SOURCE, largest],
            )
    if created != expected:
        # A customer deleted while the file was read; the transaction rolls back.
        raise RuntimeError(f"staged {expected} invoices but wrote {created}: run the import again")
    return created


# --- customers ---------------------------------------------------------------------------


def import_customers(
    source: Source, *, now: datetime, on_progress: Progress | None = None
) -> ImportResult:
    """Create or update every customer in the CSV file, or none of them."""
    errors = ErrorList()
    stage = customer_imports.STAGE

    with opened(source) as binary, transaction.atomic():
        stage.create()
        with stage.writer() as write:
            count = read_rows(
                binary,
                columns=rows.CUSTOMER_COLUMNS,
                parser=rows.customer_parser,
                stage=write,
                errors=errors,
                on_progress=on_progress,
            )
        stage.index()
        errors.extend(*repeated_ids(stage.name))
        customer_imports.check(errors)
        if errors.count:
            transaction.set_rollback(True)
            return ImportResult(
                "customers", rows=count, errors=errors.first(), error_count=errors.count
            )
        created, updated = customer_imports.apply(now=now, source=SOURCE)
        record_event(
            type="customers.imported",
            now=now,
            source=SOURCE,
            data={
                "file": source_name(source),
                "created": created,
                "updated": updated,
                "unchanged": count - created - updated,
            },
        )
        stage.drop()
    return ImportResult("customers", rows=count, created=created, updated=updated)
