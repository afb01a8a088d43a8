"""The planner: what to do for one case at `now`, and when to look again.

A pure function of the case's facts, its policy, what was already done, the
contact rules and `now`.  It never reads a clock or a database, so the worker,
the simulator and the property tests drive the same code.

How a step is scheduled:
- A step falls due at its anchor (the due date or the first failed payment)
  plus its offset, and never before the deadline of an earlier final notice
  that went out has passed; a step after a final notice that has not gone out
  waits for it (consequences never come before the notice that announced them).
- Each of a step's channels goes out at most once; the rules may defer it.
- When several steps are due at once (a case imported late, a worker that was
  down), only the latest goes out and the earlier ones are reported skipped:
  a customer gets one current reminder, not a burst of stale ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dunning.core.cases import CaseFacts, CaseState
from dunning.core.contacts import Channel, Contact, ContactRules, Debtor
from dunning.core.policy import Action, Anchor, Policy, Step, Tone


@dataclass(frozen=True, slots=True)
class SentStep:
    """A step the engine carried out for this case.

    With a channel it is one message (and counts as a contact for the rules);
    without one it records that the step's actions were emitted.
    """

    step: str
    at: datetime
    channel: Channel | None = None
    variant: str = ""


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    """A message due now: render `template` (its `variant`) and send it on `channel`."""

    step: str
    channel: Channel
    template: str
    variant: str
    tone: Tone
    due_at: datetime
    deadline_at: datetime | None  # for a final notice: pay by then, or the consequences follow
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlannedEffect:
    """A step action due now, emitted as an event for the business's systems."""

    step: str
    action: Action
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Deferral:
    """A message of the current step the rules hold back: until `until`, or for good (None)."""

    step: str
    channel: Channel
    template: str
    variant: str
    until: datetime | None
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Skip:
    """A step (or one channel of it) that will not go out, and why."""

    step: str
    reason: str
    channel: Channel | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """The planner's answer for one case at one moment.

    The worker writes `actions` as outbox rows and `effects` as events, records
    each as a `SentStep`, and wakes the case again at `next_wake_at`.  `skipped`
    and `deferred` explain what does not go out now; they are recomputed on every
    plan, so a skip is final only once the step that superseded it has gone out.
    """

    actions: tuple[PlannedMessage, ...] = ()
    effects: tuple[PlannedEffect, ...] = ()
    deferred: tuple[Deferral, ...] = ()
    skipped: tuple[Skip, ...] = ()
    next_wake_at: datetime | None = None  # strictly after `now`, or None: nothing more to do
    notes: tuple[str, ...] = ()


