from __future__ import annotations

from typing import Any

import pytest

from dunning.ledger.models import Event, Invoice
from tests.api.conftest import customer_body, error_of, fields_of, invoice_body, payment_body


def test_it_creates_an_invoice_with_its_status_and_amount_remaining(
    api: Any, customer: dict[str, Any]
) -> None:
    response = api.post("/invoices", invoice_body())

    assert response.status_code == 201
    body = response.json()
    assert body["id"] == Invoice.objects.get(external_id="in_1").pk
    assert body | {"id": 0} == {
        "id": 0,
        "external_id": "in_1",
        "customer": "cus_1",
        "number": "INV-in_1",
        "currency": "THB",
        "amount_due": 123450,
        "amount_paid": 0,
        "amount_remaining": 123450,
        "issued_at": "2026-03-01T02:00:00Z",
        "due_at": "2026-03-15T00:00:00Z",
        "status": "open",
        "collection_method": "send_invoice",
        "lines": [{"description": "Pro plan, March", "quantity": 1, "amount": 123450}],
        "context": {},
        "paid_at": None,
        "created_at": "2026-03-16T03:00:00Z",
        "updated_at": "2026-03-16T03:00:00Z",
    }


def test_it_records_an_invoice_created_event_when_the_invoice_was_issued(
    api: Any, customer: dict[str, Any]
) -> None:
    api.post("/invoices", invoice_body())

    event = Event.objects.get(type="invoice.created")
    assert event.invoice.external_id == "in_1"
    assert event.customer.external_id == "cus_1"
    assert event.occurred_at.isoformat() == "2026-03-01T02:00:00+00:00"
    assert event.data == {
        "amount_due": 123450,
        "currency": "THB",
        "due_at": "2026-03-15T00:00:00+00:00",
    }


def test_an_invoice_without_a_due_date_is_due_when_issued(
    api: Any, customer: dict[str, Any]
) -> None:
    body = invoice_body(collection_method="charge_automatically")
    del body["due_at"]

    response = api.post("/invoices", body)

    assert response.json()["due_at"] == response.json()["issued_at"]


def test_a_bare_date_means_midnight_utc(api: Any, customer: dict[str, Any]) -> None:
    response = api.post("/invoices", invoice_body(issued_at="2026-03-01", due_at="2026-03-31"))

    assert response.json()["issued_at"] == "2026-03-01T00:00:00Z"
    assert response.json()["due_at"] == "2026-03-31T00:00:00Z"


def test_an_invoice_for_nothing_is_paid_at_once(api: Any, customer: dict[str, Any]) -> None:
    response = api.post("/invoices", invoice_body(amount_due=0, lines=[]))

    assert response.json()["status"] == "paid"
    assert response.json()["amount_remaining"] == 0


def test_it_updates_the_invoice_with_the_same_external_id_and_answers_200(
    api: Any, invoice: dict[str, Any]
) -> None:
    response = api.post("/invoices", invoice_body(number="INV-2026-0001", amount_due=150000))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == invoice["id"]
    assert (body["number"], body["amount_due"], body["amount_remaining"]) == (
        "INV-2026-0001",
        150000,
        150000,
    )
    assert Invoice.objects.count() == 1
    assert Event.objects.filter(type="invoice.updated").get().data == {
        "changed": ["amount_due", "number"]
    }


def test_an_update_cannot_move_an_invoice_to_another_customer(
    api: Any, invoice: dict[str, Any]
) -> None:
    api.post("/customers", customer_body("cus_2", phone=None))

    response = api.post("/invoices", invoice_body(customer="cus_2"))

    assert set(fields_of(response, 409)) == {"customer"}
    assert Invoice.objects.get().customer.external_id == "cus_1"


def test_an_update_cannot_change_the_currency(api: Any, invoice: dict[str, Any]) -> None:
    response = api.post("/invoices", invoice_body(currency="USD"))

    assert set(fields_of(response, 409)) == {"currency"}
    assert Invoice.objects.get().currency == "THB"


def test_an_update_cannot_lower_amount_due_below_what_is_paid(
    api: Any, invoice: dict[str, Any]
) -> None:
    api.post("/payments", payment_body(amount=100000))

    response = api.post("/invoices", invoice_body(amount_due=50000))

    assert set(fields_of(response, 409)) == {"amount_due"}


