from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dunning.core.declines import Brand, Classification, DeclineClass, classify_decline
from dunning.core.network_rules import (
    Card,
    Charge,
    PastAttempt,
    RetryWindow,
    earliest_retry,
    never_again,
)
from dunning.core.policy import (
    CHARGE_AUTOMATICALLY_DEFAULT,
    RETRY_WINDOWS,
    SEND_INVOICE_DEFAULT,
    RetryBudget,
)
from tests.core.test_declines import MAC_WAITS

VISA = Card("fp_visa", Brand.VISA)
MASTERCARD = Card("fp_mc", Brand.MASTERCARD)
INVOICE = Charge("in_1", 1000, "USD")
# The widest budget a policy may set, so that only the network rules bind.
WIDE = RetryBudget(max_attempts=15, within=timedelta(days=60))
DEFAULT = CHARGE_AUTOMATICALLY_DEFAULT.retry


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def declined(
    at: datetime | str,
    code: str = "insufficient_funds",
    *,
    card: Card = VISA,
    charge: Charge = INVOICE,
    **codes: str,
) -> PastAttempt:
    moment = utc(at) if isinstance(at, str) else at
    classification = classify_decline(code, brand=card.brand, **codes)
    return PastAttempt(moment, card, charge, succeeded=False, classification=classification)


def ask(
    now: datetime | str,
    attempts: Sequence[PastAttempt],
    *,
    card: Card = VISA,
    charge: Charge = INVOICE,
    budget: RetryBudget = WIDE,
    first_failure_at: datetime | None = None,
) -> RetryWindow:
    moment = utc(now) if isinstance(now, str) else now
    first = first_failure_at or min(
        (a.at for a in attempts if a.charge.invoice == charge.invoice), default=moment
    )
    return earliest_retry(
        now=moment,
        card=card,
        charge=charge,
        attempts=attempts,
        budget=budget,
        first_failure_at=first,
    )


# ---------------------------------------------------------------- declines (C cases)


def test_C02_a_soft_decline_may_be_retried_at_once() -> None:
    window = ask("2025-06-01T12:00", [declined("2025-06-01T00:00")], budget=DEFAULT)

    assert window == RetryWindow(utc("2025-06-01T12:00"))


@pytest.mark.parametrize("code", ["lost_card", "stolen_card", "pickup_card", "fraudulent"])
def test_C01_a_hard_decline_is_never_retried_on_that_card(code: str) -> None:
    history = [declined("2025-06-01T00:00", code)]

    assert ask("2025-06-20T00:00", history).never
    assert not ask("2025-06-20T00:00", history, card=Card("fp_new", Brand.VISA)).never


def test_C03_an_expired_card_is_retried_only_with_new_details() -> None:
    history = [declined("2025-06-01T00:00", "expired_card")]

    blocked = ask("2025-06-02T00:00", history)
    updated = ask("2025-06-02T00:00", history, card=replace(VISA, details="exp 2029-04"))
    replaced = ask("2025-06-02T00:00", history, card=Card("fp_other", Brand.VISA))

    assert blocked.never
    assert "update_card" in blocked.reasons[0]
    assert updated.allowed_at == replaced.allowed_at == utc("2025-06-02T00:00")


def test_C04_authentication_required_is_not_retried_off_session() -> None:
    history = [declined("2025-06-01T00:00", "authentication_required")]

    assert ask("2025-06-08T00:00", history).never


def test_C04_the_reason_says_the_customer_confirms_with_the_same_card_not_a_new_one() -> None:
    # The pay page charges the same card with the customer present (3-D Secure):
    # "only new card details may be tried" would send an operator asking for a card.
    history = [declined("2025-06-01T00:00", "authentication_required")]

    (reason,) = ask("2025-06-08T00:00", history).reasons

    assert reason == (
        "the decline of 2025-06-01T00:00:00Z needs the customer to confirm the payment with "
        "their bank (authenticate): no retry without them; they can pay on the pay page, "
        "or new card details may be tried (rules.md 1.2)"
    )


