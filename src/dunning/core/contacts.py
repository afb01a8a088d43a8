"""The shared vocabulary of contacts: who is contacted, how, and when it is allowed.

The contact rules (`dunning.core.contact_rules`) judge a proposed contact; the
planner (`dunning.core.planner`) proposes them.  Both speak in these types, so
either can be tested with the other replaced by a plain function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

# The longest span, in local days, that any contact rule may count contacts
# over (the US 7-in-7 call cap, a conversation's 7-day wait, with room for a
# tenant's stricter override).  Callers need pass no older history than this.
CONTACT_LOOKBACK_DAYS = 14


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    LINE = "line"
    LETTER = "letter"
    CALL = "call"


@dataclass(frozen=True, slots=True)
class Debtor:
    """What the contact rules need to know about the customer."""

    time_zone: str  # IANA name; windows are judged in the customer's local time
    country: str  # ISO 3166 alpha-2, "" when unknown
    is_business: bool
    opted_out: frozenset[Channel] = frozenset()


@dataclass(frozen=True, slots=True)
class Contact:
    """One contact already made (or scheduled and not cancelled)."""

    at: datetime  # aware, UTC
    channel: Channel
    debt: str = ""  # the case or debt it was about, for per-debt counts (Reg F 7-in-7)
    conversation: bool = False  # a call that reached the person


@dataclass(frozen=True, slots=True)
class Verdict:
    """The rules' answer: send at `allowed_at` (maybe later than asked), or never (blocked).

    `reasons` explains every deferral or block, for the case's timeline
    ("outside 08:00-20:00 Asia/Bangkok on a weekday (Debt Collection Act s.9(3))").
    """

    allowed_at: datetime | None
    reasons: tuple[str, ...] = field(default=())

    @property
    def blocked(self) -> bool:
        return self.allowed_at is None


class ContactRules(Protocol):
    """Anything that can judge a proposed contact; the planner depends only on this."""

    def earliest(
        self,
        *,
        at: datetime,
        channel: Channel,
        debtor: Debtor,
        history: Sequence[Contact],
        debt: str = "",
    ) -> Verdict: ...
