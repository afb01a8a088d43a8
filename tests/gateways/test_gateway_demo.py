"""The demo bank: every answer from the request alone; refused in production."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ImproperlyConfigured
from pytest_django.fixtures import Settings

from dunning.channels.email.transport import FileTransport
from dunning.core.declines import DeclineClass, classify_decline
from dunning.engine import policies
from dunning.engine.models import Case
from dunning.engine.playback import engine_pass
from dunning.gateways.base import (
    NOT_THIS_CUSTOMERS,
    CardSetupRequest,
    ChargeRequest,
    ChargeStatus,
    GatewayError,
)
from dunning.gateways.demo import DemoGateway, declines_every_charge
from dunning.gateways.registry import get_gateway
from dunning.ledger import services
from dunning.ledger.models import Invoice, PaymentAttempt

NOW = datetime(2026, 3, 16, 3, 0, tzinfo=UTC)


def card(*, declining: bool) -> str:
    """The first demo card id the demo bank always declines, or never does."""
    return next(
        f"pm_demo{n:05d}"
        for n in range(1, 100)
        if declines_every_charge(f"pm_demo{n:05d}") == declining
    )


def request(key: str = "case1:try1", *, method: str | None = None) -> ChargeRequest:
    return ChargeRequest(
        amount=49900,
        currency="THB",
        customer_external_id="cus_1",
        payment_method_external_id=method or card(declining=False),
        invoice_external_id="in_1",
        idempotency_key=key,
    )


def test_the_same_key_gets_the_same_answer_from_any_instance() -> None:
    # The web process and the worker each build their own: they share no memory.
    for n in range(200):
        sent = request(f"case{n}:try1")
        assert DemoGateway().charge(sent) == DemoGateway().charge(sent)


def test_about_two_retries_in_five_succeed_on_a_card_that_can_pay() -> None:
    results = [DemoGateway().charge(request(f"case{n}:try1")) for n in range(1000)]

    succeeded = [r for r in results if r.succeeded]
    assert 330 <= len(succeeded) <= 470
    for result in results:
        assert result.gateway == "demo" and (result.amount, result.currency) == (49900, "THB")
        assert result.reference.startswith("demo_pi_")
        if result.declined:
            assert (result.decline_code, result.advice_code) == ("insufficient_funds", "")
            assert classify_decline(result.decline_code).kind is DeclineClass.RETRY_LATER
    assert len({r.reference for r in results}) == 1000


def test_about_one_card_in_five_declines_every_charge() -> None:
    declining = sum(declines_every_charge(f"pm_{n}") for n in range(1000))

    assert 150 <= declining <= 250


def test_a_declining_card_declines_off_and_on_the_pay_page() -> None:
    bank = DemoGateway()
    for n in range(50):
        sent = request(f"case{n}:try1", method=card(declining=True))
        assert bank.charge(sent).decline_code == "insufficient_funds"
        answer = bank.charge_on_session(sent, return_url="https://pay.example.com/r")
        assert answer.status is ChargeStatus.DECLINED  # type: ignore[union-attr]


def test_on_the_pay_page_a_card_that_can_pay_pays_at_once() -> None:
    bank = DemoGateway()
    for n in range(50):
        sent = request(f"pay{n}:try1")
        answer = bank.charge_on_session(sent, return_url="https://pay.example.com/r")
        assert answer.status is ChargeStatus.SUCCEEDED  # type: ignore[union-attr]


def test_no_return_from_a_bank_page_is_believed_not_even_with_the_right_reference() -> None:
    # The demo bank never sends anyone to a page of its own: a return is made up.
    sent = request("pay1:try1")
    made = DemoGateway().charge_on_session(sent, return_url="")

    for reference in (made.reference, "demo_pi_0", "pi_1"):  # type: ignore[union-attr]
        with pytest.raises(GatewayError, match="no demo payment") as refused:
            DemoGateway().outcome(reference, sent)
        assert refused.value.permanent


def test_the_registry_builds_it_and_production_refuses_it(settings: Settings) -> None:
    settings.DUNNING_GATEWAY = "demo"
    assert isinstance(get_gateway(), DemoGateway)

    settings.PRODUCTION = True
    with pytest.raises(ImproperlyConfigured, match="in production use 'stripe' or 'manual'"):
        get_gateway()


def test_the_engine_retries_a_declined_invoice_at_the_demo_bank_until_it_is_paid(
    settings: Settings,
    make_customer: Callable[..., Any],
    make_card: Callable[..., Any],
    make_invoice: Callable[..., Any],
    tmp_path: Path,
) -> None:
    settings.DUNNING_GATEWAY = "demo"
    policies.ensure_default_policies(now=NOW - timedelta(days=30))
    make_customer("cus_1")
    make_card(card(declining=False), customer="cus_1")
    make_invoice("in_1", customer="cus_1", collection_method="charge_automatically", due_at=NOW)
    services.record_payment_attempt(
        invoice="in_1",
        attempted_at=NOW,
        outcome="failed",
        now=NOW,
        source="test",
        decline_code="insufficient_funds",
        gateway="demo",
        payment_method=card(declining=False),
    )

    now = NOW
    while Invoice.objects.get(external_id="in_1").status == "open" and now < NOW + timedelta(
        days=14
    ):
        engine_pass(now=now, transport=FileTransport(tmp_path), rng=random.Random(1))
        now += timedelta(hours=1)

    assert Invoice.objects.get(external_id="in_1").status == "paid"
    retries = PaymentAttempt.objects.exclude(attempted_at=NOW).order_by("attempted_at")
    assert [a.gateway for a in retries] == ["demo"] * retries.count()
    assert retries.last().outcome == "succeeded"  # type: ignore[union-attr]
    assert Case.objects.get().state == "recovered"


def test_a_card_saved_at_the_demo_bank_is_the_same_on_each_return_and_pays_every_charge() -> None:
    bank = DemoGateway()
    page = bank.start_card_setup(
        CardSetupRequest(
            customer_external_id="cus_1",
            return_url="https://pay.example.com/pay/t/card/return",
            cancel_url="https://pay.example.com/pay/t",
            locale="th",
            idempotency_key="card:cus_1:29000000",
        )
    )
    assert page.startswith("https://pay.example.com/pay/t/card/return?session_id=demo_seti_")
    reference = parse_qs(urlsplit(page).query)["session_id"][0]

    new = bank.card_setup_result(reference, customer_external_id="cus_1")

    assert new is not None and new == DemoGateway().card_setup_result(
        reference, customer_external_id="cus_1"
    )
    assert new.external_id.startswith("pm_demonew_") and new.brand == "visa"
    assert len(new.last4) == 4 and new.last4.isdigit() and new.exp_month == 12
    assert all(
        bank.charge(request(f"case{n}:try1", method=new.external_id)).succeeded for n in range(100)
    )
    for wrong in (("cus_2", reference), ("cus_1", "demo_seti_x_y"), ("cus_1", "cs_test_1")):
        with pytest.raises(GatewayError) as refused:
            bank.card_setup_result(wrong[1], customer_external_id=wrong[0])
        assert refused.value.code == NOT_THIS_CUSTOMERS and refused.value.permanent