@pytest.mark.parametrize(
    "code",
    ["incorrect_number", "invalid_number", "incorrect_cvc", "invalid_expiry_year", "incorrect_zip"],
)
def test_C05_wrong_card_data_is_not_retried_as_it_was(code: str) -> None:
    assert ask("2025-06-08T00:00", [declined("2025-06-01T00:00", code)]).never


def test_C06_a_do_not_try_again_advice_blocks_a_generic_decline() -> None:
    history = [declined("2025-06-01T00:00", "generic_decline", advice_code="do_not_try_again")]

    assert ask("2025-06-08T00:00", history).never


def test_C06_a_try_again_later_advice_lets_do_not_honor_be_retried() -> None:
    history = [declined("2025-06-01T00:00", "do_not_honor", advice_code="try_again_later")]

    assert not ask("2025-06-08T00:00", history).never


@pytest.mark.parametrize(
    "code",
    ["revocation_of_authorization", "revocation_of_all_authorizations", "stop_payment_order"],
)
def test_C07_a_revoked_authorisation_stops_every_charge_to_that_card(code: str) -> None:
    history = [declined("2025-06-01T00:00", code)]
    next_month = Charge("in_2", 1500, "USD")

    window = ask("2025-07-01T00:00", history, charge=next_month)

    assert window.never
    assert "withdrew consent" in window.reasons[0]


# ---------------------------------------------------------------- networks (N cases)


@pytest.mark.parametrize("code", ["04", "07", "12", "15", "41", "43", "46", "57", "R0", "R1", "R3"])
def test_N01_no_reattempt_ever_after_a_visa_category_1_decline(code: str) -> None:
    history = [declined("2025-06-01T00:00", "do_not_honor", network_decline_code=code)]

    window = ask("2025-09-01T00:00", history, first_failure_at=utc("2025-08-30T00:00"))

    assert window.never
    assert any("category 1" in reason for reason in window.reasons)


def visa_51_daily(first: str, days: int, *, charge: Charge = INVOICE) -> list[PastAttempt]:
    start = utc(first)
    return [
        declined(start + timedelta(days=day), network_decline_code="51", charge=charge)
        for day in range(days)
    ]


def test_N02_the_sixteenth_reattempt_in_30_days_is_blocked() -> None:
    # Initial decline 06-01, r1..r15 on 06-02..06-16, r16 asked on 06-17.
    history = visa_51_daily("2025-06-01T00:00", 16)

    assert ask("2025-06-17T00:00", history).never


def test_N02_reattempts_resume_once_fewer_than_15_fall_in_30_days() -> None:
    # [interp] The same sixteen declines, the last seven on a second invoice of the
    # same amount: Visa sees one transaction, the policy two budgets.
    renewal = Charge("in_2", INVOICE.amount, INVOICE.currency)
    history = visa_51_daily("2025-06-01T00:00", 9) + visa_51_daily(
        "2025-06-10T00:00", 7, charge=renewal
    )

    window = ask("2025-06-17T00:00", history, charge=renewal)
    edge = ask("2025-07-01T23:59:59", history, charge=renewal)

    assert window.allowed_at == edge.allowed_at == utc("2025-07-02T00:00")  # r1 + 30 days
    assert "Visa allows 15 reattempts" in window.reasons[0]
    assert ask("2025-07-02T00:00", history, charge=renewal).reasons == ()


def test_N02_a_different_amount_is_a_different_transaction() -> None:
    other = Charge("in_2", 2500, "USD")
    history = visa_51_daily("2025-06-01T00:00", 9) + visa_51_daily(
        "2025-06-10T00:00", 7, charge=other
    )

    assert ask("2025-06-17T00:00", history, charge=other).allowed_at == utc("2025-06-17T00:00")


