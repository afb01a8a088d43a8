"""The simulated gateway: an oracle decides, the caller's clock says when, one charge per key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dunning.gateways.base import (
    Authentication,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    GatewayError,
)
from dunning.gateways.simulated import LostAnswer, SimulatedGateway, declined, succeeded

START = datetime(2026, 3, 16, 3, 0, tzinfo=UTC)


class VirtualClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def request(key: str = "attempt-1", invoice: str = "in_1", amount: int = 2900) -> ChargeRequest:
    return ChargeRequest(
        amount=amount,
        currency="USD",
        customer_external_id="cus_1",
        payment_method_external_id="pm_1",
        invoice_external_id=invoice,
        idempotency_key=key,
    )


def declines_until_payday(request: ChargeRequest, at: datetime) -> ChargeResult:
    """Insufficient funds before the 25th; approved from then on."""
    if at.day < 25:
        return declined(
            request,
            "insufficient_funds",
            advice_code="try_again_later",
            network_decline_code="51",
            network="visa",
        )
    return succeeded(request)


def test_the_oracle_decides_at_the_time_the_callers_clock_gives() -> None:
    clock = VirtualClock()
    gateway = SimulatedGateway(oracle=declines_until_payday, clock=clock)

    first = gateway.charge(request("attempt-1"))
    clock.now = START + timedelta(days=10)
    second = gateway.charge(request("attempt-2"))

    assert first.status is ChargeStatus.DECLINED
    assert (first.decline_code, first.advice_code, first.network) == (
        "insufficient_funds",
        "try_again_later",
        "visa",
    )
    assert second.status is ChargeStatus.SUCCEEDED
    assert second.gateway == "simulated"
    assert [charge.at for charge in gateway.charges] == [START, START + timedelta(days=10)]


def test_the_same_key_replays_the_first_result_and_charges_once() -> None:
    clock = VirtualClock()
    gateway = SimulatedGateway(oracle=declines_until_payday, clock=clock)

    first = gateway.charge(request())
    clock.now = START + timedelta(days=10)  # the oracle would now approve
    again = gateway.charge(request())

    assert again == first
    assert len(gateway.charges) == 1
    assert [received.replayed for received in gateway.received] == [False, True]


def test_the_same_key_with_another_amount_is_refused() -> None:
    gateway = SimulatedGateway(oracle=declines_until_payday, clock=VirtualClock())
    gateway.charge(request(amount=2900))

    with pytest.raises(GatewayError) as raised:
        gateway.charge(request(amount=100))

    assert raised.value.permanent is True
    assert len(gateway.charges) == 1


def test_an_outage_charges_nothing_and_the_same_key_tries_afresh() -> None:
    answers: list[ChargeResult | GatewayError] = [
        GatewayError("simulated 503", permanent=False, http_status=503)
    ]

    def flaky(request: ChargeRequest, at: datetime) -> ChargeResult:
        if answers:
            failure = answers.pop()
            assert isinstance(failure, GatewayError)
            raise failure
        return succeeded(request)

    gateway = SimulatedGateway(oracle=flaky, clock=VirtualClock())

    with pytest.raises(GatewayError):
        gateway.charge(request())
    assert gateway.charges == []
    assert gateway.charge(request()).succeeded
    assert len(gateway.charges) == 1
    assert len(gateway.received) == 2


def test_a_lost_answer_is_unknown_then_replayed_with_the_same_key() -> None:
    def charges_then_times_out(request: ChargeRequest, at: datetime) -> ChargeResult:
        raise LostAnswer(succeeded(request))

    gateway = SimulatedGateway(oracle=charges_then_times_out, clock=VirtualClock())

    with pytest.raises(GatewayError) as raised:
        gateway.charge(request())
    assert raised.value.outcome_unknown
    result = gateway.charge(request())

    assert result.succeeded
    assert len(gateway.charges) == 1


def test_runs_repeat_exactly_and_charges_are_counted_per_invoice() -> None:
    def run() -> list[ChargeResult]:
        clock = VirtualClock()
        gateway = SimulatedGateway(oracle=declines_until_payday, clock=clock)
        results = []
        for day in range(0, 15, 3):
            clock.now = START + timedelta(days=day)
            results.append(gateway.charge(request(f"attempt-{day}", invoice="in_7")))
        assert len(gateway.charges_for("in_7")) == 5
        assert gateway.charges_for("in_other") == []
        return results

    first, second = run(), run()

    assert first == second
    assert [r.status for r in first][-1] is ChargeStatus.SUCCEEDED
    assert len({r.reference for r in first}) == 5


def test_on_session_a_bank_asking_for_authentication_sends_the_customer_back_paid() -> None:
    gateway = SimulatedGateway(
        oracle=lambda r, at: declined(r, "authentication_required"), clock=VirtualClock()
    )
    charge = request("pay-1")

    answer = gateway.charge_on_session(charge, return_url="https://pay.example.com/pay/t/return")

    assert isinstance(answer, Authentication)
    assert answer.url == f"https://pay.example.com/pay/t/return?payment_intent={answer.reference}"
    result = gateway.outcome(answer.reference, charge)
    assert isinstance(result, ChargeResult) and result.succeeded
    # The same key replays the authenticated payment, never a second charge.
    assert gateway.charge_on_session(charge, return_url="x") == result
    with pytest.raises(GatewayError, match="no simulated payment"):
        gateway.outcome("sim_pi_other", charge)


def test_on_session_any_other_answer_is_the_charge_s_own() -> None:
    gateway = SimulatedGateway(
        oracle=lambda r, at: declined(r, "expired_card"), clock=VirtualClock()
    )

    answer = gateway.charge_on_session(request("pay-2"), return_url="https://x/return")

    assert isinstance(answer, ChargeResult) and answer.decline_code == "expired_card"
