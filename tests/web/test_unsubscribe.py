"""RFC 8058 one-click unsubscribe (acceptance case EM02)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from dunning.engine import links
from dunning.engine.models import ContactOptOut
from dunning.ledger.models import Customer
from tests.conftest import NOW

ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture
def customer(make_customer: Callable[..., Any]) -> Customer:
    return make_customer("cus_en", name="Jane Doe", locale="en-GB")


@pytest.fixture
def path(customer: Customer) -> str:
    url = links.unsubscribe_link(customer, "email")
    assert url.startswith("https://pay.example.com/u/")
    return url.removeprefix("https://pay.example.com")


def one_click(client: Client, path: str) -> Any:
    return client.post(path, ONE_CLICK, content_type="application/x-www-form-urlencoded")


def test_em02_a_one_click_post_unsubscribes_at_once_without_a_redirect(
    client: Client, path: str, customer: Customer
) -> None:
    response = one_click(client, path)

    assert response.status_code == 200  # 2xx, never 3xx
    assert "Location" not in response
    opt_out = ContactOptOut.objects.get(customer=customer)
    assert (opt_out.channel, opt_out.source, opt_out.created_at) == ("email", "one_click", NOW)
    assert "You are unsubscribed" in response.content.decode()


def test_em02_a_get_only_shows_the_confirmation_page(
    client: Client, path: str, customer: Customer
) -> None:
    response = client.get(path)

    assert response.status_code == 200
    html = response.content.decode()
    assert '<form method="post">' in html
    assert "Unsubscribe</button>" in html
    assert "Jane Doe" in html
    assert not ContactOptOut.objects.exists()
    # A link scanner fetching it again changes nothing either.
    client.head(path)
    client.get(path)
    assert not ContactOptOut.objects.exists()


def test_em02_post_then_get(client: Client, path: str, customer: Customer) -> None:
    assert one_click(client, path).status_code == 200

    response = client.get(path)

    assert response.status_code == 200
    assert "You have already unsubscribed" in response.content.decode()
    assert ContactOptOut.objects.count() == 1


def test_a_multipart_one_click_post_is_accepted(
    client: Client, path: str, customer: Customer
) -> None:
    response = client.post(path, {"List-Unsubscribe": "One-Click"})  # multipart/form-data

    assert response.status_code == 200
    assert ContactOptOut.objects.get(customer=customer).source == "one_click"


def test_the_page_s_button_unsubscribes_too(client: Client, path: str, customer: Customer) -> None:
    response = client.post(path)

    assert response.status_code == 200
    assert ContactOptOut.objects.get(customer=customer).source == "page"


def test_a_repeated_post_keeps_one_opt_out_and_still_answers_200(
    client: Client, path: str, customer: Customer
) -> None:
    assert client.post(path).status_code == 200
    assert one_click(client, path).status_code == 200

    opt_out = ContactOptOut.objects.get(customer=customer)
    assert opt_out.source == "page"  # the first record stays


def test_opt_outs_are_per_channel(client: Client, customer: Customer) -> None:
    sms = links.unsubscribe_link(customer, "sms").removeprefix("https://pay.example.com")

    assert one_click(client, sms).status_code == 200

    assert list(ContactOptOut.objects.values_list("channel", flat=True)) == ["sms"]


def test_a_thai_customer_gets_the_page_in_thai(
    client: Client, make_customer: Callable[..., Any]
) -> None:
    customer = make_customer("cus_th", name="สมชาย ใจดี", locale="th-TH")
    path = links.unsubscribe_link(customer, "email").removeprefix("https://pay.example.com")

    page = client.get(path).content.decode()
    done = one_click(client, path).content.decode()

    assert '<html lang="th">' in page
    assert "หยุดรับการแจ้งเตือนทางอีเมล" in page
    assert "ยกเลิกการรับการแจ้งเตือนเรียบร้อยแล้ว" in done


def test_a_bad_token_is_not_found_and_records_nothing(
    client: Client, path: str, customer: Customer, make_invoice: Callable[..., Any]
) -> None:
    token = path.removeprefix("/u/")
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    gone = links.unsubscribe_token(10**9, "email")
    from tests.case_factories import make_case

    case = make_case(make_invoice("in_1", customer="cus_en"))
    pay_token = links.pay_token(customer.pk, case.pk)

    for bad in (forged, gone, pay_token, "nonsense"):
        response = one_click(client, f"/u/{bad}")
        assert response.status_code == 404, bad
        assert "This link is not valid" in response.content.decode()
        assert client.get(f"/u/{bad}").status_code == 404
    assert not ContactOptOut.objects.exists()


def test_an_unknown_channel_cannot_be_signed(customer: Customer) -> None:
    with pytest.raises(ValueError):
        links.unsubscribe_link(customer, "pigeon")


def test_other_methods_are_refused(client: Client, path: str) -> None:
    assert client.put(path).status_code == 405
    assert client.delete(path).status_code == 405
    assert not ContactOptOut.objects.exists()