@pytest.mark.parametrize(("mac", "stops_the_card"), [("03", False), ("21", True)])
def test_N03_mastercard_do_not_retry_advice(mac: str, stops_the_card: bool) -> None:
    history = [
        declined("2025-06-01T00:00", "do_not_honor", card=MASTERCARD, network_advice_code=mac)
    ]
    renewal = Charge("in_2", 2500, "USD")

    assert ask("2025-06-05T00:00", history, card=MASTERCARD).never
    assert ask("2025-07-01T00:00", history, card=MASTERCARD, charge=renewal).never is (
        stops_the_card
    )


@pytest.mark.parametrize(
    ("mac", "wait"),
    MAC_WAITS,
)
def test_N04_a_retry_waits_for_the_time_mastercard_advised(mac: str, wait: timedelta) -> None:
    decline_at = utc("2025-06-02T10:00:00")
    history = [
        declined(
            decline_at,
            card=MASTERCARD,
            network_decline_code="51",
            network_advice_code=mac,
        )
    ]
    ready = decline_at + wait

    early = ask(ready - timedelta(seconds=1), history, card=MASTERCARD)
    on_time = ask(ready, history, card=MASTERCARD)

    assert early.allowed_at == ready  # DEFER
    assert "rules.md 2.2" in early.reasons[0]
    assert on_time == RetryWindow(ready)  # allowed


def test_N05a_an_eleventh_decline_in_24_hours_waits_for_the_first_to_age_out() -> None:
    # Ten declines on PAN P between 00:00 and 20:00, over three invoices.
    history = [
        declined(
            utc("2025-06-02T00:00") + timedelta(hours=2 * i),
            card=MASTERCARD,
            charge=Charge(f"in_{i % 3}", 1000 + i % 3, "USD"),
        )
        for i in range(10)
    ]

    window = ask("2025-06-02T21:00", history, card=MASTERCARD, charge=Charge("in_0", 1000, "USD"))

    assert window.allowed_at == utc("2025-06-03T00:00")
    assert "10 declines on a card in 24 hours" in window.reasons[0]


def test_N05b_the_thirty_sixth_attempt_of_a_transaction_in_30_days_is_blocked() -> None:
    # 35 attempts on P, same merchant and amount, over five invoices; six days apart
    # is never more than two a day, so only the 30-day cap binds.
    start = utc("2025-06-01T00:00")
    history = [
        declined(
            start + timedelta(hours=20 * i),
            card=MASTERCARD,
            charge=Charge(f"in_{i // 7}", 1000, "USD"),
        )
        for i in range(35)
    ]
    now = start + timedelta(hours=20 * 35)  # 29 days 4 hours after the first
    same_amount = Charge("in_9", 1000, "USD")
    other_amount = Charge("in_9", 1200, "USD")

    window = ask(now, history, card=MASTERCARD, charge=same_amount)

    assert window.allowed_at == start + timedelta(days=30)  # BLOCK until the first ages out
    assert "35 attempts of one transaction" in window.reasons[0]
    assert ask(now, history, card=MASTERCARD, charge=other_amount).allowed_at == now


NEW_YORK = ZoneInfo("America/New_York")


def in_new_york(attempts: Sequence[PastAttempt]) -> list[PastAttempt]:
    """The same attempts with their times given on New York's clock, as a caller may."""
    return [replace(a, at=a.at.astimezone(NEW_YORK)) for a in attempts]


def test_the_24_hours_and_30_days_are_elapsed_time_across_a_clock_change() -> None:
    # New York's clocks go forward on Sunday 8 March 2026: a day on its calendar is
    # 23 hours, and 30 days across it 30 days less an hour.  The networks count time.
    mastercard = [
        declined(utc("2026-03-07T17:00") + timedelta(minutes=i), card=MASTERCARD) for i in range(10)
    ]  # ten declines from noon on Saturday, New York time
    other = Charge("in_0", INVOICE.amount, INVOICE.currency)  # same transaction for Visa
    visa = visa_51_daily("2026-02-20T15:00", 16, charge=other)  # r1 on 21 Feb, 10:00 EST
    advised = [
        declined(utc("2026-03-07T17:00"), card=MASTERCARD, network_advice_code="25")
    ]  # "retry after 24 hours"

    for history, card, opens in [
        (mastercard, MASTERCARD, utc("2026-03-08T17:00")),
        (visa, VISA, utc("2026-03-23T15:00")),
        (advised, MASTERCARD, utc("2026-03-08T17:00")),
    ]:
        first = history[0].at.astimezone(NEW_YORK)
        now = history[-1].at.astimezone(NEW_YORK) + timedelta(hours=1)
        for attempts in (history, in_new_york(history)):
            window = ask(now, attempts, card=card, first_failure_at=first)
            assert window.allowed_at == opens, (card, window)


