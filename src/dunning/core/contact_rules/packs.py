"""Rule packs: when, how often and on which channels a customer may be contacted.

A pack is plain data (a frozen dataclass), chosen by the customer's country and
whether it is a business (`pack_for`).  Configuration can replace any pack; a
changed interpretation is `dataclasses.replace(TH_INDIVIDUAL, ...)`, not new code.
Every rule carries its source, which the verdict's reasons quote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from enum import StrEnum

from dunning.core.contacts import CONTACT_LOOKBACK_DAYS, Debtor


@dataclass(frozen=True, slots=True)
class Window:
    """Local wall-clock hours in which contact is allowed, half-open: [start, end)."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError(f"window start {self.start} must be before its end {self.end}")

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


class CapAction(StrEnum):
    """What a reached call cap does to the proposed call."""

    BLOCK = "block"  # the call is not made; the reason says when calls may resume
    DEFER = "defer"  # the call moves to the first moment the count allows


@dataclass(frozen=True, slots=True)
class RulePack:
    """The contact rules for one kind of customer.

    `week` holds Monday..Sunday; None means no contact that day.  On a public
    holiday of the customer's country `holiday` replaces the weekday's window
    when `observes_holidays` is set (None: no contact on holidays).
    """

    key: str  # "TH:individual"; also the configuration key that overrides it
    title: str
    week: tuple[Window | None, ...]
    hours_source: str
    observes_holidays: bool = False
    holiday: Window | None = None
    # Contacts per local calendar day, across every channel and debt.
    daily_cap: int | None = None
    daily_cap_source: str = ""
    # Calls per debt within `call_cap_days` consecutive local days.
    call_cap: int | None = None
    call_cap_days: int = 7
    call_cap_source: str = ""
    # No call about a debt for this many local days, counting the conversation's day as day 1.
    conversation_wait_days: int | None = None
    conversation_wait_source: str = ""
    call_cap_action: CapAction = CapAction.DEFER
    opt_out_source: str = "the customer's opt-out (engine policy)"

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise ValueError(f"{self.key}: week needs 7 windows (Monday..Sunday)")
        for name in ("daily_cap", "call_cap", "conversation_wait_days"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{self.key}: {name} must be at least 1")
        if self.call_cap_days < 1:
            raise ValueError(f"{self.key}: call_cap_days must be at least 1")
        for name in ("call_cap_days", "conversation_wait_days"):
            value = getattr(self, name)
            if value is not None and value > CONTACT_LOOKBACK_DAYS:
                raise ValueError(
                    f"{self.key}: {name} is at most {CONTACT_LOOKBACK_DAYS} "
                    "(the history the engine passes to the rules)"
                )


def _hours(start: int, end: int) -> Window:
    return Window(time(start), time(end))


THAI_HOURS_SOURCE = "Debt Collection Act B.E. 2558 s.9(3)"

# Debt Collection Act B.E. 2558 s.9(3): Mon-Fri 08:00-20:00, official holidays
# 08:00-18:00.  Weekends count as official holidays (reference/rules.md 4.1 (I)).
TH_INDIVIDUAL = RulePack(
    key="TH:individual",
    title="Thailand, individuals",
    week=(*[_hours(8, 20)] * 5, _hours(8, 18), _hours(8, 18)),
    hours_source=THAI_HOURS_SOURCE,
    observes_holidays=True,
    holiday=_hours(8, 18),
    # Committee notification of 23 Aug 2019, clause 3: "not more than once per day";
    # counted conservatively across channels and debts (reference/rules.md 4.1 (I)).
    daily_cap=1,
    daily_cap_source="Debt Collection Committee notification 2019, clause 3",
    opt_out_source="the customer's opt-out (PDPA B.E. 2562; engine policy)",
)

# Reg F §1006.6(b)(1)(i): before 08:00 and after 21:00 local time is inconvenient;
# every day of the week, holidays included.  [08:00, 21:00) per reference/rules.md 3.2 (I).
US_INDIVIDUAL = RulePack(
    key="US:individual",
    title="United States, consumers",
    week=(_hours(8, 21),) * 7,
    hours_source="Reg F §1006.6(b)(1)(i); FDCPA §805(a)(1)",
    # Reg F §1006.14(b)(2)(i): more than 7 calls in 7 consecutive days about a debt,
    # or a call within 7 days of a conversation about it, is presumed harassment.
    call_cap=7,
    call_cap_days=7,
    call_cap_source="Reg F §1006.14(b)(2)(i)(A)",
    conversation_wait_days=7,
    conversation_wait_source="Reg F §1006.14(b)(2)(i)(B)",
    # Acceptance cases U05 and U06 say BLOCK for the call that would break the
    # presumption; the reason names the moment calls may resume.  DEFER is a policy choice.
    call_cap_action=CapAction.BLOCK,
    opt_out_source="the customer's opt-out (Reg F §1006.6(e); TCPA revocation)",
)

# No statute: a courteous default for countries without a pack of their own.
DEFAULT_INDIVIDUAL = RulePack(
    key="*:individual",
    title="Default, individuals",
    week=(*[_hours(8, 20)] * 5, _hours(9, 17), None),
    hours_source="engine default contact policy",
    observes_holidays=True,
    holiday=None,
)

# B2B contact is outside Reg F and the Thai Act (both protect natural persons), so
# businesses are contacted in business hours of their country, never on its holidays.
BUSINESS = RulePack(
    key="*:business",
    title="Businesses",
    week=(*[_hours(9, 17)] * 5, None, None),
    hours_source="engine business-hours policy",
    observes_holidays=True,
    holiday=None,
)

BUILT_IN_PACKS: Mapping[str, RulePack] = {
    pack.key: pack for pack in (TH_INDIVIDUAL, US_INDIVIDUAL, DEFAULT_INDIVIDUAL, BUSINESS)
}


def pack_key(*, country: str, is_business: bool) -> str:
    """The configuration key of a kind of customer: "TH:individual", "DE:business"."""
    return f"{country.upper() or '*'}:{'business' if is_business else 'individual'}"


def pack_for(debtor: Debtor, *, overrides: Mapping[str, RulePack] | None = None) -> RulePack:
    """The rule pack for `debtor`.

    Lookup order: an override for the exact key ("TH:individual"), an override for
    the whole country ("TH"), the built-in pack for the country, an override for
    everyone of that kind ("*:individual"), an override for everyone ("*"), and the
    built-in default.  So a wildcard override never replaces a country's own law.
    """
    overrides = overrides or {}
    country = debtor.country.upper()
    kind = "business" if debtor.is_business else "individual"
    exact = pack_key(country=country, is_business=debtor.is_business)
    for found in (
        overrides.get(exact),
        overrides.get(country) if country else None,
        BUILT_IN_PACKS.get(exact) if country else None,
        overrides.get(f"*:{kind}"),
        overrides.get("*"),
    ):
        if found is not None:
            return found
    return BUILT_IN_PACKS[f"*:{kind}"]
