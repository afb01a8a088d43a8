"""Policies (campaigns): which cases they apply to, and their ordered steps.

A policy is plain, frozen data.  The database stores it versioned and the admin
and API edit it; this module only says what a policy is, whether it is sound
(`validate`), which one a case follows (`choose_policy`), and ships the two
defaults that follow the source article's advice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType

from dunning.core.cases import CaseFacts
from dunning.core.contacts import Channel


class Anchor(StrEnum):
    DUE = "due"  # the due date of the case's earliest invoice
    FAILURE = "failure"  # the case's first failed payment attempt


class Tone(StrEnum):
    FRIENDLY = "friendly"
    FIRM = "firm"
    FINAL = "final"

    @property
    def rank(self) -> int:
        return _TONE_RANK[self]


_TONE_RANK = {Tone.FRIENDLY: 0, Tone.FIRM: 1, Tone.FINAL: 2}


class Action(StrEnum):
    """What a step does besides contacting: emitted as events for the business's systems."""

    LATE_FEE = "late_fee"
    PAUSE_SERVICE = "pause_service"
    CANCEL = "cancel"
    MARK_UNCOLLECTIBLE = "mark_uncollectible"
    HAND_TO_AGENCY = "hand_to_agency"

    @property
    def is_final(self) -> bool:
        """A final action ends the policy: no step may follow it."""
        return self in _FINAL_ACTIONS


_FINAL_ACTIONS = frozenset({Action.CANCEL, Action.MARK_UNCOLLECTIBLE, Action.HAND_TO_AGENCY})


@dataclass(frozen=True, slots=True)
class Variant:
    """One arm of an A/B test; the template store holds its wording under this key."""

    key: str
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Step:
    """One step: at `anchor + offset`, contact on `channels` and take `actions`.

    `deadline`, on a final notice, is how long after it goes out the customer has
    to pay; no later step happens before that deadline has passed.
    """

    key: str
    offset: timedelta
    tone: Tone
    channels: tuple[Channel, ...] = ()
    templates: Mapping[Channel, str] = field(default_factory=dict, hash=False)
    anchor: Anchor = Anchor.DUE
    actions: tuple[Action, ...] = ()
    deadline: timedelta | None = None
    variants: tuple[Variant, ...] = ()

    def __post_init__(self) -> None:
        # A read-only view, so a frozen step cannot be changed through its mapping.
        object.__setattr__(self, "templates", MappingProxyType(dict(self.templates)))

    @property
    def is_final_action(self) -> bool:
        return any(action.is_final for action in self.actions)


@dataclass(frozen=True, slots=True)
class Criteria:
    """Which cases a policy applies to; an empty or None field matches everything.

    Amount bounds are inclusive, in minor units, per currency: a bound for USD
    says nothing about a case in THB.
    """

    collection_method: str | None = None
    countries: frozenset[str] = frozenset()
    currencies: frozenset[str] = frozenset()
    min_amount: Mapping[str, int] = field(default_factory=dict, hash=False)
    max_amount: Mapping[str, int] = field(default_factory=dict, hash=False)
    is_business: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_amount", MappingProxyType(dict(self.min_amount)))
        object.__setattr__(self, "max_amount", MappingProxyType(dict(self.max_amount)))

    def matches(self, case: CaseFacts) -> bool:
        if self.collection_method is not None and case.collection_method != self.collection_method:
            return False
        if self.countries and case.country not in self.countries:
            return False
        if self.currencies and case.currency not in self.currencies:
            return False
        low = self.min_amount.get(case.currency)
        if low is not None and case.amount_due < low:
            return False
        high = self.max_amount.get(case.currency)
        if high is not None and case.amount_due > high:
            return False
        return self.is_business is None or case.is_business == self.is_business

    @property
    def specificity(self) -> int:
        """How many kinds of constraint this criteria sets; more wins in `choose_policy`."""
        return sum(
            (
                self.collection_method is not None,
                bool(self.countries),
                bool(self.currencies),
                bool(self.min_amount or self.max_amount),
                self.is_business is not None,
            )
        )


