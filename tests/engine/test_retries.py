"""The retry stage: plan each declined charge's next try, charge it when due, record what happened.

Time is driven by the `now` each pass is given; the gateway is a SimulatedGateway
whose answers the test queues.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dunning.core.retry_timing import Strategy
from dunning.engine import policies
from dunning.engine.cases import sync_cases
from dunning.engine.decisions import decide_due_cases
from dunning.engine.models import Case, CaseEvent, Message, MessageStatus, RetryStat
from dunning.engine.retries import (
    CHARGES_OFF,
    GATEWAY_SILENCE,
    IN_DOUBT_LIMIT,
    LOOKUP_LIMIT,
    RetryReport,
    card_to_charge,
    resume_charges,
    retry_due,
)
from dunning.gateways.base import ChargeRequest, ChargeResult, GatewayError
from dunning.gateways.manual import ManualGateway
from dunning.gateways.simulated import LostAnswer, SimulatedGateway, declined, succeeded
from dunning.ledger import services
from dunning.ledger.models import Event, Invoice, Payment, PaymentAttempt, PaymentMethod
from tests.conftest import ApiClient

BANGKOK = ZoneInfo("Asia/Bangkok")
# Friday 20 March 2026, 10:00 in Bangkok: the subscription's charge is declined.
T0 = datetime(2026, 3, 20, 3, 0, tzinfo=UTC)
AMOUNT = 99000
Answer = Callable[[ChargeRequest], ChargeResult]


def ok(request: ChargeRequest) -> ChargeResult:
    return succeeded(request)


def decline(code: str) -> Answer:
    return lambda request: declined(request, code, network="visa")


def timeout(request: ChargeRequest) -> ChargeResult:
    # The request never reached the gateway: nothing charged, nothing remembered.
    raise GatewayError("simulated connection reset", permanent=False)


def lost(request: ChargeRequest) -> ChargeResult:
    # The card was charged, but the answer never came back.
    raise LostAnswer(succeeded(request))


class Bank:
    """A SimulatedGateway whose answers are queued; unqueued charges are declined for funds."""

    def __init__(self, kind: type[SimulatedGateway] = SimulatedGateway) -> None:
        self.answers: deque[Answer] = deque()
        self.now = T0
        self.gateway = kind(oracle=self._oracle, clock=lambda: self.now)

    def _oracle(self, request: ChargeRequest, at: datetime) -> ChargeResult:
        answer = self.answers.popleft() if self.answers else decline("insufficient_funds")
        return answer(request)

    def answer(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def run(self, now: datetime, strategy: Strategy = Strategy.SMART) -> RetryReport:
        self.now = now
        return retry_due(now=now, gateway=self.gateway, strategy=strategy)

    @property
    def keys(self) -> list[str]:
        return [received.request.idempotency_key for received in self.gateway.received]


@pytest.fixture
def bank() -> Bank:
    return Bank()


def add_card(external_id: str, *, now: datetime, brand: str = "visa", last4: str = "4242") -> Any:
    method, _ = services.upsert_payment_method(
        external_id=external_id,
        customer="cus_th",
        now=now,
        source="test",
        type="card",
        brand=brand,
        last4=last4,
        exp_month=12,
        exp_year=2030,
        is_default=True,
    )
    return method


def add_invoice(
    external_id: str = "in_th",
    *,
    collection_method: str,
    number: str = "INV-2001",
    due_at: datetime = T0,
) -> Invoice:
    """An invoice of cus_th for AMOUNT THB, issued (and known) a day before it is due."""
    issued_at = due_at - timedelta(days=1)
    invoice, _ = services.upsert_invoice(
        facts=services.InvoiceFacts(
            external_id=external_id,
            customer="cus_th",
            number=number,
            currency="THB",
            amount_due=AMOUNT,
            issued_at=issued_at,
            due_at=due_at,
            collection_method=collection_method,
        ),
        now=issued_at,
        source="test",
    )
    return invoice


def fail(
    invoice: str = "in_th",
    *,
    at: datetime = T0,
    code: str = "insufficient_funds",
    card: str | None = "pm_visa",
    **values: Any,
) -> None:
    """A decline of `invoice` on `card` at `at`, recorded (None: without its card, as
    a billing system may report it); `values`: the amount, network codes ..."""
    services.record_payment_attempt(
        invoice=invoice,
        attempted_at=at,
        outcome="failed",
        now=at,
        source="test",
        decline_code=code,
        gateway="stripe",
        payment_method=card,
        **values,
    )


@pytest.fixture
def customer(db: None) -> None:
    policies.ensure_default_policies(now=T0 - timedelta(days=30))
    services.upsert_customer(
        external_id="cus_th",
        now=T0 - timedelta(days=30),
        source="test",
        name="Somchai Jaidee",
        email="somchai@example.co.th",
        locale="th",
        country="TH",
        time_zone="Asia/Bangkok",
    )
    add_card("pm_visa", now=T0 - timedelta(days=30))


@pytest.fixture
def case(customer: None) -> Case:
    """A charge_automatically invoice whose charge was declined for funds at T0, in its case."""
    add_invoice(collection_method="charge_automatically")
    fail()
    sync_cases(now=T0)
    return Case.objects.get()


def planned(bank: Bank, now: datetime = T0) -> Case:
    """Run a pass that plans; the case as it is afterwards."""
    report = bank.run(now)
    assert report.planned == 1 and report.charged == 0, report
    return Case.objects.get()


def planned_at(bank: Bank) -> datetime:
    """Run a pass that plans; when the case's retry is planned for."""
    at = planned(bank).next_retry_at
    assert at is not None
    return at


def pay_by_transfer(amount: int, *, at: datetime, invoice: str = "in_th") -> None:
    """Money for `invoice` arrives another way (a bank transfer) at `at`."""
    services.record_payment(
        invoice=invoice,
        amount=amount,
        currency="THB",
        method="bank_transfer",
        received_at=at,
        now=at,
        source="test",
        reference=f"transfer-{at.isoformat()}",
    )


def second_declined_invoice(bank: Bank) -> Case:
    """A second invoice of cus_th declined an hour after the first, in the same case:
    the case planned again, as it is afterwards."""
    add_invoice(
        "in_th2",
        number="INV-2002",
        due_at=T0 + timedelta(hours=1),
        collection_method="charge_automatically",
    )
    fail("in_th2", at=T0 + timedelta(hours=1))
    sync_cases(now=T0 + timedelta(hours=1))
    return planned(bank, T0 + timedelta(hours=1))


def run_on(bank: Bank, start: datetime, *, passes: int = 50) -> None:
    """Run the retry stage at each of the case's wake-ups from `start` on, until it is
    closed or waits for nothing (at most `passes` times)."""
    moment = start
    for _ in range(passes):
        case = Case.objects.get()
        if case.state != "active" or case.next_retry_at is None:
            return
        moment = max(moment, case.next_retry_at)
        bank.run(moment)


