"""The invoices CSV import: all or nothing, errors by line and column, streamed.

Every rejection test also proves that nothing was written: the counts of
customers, invoices and events are the same after the import as before it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dunning.ledger import imports
from dunning.ledger.imports import ImportResult
from dunning.ledger.models import Customer, Event, Invoice

from ..conftest import NOW

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "csv"
HEADER = "external_id,customer,number,currency,amount_due,issued_at,due_at,collection_method"


def invoices_file(*rows: str, header: str = HEADER) -> io.BytesIO:
    return io.BytesIO("\n".join([header, *rows, ""]).encode("utf-8"))


def row(
    external_id: str = "in_1",
    *,
    customer: str = "cus_1",
    currency: str = "THB",
    amount: str = "1234.50",
    issued: str = "2026-03-01",
    due: str = "2026-03-15",
    method: str = "send_invoice",
) -> str:
    return f"{external_id},{customer},INV-{external_id},{currency},{amount},{issued},{due},{method}"


def counts() -> tuple[int, int, int]:
    return Customer.objects.count(), Invoice.objects.count(), Event.objects.count()


def messages(result: ImportResult) -> list[str]:
    return [str(error) for error in result.errors]


@pytest.fixture
def customers(make_customer: Callable[..., Any]) -> None:
    make_customer("cus_1")
    make_customer("cus_2", name="Acme Co., Ltd.", country="US", locale="en-US")


@pytest.fixture
def refused(customers: None) -> Callable[[io.BytesIO], ImportResult]:
    """Import a file that must be refused, and check that it changed nothing."""

    def run(source: io.BytesIO) -> ImportResult:
        before = counts()
        result = imports.import_invoices(source, now=NOW)
        assert not result.ok
        assert result.created == 0
        assert counts() == before
        return result

    return run


# --- files that import ------------------------------------------------------------------


def test_it_imports_a_thai_file_saved_with_a_byte_order_mark(db: None) -> None:
    customers = imports.import_customers(FIXTURES / "customers_th_bom.csv", now=NOW)
    result = imports.import_invoices(FIXTURES / "invoices_th_bom.csv", now=NOW)

    assert customers.ok and result.ok, messages(customers) + messages(result)
    assert (result.rows, result.created, result.totals) == (3, 3, {"THB": 123450 + 2500000 + 50})
    first = Invoice.objects.select_related("customer").get(external_id="in_th_1")
    assert first.customer.name == "สมชาย ใจดี"
    assert first.amount_due == first.amount_remaining == 123450
    assert first.lines == [
        {"description": "ค่าบริการรายเดือน แผน Pro", "quantity": 1, "amount": 123450}
    ]
    assert first.context == {"plan": "Pro", "period": "มีนาคม 2569"}


def test_it_converts_major_units_by_each_currencys_exponent(db: None) -> None:
    imports.import_customers(FIXTURES / "customers_jp_kw.csv", now=NOW)

    result = imports.import_invoices(FIXTURES / "invoices_jpy_kwd.csv", now=NOW)

    assert result.ok, messages(result)
    amounts = dict(Invoice.objects.values_list("external_id", "amount_due"))
    assert amounts == {"in_jp_1": 5000, "in_kw_1": 12345, "in_kw_2": 500}  # JPY 0, KWD 3 places
    assert Invoice.objects.get(external_id="in_kw_2").currency == "KWD"
    assert result.totals == {"JPY": 5000, "KWD": 12845}


def test_an_offset_datetime_is_stored_in_utc_and_a_date_is_midnight_utc(customers: None) -> None:
    imports.import_invoices(
        invoices_file(row("in_1", issued="2026-03-01T09:30:00+07:00", due="2026-03-15")), now=NOW
    )

    invoice = Invoice.objects.get(external_id="in_1")
    assert invoice.issued_at == datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    assert invoice.due_at == datetime(2026, 3, 15, tzinfo=UTC)


def test_empty_cells_take_the_apis_defaults(customers: None) -> None:
    imports.import_invoices(invoices_file(row("in_1", due="", method="")), now=NOW)

    invoice = Invoice.objects.get(external_id="in_1")
    assert invoice.due_at == invoice.issued_at  # due on issue, as in the API
    assert (invoice.collection_method, invoice.status) == ("send_invoice", "open")
    assert (invoice.lines, invoice.context, invoice.amount_paid) == ([], {}, 0)
    assert invoice.created_at == invoice.updated_at == NOW


def test_an_invoice_of_nothing_is_paid_on_issue_as_the_api_has_it(customers: None) -> None:
    imports.import_invoices(invoices_file(row("in_1", amount="0.00")), now=NOW)

    invoice = Invoice.objects.get(external_id="in_1")
    assert (invoice.status, invoice.paid_at) == ("paid", datetime(2026, 3, 1, tzinfo=UTC))


def test_a_draft_status_column_is_honoured(customers: None) -> None:
    result = imports.import_invoices(
        invoices_file(f"{row('in_1')},draft", f"{row('in_2')},", header=f"{HEADER},status"), now=NOW
    )

    assert result.ok, messages(result)
    assert dict(Invoice.objects.values_list("external_id", "status")) == {
        "in_1": "draft",
        "in_2": "open",
    }


def test_it_records_an_event_per_invoice_and_one_for_the_import(customers: None) -> None:
    before = Event.objects.count()

    imports.import_invoices(
        invoices_file(row("in_1"), row("in_2", customer="cus_2", currency="USD", amount="10")),
        now=NOW,
    )

    events = list(Event.objects.order_by("id")[before:])
    assert [e.type for e in events] == ["invoice.created", "invoice.created", "invoices.imported"]
    assert {e.source for e in events} == {"import"}
    created = events[0]
    assert created.invoice == Invoice.objects.get(external_id="in_1")
    assert created.customer == Customer.objects.get(external_id="cus_1")
    assert created.occurred_at == datetime(2026, 3, 1, tzinfo=UTC)
    assert created.recorded_at == NOW
    assert created.data == {
        "amount_due": 123450,
        "currency": "THB",
        "due_at": "2026-03-15T00:00:00+00:00",
    }
    assert events[-1].data == {"file": "", "invoices": 2, "totals": {"THB": 123450, "USD": 1000}}


def test_invoice_ids_follow_the_order_of_the_file(customers: None) -> None:
    imports.import_invoices(invoices_file(row("in_c"), row("in_a"), row("in_b")), now=NOW)

    assert list(Invoice.objects.order_by("id").values_list("external_id", flat=True)) == [
        "in_c",
        "in_a",
        "in_b",
    ]


def test_blank_rows_and_trailing_empty_cells_are_not_rows(customers: None) -> None:
    result = imports.import_invoices(
        invoices_file(row("in_1") + ",,", "", ",,,,,,,", row("in_2")), now=NOW
    )

    assert result.ok, messages(result)
    assert (result.rows, result.created) == (2, 2)


def test_a_file_with_only_a_header_imports_nothing_and_succeeds(customers: None) -> None:
    result = imports.import_invoices(invoices_file(), now=NOW)

    assert result.ok
    assert (result.rows, result.created, result.totals) == (0, 0, {})


def test_it_imports_twenty_thousand_generated_rows(customers: None) -> None:
    rows = (
        row(
            f"in_{n:05d}",
            customer=f"cus_{n % 2 + 1}",
            amount=f"{n}.{n % 100:02d}",
            issued=f"2026-{n % 12 + 1:02d}-{n % 28 + 1:02d}",
        )
        for n in range(20_000)
    )
    source = io.BytesIO("\n".join([HEADER, *rows]).encode())
    progress: list[int] = []

    result = imports.import_invoices(source, now=NOW, on_progress=progress.append)

    assert result.ok, messages(result)
    expected = sum(n * 100 + n % 100 for n in range(20_000))
    assert (result.created, result.totals) == (20_000, {"THB": expected})
    assert Invoice.objects.count() == 20_000
    assert sum(Invoice.objects.values_list("amount_due", flat=True)) == expected
    assert Event.objects.filter(type="invoice.created", source="import").count() == 20_000
    assert progress[-1] == len(source.getvalue()) and progress == sorted(progress)


# --- files that are refused, with nothing written ---------------------------------------


def test_it_rejects_a_wrong_currency_and_writes_nothing(refused: Any) -> None:
    result = refused(invoices_file(row("in_1"), row("in_2", currency="XYZ")))

    assert messages(result) == [
        "line 3, column currency: unknown currency: use an ISO 4217 code such as THB"
    ]


def test_it_rejects_a_negative_amount_and_writes_nothing(refused: Any) -> None:
    result = refused(invoices_file(row("in_1", amount="-5.00")))

    assert messages(result) == ["line 2, column amount_due: must not be negative"]


@pytest.mark.parametrize(
    ("currency", "amount", "reason"),
    [
        ("JPY", "100.5", "JPY has no minor unit: write the amount without decimals"),
        ("THB", "1.005", "THB has 2 decimal places at most, got 3"),
        ("KWD", "1.2345", "KWD has 3 decimal places at most, got 4"),
        ("THB", "1,234.50", "not a decimal amount: write it like 1234.50, without separators"),
        ("THB", "", "required"),
    ],
)
def test_it_rejects_an_amount_the_currency_cannot_hold_and_writes_nothing(
    refused: Any, currency: str, amount: str, reason: str
) -> None:
    result = refused(invoices_file(row("in_1", currency=currency, amount=f'"{amount}"')))

    assert messages(result) == [f"line 2, column amount_due: {reason}"]


def test_it_rejects_an_unknown_customer_and_writes_nothing(refused: Any) -> None:
    result = refused(invoices_file(row("in_1"), row("in_2", customer="cus_nobody")))

    assert messages(result) == [
        "line 3, column customer: no customer with this external_id (import customers first)"
    ]


@pytest.mark.parametrize(
    ("issued", "reason"),
    [
        ("2026-02-30", "not a date: use 2026-03-15 or 2026-03-15T09:30:00+07:00"),
        ("15/03/2026", "not a date: use 2026-03-15 or 2026-03-15T09:30:00+07:00"),
        ("2026-03-01T09:30:00", "add a UTC offset, such as 2026-03-15T09:30:00+07:00 or ...Z"),
        ("1900-01-01", "must be between 1970 and 2200"),
    ],
)
def test_it_rejects_a_bad_date_and_writes_nothing(refused: Any, issued: str, reason: str) -> None:
    result = refused(invoices_file(row("in_1", issued=issued)))

    assert messages(result) == [f"line 2, column issued_at: {reason}"]


def test_it_rejects_a_missing_column_and_writes_nothing(refused: Any) -> None:
    header = HEADER.replace(",amount_due", "")

    result = refused(
        invoices_file("in_1,cus_1,INV-1,THB,2026-03-01,2026-03-15,send_invoice", header=header)
    )

    assert messages(result) == ["line 1, column amount_due: missing"]


def test_it_rejects_an_unknown_column_so_that_typos_are_caught(refused: Any) -> None:
    result = refused(invoices_file(row("in_1"), header=HEADER.replace("amount_due", "amount_du")))

    assert messages(result) == [
        "line 1, column amount_du: unknown column (did you mean amount_due?)",
        "line 1, column amount_due: missing",
    ]


def test_it_rejects_a_file_that_is_not_utf8_and_writes_nothing(refused: Any) -> None:
    thai = "in_1,cus_1,ใบแจ้งหนี้ 1,THB,1234.50,2026-03-01,2026-03-15,send_invoice"

    result = refused(io.BytesIO(f"{HEADER}\n{row('in_0')}\n{thai}\n".encode("cp874")))

    assert messages(result) == ["line 3: not valid UTF-8 text (save the file as CSV UTF-8)"]


def test_it_rejects_an_invoice_repeated_in_the_file_naming_both_lines(refused: Any) -> None:
    result = refused(invoices_file(row("in_1"), row("in_2"), row("in_1"), row("in_1")))

    assert messages(result) == [
        "line 4, column external_id: repeated in the file (first on line 2)",
        "line 5, column external_id: repeated in the file (first on line 2)",
    ]


def test_it_rejects_an_invoice_already_recorded(
    refused: Any, make_invoice: Callable[..., Any]
) -> None:
    make_invoice("in_1")

    result = refused(invoices_file(row("in_0"), row("in_1")))

    assert messages(result) == [
        "line 3, column external_id: an invoice with this external_id is already recorded (the "
        "import only adds invoices; change recorded ones in the API)"
    ]


def test_every_error_of_the_file_is_reported_in_line_order(refused: Any) -> None:
    result = refused(
        invoices_file(
            row("in_1", customer="cus_nobody"),
            row("in_2", currency="XYZ", issued="soon"),
            row("in_1"),
            row("in_4", method="by_pigeon"),
        )
    )

    assert messages(result) == [
        "line 2, column customer: no customer with this external_id (import customers first)",
        "line 3, column currency: unknown currency: use an ISO 4217 code such as THB",
        "line 3, column issued_at: not a date: use 2026-03-15 or 2026-03-15T09:30:00+07:00",
        "line 4, column external_id: repeated in the file (first on line 2)",
        "line 5, column collection_method: must be charge_automatically or send_invoice",
    ]


def test_it_lists_the_first_hundred_errors_and_counts_the_rest(refused: Any) -> None:
    result = refused(invoices_file(*(row(f"in_{n}", amount="-1") for n in range(150))))

    assert result.error_count == 150
    assert len(result.errors) == 100
    assert [error.line for error in result.errors] == list(range(2, 102))


def test_line_numbers_are_physical_lines_even_after_a_quoted_newline(refused: Any) -> None:
    header = f"{HEADER},context"
    note = '"{""note"":\n""the newline is JSON whitespace""}"'

    result = refused(
        invoices_file(f"{row('in_1')},{note}", f"{row('in_2', amount='-1')},", header=header)
    )

    assert messages(result) == ["line 4, column amount_due: must not be negative"]


def test_a_row_with_too_few_or_too_many_values_is_an_error(refused: Any) -> None:
    result = refused(
        invoices_file("in_1,cus_1,INV-1,THB,1234.50,2026-03-01", row("in_2") + ",surprise")
    )

    assert messages(result) == [
        "line 2, column due_at: missing (the row has 6 values, the header 8)",
        "line 3: 9 values, but the header has 8 columns",
    ]


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        (
            '"[{""description"": ""Pro"", ""amount"": 1.5}]"',
            "line item 1: amount must be whole minor units (12345 for 123.45), "
            "negative for a discount",
        ),
        (
            '"[{""description"": ""Pro"", ""amount"": 100, ""tax"": 7}]"',
            "line item 1: unknown key 'tax'",
        ),
        (
            '"{""description"": ""Pro""}"',
            'must be a JSON list, such as [{"description": "Pro plan", '
            '"quantity": 1, "amount": 123450}]',
        ),
        ("[{", "not valid JSON: Expecting property name enclosed in double quotes (character 3)"),
    ],
)
def test_bad_invoice_lines_are_an_error_naming_the_column(
    refused: Any, cell: str, reason: str
) -> None:
    result = refused(invoices_file(f"{row('in_1')},{cell}", header=f"{HEADER},lines"))

    assert messages(result) == [f"line 2, column lines: {reason}"]


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ('"[1, 2]"', 'must be a JSON object, such as {"plan": "Pro"}'),
        ('"{""score"": NaN}"', "NaN is not a JSON value"),
        ('"{""a"": ""\\u0000""}"', "must not contain NUL characters"),
    ],
)
def test_bad_context_is_an_error_naming_the_column(refused: Any, cell: str, reason: str) -> None:
    result = refused(invoices_file(f"{row('in_1')},{cell}", header=f"{HEADER},context"))

    assert messages(result) == [f"line 2, column context: {reason}"]


def test_an_empty_file_is_an_error(refused: Any) -> None:
    result = refused(io.BytesIO(b""))

    assert messages(result) == [
        f"line 1: the file is empty: the first line must name the columns ({HEADER})"
    ]


def test_an_unclosed_quote_is_an_error_not_a_hang(refused: Any) -> None:
    result = refused(invoices_file(row("in_1"), 'in_2,cus_1,"INV-2,THB,1,2026-03-01,,'))

    assert not result.ok and result.errors[0].line == 3
