"""When a declined charge may be tried again: the card networks' caps and the policy's budget.

`earliest_retry` looks at every past attempt and answers with the earliest
moment at or after `now` when one more attempt breaks no rule, or "never",
with reasons for the case's timeline.  Every rule is "not before" a moment
that only moves forward as attempts are added, so the earliest moment is the
latest of those moments; each rule's moment is computed on its own.

The rules (reference/rules.md section 2, with the conservative figures the
design chose):

- Never again, on that card, for that transaction: after a never-retry decline
  (Visa category 1, MAC 03/21/22, Mastercard's pick-up, lost and stolen response
  codes, Stripe's do_not_try_again and the HARD codes; see
  `dunning.core.declines`).  After a revoked authorisation or a cancelled
  recurring agreement, never that card again for any charge.
- Not the same card details again for that invoice after a decline that asks
  the customer to act (an expired card, wrong data, authentication).
- Visa, and Amex, Discover and other brands by rules.md 2.3 (I): at most 15
  reattempts of a declined transaction in 30 days (2.1).
- Mastercard: at most 10 declines on a card number in 24 hours, and at most 35
  attempts of one transaction in 30 days (2.2); the wait a merchant advice code
  asks for (MAC 24-30).
- The policy's `RetryBudget`: at most `max_attempts` attempts after the first
  failure, none later than `within` after it.

What "the same transaction" is: the networks match a reattempt on card number,
merchant and amount (2.1, 2.2), not on our invoice; so two invoices of the same
amount on one card count as one transaction, and so does one invoice whose
amount changed.  Rolling windows are half-open: an attempt at `t` counts in the
window ending at `t + window` no longer (so N02 resumes 30 days after r1 and
N05 24 hours after the first decline, the [interp] edges of acceptance-cases.md).
Attempts dated after `now` count as if they were past: never fewer, so never a
breach.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from dunning.core.declines import (
    UNKNOWN_DECLINE,
    Brand,
    Classification,
    CustomerRequest,
    DeclineClass,
)
from dunning.core.policy import RetryBudget

# Visa Excessive Reattempts: the 16th reattempt in 30 days is charged (rules.md 2.1).
VISA_REATTEMPTS = 15
VISA_WINDOW = timedelta(days=30)
# Mastercard TPE: 10 declines per card number in a rolling 24 h (the newer figure,
# rules.md 9.2), and 35 attempts per number, merchant and amount in 30 days (2.2).
MASTERCARD_DECLINES = 10
MASTERCARD_DECLINE_WINDOW = timedelta(hours=24)
MASTERCARD_ATTEMPTS = 35
MASTERCARD_ATTEMPT_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Card:
    """A card as the networks see it.

    `number` identifies the card number or network token (Stripe's card
    fingerprint, say): the caps count per number.  `details` is what the
    customer can correct without a new number (expiry, billing postcode): a
    decline asking the customer to act blocks those details only, so corrected
    details may be tried.  Never a real card number: this is an identifier.
    """

    number: str
    brand: Brand
    details: str = ""


@dataclass(frozen=True, slots=True)
class Charge:
    """What is being collected: one invoice's amount, in minor units."""

    invoice: str
    amount: int
    currency: str

    def same_transaction(self, other: Charge) -> bool:
        """Whether the networks would take the two for one transaction (rules.md 2.1, 2.2)."""
        return self.invoice == other.invoice or (
            self.amount == other.amount and self.currency == other.currency
        )


@dataclass(frozen=True, slots=True)
class PastAttempt:
    """One charge attempt already made, with why it failed.

    A failure without a classification is read as `UNKNOWN_DECLINE`.
    """

    at: datetime
    card: Card
    charge: Charge
    succeeded: bool
    classification: Classification | None = None

    @property
    def reason(self) -> Classification:
        return self.classification or UNKNOWN_DECLINE


@dataclass(frozen=True, slots=True)
class RetryWindow:
    """The answer: try at `allowed_at` (>= now), or never (None); `reasons` say why.

    Reasons are for staff and the timeline, never for the customer.
    """

    allowed_at: datetime | None
    reasons: tuple[str, ...] = ()

    @property
    def never(self) -> bool:
        return self.allowed_at is None


@dataclass(frozen=True, slots=True)
class _NotBefore:
    at: datetime
    reason: str


