"""Charges in doubt past IN_DOUBT_LIMIT, against a gateway that forgets keys as Stripe does.

Each story ends with the card charged at most once for the invoice: a charge
whose answer was lost is found, recorded or left to an operator, never made again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from dunning.engine import pay_now
from dunning.engine.cases import sync_cases
from dunning.engine.models import Case, CaseEvent
from dunning.engine.retries import (
    LEASE,
    NoChargeInDoubt,
    release_charge_in_doubt,
    retry_due,
)
from dunning.gateways.base import ChargeRequest, ChargeResult, GatewayError
from dunning.gateways.manual import ManualGateway
from dunning.gateways.simulated import LostAnswer, declined, processing, reference_for, waiting
from dunning.ledger import services
from dunning.ledger.models import Invoice, Payment, PaymentMethod
from tests.engine.test_retries import (
    AMOUNT,
    T0,
    Bank,
    CutOff,
    Forgetful,
    ask_until_the_limit,
    case,
    customer,
    ok,
    pay_by_transfer,
    planned,
    planned_at,
    run_on,
)

__all__ = ["case", "customer"]  # fixtures

KEY_LIFETIME = timedelta(hours=24)
SKEW = timedelta(minutes=5)


class Killed(BaseException):
    """The worker is stopped (SIGTERM -> SystemExit, OOM kill) right after the gateway answered."""


class StripeLike(CutOff):
    """CutOff that forgets a key 24 h after its first use and finds charges the way the
    Stripe adapter does: by key, among the charges created since `since` - 5 min."""

    kill_after_charge = False
    lookups_raise: BaseException | None = None

    def charge(self, request: ChargeRequest) -> ChargeResult:
        with self._lock:
            earlier = self._by_key.get(request.idempotency_key)
            if earlier is not None and self._clock() - earlier.at >= KEY_LIFETIME:
                del self._by_key[request.idempotency_key]  # Stripe pruned the key
        result = super().charge(request)
        if self.kill_after_charge:
            self.kill_after_charge = False
            raise Killed
        return result

    def settle(self, outcome: Callable[[ChargeRequest], ChargeResult]) -> None:
        """The last charge, processing, settles: a lookup finds its PaymentIntent so now
        (a replay of its key still gives the first answer)."""
        last = self.charges[-1]
        self.charges[-1] = dataclasses.replace(last, result=outcome(last.request))

    def answer_at_the_bank(
        self, key: str, outcome: Callable[[ChargeRequest], ChargeResult]
    ) -> None:
        """The customer answers the bank's page for the payment under `key`: it comes to
        `outcome` (their return, a replay or a lookup says so from now on)."""
        with self._lock:
            self.at_the_bank.discard(key)
            sent = self._by_key[key]
            answered = dataclasses.replace(sent, result=outcome(sent.request))
            self._by_key[key] = answered
            self.charges[self.charges.index(sent)] = answered

    def find_charge(self, request: ChargeRequest, *, since: datetime) -> ChargeResult | None:
        if self.lookups_raise is not None:
            raise self.lookups_raise
        if self.lookups_fail:
            raise GatewayError("simulated 503 from the list endpoint", permanent=False)
        for charge in reversed(self.charges):  # newest first, as Stripe lists
            if (
                charge.request.idempotency_key == request.idempotency_key
                and charge.at >= since - SKEW
            ):
                if request.idempotency_key in self.canceled:
                    return None  # took no money
                if request.idempotency_key in self.at_the_bank:
                    return waiting(request)  # an on-session payment awaiting 3-D Secure
                return charge.result
        return None


def webhook_declines(gateway: StripeLike, *, at: datetime, now: datetime) -> None:
    """The first charge's webhook, recorded at `now`: declined for funds at `at`."""
    services.record_payment_attempt(
        invoice="in_th",
        attempted_at=at,
        outcome="failed",
        now=now,
        source="stripe",
        decline_code="insufficient_funds",
        gateway="simulated",
        reference=reference_for(gateway.charges[0].request),
        payment_method="pm_visa",
    )