def local(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment.astimezone(BANGKOK)


# ---------------------------------------------------------------- planning


def test_a_new_case_wakes_the_retry_stage_at_once(case: Case) -> None:
    assert case.collection_method == "charge_automatically"
    assert case.next_retry_at == T0 and case.retry_key == ""


def test_the_first_pass_plans_a_daytime_retry_with_its_reason(case: Case, bank: Bank) -> None:
    case = planned(bank)

    assert case.next_retry_at is not None and case.next_retry_at > T0
    assert 8 <= local(case.next_retry_at).hour <= 20
    assert case.retry_reason and case.retry_key
    event = CaseEvent.objects.get(case=case, type="retry.planned")
    assert event.reason == case.retry_reason
    assert datetime.fromisoformat(event.data["at"]) == case.next_retry_at
    # No payment history: the eight tries spread over the two weeks (every
    # 1.75 days), each on the best hour of its day: 09:00 in Bangkok.
    assert local(case.next_retry_at).strftime("%d %H:%M") == "22 09:00"
    assert "no payday known" in case.retry_reason
    assert bank.gateway.received == []


def test_a_payday_is_learned_from_a_decline_almost_four_days_before_a_payment(
    customer: None, bank: Bank
) -> None:
    # Last month: declined early on the 22nd, paid late on the 25th (Bangkok).
    # That decline is within three local days of the payment, though nearly
    # four days before it in hours: the 25th is when money arrives.
    add_invoice(
        "in_feb",
        number="INV-1901",
        due_at=datetime(2026, 2, 21, tzinfo=UTC),
        collection_method="charge_automatically",
    )
    fail("in_feb", at=datetime(2026, 2, 22, 0, 30, tzinfo=BANGKOK))
    services.record_payment_attempt(
        invoice="in_feb",
        attempted_at=datetime(2026, 2, 25, 23, 30, tzinfo=BANGKOK),
        outcome="succeeded",
        now=datetime(2026, 2, 25, 23, 30, tzinfo=BANGKOK),
        source="test",
        payment_method="pm_visa",
    )
    add_invoice(collection_method="charge_automatically")
    fail()
    sync_cases(now=T0)

    case = planned(bank)

    assert "funds usually arrive on the 25th" in case.retry_reason
    assert local(case.next_retry_at).strftime("%Y-%m-%d") == "2026-03-25"


def test_nothing_is_charged_before_the_planned_time(case: Case, bank: Bank) -> None:
    case = planned(bank)
    assert case.next_retry_at is not None

    report = bank.run(case.next_retry_at - timedelta(minutes=1))

    assert report == RetryReport()
    assert bank.gateway.received == []


def test_a_success_its_webhook_recorded_first_is_not_reported_as_unrecorded(
    case: Case, bank: Bank
) -> None:
    case = planned(bank)
    assert case.next_retry_at is not None

    def webhook_first(request: ChargeRequest) -> ChargeResult:
        # Stripe's payment_intent.succeeded lands before the worker records its answer.
        result = succeeded(request)
        services.record_payment_attempt(
            invoice=request.invoice_external_id,
            attempted_at=case.next_retry_at,
            outcome="succeeded",
            now=case.next_retry_at,
            source="stripe",
            gateway="simulated",
            reference=result.reference,
        )
        return result

    # A second declined invoice in the same case: after the first is paid, the
    # case goes on, and its next charge needs a plan (and a key) of its own.
    case = second_declined_invoice(bank)
    assert case.next_retry_at is not None
    charged_key = case.retry_key

    bank.answer(webhook_first)
    report = bank.run(case.next_retry_at)

    assert report == RetryReport(charged=1, recovered=1)
    assert PaymentAttempt.objects.filter(outcome="succeeded").count() == 1
    assert not CaseEvent.objects.filter(type="retry.not_recorded").exists()
    case = Case.objects.get()
    assert case.state == "active" and case.retry_key != charged_key  # planned afresh


def test_a_success_on_an_invoice_paid_another_way_meanwhile_is_flagged(
    case: Case, bank: Bank
) -> None:
    case = planned(bank)
    assert case.next_retry_at is not None

    def paid_by_transfer_meanwhile(request: ChargeRequest) -> ChargeResult:
        assert case.next_retry_at is not None
        pay_by_transfer(AMOUNT, at=case.next_retry_at)
        return succeeded(request)

    bank.answer(paid_by_transfer_meanwhile)
    bank.run(case.next_retry_at)

    # The card was charged too: someone has to look at a refund, and the timeline says
    # which charge took how much (the ledger holds no trace of it).
    event = CaseEvent.objects.get(type="retry.not_recorded")
    assert "was not recorded" in event.reason
    [charge] = bank.gateway.charges
    assert f"charge {charge.result.reference} took THB\xa0990.00, but" in event.reason
    assert event.data == {
        "reference": charge.result.reference,
        "amount": AMOUNT,
        "currency": "THB",
        "key": charge.request.idempotency_key,
        "invoice": "in_th",
    }


def test_at_the_planned_time_it_charges_with_the_stored_key_and_a_success_recovers_the_case(
    case: Case, bank: Bank
) -> None:
    decide_due_cases(now=T0)
    scheduled = list(Message.objects.filter(case=case, status=MessageStatus.SCHEDULED))
    assert scheduled, "the failed-payment message waits in the outbox"
    case = planned(bank)
    at, key = case.next_retry_at, case.retry_key
    assert at is not None
    bank.answer(ok)

    report = bank.run(at)

    assert report == RetryReport(charged=1, recovered=1)
    [received] = bank.gateway.received
    assert received.request.idempotency_key == key
    assert received.request.amount == AMOUNT and received.request.currency == "THB"
    assert received.request.payment_method_external_id == "pm_visa"
    assert received.request.customer_external_id == "cus_th"
    attempt = PaymentAttempt.objects.get(outcome="succeeded")
    assert attempt.payment_method is not None
    assert (attempt.attempted_at, attempt.gateway, attempt.payment_method.external_id) == (
        at,
        "simulated",
        "pm_visa",
    )
    payment = Payment.objects.get()
    assert (payment.amount, payment.attempt_id, payment.reference) == (
        AMOUNT,
        attempt.pk,
        attempt.reference,
    )
    assert Invoice.objects.get().status == "paid"
    case.refresh_from_db()
    assert case.state == "recovered"
    assert (case.next_retry_at, case.retry_key) == (None, "")
    for message in scheduled:
        message.refresh_from_db()
        assert message.status == MessageStatus.CANCELED
    thanks = Message.objects.get(case=case, step="payment_received")
    assert thanks.status == MessageStatus.SCHEDULED
    # The receipt asks for nothing more (it once said the sum just paid was still open).
    assert "ไม่มียอดค้างชำระ" in thanks.body_text or "Nothing more is due" in thanks.body_text
    assert "฿990.00" in thanks.body_text and "ยังมียอดคงค้างชำระ" not in thanks.body_text
    for part in (thanks.body_text, thanks.body_html):
        assert "คงค้างชำระ" not in part and "฿0.00" not in part
    # Nothing more to do for it.
    assert bank.run(at + timedelta(days=1)) == RetryReport()


@pytest.mark.parametrize(("issued_by", "through_invoice"), [("simulated", True), ("", False)])
def test_an_invoice_the_gateway_issued_is_collected_through_it(
    case: Case, bank: Bank, issued_by: str, through_invoice: bool
) -> None:
    Invoice.objects.filter(external_id="in_th").update(
        context={"gateway": issued_by} if issued_by else {}
    )
    case = planned(bank)
    assert case.next_retry_at is not None
    bank.answer(ok)

    bank.run(case.next_retry_at)

    [received] = bank.gateway.received
    assert received.request.gateway_invoice is through_invoice


def test_a_decline_plans_the_next_retry_with_a_new_key(case: Case, bank: Bank) -> None:
    case = planned(bank)
    at, key = case.next_retry_at, case.retry_key
    assert at is not None
    bank.answer(decline("insufficient_funds"))

    report = bank.run(at)

    assert report == RetryReport(charged=1, declined=1)
    case.refresh_from_db()
    assert case.state == "active"
    assert case.next_retry_at is not None and case.next_retry_at > at
    assert case.retry_key and case.retry_key != key
    assert PaymentAttempt.objects.filter(outcome="failed").count() == 2
    assert CaseEvent.objects.filter(case=case, type="retry.planned").count() == 2


@pytest.mark.parametrize("trouble", [timeout, lost], ids=["never arrived", "answer lost"])
def test_an_unknown_outcome_is_asked_again_with_the_same_key_and_charges_once(
    case: Case, bank: Bank, trouble: Answer
) -> None:
    case = planned(bank)
    at, key = case.next_retry_at, case.retry_key
    assert at is not None
    bank.answer(trouble, ok)

    first = bank.run(at)

    assert first == RetryReport(charged=1, unknown=1)
    case.refresh_from_db()
    assert case.retry_key == key
    assert case.next_retry_at is not None and at < case.next_retry_at <= at + timedelta(hours=1)
    assert case.retry_reason == (
        "a charge's outcome is unknown: asking the gateway again with the same key"
    )
    assert CaseEvent.objects.filter(case=case, type="retry.unknown").exists()
    assert not PaymentAttempt.objects.filter(outcome="succeeded").exists()

    second = bank.run(case.next_retry_at)

    assert second == RetryReport(charged=1, recovered=1)
    assert bank.keys == [key, key]
    assert len(bank.gateway.charges) == 1
    assert Payment.objects.get().amount == AMOUNT
    assert Case.objects.get().state == "recovered"


def test_a_charge_in_doubt_is_asked_about_after_its_card_is_taken_off_file(
    case: Case, bank: Bank
) -> None:
    # The answer was lost; meanwhile the card was detached (at Stripe, say). What
    # was sent does not change: the same request is asked again, never dropped.
    case = planned(bank)
    at, key = case.next_retry_at, case.retry_key
    assert at is not None
    bank.answer(lost, ok)
    assert bank.run(at) == RetryReport(charged=1, unknown=1)
    services.detach_payment_method(external_id="pm_visa", now=at, source="stripe")

    case.refresh_from_db()
    second = bank.run(case.next_retry_at)

    assert second == RetryReport(charged=1, recovered=1)
    assert bank.keys == [key, key]
    assert len(bank.gateway.charges) == 1
    assert Case.objects.get().state == "recovered"


def test_a_charge_in_doubt_keeps_its_key_when_a_new_card_arrives(case: Case, bank: Bank) -> None:
    case = planned(bank)
    at, key = case.next_retry_at, case.retry_key
    assert at is not None
    bank.answer(lost, ok)
    bank.run(at)  # charged, but the answer was lost

    add_card("pm_new", now=at + timedelta(minutes=5), brand="mastercard", last4="4444")

    case.refresh_from_db()
    assert case.retry_key == key and case.charge_in_doubt_since == at
    assert case.next_retry_at is not None
    bank.run(case.next_retry_at)
    assert bank.keys == [key, key]  # asked again about the same charge, not a new one
    assert len(bank.gateway.charges) == 1
    assert Case.objects.get().state == "recovered"


class CutOff(SimulatedGateway):
    """The simulated gateway behind a link that can go down: then no charge reaches it,
    not even a replay of a key it knows."""

    down = False
    lookups_fail = False

    def charge(self, request: ChargeRequest) -> ChargeResult:
        if self.down:
            raise GatewayError("simulated connection reset", permanent=False)
        return super().charge(request)

    def find_charge(self, request: ChargeRequest, *, since: datetime) -> ChargeResult | None:
        if self.lookups_fail:
            raise GatewayError("simulated 503 from the list endpoint", permanent=False)
        return super().find_charge(request, since=since)


class Forgetful:
    """A gateway that cannot look a charge up: charges only (the simulated one's)."""

    name = "simulated"

    def __init__(self, oracle: Any, clock: Callable[[], datetime]) -> None:
        self.inner = SimulatedGateway(oracle=oracle, clock=clock)
        self.received = self.inner.received

    def charge(self, request: ChargeRequest) -> ChargeResult:
        return self.inner.charge(request)


def ask_until_the_limit(bank: Bank, at: datetime) -> None:
    """After the unanswered charge at `at`: every question with its key until IN_DOUBT_LIMIT."""
    while (case := Case.objects.get()).next_retry_at is not None and (
        case.next_retry_at - at < IN_DOUBT_LIMIT
    ):
        bank.run(case.next_retry_at)


@pytest.fixture
def cut_off(case: Case) -> tuple[Bank, CutOff, Case]:
    """A bank behind a link that can go down, and the case with its retry planned."""
    bank = Bank(CutOff)
    assert isinstance(bank.gateway, CutOff)
    return bank, bank.gateway, planned(bank)


def test_a_charge_whose_answer_is_lost_past_the_key_lifetime_is_found_and_recorded(
    cut_off: tuple[Bank, CutOff, Case],
) -> None:
    bank, gateway, case = cut_off
    at, key = case.next_retry_at, case.retry_key
    assert at is not None
    bank.answer(lost)  # the card is charged, the answer lost, then the link goes down
    bank.run(at)
    gateway.down = True
    ask_until_the_limit(bank, at)
    case = Case.objects.get()
    assert case.charge_in_doubt_since == at
    assert case.next_retry_at == at + IN_DOUBT_LIMIT  # the last question: asked, not charged

    report = bank.run(case.next_retry_at)

    assert report == RetryReport(recovered=1, looked_up=1)
    assert len(gateway.charges) == 1  # charged once, found once
    assert [r.request.idempotency_key for r in gateway.received] == [key] * len(gateway.received)
    payment = Payment.objects.get()
    assert payment.amount == AMOUNT
    assert Case.objects.get().state == "recovered"


def test_a_charge_that_never_happened_is_planned_afresh_once_the_gateway_says_so(
    cut_off: tuple[Bank, CutOff, Case],
) -> None:
    bank, gateway, case = cut_off
    at, key = case.next_retry_at, case.retry_key
    assert at is not None
    gateway.down = True  # nothing reaches the gateway: no charge is made
    bank.run(at)
    ask_until_the_limit(bank, at)
    looked_up = Case.objects.get().next_retry_at
    assert looked_up == at + IN_DOUBT_LIMIT

    report = bank.run(looked_up)

    assert report.looked_up == 1 and report.charged == 0 and report.more_due
    case = Case.objects.get()
    assert case.charge_in_doubt_since is None
    assert (case.next_retry_at, case.retry_key) == (looked_up, "")  # to be planned at once
    event = CaseEvent.objects.get(case=case, type="retry.not_charged")
    assert key in event.reason and "never happened" in event.reason

    assert bank.run(looked_up).planned == 1
    case = Case.objects.get()
    assert case.next_retry_at is not None and case.next_retry_at > looked_up
    assert case.retry_key  # the next retry, planned within the rules as any other
    assert not PaymentAttempt.objects.filter(attempted_at__gt=T0).exists()
    assert gateway.charges == []

    gateway.down = False
    bank.answer(ok)
    bank.run(case.next_retry_at)

    assert Case.objects.get().state == "recovered"
    assert len(gateway.charges) == 1


def test_a_gateway_that_cannot_say_for_a_week_leaves_the_charge_to_an_operator(
    cut_off: tuple[Bank, CutOff, Case],
) -> None:
    bank, gateway, case = cut_off
    at = case.next_retry_at
    assert at is not None
    gateway.down = gateway.lookups_fail = True
    bank.run(at)
    ask_until_the_limit(bank, at)
    moment = at
    lookups = 0
    while (case := Case.objects.get()).next_retry_at is not None:
        moment = case.next_retry_at
        lookups += bank.run(moment).looked_up
        assert moment - at <= LOOKUP_LIMIT

    assert lookups > 1  # asked again, backing off
    reasons = CaseEvent.objects.filter(case=case, type="retry.unknown").values_list(
        "reason", flat=True
    )
    assert any("could not say what became of the charge" in reason for reason in reasons)
    assert moment == at + LOOKUP_LIMIT
    assert case.retry_key and case.charge_in_doubt_since == at
    assert "check the gateway" in case.retry_reason
    assert CaseEvent.objects.filter(case=case, type="retry.in_doubt").exists()
    assert gateway.charges == []


def test_a_charge_in_doubt_for_too_long_stops_for_an_operator(case: Case) -> None:
    """With a gateway that cannot look a charge up, past IN_DOUBT_LIMIT."""
    bank = Bank(Forgetful)  # type: ignore[arg-type]
    case = planned(bank)
    at = case.next_retry_at
    assert at is not None
    bank.answer(*[timeout] * 100)
    bank.run(at)
    moment = at
    while (case := Case.objects.get()).next_retry_at is not None:
        moment = case.next_retry_at
        bank.run(moment)
        assert moment - at < timedelta(hours=21)

    assert case.retry_key  # kept: whoever checks the gateway knows which charge
    assert "check the gateway" in case.retry_reason
    assert CaseEvent.objects.filter(case=case, type="retry.in_doubt").exists()
    times = [received.at for received in bank.gateway.received]
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert max(gaps) > gaps[0]  # it backed off
    # The last question is asked as the limit runs out, however the jitter fell.
    assert times[-1] == at + timedelta(hours=20)


def test_a_payment_landing_between_the_claim_and_the_charge_stops_the_charge(
    case: Case, bank: Bank, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dunning.engine import retries

    case = planned(bank)
    at = case.next_retry_at
    assert at is not None
    target = retries.RetryBatch.named_charge

    def target_then_pay(batch: retries.RetryBatch, case: Case) -> object:
        due = target(batch, case)
        # A partial payment through another door while the batch is charging.
        Invoice.objects.filter(external_id="in_th").update(
            amount_paid=100, amount_remaining=AMOUNT - 100
        )
        return due

    monkeypatch.setattr(retries.RetryBatch, "named_charge", target_then_pay)
    bank.answer(ok)

    bank.run(at)

    assert bank.gateway.received == []
    # Never sent, so not in doubt: looked at again at once, and planned afresh.
    case = Case.objects.get()
    assert case.charge_in_doubt_since is None and case.next_retry_at == at
    assert bank.run(at).planned == 1


def test_one_cases_unexpected_failure_does_not_stop_the_others(
    case: Case, bank: Bank, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = planned(bank)
    at = case.next_retry_at
    assert at is not None

    def broken(request: ChargeRequest) -> ChargeResult:
        raise RuntimeError("a bug in a gateway adapter")

    bank.answer(broken)

    report = bank.run(at)

    assert report.unknown == 1
    case.refresh_from_db()
    assert case.retry_key and case.next_retry_at is not None and case.next_retry_at > at
    assert CaseEvent.objects.filter(case=case, type="retry.unknown").exists()


def test_a_never_retry_decline_stops_the_retries(case: Case, bank: Bank, api: ApiClient) -> None:
    decide_due_cases(now=T0)
    case = planned(bank)
    at = case.next_retry_at
    assert at is not None
    bank.answer(decline("lost_card"))

    bank.run(at)

    case.refresh_from_db()
    assert case.state == "active"
    assert (case.next_retry_at, case.retry_key) == (None, "")
    assert case.retry_reason
    assert CaseEvent.objects.filter(case=case, type="retry.stopped").exists()
    # Time goes on, the reminders go on, the card is never charged again.
    for day in range(1, 15):
        now = at + timedelta(days=day)
        decide_due_cases(now=now)
        assert bank.run(now) == RetryReport()
    assert len(bank.gateway.received) == 1
    body = api.get(f"/cases/{case.pk}").json()
    assert body["next_retry_at"] is None and body["retry_reason"] == case.retry_reason
    shown = [entry["message"] for entry in body["timeline"] if entry["kind"] == "message"]
    after = [m for m in shown if m["created_at"] > at.isoformat().replace("+00:00", "Z")]
    assert after, "reminders were written after the lost-card decline"
    text = " ".join(
        f"{m['subject']} {m['body_text']} {m.get('body_html', '')}" for m in shown
    ).lower()
    for word in ("lost", "stolen", "สูญหาย", "ถูกขโมย", "หาย"):
        assert word not in text


def test_a_new_default_card_is_retried_at_once(case: Case, bank: Bank) -> None:
    case = planned(bank)
    at = case.next_retry_at
    assert at is not None
    bank.answer(decline("lost_card"))
    bank.run(at)
    assert Case.objects.get().next_retry_at is None
    changed = at + timedelta(days=2, hours=3)

    add_card("pm_new", now=changed, brand="mastercard", last4="4444")

    case.refresh_from_db()
    assert (case.next_retry_at, case.retry_key) == (changed, "")
    case = planned(bank, changed)
    assert case.next_retry_at == changed
    assert case.retry_reason == "a new card is on file: retry at once"
    bank.answer(ok)
    assert bank.run(changed) == RetryReport(charged=1, recovered=1)
    assert bank.gateway.received[-1].request.payment_method_external_id == "pm_new"
    assert Case.objects.get().state == "recovered"


def test_a_card_updater_renewing_the_same_card_is_retried_at_once(case: Case, bank: Bank) -> None:
    case = planned(bank)
    at = case.next_retry_at
    assert at is not None
    bank.answer(decline("expired_card"))
    bank.run(at)
    case.refresh_from_db()
    assert case.next_retry_at is None  # the customer must act: not the same details again
    updated = at + timedelta(days=1, hours=2)

    # The card updater keeps the payment method and brings a new expiry.
    services.upsert_payment_method(
        external_id="pm_visa",
        customer="cus_th",
        now=updated,
        source="stripe",
        exp_month=12,
        exp_year=2031,
    )

    case = planned(bank, updated)
    assert case.next_retry_at == updated
    assert case.retry_reason == "the card on file was updated: retry at once"
    bank.answer(ok)
    assert bank.run(updated) == RetryReport(charged=1, recovered=1)
    assert bank.gateway.received[-1].request.payment_method_external_id == "pm_visa"


def decline_without_a_card(code: str, *, at: datetime = T0) -> None:
    """The billing system's charge recorded with no payment method (the API allows it)."""
    fail(at=at, code=code, card=None)


@pytest.mark.parametrize("code", ["expired_card", "lost_card"])
def test_a_new_card_is_retried_at_once_after_a_decline_recorded_without_its_card(
    customer: None, bank: Bank, code: str
) -> None:
    # A card saved after that decline is certainly another card.
    add_invoice(collection_method="charge_automatically")
    decline_without_a_card(code)
    sync_cases(now=T0)
    assert planned(bank).next_retry_at is None  # the customer must act

    changed = T0 + timedelta(days=1)
    add_card("pm_new", now=changed, last4="1111")

    case = planned(bank, changed)
    assert case.next_retry_at == changed, case.retry_reason


def test_a_card_saved_before_a_decline_recorded_without_its_card_is_not_new(
    customer: None, bank: Bank
) -> None:
    # pm_visa, saved a month before, may well be the card that expired.
    add_invoice(collection_method="charge_automatically")
    decline_without_a_card("expired_card")
    sync_cases(now=T0)

    assert planned(bank, T0 + timedelta(days=1)).next_retry_at is None


def test_a_card_updated_after_a_decline_recorded_without_its_card_is_retried_at_once(
    customer: None, bank: Bank
) -> None:
    add_invoice(collection_method="charge_automatically")
    decline_without_a_card("expired_card")
    sync_cases(now=T0)
    assert planned(bank).next_retry_at is None
    updated = T0 + timedelta(days=1)

    services.upsert_payment_method(
        external_id="pm_visa", customer="cus_th", now=updated, source="stripe", exp_year=2032
    )

    case = planned(bank, updated)
    assert case.next_retry_at == updated, case.retry_reason


def billing_system_retried_last_month(*, tries: int, start: datetime, step: timedelta) -> None:
    """Last month's invoice of the same amount: the billing system's charge and its own
    retries, every one declined and reported without its card (the API allows it); then
    the invoice was voided."""
    add_invoice(
        "in_last", number="INV-2000", due_at=start, collection_method="charge_automatically"
    )
    for n in range(tries):
        fail("in_last", at=start + n * step, card=None)
    services.change_invoice_status(
        invoice="in_last", status="void", now=start + tries * step, source="test"
    )


def test_declines_recorded_without_their_card_count_toward_the_visa_cap(
    customer: None, bank: Bank
) -> None:
    # 16 declines of 99,000 THB from T0-20d, a day apart: 15 reattempts of one
    # transaction (same card, same amount) on pm_visa, the only card on file then.
    start = T0 - timedelta(days=20)
    billing_system_retried_last_month(tries=16, start=start, step=timedelta(days=1))
    add_invoice(collection_method="charge_automatically")
    fail()  # this month's charge, the same amount on pm_visa: the 16th reattempt
    sync_cases(now=T0)

    case = planned(bank)

    # Visa: at most 15 reattempts in 30 days (rules.md 2.1). The reattempts were at
    # start+1d ... start+15d and T0; the next keeps 15 in the window once start+2d
    # has left it (start+32d = T0+12d).
    assert case.next_retry_at is None or case.next_retry_at >= start + timedelta(days=32)
    assert "Visa allows 15 reattempts" in case.retry_reason, case.retry_reason


def test_declines_recorded_without_their_card_count_toward_mastercards_daily_cap(
    customer: None, bank: Bank
) -> None:
    add_card("pm_mc", now=T0 - timedelta(days=30), brand="mastercard", last4="4444")
    # Ten declines in the ten hours before T0, reported without their card, then
    # this month's charge declined on pm_mc at T0: eleven in 24 hours.
    start = T0 - timedelta(hours=10)
    billing_system_retried_last_month(tries=10, start=start, step=timedelta(hours=1))
    add_invoice(collection_method="charge_automatically")
    fail(code="expired_card", card="pm_mc")
    sync_cases(now=T0)
    assert planned(bank).next_retry_at is None  # the customer must act
    updated = T0 + timedelta(hours=1)
    # The card updater renews the card: a retry at once, as far as the caps allow.
    services.upsert_payment_method(
        external_id="pm_mc", customer="cus_th", now=updated, source="stripe", exp_year=2032
    )

    case = planned(bank, updated)

    # Mastercard: at most 10 declines on a card in 24 hours (rules.md 2.2): not
    # before the second of the eleven (start + 1 h) has left the window.
    assert case.next_retry_at is not None
    assert case.next_retry_at >= start + timedelta(hours=25), case.retry_reason
    assert "Mastercard allows 10 declines" in case.retry_reason


def test_a_card_saved_after_declines_recorded_without_their_card_is_not_held_by_them(
    customer: None, bank: Bank
) -> None:
    start = T0 - timedelta(days=20)
    billing_system_retried_last_month(tries=16, start=start, step=timedelta(days=1))
    add_invoice(collection_method="charge_automatically")
    add_card("pm_new", now=T0 - timedelta(days=1), last4="1111")
    fail(card="pm_new")
    sync_cases(now=T0)

    case = planned(bank)

    # pm_new was saved after every one of them: none was on it.
    assert case.next_retry_at is not None
    assert case.next_retry_at < T0 + timedelta(days=3), case.retry_reason


@pytest.mark.parametrize("card", ["pm_visa", None])
def test_a_card_declined_as_lost_months_ago_is_not_retried_for_a_new_invoice(
    customer: None, bank: Bank, card: str | None
) -> None:
    # pm_visa, on file for three months, the only card. Two months ago it was
    # declined as lost for another amount (recorded with the card, or without it);
    # the customer never brought another. This month's charge on it is declined
    # with a vaguer code, as issuers often answer for a dead card.
    PaymentMethod.objects.filter(external_id="pm_visa").update(created_at=T0 - timedelta(days=90))
    long_ago = T0 - timedelta(days=60)
    add_invoice(
        "in_last", number="INV-2000", due_at=long_ago, collection_method="charge_automatically"
    )
    fail(
        "in_last",
        at=long_ago,
        code="generic_decline",
        card=card,
        amount=AMOUNT // 2,  # another transaction
        network_code="41",  # Visa category 1: lost card
    )
    services.change_invoice_status(invoice="in_last", status="void", now=long_ago, source="test")
    add_invoice(collection_method="charge_automatically")
    fail(code="do_not_honor")
    sync_cases(now=T0)

    case = planned(bank)

    assert case.next_retry_at is None
    assert "the card will never be approved" in case.retry_reason, case.retry_reason


def test_a_decline_on_another_card_does_not_hold_the_card_charged(
    customer: None, bank: Bank
) -> None:
    # pm_old, saved long ago, was declined as lost for this invoice and then taken
    # off file; pm_visa was on file then too, but the decline names its card:
    # pm_visa may be charged.
    add_card("pm_old", now=T0 - timedelta(days=60), last4="0000")
    add_invoice(collection_method="charge_automatically")
    fail(code="lost_card", card="pm_old")
    services.detach_payment_method(external_id="pm_old", now=T0, source="test")
    sync_cases(now=T0)

    case = planned(bank)

    assert case.next_retry_at is not None, case.retry_reason
    assert case.retry_payment_method is not None
    assert case.retry_payment_method.external_id == "pm_visa"


def test_each_retry_teaches_the_hours_of_its_card_s_brand_and_country(
    case: Case, bank: Bank
) -> None:
    at = planned_at(bank)
    bank.answer(decline("insufficient_funds"))
    bank.run(at)

    learned = {
        (stat.segment, stat.hour): (stat.successes, stat.attempts)
        for stat in RetryStat.objects.all()
    }
    hour = local(at).hour  # the customer's local hour
    # pm_visa has no issuing country on file: the customer's (TH) stands in.
    assert learned == {
        ("visa/TH", hour): (0, 1),
        ("visa/", hour): (0, 1),
        ("/TH", hour): (0, 1),
        ("", hour): (0, 1),
    }
    at = Case.objects.get().next_retry_at  # planned again after the decline
    bank.answer(ok)
    assert bank.run(local(at)).recovered == 1
    assert RetryStat.objects.get(segment="visa/TH", hour=local(at).hour).successes == 1


def test_a_card_follows_the_hours_learned_for_its_brand_and_country(
    customer: None, bank: Bank
) -> None:
    # Every card: 09:00 is best. Thai Visa cards: 15:00 is.
    for segment, best in (("", 9), ("visa/TH", 15)):
        RetryStat.objects.bulk_create(
            RetryStat(
                segment=segment, hour=hour, successes=60 if hour == best else 10, attempts=100
            )
            for hour in range(8, 21)
        )
    add_invoice(collection_method="charge_automatically")
    fail(code="an_unknown_code")
    sync_cases(now=T0)

    case = planned(bank)

    assert local(case.next_retry_at).hour == 15
    assert "your retries on Visa cards from TH succeed most at 15:00" in case.retry_reason


def test_with_no_default_card_the_one_charged_is_the_one_whose_details_are_newest(
    customer: None,
) -> None:
    # No card is flagged default (a legacy source whose customer.* events never came).
    PaymentMethod.objects.update(is_default=False)
    services.upsert_payment_method(
        external_id="pm_new",
        customer="cus_th",
        now=T0 - timedelta(days=1),
        source="test",
        type="card",
        brand="visa",
        last4="1111",
        exp_month=1,
        exp_year=2031,
        is_default=False,
    )
    customer_id = PaymentMethod.objects.get(external_id="pm_new").customer_id
    assert card_to_charge(customer_id).external_id == "pm_new"

    # A notice about the old card (its issuing country filled in, an expiry warning)
    # changes nothing the charge is made with: the newer card is still charged.
    services.upsert_payment_method(
        external_id="pm_visa", customer="cus_th", now=T0, source="stripe", country="TH"
    )
    assert card_to_charge(customer_id).external_id == "pm_new"

    # The card updater renewing the old card's expiry makes it the freshest.
    services.upsert_payment_method(
        external_id="pm_visa",
        customer="cus_th",
        now=T0 + timedelta(hours=1),
        source="stripe",
        exp_year=2032,
    )
    assert card_to_charge(customer_id).external_id == "pm_visa"


def lost_then_updated(case: Case, bank: Bank, **values: Any) -> datetime:
    """pm_visa is declined as lost at its planned retry; two days later the card updater
    changes it with `values`: when it did."""
    at = planned_at(bank)
    bank.answer(decline("lost_card"))
    bank.run(at)
    assert Case.objects.get().next_retry_at is None
    updated = at + timedelta(days=2)
    services.upsert_payment_method(
        external_id="pm_visa", customer="cus_th", now=updated, source="stripe", **values
    )
    return updated


def test_a_lost_card_reissued_by_the_card_updater_with_a_new_number_is_retried_at_once(
    case: Case, bank: Bank
) -> None:
    """The issuer replaces a lost card with a new number; Stripe's card updater updates
    the same payment method (new last four, new expiry).  The networks match
    reattempts on the card number, so the new number is not the declined card."""
    updated = lost_then_updated(case, bank, last4="1881", exp_month=9, exp_year=2031)

    case = planned(bank, updated)
    assert case.next_retry_at == updated, case.retry_reason
    bank.answer(ok)
    assert bank.run(updated) == RetryReport(charged=1, recovered=1)


def test_a_lost_card_whose_expiry_alone_was_renewed_is_still_never_retried(
    case: Case, bank: Bank
) -> None:
    # Same number, new expiry: the same card to the networks (Visa category 1).
    updated = lost_then_updated(case, bank, exp_month=9, exp_year=2031)

    case = planned(bank, updated)
    assert case.next_retry_at is None, case.retry_reason
    assert PaymentMethod.objects.get(external_id="pm_visa").number_changed_at is None


def test_a_card_s_last_four_filled_in_for_the_first_time_is_not_a_new_number(
    customer: None,
) -> None:
    services.upsert_payment_method(
        external_id="pm_bare", customer="cus_th", now=T0, source="stripe", type="card"
    )
    services.upsert_payment_method(
        external_id="pm_bare", customer="cus_th", now=T0, source="stripe", last4="4242"
    )

    assert PaymentMethod.objects.get(external_id="pm_bare").number_changed_at is None


def test_an_update_that_leaves_the_card_s_details_is_not_a_renewed_card(
    case: Case, bank: Bank
) -> None:
    case = planned(bank)
    at = case.next_retry_at
    assert at is not None
    bank.answer(decline("expired_card"))
    bank.run(at)

    # A webhook fills in the issuing country and the default flag: the same card
    # with the same expiry, still expired.
    services.upsert_payment_method(
        external_id="pm_visa",
        customer="cus_th",
        now=at + timedelta(seconds=5),
        source="stripe",
        country="TH",
        is_default=True,
    )

    case = planned(bank, at + timedelta(seconds=5))
    assert case.next_retry_at is None
    assert len(bank.gateway.received) == 1
    assert PaymentMethod.objects.get(external_id="pm_visa").details_changed_at is None


@pytest.mark.parametrize("skip_unchanged", [True, False])
def test_an_unchanged_card_is_written_again_only_when_asked(
    case: Case, bank: Bank, skip_unchanged: bool
) -> None:
    """A webhook's replay or a reloaded page (skip_unchanged) changes nothing: no event,
    no replan; the API's PUT records its update whatever it held."""
    case = planned(bank)
    before = Event.objects.filter(type="payment_method.updated").count()
    method = PaymentMethod.objects.get(external_id="pm_visa")

    same, created = services.upsert_payment_method(
        external_id="pm_visa",
        customer="cus_th",
        now=T0 + timedelta(minutes=5),
        source="stripe",
        skip_unchanged=skip_unchanged,
        brand=method.brand,
        last4=method.last4,
        is_default=method.is_default,
    )

    assert same.pk == method.pk and not created
    updated = Event.objects.filter(type="payment_method.updated").count() - before
    assert updated == (0 if skip_unchanged else 1)
    assert Case.objects.get().next_retry_at == (
        case.next_retry_at if skip_unchanged else T0 + timedelta(minutes=5)
    )


def test_a_decline_recorded_from_outside_replans(case: Case, bank: Bank) -> None:
    case = planned(bank)
    webhook_at = T0 + timedelta(days=1)

    services.record_payment_attempt(
        invoice="in_th",
        attempted_at=webhook_at,
        outcome="failed",
        now=webhook_at,
        source="stripe",
        decline_code="insufficient_funds",
        payment_method="pm_visa",
    )

    case.refresh_from_db()
    assert (case.next_retry_at, case.retry_key) == (webhook_at, "")
    case = planned(bank, webhook_at)
    assert case.next_retry_at is not None and case.next_retry_at > webhook_at


def test_an_invoice_the_gateway_retries_itself_is_not_charged_while_it_does(
    customer: None, bank: Bank
) -> None:
    gateway_at = T0 + timedelta(days=3)
    add_invoice(collection_method="charge_automatically")
    fail()
    services.set_gateway_retry(invoice="in_th", at=gateway_at, now=T0, source="test")
    sync_cases(now=T0)

    case = planned(bank)

    # Not a retry of dunning's: a wake-up, in case word of the gateway's never comes.
    assert (case.next_retry_at, case.retry_key) == (gateway_at + GATEWAY_SILENCE, "")
    assert case.retry_reason.startswith("the gateway retries this invoice itself at")
    for hour in range(0, 3 * 24 + 12, 6):
        bank.run(T0 + timedelta(hours=hour))
    assert bank.gateway.received == []


def test_dunning_takes_over_at_once_when_the_gateway_stops_retrying(
    customer: None, bank: Bank
) -> None:
    """Stripe's last retry failed and it leaves the invoice open (next_payment_attempt
    null): the case is planned again at once, not left waiting for the gateway."""
    add_invoice(collection_method="charge_automatically")
    fail()
    services.set_gateway_retry(invoice="in_th", at=T0 + timedelta(days=3), now=T0, source="test")
    sync_cases(now=T0)
    planned(bank)
    stopped = T0 + timedelta(days=3, minutes=5)

    services.set_gateway_retry(invoice="in_th", at=None, now=stopped, source="test")

    assert (Case.objects.get().next_retry_at) == stopped
    case = planned(bank, stopped)
    assert case.retry_key and case.next_retry_at is not None
    run_on(bank, stopped)
    assert bank.gateway.received, "dunning never retried the invoice the gateway gave up on"


def test_dunning_takes_over_when_the_gateway_s_retry_is_never_heard_of(
    customer: None, bank: Bank
) -> None:
    """The webhook that would say how the gateway's retry went never came: past
    GATEWAY_SILENCE the gateway's retry time is taken as not coming."""
    gateway_at = T0 + timedelta(days=3)
    add_invoice(collection_method="charge_automatically")
    fail()
    services.set_gateway_retry(invoice="in_th", at=gateway_at, now=T0, source="test")
    sync_cases(now=T0)
    planned(bank)

    case = planned(bank, gateway_at + GATEWAY_SILENCE)

    assert case.retry_key and case.next_retry_at is not None
    assert not case.retry_reason.startswith("the gateway retries")
    run_on(bank, gateway_at + GATEWAY_SILENCE)
    assert bank.gateway.received


def test_a_planned_charge_is_dropped_when_the_gateway_takes_the_invoice_over(
    case: Case, bank: Bank
) -> None:
    case = planned(bank)
    at = case.next_retry_at
    assert at is not None
    gateway_at = at + timedelta(days=1)
    services.set_gateway_retry(invoice="in_th", at=gateway_at, now=T0, source="test")

    bank.run(at)

    assert bank.gateway.received == []
    case = Case.objects.get()
    assert (case.next_retry_at, case.retry_key) == (gateway_at + GATEWAY_SILENCE, "")


def test_a_send_invoice_case_is_never_charged(customer: None, bank: Bank) -> None:
    add_invoice(collection_method="send_invoice")
    fail()
    sync_cases(now=T0)
    case = Case.objects.get()
    assert case.collection_method == "send_invoice" and case.next_retry_at is None
    # Even woken by mistake, the stage does not charge it.
    Case.objects.filter(pk=case.pk).update(next_retry_at=T0)

    for day in range(15):
        bank.run(T0 + timedelta(days=day))

    assert bank.gateway.received == []
    case.refresh_from_db()
    assert case.next_retry_at is None
    assert case.retry_reason == "invoices sent for payment are not charged"


@pytest.mark.parametrize("strategy", list(Strategy))
def test_a_run_of_declines_keeps_to_the_budget_and_the_network_caps(
    case: Case, bank: Bank, strategy: Strategy
) -> None:
    now = T0
    for _ in range(40):
        case.refresh_from_db()
        if case.next_retry_at is None:
            break
        now = max(now, case.next_retry_at)
        bank.run(now, strategy)
    case.refresh_from_db()
    assert case.next_retry_at is None and case.retry_reason

    charged = [received.at for received in bank.gateway.received]
    assert 1 <= len(charged) <= 8
    assert all(T0 < at <= T0 + timedelta(days=14) for at in charged)
    assert len(set(bank.keys)) == len(charged), "a new key for every new charge"
    on_card = PaymentAttempt.objects.filter(payment_method__external_id="pm_visa")
    assert on_card.count() == 1 + len(charged)
    if strategy is Strategy.SMART:
        assert all(8 <= local(at).hour <= 20 for at in charged)
    else:
        assert len(charged) == 8
    # Later passes change nothing.
    assert bank.run(T0 + timedelta(days=30), strategy) == RetryReport()


def test_the_api_shows_the_next_retry_and_its_reason(
    case: Case, bank: Bank, api: ApiClient
) -> None:
    case = planned(bank)
    assert case.next_retry_at is not None

    response = api.get(f"/cases/{case.pk}")

    assert response.status_code == 200, response.content
    body = response.json()
    shown = datetime.fromisoformat(body["next_retry_at"].replace("Z", "+00:00"))
    assert shown == case.next_retry_at
    assert body["retry_reason"] == case.retry_reason != ""


def test_the_fixed_schedule_keeps_the_hour_of_this_invoices_first_charge(
    customer: None, bank: Bank
) -> None:
    # An older invoice on the same card was charged at 02:00 in Bangkok.
    earlier = T0 - timedelta(days=20, hours=8)
    add_invoice("in_old", collection_method="charge_automatically")
    services.record_payment_attempt(
        invoice="in_old",
        attempted_at=earlier,
        outcome="succeeded",
        now=earlier,
        source="test",
        gateway="stripe",
        payment_method="pm_visa",
    )
    add_invoice(collection_method="charge_automatically")
    fail()
    sync_cases(now=T0)

    bank.run(T0, Strategy.FIXED)

    case = Case.objects.get()
    # 14 days / 8 retries: the first 1.75 days on, at 10:00 like the declined charge.
    assert local(case.next_retry_at).strftime("%d %H:%M") == "22 10:00"
    assert case.retry_reason == "fixed schedule: retry 1 of 8"


def test_a_batch_is_charged_and_recorded_in_chunks_and_a_case_lost_meanwhile_is_skipped(
    customer: None, bank: Bank, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dunning.engine import retries

    # Five customers' declined invoices, each in its own case, recorded two at a time.
    for n in range(5):
        services.upsert_customer(
            external_id=f"cus_{n}",
            now=T0 - timedelta(days=30),
            source="test",
            name=f"Customer {n}",
            email=f"c{n}@example.com",
            locale="en",
            country="TH",
        )
        services.upsert_payment_method(
            external_id=f"pm_{n}",
            customer=f"cus_{n}",
            now=T0 - timedelta(days=30),
            source="test",
            type="card",
            brand="visa",
            last4="4242",
            exp_month=12,
            exp_year=2030,
            is_default=True,
        )
        services.upsert_invoice(
            facts=services.InvoiceFacts(
                external_id=f"in_{n}",
                customer=f"cus_{n}",
                number=f"INV-{n}",
                currency="THB",
                amount_due=AMOUNT,
                issued_at=T0 - timedelta(days=1),
                due_at=T0,
                collection_method="charge_automatically",
            ),
            now=T0 - timedelta(days=1),
            source="test",
        )
        services.record_payment_attempt(
            invoice=f"in_{n}",
            attempted_at=T0,
            outcome="failed",
            now=T0,
            source="test",
            decline_code="insufficient_funds",
            payment_method=f"pm_{n}",
        )
    sync_cases(now=T0)
    assert bank.run(T0).planned == 5
    at = max(case.next_retry_at for case in Case.objects.all() if case.next_retry_at)
    monkeypatch.setattr(retries, "CHUNK", 2)
    still_ours = retries._still_ours
    taken = Case.objects.get(invoices__external_id="in_3")

    def another_worker_took_one(dues: Any, *, lease: datetime, now: datetime) -> set[int]:
        return still_ours(dues, lease=lease, now=now) - {taken.pk}

    monkeypatch.setattr(retries, "_still_ours", another_worker_took_one)
    bank.answer(ok, ok, ok, ok)

    report = bank.run(at)

    assert (report.charged, report.recovered) == (5, 4)
    charged = {received.request.invoice_external_id for received in bank.gateway.received}
    assert charged == {"in_0", "in_1", "in_2", "in_4"}
    assert Invoice.objects.filter(status="paid").count() == 4


# ---------------------------------------------------------------- the charge stored with its key


def test_a_planned_charge_is_stored_with_the_invoice_card_and_amount_its_key_names(
    case: Case, bank: Bank
) -> None:
    case = planned(bank)

    assert case.retry_key
    assert case.retry_invoice is not None and case.retry_invoice.external_id == "in_th"
    assert case.retry_payment_method is not None
    assert case.retry_payment_method.external_id == "pm_visa"
    assert case.retry_amount == AMOUNT


def test_a_charge_planned_before_a_partial_payment_is_planned_afresh_not_made(
    case: Case, bank: Bank
) -> None:
    case = planned(bank)
    at, key = case.next_retry_at, case.retry_key
    assert at is not None
    pay_by_transfer(1000, at=at - timedelta(hours=1))

    report = bank.run(at)

    assert (report.charged, report.planned) == (0, 1)
    case = Case.objects.get()
    assert case.retry_amount == AMOUNT - 1000 and case.retry_key != key
    bank.answer(ok)
    bank.run(case.next_retry_at or at)
    [received] = bank.gateway.received
    assert received.request.amount == AMOUNT - 1000
    assert received.request.idempotency_key == case.retry_key


def test_a_charge_sent_is_in_doubt_until_its_answer_is_recorded(case: Case, bank: Bank) -> None:
    at = planned_at(bank)
    seen: list[datetime | None] = []

    def look_then_decline(request: ChargeRequest) -> ChargeResult:
        seen.append(Case.objects.get().charge_in_doubt_since)
        return declined(request, "insufficient_funds", network="visa")

    bank.answer(look_then_decline)
    bank.run(at)

    assert seen == [at]  # while the gateway had it
    assert Case.objects.get().charge_in_doubt_since is None  # answered and recorded


def test_a_charge_in_doubt_from_before_charges_were_stored_waits_for_an_operator(
    case: Case, bank: Bank
) -> None:
    at = planned_at(bank)
    Case.objects.update(
        charge_in_doubt_since=at, retry_invoice=None, retry_payment_method=None, retry_amount=None
    )

    report = bank.run(at + timedelta(hours=1))

    assert report.stopped == 1 and bank.gateway.received == []
    stopped = CaseEvent.objects.get(type="retry.in_doubt")
    assert "not known in full" in stopped.reason


# ---------------------------------------------------------------- gateway switch


def test_cases_left_unplanned_under_the_manual_gateway_resume_when_one_that_charges_starts(
    case: Case, bank: Bank
) -> None:
    retry_due(now=T0, gateway=ManualGateway())
    case.refresh_from_db()
    assert (case.next_retry_at, case.retry_reason) == (None, CHARGES_OFF)
    later = T0 + timedelta(days=3)
    assert resume_charges(now=later, gateway=ManualGateway()) == 0

    assert resume_charges(now=later, gateway=bank.gateway) == 1

    case.refresh_from_db()
    assert (case.next_retry_at, case.retry_reason) == (later, "")
    assert planned(bank, later).next_retry_at is not None
    bank.answer(ok)
    run_on(bank, later)
    assert Case.objects.get().state == "recovered"
    assert resume_charges(now=later, gateway=bank.gateway) == 0


def test_the_attempt_columns_are_the_planner_s_attempt_fields_in_order() -> None:
    from dataclasses import fields

    from dunning.engine.retries import _ATTEMPT_FIELDS, _Attempt

    names = [field.name for field in fields(_Attempt)]
    assert tuple(names[: len(_ATTEMPT_FIELDS)]) == _ATTEMPT_FIELDS
    assert names[len(_ATTEMPT_FIELDS) :] == ["payment_method"]