def choose_variant(*, case_id: str, step: Step) -> str:
    """The A/B variant of `step` for this case: stable across runs, machines and versions.

    "" when the step has no variants (its one template is used as it is).
    """
    total = sum(variant.weight for variant in step.variants if variant.weight > 0)
    if total == 0:
        return ""
    # sha256, not hash(): Python salts str hashes per process.
    digest = hashlib.sha256(f"{case_id}\x1f{step.key}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for variant in step.variants:
        if variant.weight <= 0:
            continue
        if point < variant.weight:
            return variant.key
        point -= variant.weight
    raise AssertionError("unreachable: point < total")  # pragma: no cover


def plan(
    *,
    case: CaseFacts,
    policy: Policy,
    history: Sequence[SentStep | Contact],
    rules: ContactRules,
    debtor: Debtor,
    now: datetime,
) -> Plan:
    """The messages and actions due for `case` at `now`, what waits, and when to wake."""
    if case.state != CaseState.ACTIVE:
        return Plan(notes=(f"the case is {case.state}: nothing is planned",))
    steps = policy.steps
    done = _done_by_step(policy, history)
    frontier = max((i for i, s in enumerate(steps) if s.key in done), default=-1)
    message_at = _message_times(policy, history)
    times = _step_times(policy, case, message_at, frontier)
    due = [i for i in range(frontier + 1, len(steps)) if _at_or_before(times[i], now)]
    current = max(due, default=frontier)

    outcome = _Outcome()
    start = times[current] if current >= 0 else None
    if start is not None and start > now:
        outcome.wakes.append(start)  # only when the history ran ahead of the schedule
    elif start is not None:
        _carry_out(
            steps[current],
            sent=done.get(steps[current].key, frozenset()),
            outcome=outcome,
            case=case,
            rules=rules,
            debtor=debtor,
            contacts=_contacts(case, history),
            now=now,
        )

    upcoming, notes = current + 1, []
    if outcome.actions or outcome.effects:
        # What goes out now moves the schedule on: a final notice sent now starts
        # its deadline, so the next step is timed as if it had already gone out.
        message_at.update({action.step: action.due_at for action in outcome.actions})
        times = _step_times(policy, case, message_at, current)
    if upcoming < len(steps):
        at = times[upcoming]
        if at is not None:
            outcome.wakes.append(at)
        else:
            notes.append(_why_unscheduled(policy, case, upcoming))
    return Plan(
        actions=tuple(outcome.actions),
        effects=tuple(outcome.effects),
        deferred=tuple(outcome.deferred),
        skipped=_skips(policy, done, frontier, current),
        next_wake_at=min((moment for moment in outcome.wakes if moment > now), default=None),
        notes=tuple(notes),
    )


@dataclass
class _Outcome:
    actions: list[PlannedMessage] = field(default_factory=list)
    effects: list[PlannedEffect] = field(default_factory=list)
    deferred: list[Deferral] = field(default_factory=list)
    wakes: list[datetime] = field(default_factory=list)


def _carry_out(
    step: Step,
    *,
    sent: frozenset[Channel | None],
    outcome: _Outcome,
    case: CaseFacts,
    rules: ContactRules,
    debtor: Debtor,
    contacts: list[Contact],
    now: datetime,
) -> None:
    """Ask the rules for each channel of `step` not sent yet; emit its actions once."""
    variant = choose_variant(case_id=case.case_id, step=step)
    for channel in step.channels:
        if channel in sent:
            continue
        template = step.templates[channel]
        verdict = rules.earliest(
            at=now, channel=channel, debtor=debtor, history=contacts, debt=case.case_id
        )
        allowed_at = verdict.allowed_at
        if allowed_at is not None and allowed_at <= now:
            deadline_at = None if step.deadline is None else allowed_at + step.deadline
            outcome.actions.append(
                PlannedMessage(
                    step.key,
                    channel,
                    template,
                    variant,
                    step.tone,
                    allowed_at,
                    deadline_at,
                    verdict.reasons,
                )
            )
            # The next channel is judged as if this message had gone out.
            contacts.append(Contact(allowed_at, channel, debt=case.case_id))
        else:
            outcome.deferred.append(
                Deferral(step.key, channel, template, variant, allowed_at, verdict.reasons)
            )
            if allowed_at is not None:
                outcome.wakes.append(allowed_at)
    if step.actions and None not in sent:
        outcome.effects.extend(PlannedEffect(step.key, action, now) for action in step.actions)


def _skips(
    policy: Policy, done: dict[str, frozenset[Channel | None]], frontier: int, current: int
) -> tuple[Skip, ...]:
    """What the step due now supersedes: the steps before it and what the last one left."""
    if current <= frontier:
        return ()
    steps, skipped = policy.steps, list[Skip]()
    newest = steps[current].key
    if frontier >= 0:
        older = steps[frontier]
        skipped.extend(
            Skip(older.key, f"superseded by {newest!r}", channel)
            for channel in older.channels
            if channel not in done[older.key]
        )
    skipped.extend(
        Skip(steps[i].key, f"overdue when {newest!r} fell due: only the latest goes out")
        for i in range(frontier + 1, current)
    )
    return tuple(skipped)


def _at_or_before(moment: datetime | None, now: datetime) -> bool:
    return moment is not None and moment <= now


def _done_by_step(
    policy: Policy, history: Sequence[SentStep | Contact]
) -> dict[str, frozenset[Channel | None]]:
    """For each step of the policy carried out, its channels sent (None: its actions)."""
    keys = {step.key for step in policy.steps}
    done: dict[str, set[Channel | None]] = {}
    for item in history:
        if isinstance(item, SentStep) and item.step in keys:
            done.setdefault(item.step, set()).add(item.channel)
    return {key: frozenset(channels) for key, channels in done.items()}


def _contacts(case: CaseFacts, history: Sequence[SentStep | Contact]) -> list[Contact]:
    """Every contact the rules must count: messages of this case and any other contact."""
    contacts: list[Contact] = []
    for item in history:
        if isinstance(item, Contact):
            contacts.append(item)
        elif item.channel is not None:
            contacts.append(Contact(item.at, item.channel, debt=case.case_id))
    return sorted(contacts, key=lambda contact: (contact.at, contact.channel, contact.debt))


def _anchor_time(anchor: Anchor, case: CaseFacts) -> datetime | None:
    return case.due_at if anchor == Anchor.DUE else case.failed_at


def _message_times(policy: Policy, history: Sequence[SentStep | Contact]) -> dict[str, datetime]:
    """When the last message of each step went out (the start of a notice's deadline)."""
    keys = {step.key for step in policy.steps}
    times: dict[str, datetime] = {}
    for item in history:
        if isinstance(item, SentStep) and item.step in keys and item.channel is not None:
            times[item.step] = max(item.at, times.get(item.step, item.at))
    return times


def _step_times(
    policy: Policy, case: CaseFacts, message_at: dict[str, datetime], frontier: int
) -> list[datetime | None]:
    """When each step falls due; None while it cannot be scheduled."""
    times: list[datetime | None] = []
    floor: datetime | None = None  # the deadline of the last final notice sent
    waiting = False  # a final notice that must go out first has not
    for index, step in enumerate(policy.steps):
        anchor = _anchor_time(step.anchor, case)
        if anchor is None or waiting:
            times.append(None)
        else:
            start = anchor + step.offset
            times.append(start if floor is None else max(start, floor))
        if step.deadline is not None:
            notice = message_at.get(step.key)
            if notice is not None:
                floor = notice + step.deadline
            elif index > frontier:
                waiting = True
    return times


def _why_unscheduled(policy: Policy, case: CaseFacts, index: int) -> str:
    step = policy.steps[index]
    if _anchor_time(step.anchor, case) is None:
        anchor = "due date" if step.anchor == Anchor.DUE else "failed payment"
        return f"step {step.key!r} waits for a {anchor}, and the case has none"
    return f"step {step.key!r} waits until the final notice before it has gone out"