def test_visa_caps_do_not_apply_to_mastercard_nor_mastercard_caps_to_visa() -> None:
    eleven = [declined(utc("2025-06-02T00:00") + timedelta(hours=i)) for i in range(11)]
    as_mastercard = [replace(attempt, card=MASTERCARD) for attempt in eleven]

    assert ask("2025-06-02T12:00", eleven).allowed_at == utc("2025-06-02T12:00")
    assert ask("2025-06-02T12:00", as_mastercard, card=MASTERCARD).allowed_at == utc(
        "2025-06-03T01:00"
    )


# ---------------------------------------------------------------- the policy's budget


def test_the_budget_stops_after_its_attempts() -> None:
    history = [declined(utc("2025-06-01T00:00") + timedelta(days=i)) for i in range(9)]

    window = ask("2025-06-10T00:00", history, budget=DEFAULT)

    assert window.never
    assert "8 retries within 14 days" in window.reasons[0]


def test_the_budget_stops_when_its_window_closes() -> None:
    history = [declined("2025-06-01T00:00")]

    assert not ask("2025-06-15T00:00", history, budget=DEFAULT).never  # the last moment
    assert ask("2025-06-15T00:00:01", history, budget=DEFAULT).never


def test_a_wait_past_the_window_is_never() -> None:
    history = [
        declined("2025-06-01T00:00", card=MASTERCARD, network_advice_code="30"),
    ]

    window = ask(
        "2025-06-02T00:00", history, card=MASTERCARD, budget=RetryBudget(8, RETRY_WINDOWS[0])
    )

    assert window.never
    assert window.reasons[-1].startswith("which is after the policy's retry window closes")


def test_invoices_paid_by_hand_are_never_charged() -> None:
    assert ask("2025-06-01T00:00", [], budget=SEND_INVOICE_DEFAULT.retry).never


def test_a_paid_invoice_is_never_charged_again() -> None:
    paid = PastAttempt(utc("2025-06-02T00:00"), VISA, INVOICE, succeeded=True)

    window = ask("2025-06-03T00:00", [declined("2025-06-01T00:00"), paid])

    assert window.reasons == ("invoice in_1 is already paid",)


# ---------------------------------------------------------------- properties

CARDS = (VISA, MASTERCARD, Card("fp_amex", Brand.AMEX))
CHARGES = (
    Charge("in_a", 1000, "USD"),
    Charge("in_b", 1000, "USD"),  # the same amount: one transaction to the networks
    Charge("in_c", 2500, "USD"),
    Charge("in_d", 1000, "USD"),
)
_SOFT = classify_decline("insufficient_funds", network_decline_code="51")
OUTCOMES: tuple[Classification | None, ...] = (
    *(_SOFT,) * 12,
    classify_decline("do_not_honor"),
    classify_decline("generic_decline", advice_code="try_again_later"),
    classify_decline("insufficient_funds", network_advice_code="24"),
    classify_decline("insufficient_funds", network_advice_code="25"),
    classify_decline("expired_card"),
    classify_decline("incorrect_cvc"),
    classify_decline("lost_card"),
    classify_decline("do_not_honor", network_advice_code="03"),
    classify_decline("revocation_of_authorization"),
    classify_decline("duplicate_transaction"),
    None,  # the attempt succeeded
)


