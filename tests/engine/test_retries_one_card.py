"""One card, several cases: a customer billed in two currencies has a case in each, and
the card's network caps count the charges of both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dunning.engine.cases import sync_cases
from dunning.engine.models import Case
from dunning.gateways.simulated import declined
from dunning.ledger import services
from dunning.ledger.models import PaymentAttempt
from tests.engine.test_retries import T0, Bank, add_card, add_invoice, bank, customer, timeout

__all__ = ["bank", "customer"]  # fixtures

# 02:00 Bangkok on 20 March; declines on the card since 18:00 the evening before.
NOW = datetime(2026, 3, 19, 19, 0, tzinfo=UTC)
EVENING = datetime(2026, 3, 19, 11, 0, tzinfo=UTC)


def decline(invoice: str, *, at: datetime, source: str = "stripe") -> None:
    services.record_payment_attempt(
        invoice=invoice,
        attempted_at=at,
        outcome="failed",
        now=at,
        source=source,
        decline_code="issuer_not_available",
        gateway="stripe",
        payment_method="pm_mc",
    )


def two_cases_on_one_mastercard() -> None:
    add_card("pm_mc", now=T0 - timedelta(days=30), brand="mastercard", last4="4444")
    add_invoice(collection_method="charge_automatically")  # THB
    services.upsert_invoice(
        facts=services.InvoiceFacts(
            external_id="in_us",
            customer="cus_th",
            number="INV-US",
            currency="USD",
            amount_due=2900,
            issued_at=T0 - timedelta(days=1),
            due_at=T0 - timedelta(days=1),
            collection_method="charge_automatically",
        ),
        now=T0 - timedelta(days=1),
        source="test",
    )


def mastercard_declines(request):  # type: ignore[no-untyped-def]
    return declined(request, "issuer_not_available", network="mastercard")


def worst_day() -> int:
    """The most declines on the card within any 24 hours."""
    declines = sorted(
        PaymentAttempt.objects.filter(
            payment_method__external_id="pm_mc", outcome="failed"
        ).values_list("attempted_at", flat=True)
    )
    return max(
        sum(1 for other in declines if at - timedelta(hours=24) < other <= at) for at in declines
    )


def run_wakes(bank: Bank, *, passes: int = 20) -> None:
    for _ in range(passes):
        wakes = [at for at in Case.objects.values_list("next_retry_at", flat=True) if at]
        if not wakes:
            return
        bank.run(max(min(wakes), bank.now))


def nine_declines_on_one_mastercard() -> None:
    """`two_cases_on_one_mastercard`, with nine declines between them on the card in the
    evening before NOW (five of THB's, four of USD's): room for one more in 24 hours;
    both cases opened as of NOW."""
    two_cases_on_one_mastercard()
    for n in range(5):
        decline("in_th", at=EVENING + timedelta(hours=n))
    for n in range(4):
        decline("in_us", at=EVENING + timedelta(hours=n, minutes=30))
    sync_cases(now=NOW)


def test_two_cases_on_one_mastercard_never_make_more_than_ten_declines_in_24_hours(
    customer: None, bank: Bank
) -> None:
    """Each case is planned on the same history, and both retries fall due together:
    the second is planned again after the first's answer, which fills the card's 24 hours."""
    nine_declines_on_one_mastercard()
    assert Case.objects.count() == 2
    bank.run(NOW)
    wakes = {at for at in Case.objects.values_list("next_retry_at", flat=True)}
    assert len(wakes) == 1  # both planned for the same moment
    bank.answer(*[mastercard_declines] * 20)

    run_wakes(bank)

    assert PaymentAttempt.objects.filter(attempted_at__gt=NOW).exists()
    assert worst_day() <= 10


def test_a_decline_of_one_case_s_invoice_replans_the_other_case_on_the_same_card(
    customer: None, bank: Bank
) -> None:
    """The other case's retry was planned before the billing system's decline of the
    second invoice on the same card: it is planned again, counting that decline."""
    two_cases_on_one_mastercard()
    for n in range(5):
        decline("in_th", at=EVENING + timedelta(hours=n))
    sync_cases(now=NOW)
    bank.run(NOW)
    thb = Case.objects.get()
    assert thb.retry_key  # planned, on the card's five declines

    for n in range(5):
        decline("in_us", at=NOW + timedelta(minutes=n))

    thb.refresh_from_db()
    assert (thb.next_retry_at, thb.retry_key) == (NOW + timedelta(minutes=4), "")
    sync_cases(now=NOW + timedelta(minutes=5))
    bank.answer(*[mastercard_declines] * 20)
    bank.now = NOW + timedelta(minutes=5)
    run_wakes(bank)
    assert worst_day() <= 10


def test_a_charge_replans_the_customer_s_other_case_planned_before_it(
    customer: None, bank: Bank
) -> None:
    """The two retries fall an hour apart: the first's decline fills the card's 24
    hours, and the second, planned before it, is planned again."""
    nine_declines_on_one_mastercard()
    bank.run(NOW)
    first, second = Case.objects.order_by("pk")
    assert first.retry_key and second.retry_key
    assert first.next_retry_at is not None
    Case.objects.filter(pk=second.pk).update(next_retry_at=first.next_retry_at + timedelta(hours=1))
    bank.answer(*[mastercard_declines] * 20)

    bank.run(first.next_retry_at)

    second.refresh_from_db()
    assert second.retry_key == "" or second.next_retry_at > first.next_retry_at + timedelta(hours=1)
    run_wakes(bank)
    assert worst_day() <= 10


def test_a_charge_in_doubt_asked_again_holds_the_card_against_the_other_case_s_charge(
    customer: None, bank: Bank
) -> None:
    """The first case's charge got no answer (a timeout): it may be the card's tenth
    decline of the day.  When it is asked again in the same batch as the other case's
    charge on the card, the other waits for its answer."""
    nine_declines_on_one_mastercard()
    bank.run(NOW)
    (at,) = set(Case.objects.values_list("next_retry_at", flat=True))
    assert at is not None
    bank.answer(timeout)
    bank.run(at)  # one charged, no answer; the other waits for it (the same batch)
    doubtful = Case.objects.get(charge_in_doubt_since__isnull=False)
    bank.run(at)  # the other is planned afresh, counting what is recorded
    other = Case.objects.exclude(pk=doubtful.pk).get()
    assert other.retry_key and other.next_retry_at is not None
    # Both fall due together, a minute on: the charge in doubt is asked again (it may
    # be the card's tenth decline of the day), and the other case's charge is due.
    again = at + timedelta(minutes=1)
    Case.objects.update(next_retry_at=again)
    bank.answer(*[mastercard_declines] * 20)

    bank.run(again)

    assert [c.request.idempotency_key for c in bank.gateway.charges] == [doubtful.retry_key]
    assert worst_day() <= 10
    run_wakes(bank)
    assert worst_day() <= 10