def test_an_invoice_for_a_customer_that_does_not_exist_is_404_naming_customer(api: Any) -> None:
    response = api.post("/invoices", invoice_body(customer="cus_missing"))

    assert fields_of(response, 404) == {"customer": "no customer with this external_id"}


@pytest.mark.parametrize(
    ("currency", "amount_due", "shown"),
    [("JPY", 4980, 4980), ("THB", 123450, 123450), ("KWD", 1500, 1500)],
    ids=["yen-no-decimals", "baht-two-decimals", "dinar-three-decimals"],
)
def test_amounts_are_integer_minor_units_of_any_currency(
    api: Any, customer: dict[str, Any], currency: str, amount_due: int, shown: int
) -> None:
    response = api.post(
        "/invoices", invoice_body(currency=currency.lower(), amount_due=amount_due, lines=[])
    )

    assert response.status_code == 201, response.content
    assert (response.json()["currency"], response.json()["amount_due"]) == (currency, shown)


@pytest.mark.parametrize(
    "amount_due",
    [1.5, "100", 100.0, True, None, -1, 10**13, 2**63, 2**64 + 1, 10**40, [100], {"minor": 1}],
    ids=[
        "fraction",
        "string",
        "float",
        "bool",
        "null",
        "negative",
        "over-limit",
        "2^63",
        "beyond-2^64",
        "huge",
        "array",
        "object",
    ],
)
def test_it_rejects_an_amount_that_is_not_a_bounded_non_negative_integer(
    api: Any, customer: dict[str, Any], amount_due: Any
) -> None:
    response = api.post("/invoices", invoice_body(amount_due=amount_due))

    assert set(fields_of(response)) == {"amount_due"}
    assert not Invoice.objects.exists()


def test_it_rejects_an_amount_with_a_fraction(api: Any, customer: dict[str, Any]) -> None:
    response = api.post("/invoices", invoice_body(amount_due=1234.5))

    assert fields_of(response) == {"amount_due": "input should be a valid integer"}


@pytest.mark.parametrize("currency", ["XYZ", "", "TH", "BAHT", "XAU", 764, None])
def test_it_rejects_a_currency_that_is_not_an_iso_4217_code_with_minor_units(
    api: Any, customer: dict[str, Any], currency: Any
) -> None:
    response = api.post("/invoices", invoice_body(currency=currency))

    assert set(fields_of(response)) == {"currency"}


def test_it_names_every_bad_field_including_the_index_of_a_bad_line(
    api: Any, customer: dict[str, Any]
) -> None:
    lines = [
        {"description": "Seat", "quantity": 2, "amount": 5000},
        {"description": "Discount", "amount": -1000},
        {"description": "Setup", "quantity": 1, "amount": 12.5},
        {"quantity": 0, "amount": 1},
    ]
    response = api.post(
        "/invoices", invoice_body(currency="BAHT", amount_due="1234.50", lines=lines)
    )

    error = error_of(response, 422)
    assert error["code"] == "validation_error"
    assert {f["field"] for f in error["fields"]} == {
        "currency",
        "amount_due",
        "lines[2].amount",
        "lines[3].description",
        "lines[3].quantity",
    }
    assert error["message"] == "5 fields are invalid."


def test_it_names_missing_required_fields(api: Any) -> None:
    response = api.post("/invoices", {})

    assert fields_of(response) == {
        name: "required"
        for name in ("external_id", "customer", "number", "currency", "amount_due", "issued_at")
    }


@pytest.mark.parametrize(
    "issued_at",
    [
        "2026-03-01T09:00:00",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "1969-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "2026-02-30",
        "yesterday",
        "",
        1772323200,
        None,
        ["2026-03-01"],
        True,
    ],
    ids=[
        "no-offset",
        "year-9999",
        "year-9999-west",
        "year-1-east",
        "before-1970",
        "year-2200",
        "february-30",
        "word",
        "empty",
        "epoch-number",
        "null",
        "array",
        "bool",
    ],
)
def test_it_rejects_an_instant_without_an_offset_or_out_of_range(
    api: Any, customer: dict[str, Any], issued_at: Any
) -> None:
    response = api.post("/invoices", invoice_body(issued_at=issued_at))

    assert set(fields_of(response)) == {"issued_at"}


def test_it_rejects_a_status_other_than_draft_or_open_for_a_new_invoice(
    api: Any, customer: dict[str, Any]
) -> None:
    response = api.post("/invoices", invoice_body(status="paid"))

    assert set(fields_of(response)) == {"status"}


