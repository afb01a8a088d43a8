"""The retry stage through the real Stripe adapter, against the loopback fake Stripe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dunning.engine import policies
from dunning.engine.cases import sync_cases
from dunning.engine.models import Case, CaseEvent
from dunning.engine.retries import RetryReport, retry_due
from dunning.gateways import stripe_gateway
from dunning.gateways.stripe_gateway import StripeGateway
from dunning.ledger import services
from dunning.ledger.models import Invoice, Payment, PaymentAttempt
from tests.gateways.stripe_server import (  # noqa: F401 - stripe_api is a fixture
    PAYMENT_INTENTS,
    FakeStripe,
    api_error,
    card_error,
    stripe_api,
    stripe_object,
)

# The customer and card of the fixtures' failed-then-recovered story.
CUSTOMER = "cus_DyyFsVku600HkP"
CARD = "pm_1t42aEWCLm7QxR2nVbgkw1GV"
T0 = datetime(2026, 3, 20, 3, 0, tzinfo=UTC)  # Friday, 10:00 in Bangkok
AMOUNT = 99000


@pytest.fixture
def gateway(stripe_api: FakeStripe) -> StripeGateway:  # noqa: F811 - the fixture above
    return StripeGateway(
        api_key=stripe_api.api_key,
        api_base=stripe_api.url,
        connect_timeout=2.0,
        read_timeout=5.0,
        max_network_retries=0,
    )


@pytest.fixture
def case(make_card: Any) -> Case:
    """A THB subscription invoice whose automatic charge was declined for funds at T0."""
    earlier = T0 - timedelta(days=30)
    policies.ensure_default_policies(now=earlier)
    services.upsert_customer(
        external_id=CUSTOMER,
        now=earlier,
        source="test",
        name="Somchai Jaidee",
        email="somchai@example.co.th",
        locale="th",
        country="TH",
        time_zone="Asia/Bangkok",
    )
    make_card(CARD, customer=CUSTOMER, now=earlier)
    declined_for_funds(CUSTOMER, card=CARD, invoice="in_2001", number="INV-2001")
    sync_cases(now=T0)
    return Case.objects.get()


def declined_for_funds(customer: str, *, card: str, invoice: str, number: str) -> None:
    """A THB invoice of AMOUNT due at T0, its automatic charge on `card` declined then."""
    services.upsert_invoice(
        facts=services.InvoiceFacts(
            external_id=invoice,
            customer=customer,
            number=number,
            currency="THB",
            amount_due=AMOUNT,
            issued_at=T0 - timedelta(days=1),
            due_at=T0,
            collection_method="charge_automatically",
        ),
        now=T0,
        source="test",
    )
    services.record_payment_attempt(
        invoice=invoice,
        attempted_at=T0,
        outcome="failed",
        now=T0,
        source="stripe",
        decline_code="insufficient_funds",
        gateway="stripe",
        payment_method=card,
    )


def plan(gateway: StripeGateway, now: datetime) -> Case:
    report = retry_due(now=now, gateway=gateway)
    assert report.planned == 1 and report.charged == 0, report
    case = Case.objects.get()
    assert case.next_retry_at is not None and case.retry_key
    return case


def test_a_decline_then_a_success_through_stripe_recovers_the_case(
    case: Case,
    gateway: StripeGateway,
    stripe_api: FakeStripe,  # noqa: F811 - the fixture above
) -> None:
    case = plan(gateway, T0)
    first_at, first_key = case.next_retry_at, case.retry_key
    assert first_at is not None
    stripe_api.reply(
        402, card_error(stripe_object("payment_intent_last_payment_error_insufficient_funds"))
    )

    assert retry_due(now=first_at, gateway=gateway) == RetryReport(charged=1, declined=1)

    case.refresh_from_db()
    second_at, second_key = case.next_retry_at, case.retry_key
    assert second_at is not None and second_at > first_at and second_key != first_key
    declined = PaymentAttempt.objects.filter(outcome="failed").order_by("id").last()
    assert declined is not None
    assert (declined.decline_code, declined.gateway) == ("insufficient_funds", "stripe")

    assert retry_due(now=second_at, gateway=gateway) == RetryReport(charged=1, recovered=1)

    assert [charge.idempotency_key for charge in stripe_api.charges] == [first_key, second_key]
    for charge in stripe_api.charges:
        assert charge.path == PAYMENT_INTENTS
        assert charge.form["amount"] == str(AMOUNT)
        assert charge.form["currency"] == "thb"
        assert charge.form["customer"] == CUSTOMER
        assert charge.form["payment_method"] == CARD
        assert charge.form["off_session"] == "true" and charge.form["confirm"] == "true"
        assert charge.form["metadata[dunning_case]"] == str(case.pk)
        assert charge.form["metadata[dunning_invoice]"] == "in_2001"
    intent = stripe_object("payment_intent_succeeded")
    attempt = PaymentAttempt.objects.get(outcome="succeeded")
    assert (attempt.reference, attempt.amount, attempt.gateway) == (intent["id"], AMOUNT, "stripe")
    assert Payment.objects.get().amount == AMOUNT
    assert Invoice.objects.get().status == "paid"
    assert Case.objects.get().state == "recovered"


def test_a_stripe_500_is_asked_again_with_the_same_key_and_charges_once(
    case: Case,
    gateway: StripeGateway,
    stripe_api: FakeStripe,  # noqa: F811 - the fixture above
) -> None:
    case = plan(gateway, T0)
    at, key = case.next_retry_at, case.retry_key
    assert at is not None
    stripe_api.reply(500, api_error("api_error", "Something went wrong on Stripe's end."))

    assert retry_due(now=at, gateway=gateway) == RetryReport(charged=1, unknown=1)

    case.refresh_from_db()
    assert case.retry_key == key and case.next_retry_at is not None
    assert CaseEvent.objects.filter(case=case, type="retry.unknown").exists()
    assert stripe_api.charges == []

    assert retry_due(now=case.next_retry_at, gateway=gateway) == RetryReport(charged=1, recovered=1)

    posts = [r for r in stripe_api.requests if r.path == PAYMENT_INTENTS]
    assert [r.idempotency_key for r in posts] == [key, key]
    assert posts[0].form == posts[1].form
    assert len(stripe_api.charges) == 1
    assert PaymentAttempt.objects.filter(outcome="succeeded").count() == 1
    assert Payment.objects.get().amount == AMOUNT
    assert Case.objects.get().state == "recovered"


def test_a_charge_in_doubt_across_the_upgrade_that_added_its_key_stops_for_an_operator(
    case: Case,
    stripe_api: FakeStripe,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Made by the release before charges carried their key; asked again after it, the
    same key comes with other parameters and Stripe refuses it: the first charge may have
    gone through, so it is left to an operator, not dropped as a refusal."""
    gateway = StripeGateway(
        api_key=stripe_api.api_key,
        api_base=stripe_api.url,
        connect_timeout=2.0,
        read_timeout=1.0,
        max_network_retries=0,
    )
    case = plan(gateway, case.next_retry_at)
    at, key = case.next_retry_at, case.retry_key
    assert at is not None
    keyed = stripe_gateway.payment_intent_params

    def before_the_upgrade(request: Any, **options: Any) -> Any:
        params = keyed(request, **options)
        del params["metadata"][stripe_gateway.KEY_METADATA_KEY]  # type: ignore[misc]
        return params

    monkeypatch.setattr(stripe_gateway, "payment_intent_params", before_the_upgrade)
    # Stripe charges, but answers after the client gave up.
    stripe_api.reply(200, stripe_object("payment_intent_succeeded"), delay=3.0)
    retry_due(now=at, gateway=gateway)
    case.refresh_from_db()
    assert case.charge_in_doubt_since == at and len(stripe_api.charges) == 1
    monkeypatch.undo()  # the upgrade

    retry_due(now=case.next_retry_at, gateway=gateway)

    case.refresh_from_db()
    assert stripe_api.requests[-1].headers["idempotency-key"] == key
    assert len(stripe_api.charges) == 1  # refused: idempotency_error
    assert case.next_retry_at is None and case.retry_key == key
    assert case.charge_in_doubt_since == at
    assert "check the gateway" in case.retry_reason
    assert CaseEvent.objects.filter(case=case, type="retry.in_doubt").exists()
    assert not CaseEvent.objects.filter(case=case, type="retry.stopped").exists()


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_api_key_holds_every_charge_until_it_is_fixed(
    case: Case,
    make_card: Any,
    stripe_api: FakeStripe,  # noqa: F811 - the fixture above
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    """A key rotated at Stripe but not here (401), or a restricted key without the
    PaymentIntents permission (403), refuses dunning, not the charges: no case stops
    for good, nothing counts as a decline, and the charges go out, under the keys they
    were planned with, once the key is right again."""
    services.upsert_customer(
        external_id="cus_other", now=T0, source="test", name="Nok", email="nok@example.com"
    )
    make_card("pm_other", customer="cus_other", now=T0 - timedelta(days=30))
    declined_for_funds("cus_other", card="pm_other", invoice="in_other", number="INV-2002")
    sync_cases(now=T0)
    good = StripeGateway(api_key=stripe_api.api_key, api_base=stripe_api.url, max_network_retries=0)
    retry_due(now=T0, gateway=good)
    planned = {c.pk: (c.next_retry_at, c.retry_key) for c in Case.objects.all()}
    assert len(planned) == 2 and all(at and key for at, key in planned.values())
    due = max(at for at, _ in planned.values())
    if status == 403:
        for _ in range(2):
            stripe_api.reply(
                403,
                api_error(
                    "invalid_request_error",
                    "The provided key does not have the required permissions.",
                ),
            )
        refused = good
    else:
        refused = StripeGateway(
            api_key="sk_test_51OldRotatedKey00000000secret",
            api_base=stripe_api.url,
            max_network_retries=0,
        )

    with caplog.at_level("ERROR"):
        retry_due(now=due, gateway=refused)
        retry_due(now=due + timedelta(minutes=15), gateway=refused)

    posts = [r for r in stripe_api.requests if r.path == PAYMENT_INTENTS]
    assert len(posts) == 2  # one refused request a try, not one a case
    assert not PaymentAttempt.objects.filter(attempted_at__gt=T0).exists()
    for held in Case.objects.all():
        assert held.state == "active"
        assert held.retry_key == planned[held.pk][1]  # the plan, kept
        assert held.next_retry_at == due + timedelta(minutes=30)
        assert held.charge_in_doubt_since is None
        assert "API key" in held.retry_reason
        assert CaseEvent.objects.filter(case=held, type="retry.held").count() == 1
        assert not CaseEvent.objects.filter(case=held, type="retry.stopped").exists()
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2 and "2 charges wait" in errors[0].getMessage()
    assert "sk_test" not in caplog.text and "secret" not in caplog.text

    assert retry_due(now=due + timedelta(minutes=30), gateway=good).recovered == 2
    keys = [r.idempotency_key for r in stripe_api.requests if r.path == PAYMENT_INTENTS][2:]
    assert sorted(keys) == sorted(key for _, key in planned.values())
    assert set(Case.objects.values_list("state", flat=True)) == {"recovered"}
