from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dunning.ledger import services
from tests.conftest import NOW, ApiClient


@pytest.fixture
def seven_customers(db: None) -> list[str]:
    ids = [f"cus_{n}" for n in range(1, 8)]
    for external_id in ids:
        services.upsert_customer(
            external_id=external_id, name="N", country="TH", now=NOW, source="test"
        )
    return ids


def follow(api: ApiClient, path: str, link_name: str, **params: Any) -> list[list[str]]:
    """Every page from the first, following `next` (or `previous`) links."""
    pages = []
    response = api.get(path, **params)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append([item.get("external_id") or item["type"] for item in body["results"]])
        link = body[link_name]
        if link is None:
            return pages
        query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
        response = api.get(path, **query)


def test_it_pages_through_customers_newest_first_by_cursor(
    api: ApiClient, seven_customers: list[str]
) -> None:
    pages = follow(api, "/customers", "next", page_size=3)

    assert pages == [["cus_7", "cus_6", "cus_5"], ["cus_4", "cus_3", "cus_2"], ["cus_1"]]


def test_a_page_links_back_to_the_previous_one(api: ApiClient, seven_customers: list[str]) -> None:
    first = api.get("/customers", page_size=3).json()
    assert first["previous"] is None
    second = api.get(
        "/customers", **{k: v[0] for k, v in parse_qs(urlsplit(first["next"]).query).items()}
    ).json()

    back = api.get(
        "/customers", **{k: v[0] for k, v in parse_qs(urlsplit(second["previous"]).query).items()}
    ).json()

    assert [c["external_id"] for c in back["results"]] == ["cus_7", "cus_6", "cus_5"]


def test_a_cursor_keeps_the_filters_of_the_first_page(
    api: ApiClient, seven_customers: list[str]
) -> None:
    services.upsert_customer(external_id="cus_jp", name="N", country="JP", now=NOW, source="test")

    pages = follow(api, "/customers", "next", page_size=4, country="TH")

    assert [c for page in pages for c in page] == [f"cus_{n}" for n in range(7, 0, -1)]


def test_rows_written_after_the_first_page_do_not_shift_the_next_one(
    api: ApiClient, seven_customers: list[str]
) -> None:
    first = api.get("/customers", page_size=3).json()
    services.upsert_customer(external_id="cus_late", name="N", now=NOW, source="test")

    second = api.get(
        "/customers", **{k: v[0] for k, v in parse_qs(urlsplit(first["next"]).query).items()}
    ).json()

    assert [c["external_id"] for c in second["results"]] == ["cus_4", "cus_3", "cus_2"]


def test_events_are_read_oldest_first_so_a_reader_can_follow_new_ones(
    api: ApiClient, seven_customers: list[str]
) -> None:
    pages = follow(api, "/events", "next", page_size=5)

    assert [len(page) for page in pages] == [5, 2]
    assert {t for page in pages for t in page} == {"customer.created"}


def test_page_size_is_clamped_between_1_and_500(api: ApiClient, seven_customers: list[str]) -> None:
    assert len(api.get("/customers", page_size=0).json()["results"]) == 1
    assert len(api.get("/customers", page_size=10**6).json()["results"]) == 7


def test_an_empty_list_has_no_links(api: ApiClient) -> None:
    for path in (
        "/customers",
        "/invoices",
        "/payments",
        "/payment-attempts",
        "/payment-methods",
        "/events",
    ):
        assert api.get(path).json() == {"previous": None, "next": None, "results": []}