@dataclass(frozen=True)
class Request:
    card: int
    details: int
    charge: int
    gap: timedelta
    outcome: Classification | None


requests = st.builds(
    Request,
    card=st.integers(0, len(CARDS) - 1),
    details=st.integers(0, 1),
    charge=st.integers(0, len(CHARGES) - 1),
    gap=st.integers(0, 8 * 3600).map(lambda s: timedelta(seconds=s)),
    outcome=st.sampled_from(OUTCOMES),
)
budgets = st.builds(
    RetryBudget, max_attempts=st.integers(0, 15), within=st.sampled_from(RETRY_WINDOWS)
)
T0 = utc("2025-06-01T00:00")


def simulate(
    script: Sequence[Request], budget: RetryBudget
) -> tuple[list[PastAttempt], dict[str, datetime]]:
    """A caller that charges only when, and exactly when, earliest_retry allows."""
    clock = T0
    made: list[PastAttempt] = []
    first_failure: dict[str, datetime] = {}
    for request in script:
        clock += request.gap
        card = replace(CARDS[request.card], details=f"v{request.details}")
        charge = CHARGES[request.charge]
        window = earliest_retry(
            now=clock,
            card=card,
            charge=charge,
            attempts=made,
            budget=budget,
            first_failure_at=first_failure.get(charge.invoice, clock),
        )
        if window.allowed_at is None:
            continue
        assert window.allowed_at >= clock
        clock = window.allowed_at
        succeeded = request.outcome is None
        made.append(PastAttempt(clock, card, charge, succeeded, request.outcome))
        if not succeeded:
            first_failure.setdefault(charge.invoice, clock)
        clock += timedelta(seconds=1)
    return made, first_failure


def breaches(
    made: Sequence[PastAttempt], first_failure: dict[str, datetime], budget: RetryBudget
) -> list[str]:
    """Every rule an attempt broke, checked attempt by attempt from the rules themselves."""
    found = []
    for index, attempt in enumerate(made):
        before = made[:index]
        number = [p for p in before if p.card.number == attempt.card.number]
        same = [
            p
            for p in number
            if p.charge.invoice == attempt.charge.invoice
            or (p.charge.amount, p.charge.currency)
            == (attempt.charge.amount, attempt.charge.currency)
        ]
        declines = [p for p in number if not p.succeeded]
        invoice = [p for p in before if p.charge.invoice == attempt.charge.invoice]
        where = f"attempt {index} at {attempt.at}"
        if any(p.succeeded for p in invoice):
            found.append(f"{where}: the invoice was paid")
        for p in declines:
            assert p.classification is not None
            kind = p.classification.kind
            if p.classification.stop_recurring:
                found.append(f"{where}: the card's authorisation was revoked")
            if kind is DeclineClass.NEVER_RETRY and p in same:
                found.append(f"{where}: after a never-retry decline")
            if (
                kind in (DeclineClass.CUSTOMER_ACTION, DeclineClass.NOT_A_RETRY_CASE)
                and p.charge.invoice == attempt.charge.invoice
                and p.card.details == attempt.card.details
            ):
                found.append(f"{where}: the same details after a {kind} decline")
            wait = p.classification.retry_after
            if wait is not None and p in same and attempt.at < p.at + wait:
                found.append(f"{where}: before the advised wait")
        failed_at = first_failure.get(attempt.charge.invoice)
        if failed_at is not None and failed_at < attempt.at:
            retries = sum(1 for p in invoice if p.at > failed_at) + 1
            if retries > budget.max_attempts:
                found.append(f"{where}: retry {retries} of {budget.max_attempts}")
            if attempt.at > failed_at + budget.within:
                found.append(f"{where}: after the budget's window")
        if attempt.card.brand is Brand.MASTERCARD:
            day = [p for p in declines if p.at > attempt.at - timedelta(hours=24)]
            month = [p for p in same if p.at > attempt.at - timedelta(days=30)]
            if len(day) + (not attempt.succeeded) > 10:
                found.append(f"{where}: more than 10 Mastercard declines in 24 hours")
            if len(month) + 1 > 35:
                found.append(f"{where}: more than 35 Mastercard attempts in 30 days")
        elif same and not same[-1].succeeded:  # a reattempt: Visa's rule (and 2.3's)
            reattempts = [q for p, q in pairwise(same) if not p.succeeded]
            recent = [q for q in reattempts if q.at > attempt.at - timedelta(days=30)]
            if len(recent) + 1 > 15:
                found.append(f"{where}: more than 15 Visa reattempts in 30 days")
    return found


