"""Rows of a CSV import, read into typed values or into errors that name line and column.

Pure functions over the text cells that `csv.reader` returns: no Django, no
database, no clock.  The ledger's importer (`dunning.ledger.imports`) feeds
them the file and judges the parsed rows against the ledger (unknown
customers, ids already recorded).  Column names are the API's, and each value
goes through the same normaliser the API uses, so a value means the same
whichever way it came in.

An empty cell means "not given": a customer's recorded value is kept, and an
invoice takes the API's default (due on issue, sent as an invoice, open).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from dunning.core import fields, money
from dunning.core.json_cells import parse_invoice_lines, parse_json_object

# Same limits as the API's schemas (dunning.api.schemas), so a row the importer
# accepts is one the API would have accepted.
MAX_EXTERNAL_ID = 255
MAX_NAME = 255
MAX_NUMBER = 64
MAX_PHONE_TEXT = 40
MAX_REPORTED_ERRORS = 100

COLLECTION_METHODS = frozenset({"charge_automatically", "send_invoice"})
NEW_INVOICE_STATUSES = frozenset({"draft", "open"})
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


@dataclass(frozen=True, slots=True)
class RowError:
    """One thing wrong with the file, where a person can find it."""

    line: int  # the physical line of the file (the header is line 1)
    column: str | None  # None when the whole line is at fault (encoding, CSV quoting)
    reason: str

    def __str__(self) -> str:
        if self.column is None:
            return f"line {self.line}: {self.reason}"
        return f"line {self.line}, column {self.column}: {self.reason}"


class ErrorList:
    """Every error counted, the first ones (by line) kept.

    A person reads the errors and fixes the file; past a hundred the rest are
    almost always the same mistake repeated, so they are counted, not listed.
    """

    def __init__(self, *, keep: int = MAX_REPORTED_ERRORS) -> None:
        self.keep = keep
        self.kept: list[RowError] = []
        self.count = 0

    def add(self, error: RowError) -> None:
        self.count += 1
        if len(self.kept) < self.keep:
            self.kept.append(error)

    def extend(self, errors: Sequence[RowError], count: int) -> None:
        """Add the errors a check found: the first of them, and how many there are in all."""
        self.kept += errors
        self.count += count

    def first(self) -> tuple[RowError, ...]:
        """The first errors of the file, by line.

        Each source (the stream, then each check) gives its errors in line
        order and keeps at least its first `keep`, so the first `keep` of the
        union are the first of the file.  Sorting is stable: a line's errors
        stay in column order.
        """
        return tuple(sorted(self.kept, key=lambda error: error.line)[: self.keep])


@dataclass(frozen=True, slots=True)
class Columns:
    """The header a kind of file must have."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def known(self) -> tuple[str, ...]:
        return self.required + self.optional


CUSTOMER_COLUMNS = Columns(
    required=(
        "external_id",
        "name",
        "email",
        "phone",
        "locale",
        "time_zone",
        "country",
        "is_business",
    ),
    optional=("metadata",),
)
INVOICE_COLUMNS = Columns(
    required=(
        "external_id",
        "customer",
        "number",
        "currency",
        "amount_due",
        "issued_at",
        "due_at",
        "collection_method",
    ),
    optional=("status", "lines", "context"),
)


def read_header(cells: Sequence[str], *, columns: Columns) -> tuple[dict[str, int], list[RowError]]:
    """Map each column name to its position; missing, unknown and repeated columns are errors.

    Unknown columns are refused rather than ignored, so that a typo such as
    `amount_du` is caught instead of silently importing nothing into that field.
    """
    positions: dict[str, int] = {}
    errors: list[RowError] = []
    for position, raw in enumerate(cells):
        name = raw.strip()
        if name in positions:
            errors.append(RowError(1, name, f"repeated (also column {positions[name] + 1})"))
        elif name not in columns.known:
            guess = difflib.get_close_matches(name.lower(), columns.known, n=1)
            hint = f"did you mean {guess[0]}?" if guess else f"expected {', '.join(columns.known)}"
            errors.append(RowError(1, name or f"#{position + 1}", f"unknown column ({hint})"))
        else:
            positions[name] = position
    errors += [RowError(1, name, "missing") for name in columns.required if name not in positions]
    return positions, errors


def check_width(cells: Sequence[str], *, line: int, header: Sequence[str]) -> RowError | None:
    """A row must have one value per header column; a stray comma shifts every value after it."""
    if len(cells) < len(header):
        return RowError(
            line,
            header[len(cells)].strip(),
            f"missing (the row has {len(cells)} values, the header {len(header)})",
        )
    if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header) :]):
        return RowError(
            line, None, f"{len(cells)} values, but the header has {len(header)} columns"
        )
    return None


def is_blank(cells: Sequence[str]) -> bool:
    """Spreadsheets often save empty rows (",,,,") after the data; they are not rows."""
    return not any(cell.strip() for cell in cells)


# --- invoices ----------------------------------------------------------------------------


