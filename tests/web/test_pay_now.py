"""Paying on the pay page with the saved card, through Stripe on loopback, 3-D Secure included.

The fake Stripe (tests/gateways/stripe_server.py) answers with Stripe's own
PaymentIntent fixture, changed only in the fields that say what this test
needs (status, next_action, metadata, customer).  The browser's part is the
Django test client with CSRF checks on: it opens the page, posts its form,
and follows the bank's redirect back to the return URL as Stripe would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core import signing
from django.test import Client, override_settings

from dunning.engine import links, pay_now
from dunning.engine.models import Case, CaseEvent, CaseInvoice, Message
from dunning.engine.retries import AUTHENTICATION_WINDOW, LEASE
from dunning.gateways.demo import declines_every_charge
from dunning.gateways.demo import reference_for as demo_reference
from dunning.gateways.registry import get_gateway, use_gateway
from dunning.gateways.simulated import SimulatedGateway, declined
from dunning.ledger import services
from dunning.ledger.models import Customer, Invoice, PaymentAttempt
from tests.case_factories import make_case
from tests.conftest import NOW
from tests.gateways.stripe_server import (
    PAYMENT_INTENTS,
    FakeStripe,
    api_error,
    card_error,
    stripe_object,
    variant,
)

BANK_PAGE = "https://hooks.stripe.com/3d_secure_2/hosted?merchant=acct_1&payment_intent=pi_x"


@pytest.fixture
def case(jane: Customer, make_invoice: Callable[..., Any]) -> Case:
    return make_case(jane_s_invoice(make_invoice))


@pytest.fixture
def thai(
    make_customer: Callable[..., Any],
    make_invoice: Callable[..., Any],
    make_card: Callable[..., Any],
) -> Case:
    """Somchai's case: invoice INV-9, ฿990.00, with his saved Visa card (pm_cus_th)."""
    make_customer("cus_th", name="สมชาย ใจดี", locale="th-TH")
    make_card("pm_cus_th", customer="cus_th")
    return make_case(make_invoice("in_th", customer="cus_th", number="INV-9", amount_due=99000))


def jane_s_invoice(make_invoice: Callable[..., Any]) -> Any:
    """Jane's invoice A-17, $49.99, charged automatically."""
    return make_invoice(
        "in_3",
        customer="cus_en",
        number="A-17",
        currency="USD",
        amount_due=4999,
        collection_method="charge_automatically",
    )


def paid_by_transfer() -> None:
    """A-17 paid in full by bank transfer, recorded by someone else."""
    services.record_payment(
        invoice="in_3",
        amount=4999,
        currency="USD",
        received_at=NOW,
        method="bank_transfer",
        now=NOW,
        source="test",
    )


def add_younger_invoice(case: Case, make_invoice: Callable[..., Any]) -> Any:
    """Jane's next invoice, A-18, in the same case: the page offers A-17 first."""
    later = make_invoice(
        "in_4",
        customer="cus_en",
        number="A-18",
        currency="USD",
        amount_due=2500,
        collection_method="charge_automatically",
    )
    CaseInvoice.objects.create(case=case, invoice=later, added_at=NOW)
    return later


def intent(status: str, **changes: Any) -> dict[str, Any]:
    """Stripe's PaymentIntent fixture as this invoice's, in `status`."""
    return variant(
        stripe_object("payment_intent_succeeded"),
        status=status,
        amount=4999,
        customer="cus_en",
        metadata={"dunning_invoice": "in_3", "dunning_case": "1"},
        **changes,
    )


def needs_3ds() -> dict[str, Any]:
    return intent(
        "requires_action",
        next_action={
            "type": "redirect_to_url",
            "redirect_to_url": {"url": BANK_PAGE, "return_url": "https://pay.example.com/x"},
        },
    )


def path_of(case: Case) -> str:
    return links.pay_link(case.customer, case).removeprefix("https://pay.example.com")


def form_fields(html: str) -> dict[str, str]:
    """The hidden fields of the page's form, as a browser would send them."""
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))


def pay(client: Client, case: Case) -> Any:
    """Open the page and press its button, as a browser would (CSRF cookie and field)."""
    page = client.get(path_of(case))
    assert page.status_code == 200
    return client.post(f"{path_of(case)}/confirm", form_fields(page.content.decode()))