@settings(max_examples=300, deadline=None)
@given(st.lists(requests, max_size=120), budgets)
def test_a_caller_that_waits_for_earliest_retry_never_breaks_a_rule(
    script: list[Request], budget: RetryBudget
) -> None:
    made, first_failure = simulate(script, budget)

    assert breaches(made, first_failure, budget) == []


# One card, two invoices of one amount, soft declines at short intervals: the
# shape of history that runs into the network caps rather than the budget.
pressing_requests = st.builds(
    Request,
    card=st.integers(0, 2),
    details=st.just(0),
    charge=st.sampled_from([0, 1, 3, 2]),
    gap=st.integers(0, 3 * 3600).map(lambda s: timedelta(seconds=s)),
    outcome=st.sampled_from([_SOFT] * 10 + list(OUTCOMES[12:16])),  # soft only
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(CARDS),
    st.lists(pressing_requests, min_size=20, max_size=150),
    st.sampled_from([RetryBudget(15, timedelta(days=60)), RetryBudget(15, timedelta(days=30))]),
)
def test_a_caller_pressing_one_card_never_breaks_a_network_cap(
    card: Card, script: list[Request], budget: RetryBudget
) -> None:
    script = [replace(request, card=CARDS.index(card)) for request in script]

    made, first_failure = simulate(script, budget)

    assert breaches(made, first_failure, budget) == []


histories = st.lists(
    st.builds(
        PastAttempt,
        at=st.integers(0, 40 * 86400).map(lambda s: T0 + timedelta(seconds=s)),
        card=st.sampled_from(CARDS),
        charge=st.sampled_from(CHARGES),
        succeeded=st.just(False),
        classification=st.sampled_from(OUTCOMES).filter(lambda o: o is not None),
    ),
    max_size=60,
)
moments = st.integers(0, 50 * 86400).map(lambda s: T0 + timedelta(seconds=s))


@settings(deadline=None)
@given(histories, moments, st.sampled_from(CARDS), st.sampled_from(CHARGES), budgets, st.randoms())
def test_the_answer_depends_on_the_facts_not_on_their_order(
    history: list[PastAttempt],
    now: datetime,
    card: Card,
    charge: Charge,
    budget: RetryBudget,
    rng: random.Random,
) -> None:
    shuffled = list(history)
    rng.shuffle(shuffled)

    def answer(attempts: list[PastAttempt]) -> RetryWindow:
        return earliest_retry(
            now=now, card=card, charge=charge, attempts=attempts, budget=budget, first_failure_at=T0
        )

    assert answer(history) == answer(shuffled) == answer(list(history))


@settings(deadline=None)
@given(histories, moments, st.sampled_from(CARDS), st.sampled_from(CHARGES), budgets)
def test_the_answer_is_the_earliest_moment_and_stays_put(
    history: list[PastAttempt], now: datetime, card: Card, charge: Charge, budget: RetryBudget
) -> None:
    def answer(at: datetime) -> RetryWindow:
        return earliest_retry(
            now=at, card=card, charge=charge, attempts=history, budget=budget, first_failure_at=T0
        )

    window = answer(now)
    if window.allowed_at is None:
        # Never is for good: asking later does not change it.
        assert answer(now + timedelta(days=90)).never
        return
    assert window.allowed_at >= now
    assert answer(window.allowed_at).allowed_at == window.allowed_at
    assert answer(window.allowed_at).reasons == ()
    if window.allowed_at > now:
        just_before = window.allowed_at - timedelta(microseconds=1)
        assert answer(just_before).allowed_at == window.allowed_at
        assert window.reasons