class InvoiceRow(NamedTuple):
    """A valid invoice row.  A tuple, in the order of the importer's staging table."""

    line: int
    external_id: str
    customer: str  # the customer's external_id; whether it exists is the ledger's question
    number: str
    currency: str
    amount_due: int  # minor units
    issued_at: datetime
    due_at: datetime
    collection_method: str
    status: str
    lines: str  # JSON text, as the API's `lines`
    context: str  # JSON text, as the API's `context`


def parse_invoice(
    cells: Sequence[str], *, at: dict[str, int], line: int
) -> InvoiceRow | list[RowError]:
    """Read one invoice row (after `check_width`); `at` maps column names to positions."""
    errors: list[RowError] = []

    def text(name: str, *, max_length: int) -> str:
        value = cells[at[name]].strip()
        if not value:
            errors.append(RowError(line, name, "required"))
        else:
            try:
                fields.check_text(value, max_length=max_length)
            except fields.FieldError as error:
                errors.append(RowError(line, name, str(error)))
        return value

    external_id = text("external_id", max_length=MAX_EXTERNAL_ID)
    customer = text("customer", max_length=MAX_EXTERNAL_ID)
    number = text("number", max_length=MAX_NUMBER)

    currency, amount_text, amount = cells[at["currency"]], cells[at["amount_due"]].strip(), 0
    if not amount_text:
        errors.append(RowError(line, "amount_due", "required"))
    try:
        currency = _currency(currency)
    except money.MoneyError as error:
        errors.append(RowError(line, "currency", str(error) if currency.strip() else "required"))
    else:
        # The amount's decimals are judged against the currency, so a bad
        # currency leaves the amount unjudged rather than reported twice.
        if amount_text:
            try:
                amount = _minor_units(amount_text, currency)
            except money.MoneyError as error:
                errors.append(RowError(line, "amount_due", str(error)))

    issued_at = _instant_cell(cells[at["issued_at"]], column="issued_at", line=line, errors=errors)
    due_text = cells[at["due_at"]]
    # As in the API, an invoice without a due date is due when issued.
    due_at = (
        _instant_cell(due_text, column="due_at", line=line, errors=errors)
        if due_text.strip()
        else issued_at
    )

    method = cells[at["collection_method"]].strip() or "send_invoice"
    if method not in COLLECTION_METHODS:
        errors.append(
            RowError(
                line, "collection_method", f"must be {' or '.join(sorted(COLLECTION_METHODS))}"
            )
        )
    status = _optional(cells, at, "status") or "open"
    if status not in NEW_INVOICE_STATUSES:
        errors.append(RowError(line, "status", "a new invoice is draft or open"))

    lines = _optional(cells, at, "lines")
    context = _optional(cells, at, "context")
    try:
        lines = parse_invoice_lines(lines) if lines else "[]"
    except fields.FieldError as error:
        errors.append(RowError(line, "lines", str(error)))
    try:
        context = parse_json_object(context) if context else "{}"
    except fields.FieldError as error:
        errors.append(RowError(line, "context", str(error)))

    if errors:
        return errors
    assert issued_at is not None and due_at is not None
    return InvoiceRow(
        line,
        external_id,
        customer,
        number,
        currency,
        amount,
        issued_at,
        due_at,
        method,
        status,
        lines,
        context,
    )


InvoiceParser = Callable[[Sequence[str], int], "InvoiceRow | list[RowError]"]


def invoice_parser(at: dict[str, int]) -> InvoiceParser:
    """`parse_invoice` for one file's header, with a fast path for valid rows.

    Nearly every row of a real file is valid, so the common case is checked
    with as few steps as possible (positions bound once, no error list);
    anything unusual goes to `parse_invoice`, which finds every error in the
    row.  Both accept exactly the same rows (tests/core/test_rows.py); the
    fast path skips only `check_text`'s Unicode check, which text decoded
    from UTF-8 always passes.
    """
    external_id_at, customer_at, number_at = at["external_id"], at["customer"], at["number"]
    currency_at, amount_at = at["currency"], at["amount_due"]
    issued_at_at, due_at_at, method_at = at["issued_at"], at["due_at"], at["collection_method"]
    # status, lines, context: a row that fills any of them takes the thorough path.
    optional = [at[name] for name in INVOICE_COLUMNS.optional if name in at]

    def parse(cells: Sequence[str], line: int) -> InvoiceRow | list[RowError]:
        try:
            external_id = cells[external_id_at].strip()
            customer = cells[customer_at].strip()
            number = cells[number_at].strip()
            issued = cells[issued_at_at].strip()
            due = cells[due_at_at].strip()
            method = cells[method_at].strip() or "send_invoice"
            if (
                external_id
                and customer
                and number
                and issued
                and not any(cells[position].strip() for position in optional)
                and len(external_id) <= MAX_EXTERNAL_ID
                and len(customer) <= MAX_EXTERNAL_ID
                and len(number) <= MAX_NUMBER
                and method in COLLECTION_METHODS
                and "\x00" not in external_id
                and "\x00" not in customer
                and "\x00" not in number
            ):
                currency = _currency(cells[currency_at])
                issued_at = _instant(issued)
                return InvoiceRow(
                    line,
                    external_id,
                    customer,
                    number,
                    currency,
                    _minor_units(cells[amount_at].strip(), currency),
                    issued_at,
                    _instant(due) if due else issued_at,
                    method,
                    "open",
                    "[]",
                    "{}",
                )
        except ValueError:  # FieldError, MoneyError: the thorough path says which column
            pass
        return parse_invoice(cells, at=at, line=line)

    return parse


