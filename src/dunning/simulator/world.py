"""The truth of a scenario: what a charge does, and when the customer's new card arrives.

The simulated gateway asks `charge_outcome`; the engine never sees these rules,
only their results, as it would with a real processor.  Pure functions over the
scenario's data; every moment is passed in and must be aware.

The rules (docs/simulator.md, "Outcome rules"):

- A charge at `at` on card `card` fails with the codes of the first entry of
  `customer.declines` whose [from, until) holds `at` and whose card is `card`.
- Otherwise it succeeds, except that the original card fails with
  `expired_card` once its expiry month has ended, judged in the customer's time
  zone: a card marked 05/2027 works until 2027-06-01T00:00 local time.
  The replacement card never expires within a run.
- The replacement card takes over at `replacement_card.at` or `delay_hours`
  after the customer received its `after_messages`-th message, whichever
  comes first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dunning.simulator.scenario import CardRole, SimCard, SimCustomer

EXPIRED_CARD = "expired_card"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the issuer answered: success, or a decline with Stripe's codes."""

    succeeded: bool
    decline_code: str | None = None
    advice_code: str | None = None  # Stripe's advice_code
    network_advice_code: str | None = None  # Mastercard MAC

    @property
    def failed(self) -> bool:
        return not self.succeeded


SUCCEEDED = Outcome(succeeded=True)


def charge_outcome(customer: SimCustomer, at: datetime, card: CardRole) -> Outcome:
    """The answer to a charge on `customer`'s `card` at `at` (see the module's rules)."""
    _require_aware(at)
    for window in customer.declines:
        if window.card == card and window.starts_at <= at < window.ends_at:
            return Outcome(
                succeeded=False,
                decline_code=window.decline_code,
                advice_code=window.advice_code,
                network_advice_code=window.network_advice_code,
            )
    if card == CardRole.ORIGINAL and at >= card_expires_at(customer.card, customer=customer):
        return Outcome(succeeded=False, decline_code=EXPIRED_CARD)
    return SUCCEEDED


def card_expires_at(card: SimCard, *, customer: SimCustomer) -> datetime:
    """The first instant the card no longer works: the start of the month after its
    expiry month, at midnight in the customer's time zone."""
    year, month = (
        (card.exp_year + 1, 1) if card.exp_month == 12 else (card.exp_year, card.exp_month + 1)
    )
    return datetime(year, month, 1, tzinfo=customer.zone)


def replacement_takes_over(
    customer: SimCustomer, messages_received_at: Sequence[datetime]
) -> datetime | None:
    """When the replacement card takes over, or None if it never does (yet).

    `messages_received_at` holds when the customer received each dunning message
    so far, in any order.  The message trigger fires `delay_hours` after the
    `after_messages`-th of them; the card updater fires at `at`; the earlier wins.
    """
    replacement = customer.replacement_card
    if replacement is None:
        return None
    candidates: list[datetime] = []
    if replacement.at is not None:
        candidates.append(replacement.at)
    k = replacement.after_messages
    if k is not None and replacement.delay_hours is not None and len(messages_received_at) >= k:
        for received in messages_received_at:
            _require_aware(received)
        kth = sorted(messages_received_at)[k - 1]
        candidates.append(kth + timedelta(hours=replacement.delay_hours))
    return min(candidates, default=None)


def card_in_use(
    customer: SimCustomer, at: datetime, messages_received_at: Sequence[datetime]
) -> CardRole:
    """The card the gateway charges at `at`: the replacement once it has taken over.

    Only messages received at or before `at` count, so a caller may pass the whole run's
    messages without leaking the future into the past.
    """
    _require_aware(at)
    so_far = [m for m in messages_received_at if m <= at]
    takes_over = replacement_takes_over(customer, so_far)
    if takes_over is not None and takes_over <= at:
        return CardRole.REPLACEMENT
    return CardRole.ORIGINAL


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at!r} is naive; the simulator's times are aware")
