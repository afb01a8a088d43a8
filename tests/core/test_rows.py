"""Pure row parsing for the CSV import: no database, no clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dunning.core import json_cells, rows
from dunning.core.rows import INVOICE_COLUMNS, ErrorList, RowError

AT = {name: position for position, name in enumerate(INVOICE_COLUMNS.required)}
VALID = ["in_1", "cus_1", "INV-1", "THB", "1234.50", "2026-03-01", "2026-03-15", "send_invoice"]


def test_an_error_reads_line_column_reason() -> None:
    assert str(RowError(7, "amount_due", "must not be negative")) == (
        "line 7, column amount_due: must not be negative"
    )
    assert str(RowError(3, None, "not valid UTF-8 text")) == "line 3: not valid UTF-8 text"


def test_the_error_list_keeps_the_first_errors_by_line_and_counts_them_all() -> None:
    errors = ErrorList(keep=3)
    for line in (2, 5, 9, 11):
        errors.add(RowError(line, "currency", "unknown"))
    errors.extend([RowError(4, "customer", "unknown"), RowError(6, "customer", "unknown")], 40)

    assert [error.line for error in errors.first()] == [2, 4, 5]
    assert errors.count == 44


def test_the_header_may_list_columns_in_any_order_with_optional_ones() -> None:
    positions, errors = rows.read_header(
        ["due_at", " external_id ", "lines", *INVOICE_COLUMNS.required[1:6], "collection_method"],
        columns=INVOICE_COLUMNS,
    )

    assert errors == []
    assert (positions["due_at"], positions["external_id"], positions["lines"]) == (0, 1, 2)


def test_a_repeated_or_blank_header_column_is_an_error() -> None:
    _, errors = rows.read_header(
        [*INVOICE_COLUMNS.required, "currency", ""], columns=INVOICE_COLUMNS
    )

    assert [str(error) for error in errors] == [
        "line 1, column currency: repeated (also column 4)",
        "line 1, column #10: unknown column (expected external_id, customer, number, currency, "
        "amount_due, issued_at, due_at, collection_method, status, lines, context)",
    ]


def test_a_valid_row_becomes_typed_values_in_minor_units_and_utc() -> None:
    parsed = rows.parse_invoice(VALID, at=AT, line=2)

    assert parsed == rows.InvoiceRow(
        2,
        "in_1",
        "cus_1",
        "INV-1",
        "THB",
        123450,
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 15, tzinfo=UTC),
        "send_invoice",
        "open",
        "[]",
        "{}",
    )


def test_a_row_reports_every_bad_column_at_once() -> None:
    cells = ["", "cus_1", "x" * 65, "THB", "-1", "yesterday", "", "by_pigeon"]

    assert [str(error) for error in rows.parse_invoice(cells, at=AT, line=9)] == [
        "line 9, column external_id: required",
        "line 9, column number: at most 64 characters",
        "line 9, column amount_due: must not be negative",
        "line 9, column issued_at: not a date: use 2026-03-15 or 2026-03-15T09:30:00+07:00",
        "line 9, column collection_method: must be charge_automatically or send_invoice",
    ]


def test_invoice_lines_are_normalised_to_the_apis_shape() -> None:
    text = json_cells.parse_invoice_lines('[{"description": "ส่วนลด", "amount": -5000}]')

    assert json.loads(text) == [{"description": "ส่วนลด", "quantity": 1, "amount": -5000}]


@pytest.mark.parametrize("word", ["true", "TRUE", "yes", "1"])
def test_spreadsheet_true_values_read_as_true(word: str) -> None:
    assert rows.parse_bool(word) is True


# The fast path of `invoice_parser` must accept exactly what `parse_invoice`
# accepts, and leave every refusal to it.  Cells are drawn from values that
# are valid, invalid, or on an edge.
CELLS = {
    "external_id": ["in_1", " in_2 ", "", "x" * 256, "in\x00"],
    "customer": ["cus_1", "", "c" * 255],
    "number": ["INV-1", "", "n" * 65],
    "currency": ["THB", "jpy", " KWD ", "XYZ", ""],
    "amount_due": ["1234.50", "5000", "0.005", "-1", "", "1,234", "0"],
    "issued_at": ["2026-03-01", "2026-03-01T09:30:00+07:00", "2026-03-01T09:30:00", "", "soon"],
    "due_at": ["2026-03-15", "", "1900-01-01", "2026-13-01"],
    "collection_method": ["send_invoice", "charge_automatically", "", "by_pigeon"],
}


@given(st.fixed_dictionaries({name: st.sampled_from(values) for name, values in CELLS.items()}))
def test_the_fast_path_accepts_exactly_what_the_thorough_parser_accepts(
    cells: dict[str, str],
) -> None:
    row = [cells[name] for name in INVOICE_COLUMNS.required]

    assert rows.invoice_parser(AT)(row, 5) == rows.parse_invoice(row, at=AT, line=5)


def test_a_row_with_optional_columns_filled_takes_the_thorough_path() -> None:
    at = {**AT, "status": 8, "lines": 9}

    parsed = rows.invoice_parser(at)([*VALID, "draft", '[{"description": "Pro", "amount": 1}]'], 2)

    assert isinstance(parsed, rows.InvoiceRow)
    assert (parsed.status, parsed.lines) == (
        "draft",
        '[{"description": "Pro", "quantity": 1, "amount": 1}]',
    )