# The windows Stripe's Smart Retries offer (reference/rules.md 1.1); a month is
# 30 days and two months 60, since a policy duration has a fixed length.
RETRY_WINDOWS = (
    timedelta(weeks=1),
    timedelta(weeks=2),
    timedelta(weeks=3),
    timedelta(days=30),
    timedelta(days=60),
)
# Visa charges for the 16th reattempt of a charge in 30 days (rules.md 2.1), so
# no budget asks for more; the network caps bind the schedule in any case.
MAX_RETRY_ATTEMPTS = 15


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """How often, and for how long after its first failure, a charge is retried.

    The default is Stripe's recommendation, "8 tries within 2 weeks" (rules.md
    1.1).  `max_attempts` counts the automatic attempts after the first failure.
    A budget of no retries may leave `within` at zero; any other budget uses one
    of `RETRY_WINDOWS`.  An unsound budget cannot be built: see `problems_with`.
    """

    max_attempts: int = 8
    within: timedelta = timedelta(weeks=2)

    def __post_init__(self) -> None:
        found = self.problems_with(max_attempts=self.max_attempts, within=self.within)
        if found:
            raise ValueError("; ".join(f"retry.{name}: {message}" for name, message in found))

    @staticmethod
    def problems_with(*, max_attempts: int, within: timedelta) -> list[tuple[str, str]]:
        """Each (field, message) that keeps these values from being a budget."""
        problems = []
        if not 0 <= max_attempts <= MAX_RETRY_ATTEMPTS:
            problems.append(("max_attempts", f"must be between 0 and {MAX_RETRY_ATTEMPTS}"))
        if within not in RETRY_WINDOWS and not (max_attempts == 0 and within == timedelta(0)):
            problems.append(
                (
                    "within",
                    "must be 1, 2 or 3 weeks (P7D, P14D, P21D), 1 month (P30D) or "
                    "2 months (P60D); zero (PT0S) only with no retries",
                )
            )
        return problems

    @property
    def allows_retries(self) -> bool:
        return self.max_attempts > 0


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    version: int
    name: str
    applies_to: Criteria
    steps: tuple[Step, ...]
    retry: RetryBudget = RetryBudget()

    def step(self, key: str) -> Step | None:
        return next((s for s in self.steps if s.key == key), None)


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One reason a policy cannot be used; `step` is None for the policy as a whole."""

    step: str | None
    field: str
    message: str


def validate(policy: Policy) -> list[PolicyProblem]:
    """Every problem with `policy`, in step order; an empty list means it is sound."""
    problems: list[PolicyProblem] = []
    if not policy.steps:
        problems.append(PolicyProblem(None, "steps", "a policy needs at least one step"))
    seen: set[str] = set()
    for index, step in enumerate(policy.steps):
        problems.extend(_step_problems(step, seen))
        seen.add(step.key)
        if index == 0:
            continue
        before = policy.steps[index - 1]
        if before.is_final_action:
            problems.append(
                PolicyProblem(step.key, "key", f"comes after the final action of {before.key!r}")
            )
        if step.anchor != before.anchor:
            problems.append(
                PolicyProblem(step.key, "anchor", "every step of a policy uses the same anchor")
            )
        elif step.offset < before.offset:
            problems.append(
                PolicyProblem(step.key, "offset", f"comes before the offset of {before.key!r}")
            )
        if step.tone.rank < before.tone.rank:
            problems.append(
                PolicyProblem(step.key, "tone", f"is softer than {before.key!r} ({before.tone})")
            )
    return problems


def _step_problems(step: Step, seen: set[str]) -> Iterable[PolicyProblem]:
    key = step.key
    if not key.strip():
        yield PolicyProblem(key, "key", "a step needs a key")
    elif key in seen:
        yield PolicyProblem(key, "key", "another step has the same key")
    if not step.channels and not step.actions:
        yield PolicyProblem(key, "channels", "a step needs a channel or an action")
    if len(set(step.channels)) != len(step.channels):
        yield PolicyProblem(key, "channels", "a channel is listed twice")
    for channel in step.channels:
        if not step.templates.get(channel, "").strip():
            yield PolicyProblem(key, "templates", f"no template for {channel}")
    for channel in step.templates:
        if channel not in step.channels:
            yield PolicyProblem(key, "templates", f"a template for {channel}, not a step channel")
    if step.deadline is not None and (step.deadline <= timedelta(0) or not step.channels):
        yield PolicyProblem(key, "deadline", "a deadline is a positive time given in a message")
    variant_keys = [variant.key for variant in step.variants]
    if len(set(variant_keys)) != len(variant_keys):
        yield PolicyProblem(key, "variants", "two variants have the same key")
    for variant in step.variants:
        if variant.weight <= 0:
            yield PolicyProblem(key, "variants", f"variant {variant.key!r} needs a positive weight")


def choose_policy(policies: Iterable[Policy], case_facts: CaseFacts) -> Policy | None:
    """The matching policy with the most specific criteria; ties go to the smaller id."""
    matching = [p for p in policies if p.applies_to.matches(case_facts)]
    if not matching:
        return None
    return min(matching, key=lambda p: (-p.applies_to.specificity, p.id, -p.version))


def _by_email(
    key: str,
    days: int,
    tone: Tone,
    template: str,
    *,
    anchor: Anchor = Anchor.DUE,
    deadline: timedelta | None = None,
) -> Step:
    # Email only by default: every customer has an address, and SMS or LINE need
    # a number and consent the business may not have.
    return Step(
        key,
        timedelta(days=days),
        tone,
        channels=(Channel.EMAIL,),
        templates={Channel.EMAIL: template},
        anchor=anchor,
        deadline=deadline,
    )


# Invoices paid by hand: a friendly nudge before the due date, a first reminder the
# day after it, then weekly and firmer, then a final notice that states a deadline
# and its consequences, and only after that deadline the final action.
SEND_INVOICE_DEFAULT = Policy(
    id="default-send-invoice",
    version=1,
    name="Invoices paid by the customer (default)",
    applies_to=Criteria(collection_method="send_invoice"),
    # Nothing to charge: the customer pays these invoices by hand.
    retry=RetryBudget(max_attempts=0, within=timedelta(0)),
    steps=(
        _by_email("courtesy", -3, Tone.FRIENDLY, "send_invoice.courtesy"),
        _by_email("overdue_1", 1, Tone.FRIENDLY, "send_invoice.overdue_1"),
        _by_email("overdue_2", 8, Tone.FIRM, "send_invoice.overdue_2"),
        _by_email("final", 15, Tone.FINAL, "send_invoice.final", deadline=timedelta(days=7)),
        # Handing a debt to an agency is the business's call, so the default stops
        # at marking the invoice uncollectible; a policy can add HAND_TO_AGENCY.
        Step("uncollectible", timedelta(days=22), Tone.FINAL, actions=(Action.MARK_UNCOLLECTIBLE,)),
    ),
)

# Subscriptions charged automatically: say at once that the payment failed, with a
# link to update the card; remind while the retries continue; a final notice; then
# cancel and mark the invoice uncollectible once its deadline has passed.
_FAILURE = Anchor.FAILURE
CHARGE_AUTOMATICALLY_DEFAULT = Policy(
    id="default-charge-automatically",
    version=1,
    name="Failed automatic payments (default)",
    applies_to=Criteria(collection_method="charge_automatically"),
    retry=RetryBudget(max_attempts=8, within=timedelta(weeks=2)),  # Stripe's default, 1.1
    steps=(
        _by_email("failed", 0, Tone.FRIENDLY, "charge.failed", anchor=_FAILURE),
        _by_email("reminder_1", 3, Tone.FRIENDLY, "charge.reminder", anchor=_FAILURE),
        _by_email("reminder_2", 7, Tone.FIRM, "charge.reminder", anchor=_FAILURE),
        _by_email(
            "final", 14, Tone.FINAL, "charge.final", anchor=_FAILURE, deadline=timedelta(days=7)
        ),
        Step(
            "cancel",
            timedelta(days=21),
            Tone.FINAL,
            anchor=_FAILURE,
            actions=(Action.CANCEL, Action.MARK_UNCOLLECTIBLE),
        ),
    ),
)

DEFAULT_POLICIES = (SEND_INVOICE_DEFAULT, CHARGE_AUTOMATICALLY_DEFAULT)

# Sent once when a case recovers; not a step of any policy (see the worker).
PAYMENT_RECEIVED_TEMPLATE = "payment.received"