@dataclass(frozen=True)
class Story:
    """A case whose retry is planned, at a gateway that forgets keys as Stripe does."""

    bank: Bank
    gateway: StripeLike
    at: datetime  # when the planned retry is due


@pytest.fixture
def story(case: Case) -> Story:
    bank = Bank(StripeLike)
    assert isinstance(bank.gateway, StripeLike)
    at = planned_at(bank)
    return Story(bank, bank.gateway, at)


def succeeded_charges(gateway: StripeLike) -> int:
    return sum(1 for charge in gateway.charges if charge.result.succeeded)


# ---------------------------------------------------------------- the key's first use


def test_a_charge_made_before_the_in_doubt_mark_is_found_not_declared_never_made(
    story: Story,
) -> None:
    bank, gateway, at = story.bank, story.gateway, story.at
    # The card is charged under the case's key, and the worker dies before recording it.
    bank.answer(ok)
    gateway.kill_after_charge = True
    with pytest.raises(Killed):
        bank.run(at)
    assert succeeded_charges(gateway) == 1
    # In doubt since it was sent.  Its lease runs out; the next worker asks again with
    # the same key, but Stripe is down.
    assert Case.objects.get().charge_in_doubt_since == at
    gateway.down = True
    bank.run(at + LEASE)
    assert Case.objects.get().charge_in_doubt_since == at
    ask_until_the_limit(bank, at)

    bank.run(Case.objects.get().next_retry_at)  # the lookup

    # The charge under the key exists at the gateway: it must not be "never happened".
    assert not CaseEvent.objects.filter(type="retry.not_charged").exists(), [
        e.reason for e in CaseEvent.objects.filter(type="retry.not_charged")
    ]
    assert Case.objects.get().state == "recovered"


def test_the_card_is_charged_once_when_the_story_runs_on(story: Story) -> None:
    """The same story to its end: had the lookup missed it, the plan afresh would reuse
    the key after Stripe forgot it, and charge the card again."""
    bank, gateway, at = story.bank, story.gateway, story.at
    bank.answer(ok)
    gateway.kill_after_charge = True
    with pytest.raises(Killed):
        bank.run(at)
    gateway.down = True
    bank.run(at + LEASE)
    ask_until_the_limit(bank, at)
    bank.run(Case.objects.get().next_retry_at)
    gateway.down = False
    bank.answer(*[ok] * 5)
    run_on(bank, at)

    assert succeeded_charges(gateway) == 1


# ---------------------------------------------------------------- found still settling


def lost_pending(request: ChargeRequest) -> ChargeResult:
    raise LostAnswer(processing(request))


def test_a_charge_found_processing_is_replanned_when_its_webhook_declines_it(story: Story) -> None:
    bank, gateway, at = story.bank, story.gateway, story.at
    bank.answer(lost_pending)  # accepted, processing; the answer lost
    bank.run(at)
    gateway.down = True
    ask_until_the_limit(bank, at)
    looked_up = Case.objects.get().next_retry_at
    assert looked_up is not None
    report = bank.run(looked_up)  # found: processing, asked again later
    assert report.looked_up == 1 and report.unknown == 1
    case = Case.objects.get()
    assert case.charge_in_doubt_since == at and case.next_retry_at is not None
    later = looked_up + timedelta(hours=2)
    gateway.settle(decline)
    webhook_declines(gateway, at=later, now=later)
    gateway.down = False
    if (wake := Case.objects.get().next_retry_at) is not None:
        bank.run(max(wake, later))

    case = Case.objects.get()
    assert case.state == "active"
    # The webhook answered the charge in doubt: the case is planned again,
    assert case.charge_in_doubt_since is None
    assert case.next_retry_at is not None
    # and the pay page takes the customer's payment again.
    offer = pay_now.offer_for(case, gateway)
    assert offer is not None
    attempt = pay_now.start(offer, gateway=gateway, now=later + timedelta(days=3))
    assert attempt.outcome is not pay_now.Outcome.CHECKING


