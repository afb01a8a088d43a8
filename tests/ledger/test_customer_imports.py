"""The customers CSV import: create or update by external_id, as the API does, all or nothing."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dunning.ledger import customer_imports, imports
from dunning.ledger.imports import ImportResult
from dunning.ledger.models import Customer, Event, Invoice

from ..conftest import NOW

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "csv"
HEADER = "external_id,name,email,phone,locale,time_zone,country,is_business"
LATER = NOW.replace(hour=9)


def customers_file(*rows: str, header: str = HEADER) -> io.BytesIO:
    return io.BytesIO("\n".join([header, *rows, ""]).encode("utf-8"))


def counts() -> tuple[int, int, int]:
    return Customer.objects.count(), Invoice.objects.count(), Event.objects.count()


def messages(result: ImportResult) -> list[str]:
    return [str(error) for error in result.errors]


def refused(source: io.BytesIO) -> ImportResult:
    before = counts()
    result = imports.import_customers(source, now=LATER)
    assert not result.ok
    assert counts() == before
    return result


def test_it_imports_thai_customers_from_a_file_saved_with_a_byte_order_mark(db: None) -> None:
    result = imports.import_customers(FIXTURES / "customers_th_bom.csv", now=NOW)

    assert result.ok, messages(result)
    assert (result.rows, result.created, result.updated) == (3, 3, 0)
    somchai, company, somying = Customer.objects.order_by("id")
    assert (somchai.external_id, somchai.name) == ("cus_th_1", "สมชาย ใจดี")
    assert somchai.phone == "+66812345678"  # a national number, read in the row's country
    assert somchai.time_zone == "Asia/Bangkok"  # Thailand has one time zone
    assert somchai.metadata == {"ระดับ": "ทอง"}
    assert (somchai.created_at, somchai.updated_at) == (NOW, NOW)
    assert (company.email, company.phone, company.is_business) == (
        "billing@example.co.th",
        "+6621234567",
        True,
    )
    assert somying.name == 'สมหญิง "หญิง" รักไทย'
    assert (somying.email, somying.is_business, somying.locale) == ("", False, "th-TH")


def test_it_updates_customers_by_external_id_and_keeps_what_empty_cells_leave_out(
    make_customer: Callable[..., Any],
) -> None:
    make_customer("cus_1", phone="+66812345678", metadata={"tier": "gold"}, is_business=True)

    result = imports.import_customers(
        customers_file("cus_1,Somchai J.,,,en,,,", "cus_2,New Co,,,,,,true"), now=LATER
    )

    assert result.ok, messages(result)
    assert (result.created, result.updated, result.unchanged) == (1, 1, 0)
    updated = Customer.objects.get(external_id="cus_1")
    assert (updated.name, updated.locale) == ("Somchai J.", "en")
    assert (updated.email, updated.phone, updated.country) == (
        "somchai@example.co.th",
        "+66812345678",
        "TH",
    )
    assert (updated.metadata, updated.is_business, updated.time_zone) == (
        {"tier": "gold"},
        True,
        "Asia/Bangkok",
    )
    assert (updated.created_at, updated.updated_at) == (NOW, LATER)
    assert Customer.objects.get(external_id="cus_2").time_zone == "UTC"  # no country: UTC


def test_it_records_the_same_events_as_the_api_and_one_for_the_import(
    make_customer: Callable[..., Any],
) -> None:
    make_customer("cus_1")
    before = Event.objects.count()

    imports.import_customers(
        customers_file("cus_1,Somchai J.,,,en,,,", "cus_2,New Co,,,,,,"), now=LATER
    )

    events = list(Event.objects.order_by("id")[before:])
    assert [(e.type, e.customer.external_id if e.customer else None, e.data) for e in events] == [
        ("customer.updated", "cus_1", {"changed": ["locale", "name"]}),
        ("customer.created", "cus_2", {"external_id": "cus_2"}),
        ("customers.imported", None, {"file": "", "created": 1, "updated": 1, "unchanged": 0}),
    ]
    assert {(e.source, e.recorded_at) for e in events} == {("import", LATER)}


def test_importing_the_same_file_again_changes_nothing(db: None) -> None:
    imports.import_customers(FIXTURES / "customers_th_bom.csv", now=NOW)
    before = Event.objects.exclude(type="customers.imported").count()

    result = imports.import_customers(FIXTURES / "customers_th_bom.csv", now=LATER)

    assert (result.created, result.updated, result.unchanged) == (0, 0, 3)
    assert Event.objects.exclude(type="customers.imported").count() == before
    assert set(Customer.objects.values_list("updated_at", flat=True)) == {NOW}


def test_a_new_customer_takes_its_countrys_only_time_zone_or_utc(db: None) -> None:
    imports.import_customers(
        customers_file(
            "cus_jp,Taro,,,,,JP,", "cus_us,Acme,,,,,US,", "cus_set,Ana,,,,America/Chicago,US,"
        ),
        now=NOW,
    )

    assert dict(Customer.objects.values_list("external_id", "time_zone")) == {
        "cus_jp": "Asia/Tokyo",
        "cus_us": "UTC",
        "cus_set": "America/Chicago",
    }


def test_a_national_phone_number_is_read_in_the_recorded_country_when_the_row_has_none(
    make_customer: Callable[..., Any],
) -> None:
    make_customer("cus_1", country="TH")

    result = imports.import_customers(customers_file("cus_1,,,081 234 5678,,,,"), now=LATER)

    assert result.ok, messages(result)
    assert Customer.objects.get(external_id="cus_1").phone == "+66812345678"


def test_a_national_phone_number_with_no_country_anywhere_is_refused(db: None) -> None:
    result = refused(customers_file("cus_1,Somchai,,081 234 5678,,,,"))

    assert messages(result) == [
        "line 2, column phone: not a phone number: write it as +66812345678 (or set the country)"
    ]


def test_a_new_customer_without_a_name_is_refused(make_customer: Callable[..., Any]) -> None:
    make_customer("cus_1")

    result = refused(customers_file("cus_1,,,,,,,", "cus_2,,,,,,TH,"))

    assert messages(result) == ["line 3, column name: required for a new customer"]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("email", "somchai(at)example", "not an email address"),
        (
            "email",
            "สมชาย@example.co.th",
            "the part before @ must be ASCII: "
            "the email channel cannot send to it without SMTPUTF8 (RFC 6531)",
        ),
        ("email", "a@x;y.com", "not an email address: the domain is not a valid domain name"),
        ("phone", "12", "not a valid phone number for its country"),
        ("locale", "xx-YY", "unknown locale: use a tag such as th, th-TH or en-US"),
        ("time_zone", "Bangkok", "unknown time zone: use an IANA name such as Asia/Bangkok"),
        ("country", "Thailand", "unknown country: use an ISO 3166 alpha-2 code such as TH"),
        ("is_business", "maybe", "write true or false"),
    ],
)
def test_a_bad_value_is_refused_naming_its_column(
    db: None, column: str, value: str, reason: str
) -> None:
    cells = dict.fromkeys(HEADER.split(","), "")
    cells |= {"external_id": "cus_1", "name": "Somchai", "country": "TH", column: value}

    result = refused(customers_file(",".join(cells.values())))

    assert messages(result) == [f"line 2, column {column}: {reason}"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('"[""gold""]"', 'must be a JSON object, such as {"plan": "Pro"}'),
        ('"{""a"": 9007199254740993}"', "integers must fit in 53 bits"),
        ('"' + '{""a"": ' * 10 + "1" + "}" * 10 + '"', "nested too deeply (8 levels at most)"),
    ],
)
def test_bad_metadata_is_refused(db: None, value: str, reason: str) -> None:
    result = refused(customers_file(f"cus_1,Somchai,,,,,TH,,{value}", header=f"{HEADER},metadata"))

    assert messages(result) == [f"line 2, column metadata: {reason}"]


def test_a_customer_repeated_in_the_file_is_refused(db: None) -> None:
    result = refused(
        customers_file("cus_1,Somchai,,,,,TH,", "cus_2,Ana,,,,,US,", "cus_1,Somchai J.,,,,,TH,")
    )

    assert messages(result) == [
        "line 4, column external_id: repeated in the file (first on line 2)"
    ]


def test_a_file_in_the_wrong_encoding_is_refused_at_its_first_thai_line(db: None) -> None:
    before = counts()

    result = imports.import_customers(FIXTURES / "customers_th_cp874.csv", now=NOW)

    assert messages(result) == ["line 2: not valid UTF-8 text (save the file as CSV UTF-8)"]
    assert counts() == before


def test_the_header_must_name_every_column(db: None) -> None:
    result = refused(customers_file("cus_1,Somchai", header="external_id,name"))

    assert messages(result) == [f"line 1, column {name}: missing" for name in HEADER.split(",")[2:]]


def test_customers_are_written_a_chunk_at_a_time(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(customer_imports, "CHUNK", 7)
    rows = [
        f"cus_{n:03d},Customer {n},c{n}@example.com,08{n % 10}1234{n:03d},th,,TH,"
        for n in range(50)
    ]
    imports.import_customers(customers_file(*rows[:20]), now=NOW)

    result = imports.import_customers(
        customers_file(*rows[10:], "cus_005,Renamed,,,,,,"), now=LATER
    )

    assert result.ok, messages(result)
    assert (result.created, result.updated, result.unchanged) == (30, 1, 10)
    assert Customer.objects.count() == 50
    assert Customer.objects.get(external_id="cus_005").name == "Renamed"
    assert Customer.objects.get(external_id="cus_049").phone == "+66891234049"