@given(histories, moments, budgets)
def test_never_after_a_never_retry_decline_of_the_same_transaction(
    history: list[PastAttempt], now: datetime, budget: RetryBudget
) -> None:
    hard = declined(T0, "lost_card", charge=CHARGES[0])

    for charge in CHARGES[:2]:  # the same amount: the same transaction to Visa
        window = earliest_retry(
            now=now,
            card=VISA,
            charge=charge,
            attempts=[*history, hard],
            budget=budget,
            first_failure_at=T0,
        )
        assert window.never


# ---------------------------------------------------------------- never again (the pay page)


def test_never_again_names_the_never_retry_declines_of_this_card_and_transaction() -> None:
    lost = declined("2026-03-01T10:00", "lost_card")
    mac_03 = declined(
        "2026-03-01T11:00", "generic_decline", card=MASTERCARD, network_advice_code="03"
    )

    assert never_again(card=VISA, charge=INVOICE, attempts=[lost, mac_03]) == [
        "never retry this card for this charge after the decline of 2026-03-01T10:00:00Z: "
        "decline code lost_card: never retry (rules.md 1.2)"
    ]
    assert len(never_again(card=MASTERCARD, charge=INVOICE, attempts=[lost, mac_03])) == 1


def test_never_again_leaves_the_budget_and_the_declines_that_wait_for_the_customer() -> None:
    # The customer on the pay page can authenticate or confirm: only the network's
    # never-retry rule binds there, not the policy's budget of automatic retries.
    attempts = [
        declined(f"2026-03-0{day}T10:00", "authentication_required") for day in range(1, 10)
    ]
    another_amount = Charge("in_2", 2500, "USD")

    assert never_again(card=VISA, charge=INVOICE, attempts=attempts) == []
    barred_elsewhere = declined("2026-03-01T10:00", "do_not_try_again", charge=another_amount)
    assert never_again(card=VISA, charge=INVOICE, attempts=[barred_elsewhere]) == []


@pytest.mark.parametrize(
    ("code", "network_code"),
    [
        ("lost_card", ""),
        ("stolen_card", ""),
        ("pickup_card", ""),
        ("fraudulent", ""),
        ("merchant_blacklist", ""),
        ("generic_decline", "46"),  # Visa: account closed
        ("generic_decline", "14"),  # Visa: no such card number
    ],
)
def test_a_card_declined_as_dead_is_never_charged_again_for_any_invoice(
    code: str, network_code: str
) -> None:
    """C01: no retry "for this card"; Visa category 1's "blocked or never existed"."""
    another_invoice = Charge("in_2", 2500, "USD")
    dead = declined(
        "2026-03-01T10:00", code, charge=another_invoice, network_decline_code=network_code
    )

    reasons = never_again(card=VISA, charge=INVOICE, attempts=[dead])

    assert reasons and "never be approved" in reasons[0]
    assert ask("2026-03-05T10:00", [dead], first_failure_at=utc("2026-03-04T10:00")).never


def test_a_mastercard_declined_lost_by_its_response_code_is_blocked_for_every_invoice() -> None:
    dead = declined(
        "2026-03-01T10:00",
        "generic_decline",
        card=MASTERCARD,
        charge=Charge("in_2", 2500, "USD"),
        network_decline_code="41",
    )
    assert never_again(card=MASTERCARD, charge=INVOICE, attempts=[dead]) != []


def test_never_again_keeps_a_withdrawn_consent_for_every_charge() -> None:
    revoked = declined(
        "2026-03-01T10:00", "revocation_of_authorization", charge=Charge("in_2", 1, "USD")
    )

    assert "withdrew consent" in never_again(card=VISA, charge=INVOICE, attempts=[revoked])[0]