# ---------------------------------------------------------------- an unexpected error


def test_a_lookup_that_raises_unexpectedly_does_not_starve_the_batchs_charges(story: Story) -> None:
    bank, gateway, at = story.bank, story.gateway, story.at
    case = Case.objects.get()
    gateway.down = True
    bank.run(at)
    ask_until_the_limit(bank, at)
    lookup_at = Case.objects.get(pk=case.pk).next_retry_at
    assert lookup_at is not None
    # Another customer's case, its retry due at the same moment.
    services.upsert_customer(
        external_id="cus_two",
        now=T0 - timedelta(days=30),
        source="test",
        name="Two",
        email="two@example.com",
        locale="en",
        country="TH",
        time_zone="Asia/Bangkok",
    )
    services.upsert_payment_method(
        external_id="pm_two",
        customer="cus_two",
        now=T0,
        source="test",
        type="card",
        brand="visa",
        last4="1111",
        exp_month=12,
        exp_year=2030,
        is_default=True,
    )
    services.upsert_invoice(
        facts=services.InvoiceFacts(
            external_id="in_two",
            customer="cus_two",
            number="INV-2",
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
        invoice="in_two",
        attempted_at=T0,
        outcome="failed",
        now=T0,
        source="test",
        decline_code="insufficient_funds",
        gateway="stripe",
        payment_method="pm_two",
    )
    sync_cases(now=T0)
    other = Case.objects.exclude(pk=case.pk).get()
    Case.objects.filter(pk=other.pk).update(
        next_retry_at=lookup_at,
        retry_key="case-two-key",
        retry_invoice=Invoice.objects.get(external_id="in_two"),
        retry_payment_method=PaymentMethod.objects.get(external_id="pm_two"),
        retry_amount=AMOUNT,
    )
    gateway.down = False
    gateway.lookups_raise = KeyError("metadata")  # a bug, an unexpected answer ...
    bank.answer(ok)

    bank.run(lookup_at)

    assert Case.objects.get(pk=other.pk).state == "recovered"  # charged all the same
    assert Payment.objects.count() == 1
    assert Case.objects.get(pk=case.pk).charge_in_doubt_since == at  # asked again later


# ---------------------------------------------------------------- the charge can no longer be named


def test_a_charge_in_doubt_on_an_invoice_that_changed_is_looked_up_not_sent_again(
    story: Story,
) -> None:
    bank, gateway, at = story.bank, story.gateway, story.at
    bank.answer(lambda request: (_ for _ in ()).throw(LostAnswer(ok(request))))
    bank.run(at)  # charged in full; the answer (and its webhook) lost
    pay_by_transfer(1000, at=at + timedelta(minutes=5))  # so the same request would be another
    bank.answer(*[ok] * 5)

    report = bank.run(Case.objects.get().next_retry_at)

    assert report.looked_up == 1 and report.charged == 0
    taken = sum(c.result.amount for c in gateway.charges if c.result.succeeded)
    assert taken == AMOUNT  # the first charge only
    # Found: the card paid more than remains.  The ledger refuses it, and the case
    # waits for an operator to refund (or apply) the money before any other charge or
    # reminder.
    case = Case.objects.get()
    assert case.state == "paused" and case.next_retry_at is None
    assert case.charge_in_doubt_since == at and case.retry_key
    assert "check for a refund" in case.retry_reason
    refused = CaseEvent.objects.get(case=case, type="retry.not_recorded")
    assert "more than the" in refused.reason
    # Refunded at the gateway, the operator releases it: the case goes on, and what
    # remains is planned afresh.
    release_charge_in_doubt(case.pk, now=at + timedelta(days=1), reason="refunded", source="api")
    assert Case.objects.get().state == "active"
    assert bank.run(at + timedelta(days=1)).planned == 1
    assert Case.objects.get().retry_amount == AMOUNT - 1000


def test_a_charge_in_doubt_on_an_invoice_that_changed_waits_for_an_operator_without_lookups(
    case: Case,
) -> None:
    bank = Bank(Forgetful)  # type: ignore[arg-type]
    at = planned_at(bank)
    bank.answer(lambda request: (_ for _ in ()).throw(LostAnswer(ok(request))))
    bank.run(at)
    pay_by_transfer(1000, at=at + timedelta(minutes=5))

    report = bank.run(Case.objects.get().next_retry_at)

    assert report.stopped == 1 and report.charged == 0
    assert len(bank.gateway.received) == 1
    case = Case.objects.get()
    assert case.next_retry_at is None and case.charge_in_doubt_since == at and case.retry_key
    stopped = CaseEvent.objects.get(case=case, type="retry.in_doubt")
    assert "its invoice changed since it was sent" in stopped.reason


def test_a_charge_in_doubt_answered_by_its_webhook_is_planned_again(story: Story) -> None:
    """Its answer (a decline, recorded from the webhook) changes the invoice's attempts,
    so the key cannot be named any more, and that is no reason to stop."""
    bank, gateway, at = story.bank, story.gateway, story.at
    bank.answer(lambda request: (_ for _ in ()).throw(LostAnswer(decline(request))))
    bank.run(at)
    later = at + timedelta(minutes=3)
    webhook_declines(gateway, at=at, now=later)
    case = Case.objects.get()
    assert case.next_retry_at is not None

    bank.run(case.next_retry_at)

    case = Case.objects.get()
    assert case.charge_in_doubt_since is None
    assert case.next_retry_at is not None and case.next_retry_at > later
    assert not CaseEvent.objects.filter(case=case, type="retry.in_doubt").exists()


def decline(request: ChargeRequest) -> ChargeResult:
    return declined(request, "insufficient_funds", network="visa")


def test_a_gateway_that_cannot_say_for_good_leaves_the_charge_to_an_operator_at_once(
    story: Story,
) -> None:
    bank, gateway, at = story.bank, story.gateway, story.at
    gateway.down = True
    bank.run(at)
    ask_until_the_limit(bank, at)
    gateway.lookups_raise = GatewayError("PaymentIntent is requires_capture", permanent=True)

    assert bank.run(Case.objects.get().next_retry_at).looked_up == 1

    case = Case.objects.get()
    assert case.next_retry_at is None and case.charge_in_doubt_since == at
    assert "check the gateway" in case.retry_reason
    assert CaseEvent.objects.filter(case=case, type="retry.in_doubt").count() == 1


def test_a_refused_api_key_at_the_lookup_asks_again_later_not_an_operator(
    story: Story,
) -> None:
    """The key was rotated while a charge was in doubt: the lookup is refused for who
    asks, which says nothing of the charge.  It is asked about again later, and found
    once the key is right."""
    bank, gateway, at = story.bank, story.gateway, story.at
    gateway.down = True
    bank.run(at)
    ask_until_the_limit(bank, at)
    gateway.lookups_raise = GatewayError(
        "Stripe answered 401 AuthenticationError", permanent=True, account_refused=True
    )
    lookup_at = Case.objects.get().next_retry_at

    assert bank.run(lookup_at).looked_up == 1

    case = Case.objects.get()
    assert case.charge_in_doubt_since == at
    assert case.next_retry_at is not None and case.next_retry_at > lookup_at
    assert not CaseEvent.objects.filter(case=case, type="retry.in_doubt").exists()
    gateway.lookups_raise = None
    gateway.down = False

    bank.run(case.next_retry_at)

    assert Case.objects.get().charge_in_doubt_since is None


def test_turning_charges_off_leaves_a_charge_in_doubt_to_an_operator(case: Case) -> None:
    bank = Bank(StripeLike)
    case = planned(bank)
    at = case.next_retry_at
    assert at is not None
    bank.answer(lambda request: (_ for _ in ()).throw(LostAnswer(ok(request))))
    bank.run(at)
    wake = Case.objects.get().next_retry_at
    assert wake is not None

    report = retry_due(now=wake, gateway=ManualGateway())  # the tenant turned charges off

    assert report.stopped == 1
    case = Case.objects.get()
    assert case.charge_in_doubt_since == at and case.retry_key
    stopped = CaseEvent.objects.get(case=case, type="retry.in_doubt")
    assert "charges are off while a charge is in doubt" in stopped.reason


# ---------------------------------------------------------------- an operator releases the charge


def stopped_in_doubt(story: Story) -> Case:
    """The planned retry never reaches the gateway, which cannot say so for good: the
    case waits for an operator."""
    bank, gateway, at = story.bank, story.gateway, story.at
    gateway.down = True
    bank.run(at)
    ask_until_the_limit(bank, at)
    gateway.lookups_raise = GatewayError("the list endpoint is not enabled", permanent=True)
    bank.run(Case.objects.get().next_retry_at)
    case = Case.objects.get()
    assert case.next_retry_at is None and case.charge_in_doubt_since == at
    assert gateway.charges == []  # nothing was ever charged
    gateway.down, gateway.lookups_raise = False, None
    return case


def test_a_released_charge_is_planned_afresh_and_the_card_charged_once(story: Story) -> None:
    bank, gateway = story.bank, story.gateway
    case = stopped_in_doubt(story)
    key = case.retry_key
    checked = story.at + timedelta(days=8)

    released = release_charge_in_doubt(
        case.pk, now=checked, reason="no PaymentIntent under the key in the dashboard", source="api"
    )

    assert (released.next_retry_at, released.retry_key, released.charge_in_doubt_since) == (
        checked,
        "",
        None,
    )
    event = CaseEvent.objects.get(case=case, type="retry.released")
    assert event.reason == "no PaymentIntent under the key in the dashboard"
    assert event.data == {"source": "api", "key": key, "in_doubt_since": story.at.isoformat()}
    assert bank.run(checked).planned == 1
    # Afresh: the key names the same charge content and attempt count (none was
    # recorded), so it comes out the same, which the gateway has long forgotten.
    case = Case.objects.get()
    assert case.next_retry_at is not None and case.retry_key == key
    bank.answer(ok)
    bank.run(case.next_retry_at)
    assert Case.objects.get().state == "recovered"
    assert succeeded_charges(gateway) == 1
    assert Payment.objects.get().amount == AMOUNT


def test_only_a_charge_in_doubt_can_be_released(story: Story) -> None:
    case = Case.objects.get()
    before = (case.next_retry_at, case.retry_key, case.retry_reason, case.updated_at)

    with pytest.raises(NoChargeInDoubt):
        release_charge_in_doubt(case.pk, now=story.at, reason="checked", source="api")

    case = Case.objects.get()
    assert (case.next_retry_at, case.retry_key, case.retry_reason, case.updated_at) == before
    assert not CaseEvent.objects.filter(type="retry.released").exists()
    with pytest.raises(Case.DoesNotExist):
        release_charge_in_doubt(case.pk + 1, now=story.at, reason="checked", source="api")


def test_a_charge_the_engine_still_asks_about_is_not_released(story: Story) -> None:
    bank, gateway, at = story.bank, story.gateway, story.at
    gateway.down = True
    bank.run(at)  # in doubt, asked again later
    case = Case.objects.get()
    assert case.charge_in_doubt_since == at and case.next_retry_at is not None

    with pytest.raises(NoChargeInDoubt):
        release_charge_in_doubt(case.pk, now=at, reason="checked", source="api")

    assert Case.objects.get().retry_key == case.retry_key
