from __future__ import annotations

from typing import Any

from dunning.ledger.models import Customer, Event
from tests.api.conftest import customer_body, error_of, fields_of


def test_it_creates_a_customer_and_answers_201_with_its_id_and_fields(api: Any) -> None:
    response = api.post("/customers", customer_body())

    assert response.status_code == 201
    body = response.json()
    assert body["id"] == Customer.objects.get(external_id="cus_1").pk
    assert body | {"id": 0} == {
        "id": 0,
        "external_id": "cus_1",
        "name": "Somchai Jaidee",
        "email": "somchai@example.co.th",
        "phone": "+66812345678",
        "locale": "th-TH",
        "time_zone": "Asia/Bangkok",
        "country": "TH",
        "is_business": False,
        "metadata": {},
        "created_at": "2026-03-16T03:00:00Z",
        "updated_at": "2026-03-16T03:00:00Z",
    }


def test_it_updates_the_customer_with_the_same_external_id_and_answers_200(api: Any) -> None:
    created = api.post("/customers", customer_body()).json()

    response = api.post(
        "/customers", {"external_id": "cus_1", "name": "Somchai J.", "is_business": True}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == created["id"]
    assert body["name"] == "Somchai J."
    assert body["is_business"] is True
    assert body["email"] == "somchai@example.co.th"  # fields left out keep their value
    assert Customer.objects.count() == 1


def test_it_records_customer_created_and_customer_updated_events(api: Any) -> None:
    api.post("/customers", customer_body())
    api.post("/customers", customer_body(name="Somchai J."))
    api.post("/customers", customer_body(name="Somchai J."))  # no change, no event

    events = list(Event.objects.values_list("type", "source", "data"))
    assert events == [
        ("customer.created", "api", {"external_id": "cus_1"}),
        ("customer.updated", "api", {"changed": ["name"]}),
    ]


def test_it_normalises_email_country_locale_and_a_national_phone_number(api: Any) -> None:
    response = api.post(
        "/customers",
        customer_body(
            email="Somchai@Example.CO.TH",
            country="th",
            locale="th_th",
            phone="081 234 5678",
            time_zone=None,
        ),
    )

    body = response.json()
    assert (body["email"], body["country"], body["locale"], body["phone"]) == (
        "Somchai@example.co.th",
        "TH",
        "th-TH",
        "+66812345678",
    )


def test_a_new_customer_without_a_time_zone_takes_its_countrys_only_zone(api: Any) -> None:
    thai = api.post("/customers", customer_body("cus_th", time_zone=None, country="TH")).json()
    american = api.post(
        "/customers", customer_body("cus_us", time_zone=None, country="US", phone=None)
    ).json()

    assert thai["time_zone"] == "Asia/Bangkok"
    assert american["time_zone"] == "UTC"


def test_a_new_customer_needs_a_name(api: Any) -> None:
    response = api.post("/customers", {"external_id": "cus_1"})

    assert fields_of(response) == {"name": "required for a new customer"}
    assert not Customer.objects.exists()


def test_it_names_each_bad_customer_field(api: Any) -> None:
    response = api.post(
        "/customers",
        customer_body(
            email="not-an-email",
            country="XX",
            locale="zz-ZZ-not",
            time_zone="Mars/Olympus",
            is_business="yes",
        ),
    )

    assert set(fields_of(response)) == {"email", "country", "locale", "time_zone", "is_business"}


def test_it_refuses_an_email_whose_mailbox_name_is_not_ascii_changing_nothing(api: Any) -> None:
    api.post("/customers", customer_body())

    response = api.post("/customers", customer_body(email="สมชาย@example.co.th", name="New"))

    assert list(fields_of(response)) == ["email"]
    assert "SMTPUTF8" in fields_of(response)["email"]
    customer = Customer.objects.get()
    assert (customer.email, customer.name) == ("somchai@example.co.th", "Somchai Jaidee")


def test_it_accepts_an_email_on_an_internationalised_domain(api: Any) -> None:
    response = api.post("/customers", customer_body(email="somchai@ตัวอย่าง.ไทย"))

    assert response.status_code == 201
    assert response.json()["email"] == "somchai@ตัวอย่าง.ไทย"


def test_it_refuses_a_phone_number_that_is_not_one(api: Any) -> None:
    response = api.post("/customers", customer_body(phone="12"))

    assert set(fields_of(response)) == {"phone"}


def test_it_gets_one_customer_by_id(api: Any) -> None:
    created = api.post("/customers", customer_body()).json()

    response = api.get(f"/customers/{created['id']}")

    assert response.status_code == 200
    assert response.json() == created


def test_it_answers_404_for_a_customer_that_does_not_exist(api: Any) -> None:
    error = error_of(api.get("/customers/999"), 404)

    assert error["code"] == "not_found"


def test_it_lists_customers_newest_first_and_filters_them(api: Any) -> None:
    api.post("/customers", customer_body("cus_1", email="a@example.com", country="TH"))
    api.post(
        "/customers",
        customer_body("cus_2", email="b@example.com", country="JP", phone=None, time_zone=None),
    )
    api.post("/customers", customer_body("cus_3", email="c@example.com", country="TH"))

    def ids(**params: Any) -> list[str]:
        response = api.get("/customers", **params)
        assert response.status_code == 200, response.content
        return [c["external_id"] for c in response.json()["results"]]

    assert ids() == ["cus_3", "cus_2", "cus_1"]
    assert ids(external_id="cus_2") == ["cus_2"]
    assert ids(country="th") == ["cus_3", "cus_1"]
    assert ids(email="B@EXAMPLE.COM") == ["cus_2"]
    assert ids(external_id="nobody") == []