def earliest_retry(
    *,
    now: datetime,
    card: Card,
    charge: Charge,
    attempts: Sequence[PastAttempt],
    budget: RetryBudget,
    first_failure_at: datetime,
) -> RetryWindow:
    """The earliest moment >= `now` to charge `card` for `charge` again, or never.

    `attempts` is every attempt on this card and on this invoice (more is
    harmless: the rest is ignored); `first_failure_at` is when the invoice
    first failed, where the policy's budget starts.
    """
    never = _never(
        card=card, charge=charge, attempts=attempts, budget=budget, start=first_failure_at
    )
    if never:
        return RetryWindow(None, tuple(never))
    waits = [
        wait
        for wait in (
            *_network_caps(card, charge, attempts),
            _advised_wait(card, charge, attempts),
        )
        if wait is not None and wait.at > now
    ]
    allowed_at = max((wait.at for wait in waits), default=now)
    reasons = tuple(wait.reason for wait in waits)
    closes_at = first_failure_at + budget.within
    if allowed_at > closes_at:
        closing = (
            f"the policy's retry window closed at {_when(closes_at)}"
            if now > closes_at
            else f"which is after the policy's retry window closes at {_when(closes_at)}"
        )
        return RetryWindow(None, (*reasons, closing))
    return RetryWindow(allowed_at, reasons)


# ---------------------------------------------------------------- never


def _never(
    *,
    card: Card,
    charge: Charge,
    attempts: Sequence[PastAttempt],
    budget: RetryBudget,
    start: datetime,
) -> list[str]:
    """Every reason no attempt will ever be allowed, in a fixed order."""
    reasons: list[str] = []
    on_invoice = [a for a in attempts if a.charge.invoice == charge.invoice]
    if any(a.succeeded for a in on_invoice):
        reasons.append(f"invoice {charge.invoice} is already paid")
    used = sum(1 for a in on_invoice if a.at > start)
    if used >= budget.max_attempts:
        reasons.append(
            f"the policy allows {budget.max_attempts} retries within {budget.within.days} days "
            f"of the first failure; {used} made"
        )
    declines = [a for a in attempts if a.card.number == card.number and not a.succeeded]
    for decline in _in_order(declines):
        reasons.extend(_blocked_by(decline, card=card, charge=charge))
    return list(dict.fromkeys(reasons))  # one of each, first mention kept


def never_again(*, card: Card, charge: Charge, attempts: Sequence[PastAttempt]) -> list[str]:
    """Every never-retry decline that forbids charging `card` for `charge` again, even with
    the customer present (the pay page): the networks' rule, not the policy's budget nor
    a decline that waits for the customer.  Empty when there is none."""
    declines = [a for a in attempts if a.card.number == card.number and not a.succeeded]
    reasons = [reason for d in _in_order(declines) for reason in _never_again(d, charge=charge)]
    return list(dict.fromkeys(reasons))


def _never_again(decline: PastAttempt, *, charge: Charge) -> list[str]:
    reason = decline.reason
    when = _when(decline.at)
    why = "; ".join(reason.reasons) or "a never-retry decline"
    if reason.stop_recurring:
        return [
            f"the cardholder withdrew consent for this card on {when}: never charge it again "
            f"(rules.md 1.2, 2.2): {why}"
        ]
    if reason.kind is not DeclineClass.NEVER_RETRY:
        return []
    if decline.charge.same_transaction(charge):
        return [f"never retry this card for this charge after the decline of {when}: {why}"]
    if reason.card_blocked:
        return [
            f"the decline of {when} says the card will never be approved: never charge it "
            f"again, for any invoice (rules.md 1.2, 2.1): {why}"
        ]
    return []


def _blocked_by(decline: PastAttempt, *, card: Card, charge: Charge) -> list[str]:
    never = _never_again(decline, charge=charge)
    if never:
        return never
    reason = decline.reason
    when = _when(decline.at)
    same_details = decline.card.details == card.details
    if not (same_details and decline.charge.invoice == charge.invoice):
        return []
    if reason.kind is DeclineClass.CUSTOMER_ACTION:
        if reason.request is CustomerRequest.AUTHENTICATE:
            # The same card passes with the customer present (the pay page's
            # 3-D Secure): an operator must not be told it needs replacing.
            return [
                f"the decline of {when} needs the customer to confirm the payment with "
                f"their bank ({reason.request}): no retry without them; they can pay on "
                "the pay page, or new card details may be tried (rules.md 1.2)"
            ]
        return [
            f"the decline of {when} needs the customer to act ({reason.request}): "
            "only new card details may be tried (rules.md 1.2)"
        ]
    if reason.kind is DeclineClass.NOT_A_RETRY_CASE:
        check = reason.merchant_check or "a person"
        return [f"the decline of {when} is not a retry case; it needs {check} (rules.md 1.2)"]
    return []


