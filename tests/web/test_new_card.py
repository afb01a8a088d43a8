"""A new card, saved on Stripe's own page (Checkout in setup mode) and retried at once.

The fake Stripe on loopback answers the Checkout Session calls.  Stripe's shared
fixtures hold no Checkout Session, so the session is written here with the
fields stripe-python's `checkout.Session` declares (id, object, mode, status,
customer, url, setup_intent); the SetupIntent and the card inside it are the
shared fixtures' own, changed only where this test needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client, override_settings

from dunning.engine import links, policies
from dunning.engine.cases import sync_cases
from dunning.engine.models import Case, CaseEvent
from dunning.engine.retries import retry_due
from dunning.gateways.base import CardSetupRequest
from dunning.gateways.registry import get_gateway
from dunning.ledger import services
from dunning.ledger.models import Customer, Event, PaymentMethod
from tests.conftest import NOW
from tests.gateways.stripe_server import (
    FakeStripe,
    api_error,
    stripe_object,
    stripe_resource,
    variant,
)
from tests.web.test_pay_now import form_fields, jane_s_invoice

SESSIONS = "/v1/checkout/sessions"
SUBSCRIPTIONS = "/v1/subscriptions"
SESSION_ID = "cs_test_a1NewCard0000000000000000000000000000000000000000"
STRIPE_PAGE = f"https://checkout.stripe.com/c/pay/{SESSION_ID}"


def setup_intent(status: str = "succeeded", **card: Any) -> dict[str, Any]:
    method = stripe_object("payment_method_card")
    method = variant(method, id="pm_new", customer="cus_en", card={**method["card"], **card})
    return variant(
        stripe_resource("setup_intent"), status=status, customer="cus_en", payment_method=method
    )


def session(
    status: str = "complete", *, customer: str = "cus_en", intent: Any = None
) -> dict[str, Any]:
    return {
        "id": SESSION_ID,
        "object": "checkout.session",
        "mode": "setup",
        "status": status,
        "customer": customer,
        "url": STRIPE_PAGE if status == "open" else None,
        "setup_intent": intent if intent is not None else setup_intent(),
        "livemode": False,
    }


def stripe_saves(
    stripe: FakeStripe,
    saved: dict[str, Any] | None = None,
    *,
    customer: str = "cus_en",
    subscriptions: Sequence[dict[str, Any]] = (),
) -> None:
    """Stripe's answers when the customer comes back: the finished session, the customer
    made to default to the card, and the customer's subscriptions."""
    saved = saved or session(customer=customer)
    stripe.reply(200, saved, method="GET", path=f"{SESSIONS}/{saved['id']}")
    stripe.reply(200, stripe_object("customer_delinquent"), path=f"/v1/customers/{customer}")
    listed = {
        "object": "list",
        "data": list(subscriptions),
        "has_more": False,
        "url": SUBSCRIPTIONS,
    }
    stripe.reply(200, listed, method="GET", path=SUBSCRIPTIONS)


@pytest.fixture
def case(jane: Customer, make_invoice: Callable[..., Any]) -> Case:
    jane_s_invoice(make_invoice)
    # The card on file has expired: no retry on it until the customer brings another.
    failed_at = NOW - timedelta(days=1)
    services.record_payment_attempt(
        invoice="in_3",
        attempted_at=failed_at,
        outcome="failed",
        now=failed_at,
        source="test",
        decline_code="expired_card",
        gateway="stripe",
        payment_method="pm_cus_en",
    )
    policies.ensure_default_policies(now=failed_at)
    sync_cases(now=failed_at)
    return Case.objects.get()


def pay_path(case: Case) -> str:
    return links.pay_link(case.customer, case).removeprefix("https://pay.example.com")


def press_new_card(client: Client, page: str) -> Any:
    html = client.get(page).content.decode()
    action = re.search(r'<form method="post" action="([^"]+)" class="new-card">', html)
    assert action, "the page offers a new card"
    return client.post(action[1], form_fields(html))


