"""The decide stage: claim due cases, ask the core what to do, write it down.

One transaction per batch of cases: the claim (SKIP LOCKED on PostgreSQL, the
write lock on SQLite), the plan for each case, its outbox rows, its timeline
entries and its next wake-up commit together or not at all.  Sending is the
delivery stage's job, after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from dunning.core import cases as core_cases
from dunning.core.cases import CaseFacts, CaseState
from dunning.core.contact_rules import RulePackContactRules
from dunning.core.contacts import Channel, Contact, ContactRules, Debtor
from dunning.core.planner import Plan, SentStep, plan
from dunning.core.policy import Action, Policy
from dunning.engine import policies
from dunning.engine.cases import record_case_event
from dunning.engine.models import Case, CaseEvent, ContactOptOut, Message, MessageStatus
from dunning.engine.writer import consequences_of, write_message
from dunning.ledger.services import record_event

ACTION_EVENT = "step.action"


@dataclass(frozen=True, slots=True)
class DecisionReport:
    cases: int = 0
    messages: int = 0
    actions: int = 0


def claim_due_cases(*, now: datetime, limit: int) -> list[Case]:
    """Active cases whose next action is due (uses case_due_idx); locked until commit."""
    due = (
        Case.objects.filter(state=CaseState.ACTIVE, next_action_at__lte=now)
        .order_by("next_action_at", "id")
        .select_related("customer", "policy")
    )
    if connection.features.has_select_for_update_skip_locked:
        due = due.select_for_update(skip_locked=True, of=("self",))
    return list(due[:limit])


def decide_due_cases(
    *, now: datetime, limit: int = 100, rules: ContactRules | None = None
) -> DecisionReport:
    rules = rules or RulePackContactRules()
    messages = actions = 0
    with transaction.atomic():
        cases = claim_due_cases(now=now, limit=limit)
        for case in cases:
            m, a = decide_case(case, now=now, rules=rules)
            messages, actions = messages + m, actions + a
    return DecisionReport(cases=len(cases), messages=messages, actions=actions)


def _debtor(case: Case) -> Debtor:
    customer = case.customer
    return Debtor(
        time_zone=customer.time_zone,
        country=customer.country,
        is_business=customer.is_business,
        opted_out=_opted_out(customer.pk),
    )


def _opted_out(customer_id: int) -> frozenset[Channel]:
    return frozenset(
        Channel(channel)
        for channel in ContactOptOut.objects.filter(customer_id=customer_id).values_list(
            "channel", flat=True
        )
    )


def _history(case: Case) -> list[SentStep | Contact]:
    """What went out for this case (steps) and to this customer on any case (contacts)."""
    history: list[SentStep | Contact] = []
    sent = Message.objects.filter(customer_id=case.customer_id).exclude(
        status__in=[MessageStatus.CANCELED, MessageStatus.FAILED]
    )
    for message in sent.only("case_id", "step", "channel", "variant", "created_at", "sent_at"):
        at = message.sent_at or message.created_at
        if message.case_id == case.pk:
            history.append(SentStep(message.step, at, Channel(message.channel), message.variant))
        else:
            # Other debts count for the per-day caps (Thai law counts all debts).
            history.append(
                Contact(at=at, channel=Channel(message.channel), debt=str(message.case_id))
            )
    for event in CaseEvent.objects.filter(case=case, type=ACTION_EVENT):
        history.append(SentStep(event.data["step"], event.occurred_at))
    return history


def _facts(case: Case) -> CaseFacts:
    return CaseFacts(
        case_id=str(case.pk),
        state=CaseState(case.state),
        collection_method=case.collection_method,
        currency=case.currency,
        amount_due=case.amount_due,
        country=case.customer.country,
        is_business=case.customer.is_business,
        due_at=case.due_at,
        failed_at=case.failed_at,
    )


def decide_case(case: Case, *, now: datetime, rules: ContactRules) -> tuple[int, int]:
    """Plan and persist one case; returns (messages written, actions emitted)."""
    policy = policies.load(case.policy)
    result: Plan = plan(
        case=_facts(case),
        policy=policy,
        history=_history(case),
        rules=rules,
        debtor=_debtor(case),
        now=now,
    )
    zone = ZoneInfo(case.customer.time_zone)
    written = 0
    for action in result.actions:
        step = policy.step(action.step)
        message = write_message(
            case,
            step=action.step,
            channel=action.channel,
            template_key=action.template,
            variant=action.variant,
            tone=action.tone,
            now=now,
            deadline=action.deadline_at.astimezone(zone).date() if action.deadline_at else None,
            consequences=consequences_of(
                _later_actions(policy, action.step), locale=case.customer.locale
            )
            or None,
            is_final=action.deadline_at is not None,
        )
        written += message is not None
        if step is not None and action.reasons:
            record_case_event(
                case, type="message.planned", reason="; ".join(action.reasons), now=now
            )
    for deferral in result.deferred:
        when = f"until {deferral.until.isoformat()}" if deferral.until else "for good"
        record_case_event(
            case,
            type="message.deferred" if deferral.until else "message.blocked",
            reason=f"{deferral.step} by {deferral.channel} held {when}: "
            + "; ".join(deferral.reasons),
            now=now,
            step=deferral.step,
            channel=deferral.channel,
        )
    for effect in result.effects:
        record_case_event(
            case,
            type=ACTION_EVENT,
            reason=f"{effect.action} (step {effect.step})",
            now=now,
            step=effect.step,
            action=effect.action,
        )
        # For the business's systems: they pause service, cancel, hand over.
        record_event(
            type=f"dunning.{effect.action}",
            now=now,
            source="engine",
            customer=case.customer,
            data={
                "case": case.pk,
                "step": effect.step,
                "currency": case.currency,
                "amount_due": case.amount_due,
            },
        )
    final = any(effect.action.is_final for effect in result.effects)
    if final:
        transition = core_cases.exhaust_case(CaseState(case.state), reason="final action taken")
        record_case_event(
            case,
            type=transition.event.type,
            reason=transition.event.reason,
            now=now,
            frm=case.state,
            to=transition.state,
        )
        case.state = transition.state
    Case.objects.filter(pk=case.pk).update(
        state=case.state,
        next_action_at=None if final else result.next_wake_at,
        updated_at=now,
    )
    return written, len(result.effects)


def _later_actions(policy: Policy, step_key: str) -> tuple[Action, ...]:
    """The actions of the steps after `step_key`: what a final notice warns of."""
    steps = policy.steps
    keys = [step.key for step in steps]
    index = keys.index(step_key)
    return tuple(action for step in steps[index + 1 :] for action in step.actions)