def test_it_gets_one_invoice_and_answers_404_for_a_missing_one(
    api: Any, invoice: dict[str, Any]
) -> None:
    assert api.get(f"/invoices/{invoice['id']}").json() == invoice
    assert error_of(api.get(f"/invoices/{invoice['id'] + 1}"), 404)["code"] == "not_found"


def test_it_voids_an_invoice_and_then_refuses_to_mark_it_uncollectible(
    api: Any, invoice: dict[str, Any]
) -> None:
    voided = api.post(f"/invoices/{invoice['id']}/void", {"reason": "sent twice"})

    assert voided.status_code == 200
    assert voided.json()["status"] == "void"
    assert Event.objects.get(type="invoice.voided").data == {"from": "open", "reason": "sent twice"}
    assert set(fields_of(api.post(f"/invoices/{invoice['id']}/mark-uncollectible", {}), 409)) == {
        "status"
    }


def test_it_marks_an_invoice_uncollectible(api: Any, invoice: dict[str, Any]) -> None:
    response = api.post(f"/invoices/{invoice['id']}/mark-uncollectible", {})

    assert response.json()["status"] == "uncollectible"
    assert Event.objects.filter(type="invoice.marked_uncollectible").count() == 1


def test_a_status_change_of_a_missing_invoice_is_404(api: Any) -> None:
    assert error_of(api.post("/invoices/12345/void", {}), 404)["code"] == "not_found"


class TestListing:
    @pytest.fixture(autouse=True)
    def invoices(self, api: Any) -> None:
        api.post("/customers", customer_body("cus_1"))
        api.post("/customers", customer_body("cus_2", phone=None))
        # Overdue at NOW (2026-03-16T03:00Z): open, due before, money remaining.
        api.post("/invoices", invoice_body("in_overdue", due_at="2026-03-15T00:00:00Z"))
        api.post("/invoices", invoice_body("in_due_later", due_at="2026-03-31T00:00:00Z"))
        api.post("/invoices", invoice_body("in_paid", customer="cus_2", due_at="2026-03-01"))
        api.post("/payments", payment_body("in_paid", amount=123450))
        api.post(
            "/invoices",
            invoice_body("in_draft", status="draft", currency="JPY", amount_due=4980, lines=[]),
        )

    def ids(self, api: Any, **params: Any) -> list[str]:
        response = api.get("/invoices", **params)
        assert response.status_code == 200, response.content
        return [invoice["external_id"] for invoice in response.json()["results"]]

    def test_it_lists_invoices_newest_first(self, api: Any) -> None:
        assert self.ids(api) == ["in_draft", "in_paid", "in_due_later", "in_overdue"]

    def test_it_filters_by_external_id(self, api: Any) -> None:
        assert self.ids(api, external_id="in_paid") == ["in_paid"]

    def test_it_filters_by_the_customers_external_id(self, api: Any) -> None:
        assert self.ids(api, customer="cus_2") == ["in_paid"]
        assert self.ids(api, customer="cus_nobody") == []

    def test_it_filters_by_status(self, api: Any) -> None:
        assert self.ids(api, status="paid") == ["in_paid"]
        assert self.ids(api, status="draft") == ["in_draft"]
        assert self.ids(api, status="open") == ["in_due_later", "in_overdue"]

    def test_it_filters_overdue_invoices_as_of_now(self, api: Any) -> None:
        assert self.ids(api, overdue="true") == ["in_overdue"]
        assert self.ids(api, overdue="false") == ["in_draft", "in_paid", "in_due_later"]

    def test_it_filters_by_currency_and_collection_method(self, api: Any) -> None:
        assert self.ids(api, currency="jpy") == ["in_draft"]
        assert self.ids(api, collection_method="charge_automatically") == []

    def test_it_combines_filters(self, api: Any) -> None:
        assert self.ids(api, customer="cus_1", status="open", overdue="false") == ["in_due_later"]

    @pytest.mark.parametrize(
        "params",
        [
            {"status": "late"},
            {"overdue": "maybe"},
            {"currency": "XYZ"},
            {"external_id": "a\x00"},
            {"customer": "x" * 256},
            {"collection_method": "cash"},
        ],
    )
    def test_it_rejects_a_bad_filter_with_a_422_naming_it(
        self, api: Any, params: dict[str, str]
    ) -> None:
        assert set(fields_of(api.get("/invoices", **params))) == set(params)