def test_the_pay_page_sends_the_customer_to_stripe_for_a_new_card(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    stripe_gateway.reply(200, session("open"), path=SESSIONS)
    page = pay_path(case)  # once: a link made a second later is signed differently

    response = press_new_card(client, page)

    assert response.status_code == 303 and response["Location"] == STRIPE_PAGE
    [sent] = [r for r in stripe_gateway.requests if r.path == SESSIONS]
    assert sent.form["mode"] == "setup" and sent.form["customer"] == "cus_en"
    assert sent.form["allowed_payment_method_types[0]"] == "card"
    assert sent.form["locale"] == "en"
    assert sent.form["setup_intent_data[metadata][dunning_card_setup]"] == "true"
    assert sent.form["success_url"] == (
        f"https://pay.example.com{page}/card/return?session_id={{CHECKOUT_SESSION_ID}}"
    )
    assert sent.form["cancel_url"] == f"https://pay.example.com{page}"
    assert (sent.idempotency_key or "").startswith("card:cus_en:")
    assert not PaymentMethod.objects.filter(external_id="pm_new").exists()


def test_back_from_stripe_the_new_card_is_the_default_and_is_retried_at_once(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    stripe_saves(stripe_gateway)

    back = client.get(f"{pay_path(case)}/card/return", {"session_id": SESSION_ID})

    html = back.content.decode()
    assert back.status_code == 200
    assert "Your new card is saved" in html and "Mastercard card ending in 4444" in html
    [read, made_default, listed] = stripe_gateway.requests
    assert parse_qs(urlsplit(read.path).query) == {} and read.form == {
        "expand[0]": "setup_intent.payment_method"
    }
    assert made_default.form == {"invoice_settings[default_payment_method]": "pm_new"}
    assert listed.form == {"customer": "cus_en", "status": "all", "limit": "100"}
    new = PaymentMethod.objects.get(external_id="pm_new")
    assert (new.is_default, new.brand, new.last4, new.exp_month, new.exp_year) == (
        True,
        "mastercard",
        "4444",
        3,
        2030,
    )
    assert not PaymentMethod.objects.get(external_id="pm_cus_en").is_default
    # The retry stage's next pass charges the new card at once, and the invoice is paid.
    case.refresh_from_db()
    assert (case.next_retry_at, case.retry_key) == (NOW, "")
    planned = retry_due(now=NOW, gateway=get_gateway())
    assert (planned.planned, planned.more_due) == (1, True)
    assert retry_due(now=NOW, gateway=get_gateway()).recovered == 1
    charge = stripe_gateway.charges[-1]
    assert (charge.form["payment_method"], charge.form["off_session"]) == ("pm_new", "true")
    case.refresh_from_db()
    assert case.state == "recovered"
    assert "a new card is on file: retry at once" in CaseEvent.objects.filter(
        case=case, type="retry.planned"
    ).values_list("reason", flat=True)

    # A reload saves nothing twice, plans no second retry, and asks Stripe nothing.
    events, asked = Event.objects.count(), len(stripe_gateway.requests)
    again = client.get(f"{pay_path(case)}/card/return", {"session_id": SESSION_ID})
    assert "Your new card is saved" in again.content.decode()
    assert "Mastercard card ending in 4444" in again.content.decode()
    assert Event.objects.count() == events
    assert len(stripe_gateway.requests) == asked


def test_a_session_not_finished_saves_nothing(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    unfinished = session("open", intent=setup_intent("requires_payment_method"))
    stripe_gateway.reply(200, unfinished, method="GET", path=f"{SESSIONS}/{SESSION_ID}")

    back = client.get(f"{pay_path(case)}/card/return", {"session_id": SESSION_ID})

    assert "Your new card is not saved yet" in back.content.decode()
    assert not PaymentMethod.objects.filter(external_id="pm_new").exists()
    assert [r.path for r in stripe_gateway.requests] == [f"{SESSIONS}/{SESSION_ID}"]


def test_someone_else_s_session_is_not_found_and_saves_nothing(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    stripe_gateway.reply(
        200, session(customer="cus_other"), method="GET", path=f"{SESSIONS}/{SESSION_ID}"
    )

    back = client.get(f"{pay_path(case)}/card/return", {"session_id": SESSION_ID})

    assert back.status_code == 404
    assert not PaymentMethod.objects.filter(external_id="pm_new").exists()


def test_the_return_needs_a_session_id_that_is_only_an_id(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    for odd in ("", "cs_1/../../v1/customers", "cs 1"):
        response = client.get(f"{pay_path(case)}/card/return", {"session_id": odd})
        assert response.status_code == 404
    assert client.get("/pay/forged/card/return", {"session_id": "cs_1"}).status_code == 404
    assert client.get(f"{pay_path(case)}/card").status_code == 405
    assert client.post(f"{pay_path(case)}/card").status_code == 403  # no CSRF token
    assert not stripe_gateway.requests


def test_stripe_down_is_told_plainly_and_nothing_changes(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    for _ in range(3):  # the library's own two retries included
        stripe_gateway.reply(
            500, api_error("api_error", "Something went wrong on Stripe's end."), path=SESSIONS
        )

    response = press_new_card(client, pay_path(case))

    assert response.status_code == 503
    assert "We could not reach the card page just now" in response.content.decode()
    assert PaymentMethod.objects.count() == 1


def test_a_thai_customer_updates_the_card_from_the_card_page(
    client: Client,
    make_customer: Callable[..., Any],
    make_card: Callable[..., Any],
    stripe_gateway: FakeStripe,
) -> None:
    customer = make_customer("cus_en", name="สมชาย ใจดี", locale="th-TH", country="TH")
    old = make_card("pm_cus_en", customer="cus_en")
    page = links.card_link(customer, old).removeprefix("https://pay.example.com")
    html = client.get(page).content.decode()
    assert "อัปเดตข้อมูลบัตร</button>" in html
    stripe_gateway.reply(200, session("open"), path=SESSIONS)

    response = client.post(f"{page}/new", form_fields(html))

    assert response.status_code == 303 and response["Location"] == STRIPE_PAGE
    [sent] = stripe_gateway.requests
    assert sent.form["locale"] == "th"
    assert sent.form["success_url"].startswith(f"https://pay.example.com{page}/new/return?")
    stripe_saves(stripe_gateway)
    back = client.get(f"{page}/new/return", {"session_id": SESSION_ID}).content.decode()
    assert "บันทึกบัตรใบใหม่ของท่านแล้ว" in back and "ลงท้ายด้วย 4444" in back
    assert PaymentMethod.objects.get(external_id="pm_new").is_default
    # The old card's link now shows the card we charge.
    assert "หมายเลขลงท้าย 4444" in client.get(page).content.decode()


@override_settings(DUNNING_GATEWAY="manual")
def test_without_a_card_page_at_the_gateway_the_pages_say_to_contact_us(
    client: Client, case: Case
) -> None:
    html = client.get(pay_path(case)).content.decode()
    assert "Use a new card" not in html
    assert "please contact us" in html
    method = PaymentMethod.objects.get(external_id="pm_cus_en")
    card_page = links.card_link(case.customer, method).removeprefix("https://pay.example.com")
    assert "Update my card" not in client.get(card_page).content.decode()


def test_the_session_s_fields_are_stripe_s(stripe_gateway: FakeStripe) -> None:
    """The hand-written session uses only fields stripe-python's Session declares."""
    import stripe

    declared = set(stripe.checkout.Session.__annotations__)
    assert set(session()) <= declared | {"id", "object"}
    assert json.loads(json.dumps(session()))  # plain JSON


def test_an_old_return_link_never_brings_back_an_older_card(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    first = f"{pay_path(case)}/card/return"
    stripe_saves(stripe_gateway)
    client.get(first, {"session_id": SESSION_ID})
    # A second new card later, from another session.
    later = "cs_test_b2LaterCard00000000000000000000000000000000000000"
    newer = session(intent=setup_intent(last4="1881"))
    newer["setup_intent"]["payment_method"]["id"] = "pm_newer"
    stripe_saves(stripe_gateway, {**newer, "id": later})
    client.get(first, {"session_id": later})
    assert PaymentMethod.objects.get(is_default=True).external_id == "pm_newer"
    asked = len(stripe_gateway.requests)

    # The first session's link, from the browser's history.
    again = client.get(first, {"session_id": SESSION_ID}).content.decode()

    assert "ending in 4444" in again
    assert PaymentMethod.objects.get(is_default=True).external_id == "pm_newer"
    assert len(stripe_gateway.requests) == asked  # Stripe's default is not touched either


def test_a_subscription_that_names_the_old_card_is_moved_to_the_new_one(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    # Stripe charges a subscription's own default card before the customer's.
    overdue = variant(
        stripe_object("subscription_past_due"),
        customer="cus_en",
        default_payment_method="pm_cus_en",
    )
    ended = variant(
        stripe_object("subscription_canceled"), customer="cus_en", default_payment_method="pm_x"
    )
    stripe_saves(stripe_gateway, subscriptions=[overdue, ended])
    stripe_gateway.reply(200, overdue, path=f"{SUBSCRIPTIONS}/{overdue['id']}")

    client.get(f"{pay_path(case)}/card/return", {"session_id": SESSION_ID})

    [moved] = [r for r in stripe_gateway.requests if r.path.startswith(f"{SUBSCRIPTIONS}/")]
    assert moved.path == f"{SUBSCRIPTIONS}/{overdue['id']}"
    assert moved.form == {"default_payment_method": "pm_new"}
    assert moved.idempotency_key == f"default:{SESSION_ID}:{overdue['id']}"


def test_at_the_demo_bank_a_new_card_is_saved_at_once_and_pays_the_retry(
    client: Client, case: Case
) -> None:
    # `make demo`'s bank: its card page asks nothing, the customer is back at once.
    with override_settings(DUNNING_GATEWAY="demo"):
        page = pay_path(case)
        response = press_new_card(client, page)
        assert response.status_code == 303
        back = urlsplit(response["Location"])
        assert f"{back.scheme}://{back.netloc}{back.path}" == (
            f"https://pay.example.com{page}/card/return"
        )
        saved = client.get(f"{back.path}?{back.query}")
        again = client.get(f"{back.path}?{back.query}")

        html = saved.content.decode()
        assert "Your new card is saved" in html and "Visa card ending in" in html
        assert again.content.decode() == html
        new = PaymentMethod.objects.get(external_id__startswith="pm_demonew_")
        assert new.is_default and not PaymentMethod.objects.get(external_id="pm_cus_en").is_default
        assert PaymentMethod.objects.count() == 2  # the reload saved nothing twice
        planned = retry_due(now=NOW, gateway=get_gateway())
        assert planned.planned == 1
        assert retry_due(now=NOW, gateway=get_gateway()).recovered == 1

    case.refresh_from_db()
    assert case.state == "recovered"


def test_at_the_demo_bank_another_customer_s_setup_is_not_found(
    client: Client, case: Case, make_customer: Callable[..., Any]
) -> None:
    with override_settings(DUNNING_GATEWAY="demo"):
        response = press_new_card(client, pay_path(case))
        reference = parse_qs(urlsplit(response["Location"]).query)["session_id"][0]
        make_customer("cus_other")
        other = get_gateway().start_card_setup(  # type: ignore[attr-defined]
            CardSetupRequest(
                customer_external_id="cus_other",
                return_url="https://pay.example.com/x",
                cancel_url="https://pay.example.com/y",
                locale="en",
                idempotency_key="card:cus_other:1",
            )
        )
        someone_elses = parse_qs(urlsplit(other).query)["session_id"][0]

        mine = client.get(f"{pay_path(case)}/card/return", {"session_id": reference})
        theirs = client.get(f"{pay_path(case)}/card/return", {"session_id": someone_elses})
        forged = client.get(f"{pay_path(case)}/card/return", {"session_id": "demo_seti_x_y"})

    assert mine.status_code == 200
    assert theirs.status_code == forged.status_code == 404
    assert PaymentMethod.objects.filter(external_id__startswith="pm_demonew_").count() == 1