def test_the_page_offers_to_pay_the_oldest_invoice_with_the_saved_card(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    html = client.get(path_of(case)).content.decode()

    assert "Pay invoice A-17 now: <strong>$49.99</strong>" in html
    assert "Visa card ending in 4242" in html
    assert "Pay $49.99 now</button>" in html
    assert "To pay, please contact us" not in html


def test_a_thai_customer_is_offered_it_in_thai(
    client: Client, thai: Case, stripe_gateway: FakeStripe
) -> None:

    html = client.get(path_of(thai)).content.decode()

    assert "ชำระใบแจ้งหนี้เลขที่ INV-9 จำนวน <strong>฿990.00</strong>" in html
    assert "ชำระเงิน ฿990.00</button>" in html


def test_a_bank_asking_for_3d_secure_sends_the_customer_there_and_back_to_a_paid_invoice(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    stripe_gateway.reply(200, needs_3ds())

    response = pay(client, case)

    # Off to the bank's page, nothing recorded yet.
    assert response.status_code == 303 and response["Location"] == BANK_PAGE
    [sent] = stripe_gateway.charges
    assert sent.form["confirm"] == "true" and "off_session" not in sent.form
    # The page's own address and /return (its token signed the second it was made).
    return_url = re.fullmatch(
        r"https://pay\.example\.com/pay/([^/]+)/return", sent.form["return_url"]
    )
    assert return_url is not None
    assert links.read_pay_token(return_url[1]).case_id == case.pk
    assert sent.form["amount"] == "4999" and sent.form["currency"] == "usd"
    assert sent.form["payment_method"] == "pm_cus_en"
    assert sent.form["metadata[dunning_invoice]"] == "in_3"
    assert (sent.idempotency_key or "").startswith(f"pay{case.pk}:try1:")
    assert not PaymentAttempt.objects.exists()

    # The customer confirms; the bank sends them back with the PaymentIntent's id.
    reference = needs_3ds()["id"]
    stripe_gateway.reply(
        200, intent("succeeded"), method="GET", path=f"{PAYMENT_INTENTS}/{reference}"
    )
    back = client.get(f"{path_of(case)}/return", {"payment_intent": reference})

    html = back.content.decode()
    assert back.status_code == 200
    assert "Thank you: payment received" in html and "$49.99" in html
    attempt = PaymentAttempt.objects.get()
    assert (attempt.outcome, attempt.reference, attempt.gateway) == (
        "succeeded",
        reference,
        "stripe",
    )
    assert Invoice.objects.get(external_id="in_3").status == "paid"
    case.refresh_from_db()
    assert case.state == "recovered"
    assert Message.objects.filter(case=case, step="payment_received").exists()

    # A reload of the return page records nothing twice.
    stripe_gateway.reply(
        200, intent("succeeded"), method="GET", path=f"{PAYMENT_INTENTS}/{reference}"
    )
    again = client.get(f"{path_of(case)}/return", {"payment_intent": reference})
    assert "Thank you: payment received" in again.content.decode()
    assert "we have received $49.99 for invoice A-17" in again.content.decode()
    assert PaymentAttempt.objects.count() == 1


def test_back_from_the_bank_without_authenticating_nothing_is_recorded_against_the_card(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    """The customer failed (or gave up) 3-D Secure: Stripe never asked the issuer, so no
    decline is recorded (it would count toward the card's network caps and be told as
    "the bank declined"); nothing was taken and the customer may try again at once."""
    stripe_gateway.reply(200, needs_3ds())
    assert pay(client, case).status_code == 303
    reference = needs_3ds()["id"]
    not_authenticated = intent(
        "requires_payment_method",
        latest_charge=None,
        amount_received=0,
        last_payment_error={
            "code": "payment_intent_authentication_failure",
            "message": "The provided PaymentMethod has failed authentication. You can "
            "provide payment_method_data or a new PaymentMethod to attempt to fulfill this "
            "PaymentIntent again.",
            "type": "invalid_request_error",
        },
    )
    stripe_gateway.reply(
        200, not_authenticated, method="GET", path=f"{PAYMENT_INTENTS}/{reference}"
    )

    back = client.get(f"{path_of(case)}/return", {"payment_intent": reference})

    html = back.content.decode()
    assert "nothing was charged" in html
    assert "did not go through" not in html
    assert not PaymentAttempt.objects.exists()
    case.refresh_from_db()
    assert (case.retry_key, case.charge_in_doubt_since) == ("", None)

    # Pressed again: a new payment, under a new key.
    stripe_gateway.reply(200, intent("succeeded"))
    assert "Thank you: payment received" in pay(client, case).content.decode()
    first, second = stripe_gateway.charges
    assert first.idempotency_key != second.idempotency_key


def test_pressing_twice_before_the_bank_answers_is_one_payment(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    stripe_gateway.reply(200, needs_3ds())

    first, second = pay(client, case), pay(client, case)

    assert first["Location"] == second["Location"] == BANK_PAGE
    keys = {request.idempotency_key for request in stripe_gateway.requests}
    assert len(keys) == 1 and len(stripe_gateway.charges) == 1  # the second was a replay


def test_a_return_naming_another_invoice_s_payment_records_nothing(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    reference = needs_3ds()["id"]
    someone_elses = variant(
        intent("succeeded"), metadata={"dunning_invoice": "in_other"}, customer="cus_other"
    )
    stripe_gateway.reply(200, someone_elses, method="GET", path=f"{PAYMENT_INTENTS}/{reference}")

    back = client.get(f"{path_of(case)}/return", {"payment_intent": reference})

    assert "We could not take the payment just now" in back.content.decode()
    assert not PaymentAttempt.objects.exists()
    assert Invoice.objects.get(external_id="in_3").status == "open"


def test_a_decline_on_the_page_is_recorded_and_told_in_neutral_words(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    declined = stripe_object("payment_intent_last_payment_error_insufficient_funds")
    stripe_gateway.reply(402, card_error(declined))

    response = pay(client, case)

    html = response.content.decode()
    assert response.status_code == 200
    assert "The payment did not go through" in html
    assert "try again" in html
    for word in ("stolen", "lost", "fraud"):
        assert word not in html.lower()
    attempt = PaymentAttempt.objects.get()
    assert (attempt.outcome, attempt.decline_code) == ("failed", "insufficient_funds")


def test_the_timeline_tells_a_payment_sent_from_the_page_not_one_paid(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    # The event is written before the bank answers: an operator reading "the
    # customer paid" beside a case still owing the invoice is misled.
    declined = stripe_object("payment_intent_last_payment_error_insufficient_funds")
    stripe_gateway.reply(402, card_error(declined))

    pay(client, case)

    sent = CaseEvent.objects.get(case=case, type=pay_now.PAYMENT_SENT)
    assert "paid" not in sent.reason
    assert sent.reason == (
        "the customer asked to pay invoice A-17 on the pay page: the payment was sent "
        "to the gateway"
    )


def declined_for_good(
    invoice: str,
    card: str,
    *,
    code: str = "lost_card",
    amount: int | None = None,
    at: datetime = NOW - timedelta(hours=1),
    **codes: str,
) -> None:
    """A renewal charge of `invoice` on `card`, declined (an hour ago) and recorded."""
    services.record_payment_attempt(
        invoice=invoice,
        attempted_at=at,
        outcome="failed",
        now=NOW,
        source="stripe",
        amount=amount,
        decline_code=code,
        gateway="stripe",
        payment_method=card,
        **codes,
    )


@pytest.mark.parametrize(
    ("brand", "code", "codes"),
    [
        ("visa", "lost_card", {}),
        ("visa", "generic_decline", {"network_code": "43"}),  # Visa category 1
        ("mastercard", "generic_decline", {"network_advice_code": "03"}),
    ],
)
def test_a_card_declined_for_good_for_the_invoice_is_not_offered_nor_charged(
    client: Client,
    case: Case,
    make_card: Callable[..., Any],
    stripe_gateway: FakeStripe,
    brand: str,
    code: str,
    codes: dict[str, str],
) -> None:
    make_card("pm_cus_en", customer="cus_en", brand=brand, now=NOW - timedelta(days=1))
    declined_for_good("in_3", "pm_cus_en", code=code, **codes)

    html = client.get(path_of(case)).content.decode()
    # An old form (or a crafted one) posted anyway.
    form = form_fields(html) | {"invoice": "in_3", "amount": "4999"}
    response = client.post(f"{path_of(case)}/confirm", form)

    assert "now</button>" not in html and "ending in 4242" not in html
    assert "Your bank declined a payment on the card we have on file" in html
    assert "Use another card</button>" in html
    for word in ("stolen", "lost", "fraud"):
        assert word not in html.lower()
    assert response.status_code == 302  # back to the page: nothing charged
    assert stripe_gateway.charges == [] and PaymentAttempt.objects.count() == 1


def test_a_thai_customer_whose_card_was_declined_for_good_is_asked_for_another_in_thai(
    client: Client, thai: Case, stripe_gateway: FakeStripe
) -> None:
    declined_for_good("in_th", "pm_cus_th")

    html = client.get(path_of(thai)).content.decode()

    assert "ชำระเงิน ฿990.00</button>" not in html
    assert "โปรดเพิ่มบัตรใบอื่น" in html and "ใช้บัตรใบอื่น</button>" in html
    assert "หากท่านเปลี่ยนบัตรแล้ว" not in html


@pytest.mark.parametrize(
    ("code", "codes"),
    [
        ("expired_card", {}),
        ("incorrect_cvc", {}),
        ("incorrect_number", {}),
        ("insufficient_funds", {"advice_code": "confirm_card_data"}),
        ("generic_decline", {"network_advice_code": "01"}),  # Mastercard: new account data
    ],
)
def test_a_card_that_needs_new_details_is_not_offered_as_it_is(
    client: Client, case: Case, stripe_gateway: FakeStripe, code: str, codes: dict[str, str]
) -> None:
    # The same card details would be declined the same way (and Mastercard forbids
    # sending them again, rules.md 2.2): the page asks for the card's new details.
    declined_for_good("in_3", "pm_cus_en", code=code, at=NOW, **codes)  # the card's details

    html = client.get(path_of(case)).content.decode()
    form = form_fields(html) | {"invoice": "in_3", "amount": "4999"}
    response = client.post(f"{path_of(case)}/confirm", form)

    assert "Pay $49.99 now</button>" not in html
    assert "needs the card's current details" in html
    assert "Update card</button>" in html
    assert response.status_code == 302  # a crafted form charges nothing either
    assert stripe_gateway.charges == [] and PaymentAttempt.objects.count() == 1


def test_a_decline_asking_for_new_details_recorded_without_its_card_holds_the_card(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    # The billing system reported the expired card without naming it: the card on
    # file had these details then, so it may well be the one.
    services.record_payment_attempt(
        invoice="in_3",
        attempted_at=NOW,
        outcome="failed",
        now=NOW,
        source="api",
        decline_code="expired_card",
    )

    html = client.get(path_of(case)).content.decode()

    assert "Pay $49.99 now</button>" not in html
    assert "Update card</button>" in html


def test_a_thai_customer_whose_card_needs_new_details_is_asked_for_them_in_thai(
    client: Client, thai: Case, stripe_gateway: FakeStripe
) -> None:
    declined_for_good("in_th", "pm_cus_th", code="expired_card", at=NOW)

    html = client.get(path_of(thai)).content.decode()

    assert "ชำระเงิน ฿990.00</button>" not in html
    assert "ต้องใช้ข้อมูลบัตรที่เป็นปัจจุบัน" in html and "อัปเดตบัตร</button>" in html


def test_after_authentication_required_the_saved_card_is_offered_to_confirm_with_the_bank(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    declined_for_good("in_3", "pm_cus_en", code="authentication_required", at=NOW)

    html = client.get(path_of(case)).content.decode()

    assert "Pay $49.99 now</button>" in html


def test_a_card_whose_details_changed_since_the_decline_is_offered_again(
    client: Client, case: Case, make_card: Callable[..., Any], stripe_gateway: FakeStripe
) -> None:
    declined_for_good("in_3", "pm_cus_en", code="expired_card", at=NOW)
    # The card updater renews the same card: a new expiry, the same card on file.
    make_card("pm_cus_en", customer="cus_en", exp_year=2032, now=NOW + timedelta(minutes=5))

    html = client.get(path_of(case)).content.decode()

    assert "Pay $49.99 now</button>" in html


@pytest.mark.parametrize(
    ("code", "offered"),
    [
        # Another invoice of another amount is another transaction (rules.md 2.1).
        ("do_not_try_again", True),
        # Lost is the card's state, not the charge's (acceptance case C01).
        ("lost_card", False),
    ],
)
def test_a_card_declined_for_good_on_another_invoice_is_offered_unless_the_card_is_dead(
    client: Client,
    case: Case,
    make_invoice: Callable[..., Any],
    stripe_gateway: FakeStripe,
    code: str,
    offered: bool,
) -> None:
    make_invoice("in_9", customer="cus_en", currency="USD", amount_due=1000, number="A-9")
    declined_for_good("in_9", "pm_cus_en", code=code)

    html = client.get(path_of(case)).content.decode()

    assert ("Pay $49.99 now</button>" in html) is offered
    assert ("Use another card</button>" in html) is not offered


def test_a_card_declined_as_lost_without_the_card_recorded_is_not_offered(
    client: Client,
    case: Case,
    make_invoice: Callable[..., Any],
    make_card: Callable[..., Any],
    stripe_gateway: FakeStripe,
) -> None:
    # The billing system reported the decline without its card (the API allows it):
    # it may have been the card on file then, so that card is not offered; a card
    # saved after it certainly was not that card.
    make_invoice("in_9", customer="cus_en", currency="USD", amount_due=1000, number="A-9")
    services.record_payment_attempt(
        invoice="in_9",
        attempted_at=NOW,  # pm_cus_en has been on file since NOW
        outcome="failed",
        now=NOW,
        source="api",
        decline_code="lost_card",
    )

    html = client.get(path_of(case)).content.decode()
    assert "Pay $49.99 now</button>" not in html and "Use another card</button>" in html

    make_card("pm_new", customer="cus_en", last4="1111", now=NOW + timedelta(minutes=1))
    html = client.get(path_of(case)).content.decode()
    assert "Visa card ending in 1111" in html and "Pay $49.99 now</button>" in html


def test_a_new_card_saved_after_the_decline_is_offered(
    client: Client, case: Case, make_card: Callable[..., Any], stripe_gateway: FakeStripe
) -> None:
    declined_for_good("in_3", "pm_cus_en")
    make_card("pm_new", customer="cus_en", last4="1111")

    html = client.get(path_of(case)).content.decode()

    assert "Visa card ending in 1111" in html and "Pay $49.99 now</button>" in html


def test_the_return_page_needs_a_payment_and_a_good_token(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    assert client.get(f"{path_of(case)}/return").status_code == 404
    for odd in ("pi_1/../../v1/customers", "pi_1?expand[]=customer", "pi 1"):
        assert client.get(f"{path_of(case)}/return", {"payment_intent": odd}).status_code == 404
    assert client.get("/pay/forged/return", {"payment_intent": "pi_1"}).status_code == 404
    assert client.get(f"{path_of(case)}/confirm").status_code == 405
    assert not stripe_gateway.requests


def test_a_post_without_the_csrf_token_is_refused(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    response = client.post(f"{path_of(case)}/confirm")

    assert response.status_code == 403
    assert not stripe_gateway.requests


def test_a_retry_under_way_is_not_paid_twice_and_a_payment_holds_the_retries_off(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    # A worker's lease: the retry stage may be charging this invoice right now.
    Case.objects.filter(pk=case.pk).update(
        next_retry_at=NOW + timedelta(minutes=5), retry_key="case1:try2:abc"
    )

    busy = pay(client, case)

    assert "Please try again in a few minutes" in busy.content.decode()
    assert not stripe_gateway.requests

    # A retry whose outcome is unknown: another charge could take the money twice.
    Case.objects.filter(pk=case.pk).update(
        next_retry_at=NOW + timedelta(minutes=30), charge_in_doubt_since=NOW
    )
    assert "We are checking an earlier payment" in pay(client, case).content.decode()
    assert not stripe_gateway.requests

    # Otherwise the page pays.  Its payment is the case's charge in doubt until
    # the customer is back from the bank: no retry meanwhile, and a lookup after
    # the window if they never come back.
    Case.objects.filter(pk=case.pk).update(
        next_retry_at=NOW - timedelta(minutes=1), charge_in_doubt_since=None
    )
    stripe_gateway.reply(200, needs_3ds())
    assert pay(client, case).status_code == 303
    case.refresh_from_db()
    [sent] = stripe_gateway.charges
    assert case.retry_key == sent.idempotency_key and case.retry_amount == 4999
    assert case.charge_in_doubt_since == NOW
    assert case.next_retry_at == NOW + AUTHENTICATION_WINDOW

    # Back from the bank, paid: recorded, and nothing is in doubt any more.
    reference = needs_3ds()["id"]
    stripe_gateway.reply(
        200, intent("succeeded"), method="GET", path=f"{PAYMENT_INTENTS}/{reference}"
    )
    client.get(f"{path_of(case)}/return", {"payment_intent": reference})
    case.refresh_from_db()
    assert case.state == "recovered"
    assert (case.retry_key, case.charge_in_doubt_since) == ("", None)


def test_a_resubmitted_form_never_pays_an_invoice_the_customer_did_not_see(
    client: Client, case: Case, make_invoice: Callable[..., Any], stripe_gateway: FakeStripe
) -> None:
    add_younger_invoice(case, make_invoice)
    fields = form_fields(client.get(path_of(case)).content.decode())
    assert fields["invoice"] == "in_3"
    stripe_gateway.reply(200, intent("succeeded"))
    assert (
        "Thank you: payment received"
        in client.post(f"{path_of(case)}/confirm", fields).content.decode()
    )

    # The result page reloaded: the same form again, while A-18 is now the one offered.
    again = client.post(f"{path_of(case)}/confirm", fields)

    assert again.status_code == 302 and again["Location"] == path_of(case)
    assert len(stripe_gateway.charges) == 1


def test_a_payment_with_no_answer_is_told_as_unknown_and_holds_the_retries_off(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    Case.objects.filter(pk=case.pk).update(next_retry_at=NOW + timedelta(minutes=30))
    for _ in range(3):  # the library's own two retries included
        stripe_gateway.reply(500, api_error("api_error", "Something went wrong on Stripe's end."))

    html = pay(client, case).content.decode()

    assert "We could not confirm your payment just now" in html
    assert "nothing was charged" not in html
    assert not PaymentAttempt.objects.exists()
    case.refresh_from_db()
    # The money may have moved: it is the case's charge in doubt, looked up by the
    # retry stage after a worker's lease, never charged again off-session.
    [sent] = {request.idempotency_key for request in stripe_gateway.requests}
    assert case.retry_key == sent and case.charge_in_doubt_since == NOW
    assert case.next_retry_at == NOW + LEASE


def test_back_from_the_bank_after_the_invoice_was_paid_another_way_tells_what_was_taken(
    client: Client,
    case: Case,
    make_invoice: Callable[..., Any],
    stripe_gateway: FakeStripe,
    caplog: pytest.LogCaptureFixture,
) -> None:
    later = add_younger_invoice(case, make_invoice)
    path = path_of(case)
    stripe_gateway.reply(200, needs_3ds())
    assert pay(client, case).status_code == 303
    reference = needs_3ds()["id"]
    event = CaseEvent.objects.get(case=case, type="pay_page.authentication")
    assert event.data == {
        "reference": reference,
        "invoice": "in_3",
        "payment_method": "pm_cus_en",
        "amount": 4999,
        "key": stripe_gateway.charges[0].idempotency_key,
    }
    # Meanwhile A-17 is paid by bank transfer: the page would offer A-18 now.
    paid_by_transfer()
    stripe_gateway.reply(
        200, intent("succeeded"), method="GET", path=f"{PAYMENT_INTENTS}/{reference}"
    )

    back = client.get(f"{path}/return", {"payment_intent": reference})

    # The bank took A-17's amount: say so, and flag the double payment for a refund.
    html = back.content.decode()
    assert "Thank you: payment received" in html
    assert "we have received $49.99 for invoice A-17" in html
    assert "a refund may be owed" in caplog.text
    assert Invoice.objects.get(external_id="in_4").status == "open"
    assert not PaymentAttempt.objects.filter(invoice=later).exists()
    # No retry charges A-18, and no reminder asks for it, until an operator has
    # refunded or applied the money.
    case.refresh_from_db()
    assert case.state == "paused" and case.charge_in_doubt_since is not None
    assert case.next_retry_at is None and "check for a refund" in case.retry_reason


def test_the_simulated_bank_s_return_also_finds_a_payment_whose_invoice_was_paid_meanwhile(
    client: Client, jane: Customer, make_invoice: Callable[..., Any]
) -> None:
    # The simulated gateway names a payment by its idempotency key: the return
    # must use the key the payment was started with, not one made afresh.
    case = make_case(jane_s_invoice(make_invoice))
    add_younger_invoice(case, make_invoice)
    bank = SimulatedGateway(
        oracle=lambda request, at: declined(request, "authentication_required"), clock=lambda: NOW
    )
    with override_settings(DUNNING_GATEWAY="simulated"), use_gateway(bank):
        response = pay(client, case)
        assert response.status_code == 303
        paid_by_transfer()
        back = client.get(response["Location"].removeprefix("https://pay.example.com"))

    assert "we have received $49.99 for invoice A-17" in back.content.decode()


def test_pressing_again_from_an_older_reminder_s_link_is_the_same_payment(
    client: Client, case: Case, stripe_gateway: FakeStripe
) -> None:
    # Pay links used to be dated, so each reminder's differed; they still open.
    dated = "/pay/" + signing.dumps([case.customer_id, case.pk], salt=links.PAY_SALT)
    stripe_gateway.reply(200, needs_3ds())
    page = client.get(dated)
    first = client.post(f"{dated}/confirm", form_fields(page.content.decode()))

    second = pay(client, case)  # from the latest reminder's link

    assert first["Location"] == second["Location"] == BANK_PAGE
    sent = [request for request in stripe_gateway.requests if request.method == "POST"]
    assert len(sent) == 2 and len(stripe_gateway.charges) == 1  # the second was a replay
    assert sent[0].form == sent[1].form  # the same return URL: the same request
    assert sent[0].form["return_url"] == f"https://pay.example.com{path_of(case)}/return"
    case.refresh_from_db()
    assert case.retry_key == sent[0].idempotency_key and case.charge_in_doubt_since == NOW


def test_at_the_demo_bank_the_page_s_button_pays_and_a_declining_card_is_told_so(
    client: Client,
    jane: Customer,
    make_customer: Callable[..., Any],
    make_card: Callable[..., Any],
    make_invoice: Callable[..., Any],
) -> None:
    # `make demo` serves with the demo bank: its pay page must have a button that pays.
    paying = make_case(jane_s_invoice(make_invoice))
    make_customer("cus_broke", name="Sam Broke", locale="en-US", country="US")
    broke_card = next(f"pm_{n}" for n in range(100) if declines_every_charge(f"pm_{n}"))
    make_card(broke_card, customer="cus_broke")
    broke = make_case(
        make_invoice(
            "in_broke", customer="cus_broke", number="A-90", currency="USD", amount_due=1500
        )
    )

    with override_settings(DUNNING_GATEWAY="demo"):
        assert "Pay $49.99 now</button>" in client.get(path_of(paying)).content.decode()
        paid = pay(client, paying)
        refused = pay(client, broke)

    assert paid.status_code == 200
    assert "Thank you: payment received" in paid.content.decode()
    attempt = PaymentAttempt.objects.get(invoice__external_id="in_3")
    assert (attempt.outcome, attempt.gateway) == ("succeeded", "demo")
    assert Invoice.objects.get(external_id="in_3").status == "paid"
    paying.refresh_from_db()
    assert paying.state == "recovered"

    assert "The payment did not go through" in refused.content.decode()
    attempt = PaymentAttempt.objects.get(invoice__external_id="in_broke")
    assert (attempt.outcome, attempt.decline_code) == ("failed", "insufficient_funds")


def test_at_the_demo_bank_a_made_up_return_records_no_payment(
    client: Client, jane: Customer, make_invoice: Callable[..., Any]
) -> None:
    # The demo bank's references follow from the keys, and the keys can be worked
    # out: a return naming the next payment's reference must not pay the invoice.
    case = make_case(jane_s_invoice(make_invoice))
    with override_settings(DUNNING_GATEWAY="demo"):
        offer = pay_now.offer_for(case, get_gateway())
        assert offer is not None
        guessed = demo_reference(offer.request(key=pay_now._key(case, offer)))
        back = client.get(f"{path_of(case)}/return", {"payment_intent": guessed})

    assert "We could not take the payment just now" in back.content.decode()
    assert not PaymentAttempt.objects.exists()
    assert Invoice.objects.get(external_id="in_3").status == "open"