# Invoice files repeat the same few currencies, prices and dates on many rows;
# remembering the parsed form of the last few thousand saves most of the work.
# The caches are bounded, so memory stays flat however long the file.
@lru_cache(maxsize=64)
def _currency(value: str) -> str:
    return money.normalize_currency(value)


@lru_cache(maxsize=4096)
def _minor_units(text: str, currency: str) -> int:
    return money.parse_major(text, currency)


@lru_cache(maxsize=4096)
def _instant(text: str) -> datetime:
    return fields.parse_instant(text)


def _instant_cell(value: str, *, column: str, line: int, errors: list[RowError]) -> datetime | None:
    if not value.strip():
        errors.append(RowError(line, column, "required"))
        return None
    try:
        return _instant(value.strip())
    except fields.FieldError as error:
        errors.append(RowError(line, column, str(error)))
        return None


def _optional(cells: Sequence[str], at: dict[str, int], name: str) -> str:
    position = at.get(name)
    return "" if position is None else cells[position].strip()


# --- customers ---------------------------------------------------------------------------


class CustomerRow(NamedTuple):
    """A valid customer row; None means the cell was empty, so the recorded value stays."""

    line: int
    external_id: str
    name: str | None
    email: str | None
    phone: str | None  # E.164, or as written when `phone_needs_country`
    phone_needs_country: bool  # a national number with no country in the row
    locale: str | None
    time_zone: str | None
    default_time_zone: str  # for a new customer without a time zone: its country's, else UTC
    country: str | None
    is_business: bool | None
    metadata: str | None  # JSON text


def parse_customer(
    cells: Sequence[str], *, at: dict[str, int], line: int
) -> CustomerRow | list[RowError]:
    """Read one customer row (after `check_width`); `at` maps column names to positions."""
    errors: list[RowError] = []
    values: dict[str, Any] = {}

    def normalise(name: str, check: Any) -> None:
        raw = cells[at[name]].strip() if name in at else ""
        if not raw:
            values[name] = None
            return
        try:
            values[name] = check(raw)
        except fields.FieldError as error:
            errors.append(RowError(line, name, str(error)))
            values[name] = None

    normalise("external_id", lambda v: fields.check_text(v, max_length=MAX_EXTERNAL_ID))
    if values["external_id"] is None and not any(e.column == "external_id" for e in errors):
        errors.append(RowError(line, "external_id", "required"))
    normalise("name", lambda v: fields.check_text(v, max_length=MAX_NAME))
    normalise("email", fields.normalize_email)
    normalise("locale", _locale)
    normalise("time_zone", fields.normalize_time_zone)
    normalise("country", _country)
    normalise("is_business", parse_bool)
    normalise("metadata", parse_json_object)

    country = values["country"]
    phone, needs_country = cells[at["phone"]].strip(), False
    if phone:
        try:
            fields.check_text(phone, max_length=MAX_PHONE_TEXT)
            if country is None and not phone.startswith("+"):
                # A national number ("081 234 5678") is read in the customer's
                # country; with none in the row, the importer uses the recorded one.
                needs_country = True
            else:
                phone = fields.normalize_phone(phone, country=country or "")
        except fields.FieldError as error:
            errors.append(RowError(line, "phone", str(error)))

    if errors:
        return errors
    return CustomerRow(
        line=line,
        external_id=values["external_id"],
        name=values["name"],
        email=values["email"],
        phone=phone or None,
        phone_needs_country=needs_country,
        locale=values["locale"],
        time_zone=values["time_zone"],
        default_time_zone=_default_time_zone(country or ""),
        country=country,
        is_business=values["is_business"],
        metadata=values["metadata"],
    )


CustomerParser = Callable[[Sequence[str], int], "CustomerRow | list[RowError]"]


# A customers file repeats a few locales and countries on every row; parsing
# them through CLDR each time costs more than the rest of the row.
@lru_cache(maxsize=256)
def _locale(value: str) -> str:
    return fields.normalize_locale(value)


@lru_cache(maxsize=256)
def _country(value: str) -> str:
    return fields.normalize_country(value)


@lru_cache(maxsize=256)
def _default_time_zone(country: str) -> str:
    """A new customer's time zone when the row gives none, as services.upsert_customer has it."""
    return (fields.default_time_zone(country) if country else None) or "UTC"


def customer_parser(at: dict[str, int]) -> CustomerParser:
    """`parse_customer` for one file's header.  Customer files are small: no fast path."""

    def parse(cells: Sequence[str], line: int) -> CustomerRow | list[RowError]:
        return parse_customer(cells, at=at, line=line)

    return parse


def parse_bool(value: str) -> bool:
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise fields.FieldError("write true or false")
