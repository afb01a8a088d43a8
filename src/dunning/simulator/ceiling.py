"""The most any retry strategy could have recovered: a clairvoyant ceiling.

A strategy that knew the scenario's truth would need one retry per failed
invoice, at the first moment the card then on file would be accepted.  It
still plays by the rules every strategy plays by:

- it retries in the policy's window: after the first failure and no later
  than `within` after it, before the run ends, and only at the simulator's
  passes (whole ticks from the start, the only moments a charge can happen);
- it tries the card that failed again only when that decline allows a retry
  (not after a never-retry or customer-action decline);
- it tries a replacement card from the first pass at or after both the
  failure and the moment that card took over in this run.

So no strategy recovers more than this, and `(smart - fixed) / (ceiling - fixed)`
is the share of the money fixed left behind that smart brought in.  Like the
referees, this reads only the scenario's truth (`world`) and the decline table;
it shares nothing with the planner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dunning.core.declines import Brand, classify_decline
from dunning.simulator.scenario import CardRole, SimCustomer
from dunning.simulator.world import charge_outcome

_INSTANT = timedelta(microseconds=1)  # so that "strictly after" a moment takes the moment itself


@dataclass(frozen=True, slots=True)
class Grid:
    """The moments the simulator can charge at: `start + k * tick`."""

    start: datetime
    tick: timedelta

    def after(self, moment: datetime) -> datetime:
        """The first grid moment strictly after `moment`."""
        return self.start + self.tick * ((moment - self.start) // self.tick + 1)


def first_chance(
    customer: SimCustomer,
    *,
    failed_at: datetime,
    failed_on: CardRole,
    closes_at: datetime,
    replaced_at: datetime | None,
    grid: Grid,
) -> datetime | None:
    """The first moment a retry of this invoice would have been accepted, or None.

    `failed_at` and `failed_on`: the invoice's first decline and the card it was on;
    `closes_at`: the last moment a retry may happen (the retry window's end, or
    the run's last instant, if sooner);
    `replaced_at`: when the customer's replacement card took over, if it did.
    """
    chances: list[datetime | None] = []
    if _may_retry(customer, failed_at, failed_on):
        chances.append(
            _first_accepted(customer, failed_on, after=failed_at, until=closes_at, grid=grid)
        )
    if failed_on is CardRole.ORIGINAL and replaced_at is not None:
        # From the first pass at or after both the failure and the takeover: a
        # pass replays the first charges and new cards since the last one, then
        # retries, so a card that took over since then is tried in that pass.
        after = max(failed_at, replaced_at) - _INSTANT
        chances.append(
            _first_accepted(customer, CardRole.REPLACEMENT, after=after, until=closes_at, grid=grid)
        )
    return min((chance for chance in chances if chance is not None), default=None)


def _may_retry(customer: SimCustomer, at: datetime, card: CardRole) -> bool:
    decline = charge_outcome(customer, at, card)
    if decline.succeeded:  # not the scenario's decline: nothing to say against a retry
        return True
    return classify_decline(
        decline.decline_code or "",
        advice_code=decline.advice_code or "",
        network_advice_code=decline.network_advice_code or "",
        brand=Brand.parse(customer.card.brand),
    ).allows_retry


def _first_accepted(
    customer: SimCustomer, card: CardRole, *, after: datetime, until: datetime, grid: Grid
) -> datetime | None:
    """The first grid moment in (after, until] at which `card` is accepted, if any.

    A charge fails only inside a decline window or after the card expired, so the
    first success, if any, is either the first moment of the range or the end of
    some decline window on this card: those are the only moments to look at.
    """
    candidates = {grid.after(after)}
    candidates.update(
        grid.after(window.ends_at - _INSTANT)
        for window in customer.declines
        if window.card == card and window.ends_at > after
    )
    for moment in sorted(candidates):
        if moment > until:
            break
        if charge_outcome(customer, moment, card).succeeded:
            return moment
    return None