# ---------------------------------------------------------------- caps


def _network_caps(
    card: Card, charge: Charge, attempts: Sequence[PastAttempt]
) -> Iterable[_NotBefore | None]:
    on_card = [a for a in attempts if a.card.number == card.number]
    same = [a for a in on_card if a.charge.same_transaction(charge)]
    if card.brand is Brand.MASTERCARD:
        yield _rolling_cap(
            [a.at for a in on_card if not a.succeeded],
            limit=MASTERCARD_DECLINES,
            window=MASTERCARD_DECLINE_WINDOW,
            rule="Mastercard allows {limit} declines on a card in 24 hours (rules.md 2.2)",
        )
        yield _rolling_cap(
            [a.at for a in same],
            limit=MASTERCARD_ATTEMPTS,
            window=MASTERCARD_ATTEMPT_WINDOW,
            rule="Mastercard allows {limit} attempts of one transaction in 30 days (rules.md 2.2)",
        )
        return
    reattempts = _reattempts(same)
    if reattempts is not None:
        rule = "Visa allows {limit} reattempts of a declined transaction in 30 days (rules.md 2.1)"
        if card.brand is not Brand.VISA:
            rule += f"; applied to {card.brand} by rules.md 2.3"
        yield _rolling_cap(reattempts, limit=VISA_REATTEMPTS, window=VISA_WINDOW, rule=rule)


def _reattempts(same_transaction: Sequence[PastAttempt]) -> list[datetime] | None:
    """When the past reattempts were, or None when the next attempt is not a reattempt.

    A reattempt is an attempt that follows a decline of the same transaction.
    """
    ordered = _in_order(same_transaction)
    if not ordered or ordered[-1].succeeded:
        return None
    return [later.at for earlier, later in pairwise(ordered) if not earlier.succeeded]


def _rolling_cap(
    times: Sequence[datetime], *, limit: int, window: timedelta, rule: str
) -> _NotBefore | None:
    """When one more event keeps at most `limit` of them in any trailing `window`."""
    if len(times) < limit:
        return None
    # The oldest of the latest `limit` events must have left the window.
    oldest = sorted(times)[len(times) - limit]
    at = _later(oldest, window)
    return _NotBefore(at, f"{rule.format(limit=limit)}: not before {_when(at)}")


def _advised_wait(card: Card, charge: Charge, attempts: Sequence[PastAttempt]) -> _NotBefore | None:
    """The latest "retry after" a Mastercard advice code set for this transaction (MAC 24-30)."""
    waits = [
        (_later(a.at, a.reason.retry_after), a)
        for a in attempts
        if a.card.number == card.number
        and not a.succeeded
        and a.reason.retry_after is not None
        and a.charge.same_transaction(charge)
    ]
    if not waits:
        return None
    at, decline = max(waits, key=lambda wait: (wait[0], wait[1].at))
    return _NotBefore(
        at,
        f"the decline of {_when(decline.at)} asked for a retry after "
        f"{decline.reason.retry_after} (rules.md 2.2): not before {_when(at)}",
    )


# ---------------------------------------------------------------- helpers


def _in_order(attempts: Iterable[PastAttempt]) -> list[PastAttempt]:
    # At the same instant a success sorts before a decline, so a tie never hides
    # a reattempt; the rest of the key makes the answer independent of the
    # caller's order.
    return sorted(
        attempts,
        key=lambda a: (a.at, not a.succeeded, a.charge.invoice, a.card.details, repr(a.reason)),
    )


def _later(moment: datetime, wait: timedelta) -> datetime:
    """`wait` after `moment` in elapsed time, as the networks count their 24 hours and
    30 days.  Reckoned in UTC: Python adds a timedelta to a time in a zone on its
    wall clock, an hour short across a spring-forward night (a breach)."""
    return moment.astimezone(UTC) + wait


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
