"""The decide stage: claim due cases, ask the core what to do, write it down.

One transaction per batch of cases: the claim (SKIP LOCKED on PostgreSQL, the
write lock on SQLite), the plan for each case, its outbox rows, its timeline
entries and its next wake-up commit together or not at all.  Sending is the
delivery stage's job, after commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import BigIntegerField, DateTimeField, Q, QuerySet

from dunning.core import cases as core_cases
from dunning.core.cases import CaseFacts, CaseState
from dunning.core.contact_rules import RulePackContactRules
from dunning.core.contacts import CONTACT_LOOKBACK_DAYS, Channel, Contact, ContactRules, Debtor
from dunning.core.declines import (
    WORDING_TEXT,
    Brand,
    Classification,
    Wording,
    classify_decline,
    customer_text,
)
from dunning.core.fields import UTC_ZONE, known_zone
from dunning.core.planner import Plan, SentStep, plan
from dunning.core.policy import Action, Policy
from dunning.core.rendering import locale_candidates
from dunning.db import Param, ParamList, Prepared, bulk_insert, claimable, update_each
from dunning.engine import policies
from dunning.engine.cases import OWING
from dunning.engine.models import (
    Case,
    CaseEvent,
    CaseInvoice,
    Message,
    MessageStatus,
    PolicyVersion,
)
from dunning.engine.templates import TemplateResolver
from dunning.engine.writer import compose, consequences_of, debtor_of, lock_contacts, opted_out
from dunning.ledger.models import (
    AttemptOutcome,
    CollectionMethod,
    Customer,
    Event,
    Invoice,
    PaymentAttempt,
)
from dunning.ledger.services import new_event

ACTION_EVENT = "step.action"


@dataclass(frozen=True, slots=True)
class DecisionReport:
    cases: int = 0
    messages: int = 0
    actions: int = 0


def claim_due_cases(*, now: datetime, limit: int) -> list[Case]:
    """Active cases whose next action is due (uses case_due_idx); locked until commit.

    The claim reads the case rows alone and their customers come in a second
    query by primary key: joined into the claim, the planner may misjudge how
    many rows are due (statistics lag behind a busy queue) and hash-join the
    whole customer table for a batch of a hundred.
    """
    cases: list[Case] = _DUE_CASES(limit).instances(now=now)
    attach_customers(cases)
    return cases


def _due_cases(limit: int) -> QuerySet[Case]:
    due = Case.objects.filter(
        state=CaseState.ACTIVE, next_action_at__lte=Param("now", DateTimeField())
    ).order_by("next_action_at", "id")
    return claimable(due)[:limit]


_DUE_CASES = Prepared(_due_cases)  # every pass claims, mostly finding few cases or none


def attach_customers(cases: Sequence[Case]) -> None:
    """Load the cases' customers in one query by primary key."""
    if not cases:
        return
    found = _CUSTOMERS().instances(ids=list({case.customer_id for case in cases}))
    customers = {customer.pk: customer for customer in found}
    for case in cases:
        case.customer = customers[case.customer_id]


# Every claim that finds cases reads their customers.
_CUSTOMERS: Prepared[Customer] = Prepared(
    lambda: Customer.objects.filter(pk__in=ParamList("ids", BigIntegerField())).order_by()
)


def decide_due_cases(
    *, now: datetime, limit: int = 100, rules: ContactRules | None = None
) -> DecisionReport:
    """Claim up to `limit` due cases and decide them, in one transaction.

    The batch's facts are read in a handful of queries (`Batch.load`), each case
    is planned and its messages rendered in memory, and the writes go out in a
    handful more (`Batch.save`): the cost per case is the core's, not the
    database's round trips.
    """
    rules = rules or RulePackContactRules()
    with transaction.atomic():
        cases = claim_due_cases(now=now, limit=limit)
        # The customers' contacts are judged under their lock (`lock_contacts`); a
        # customer another transaction is writing to now waits for the next pass.
        held = lock_contacts((case.customer_id for case in cases), skip_locked=True)
        cases = [case for case in cases if case.customer_id in held]
        if not cases:
            return DecisionReport()
        batch = Batch.load(cases, now=now)
        actions = sum(decide_case(case, batch=batch, now=now, rules=rules) for case in cases)
        messages = batch.save()
    return DecisionReport(cases=len(cases), messages=messages, actions=actions)


# The longest span any contact rule looks back over (the US 7-in-7 call cap),
# plus a day for time zones: contacts older than this cannot change a verdict.
HISTORY_LOOKBACK = timedelta(days=CONTACT_LOOKBACK_DAYS + 1)


@dataclass
class Batch:
    """What a batch of claimed cases needs from the database, and what it will write."""

    now: datetime
    opted_out: dict[int, frozenset[Channel]]
    messages: dict[int, list[Message]]  # by customer: its cases' messages, recent others
    actions: dict[int, list[CaseEvent]]  # by case: the step actions already taken
    owing: dict[int, list[Invoice]]  # by case
    policies: dict[int, Policy]  # by PolicyVersion id
    templates: TemplateResolver  # the template store, read once
    declines: dict[int, Classification] = field(default_factory=dict)  # by case: the latest
    new_messages: list[Message] = field(default_factory=list)
    new_events: list[CaseEvent] = field(default_factory=list)
    ledger_events: list[Event] = field(default_factory=list)  # for the business's systems
    changed: list[Case] = field(default_factory=list)

    @classmethod
    def load(cls, cases: Sequence[Case], *, now: datetime) -> Batch:
        case_ids = [case.pk for case in cases]
        customer_ids = list({case.customer_id for case in cases})
        messages: dict[int, list[Message]] = defaultdict(list)
        for message in _BatchQueries.messages().instances(
            customers=customer_ids, cases=case_ids, since=now - HISTORY_LOOKBACK
        ):
            messages[message.customer_id].append(message)
        actions: dict[int, list[CaseEvent]] = defaultdict(list)
        for event in _BatchQueries.actions().instances(cases=case_ids):
            actions[event.case_id].append(event)
        owing: dict[int, list[Invoice]] = defaultdict(list)
        for link in _BatchQueries.owing().instances(cases=case_ids):
            owing[link.case_id].append(link.invoice)
        # The latest declined charge of each card case: what its messages ask for.
        charged = [
            c.pk for c in cases if c.collection_method == CollectionMethod.CHARGE_AUTOMATICALLY
        ]
        declines: dict[int, Classification] = {}
        for case_id, decline, advice, network, mac, brand in (
            _BatchQueries.declines().rows(cases=charged) if charged else ()
        ):
            declines[case_id] = classify_decline(  # oldest first: the newest stays
                decline,
                advice_code=advice,
                network_decline_code=network,
                network_advice_code=mac,
                brand=Brand.parse(brand or ""),
            )
        versions = _BatchQueries.versions().instances(ids=list({case.policy_id for case in cases}))
        return cls(
            now=now,
            policies={version.pk: policies.load(version) for version in versions},
            templates=TemplateResolver.load(),
            opted_out=opted_out(customer_ids),
            messages=messages,
            actions=actions,
            owing=owing,
            declines=declines,
        )

    def policy(self, case: Case) -> Policy:
        """Each policy version is read and parsed once per batch, not once per case."""
        return self.policies[case.policy_id]

    def history(self, case: Case) -> list[SentStep | Contact]:
        """What went out for this case (steps) and to this customer on any case (contacts)."""
        history: list[SentStep | Contact] = []
        for message in self.messages.get(case.customer_id, ()):
            if message.status in (MessageStatus.CANCELED, MessageStatus.FAILED):
                continue
            at = message.sent_at or message.created_at
            if message.case_id == case.pk:
                history.append(
                    SentStep(message.step, at, Channel(message.channel), message.variant)
                )
            else:
                # Other debts count for the per-day caps (Thai law counts all debts), and
                # so do messages about none (a card about to expire): each is a contact.
                debt = str(message.case_id or "")
                history.append(Contact(at=at, channel=Channel(message.channel), debt=debt))
        for event in self.actions.get(case.pk, ()):
            history.append(SentStep(event.data["step"], event.occurred_at))
        return history

    def event(
        self, case: Case, *, type: str, reason: str, frm: str = "", to: str = "", **data: Any
    ) -> None:
        self.new_events.append(
            CaseEvent(
                case=case,
                type=type,
                reason=reason,
                from_state=frm,
                to_state=to,
                data=data,
                occurred_at=self.now,
            )
        )

    def add_message(self, message: Message) -> bool:
        """Queue `message` unless its (case, step, channel) row exists already."""
        known = self.messages[message.customer_id]
        if any(m.idempotency_key == message.idempotency_key for m in known):
            return False
        known.append(message)  # later cases of this customer see it as a contact
        self.new_messages.append(message)
        return True

    def save(self) -> int:
        """Write the batch: outbox rows, timeline entries, the cases' new state."""
        # The claim locks each case, so no other worker writes these keys; the
        # conflict clause only guards a replay against a row written meanwhile.
        bulk_insert(self.new_messages, ignore_conflicts=True)
        bulk_insert(self.new_events)
        bulk_insert(self.ledger_events)
        for case in self.changed:
            case.updated_at = self.now
        update_each(self.changed, ["state", "next_action_at", "updated_at"])
        return len(self.new_messages)


def _ids(name: str) -> ParamList:
    return ParamList(name, BigIntegerField())


class _BatchQueries:
    """The queries of `Batch.load`, compiled once each (`Prepared`): every pass runs them."""

    # Every message of these cases (steps are never repeated, whatever their
    # age) and the customers' recent ones on other cases (per-day caps).
    messages: Prepared[Message] = Prepared(
        lambda: (
            Message.objects.filter(customer_id__in=_ids("customers"))
            .filter(
                Q(case_id__in=_ids("cases")) | Q(created_at__gte=Param("since", DateTimeField()))
            )
            .only(
                "case_id",
                "customer_id",
                "step",
                "channel",
                "variant",
                "status",
                "idempotency_key",
                "created_at",
                "sent_at",
            )
        )
    )
    actions: Prepared[CaseEvent] = Prepared(
        lambda: CaseEvent.objects.filter(case_id__in=_ids("cases"), type=ACTION_EVENT).only(
            "case_id", "data", "occurred_at"
        )
    )
    owing: Prepared[CaseInvoice] = Prepared(
        lambda: CaseInvoice.objects.filter(
            case_id__in=_ids("cases"), invoice__status__in=OWING
        ).select_related("invoice")
    )
    declines = Prepared(
        lambda: (
            PaymentAttempt.objects.filter(
                outcome=AttemptOutcome.FAILED, invoice__caseinvoice__case_id__in=_ids("cases")
            )
            .order_by("attempted_at", "id")
            .values_list(
                "invoice__caseinvoice__case_id",
                "decline_code",
                "advice_code",
                "network_code",
                "network_advice_code",
                "payment_method__brand",
            )
        )
    )
    versions: Prepared[PolicyVersion] = Prepared(
        lambda: PolicyVersion.objects.filter(pk__in=_ids("ids"))
    )


def _debtor(case: Case, batch: Batch) -> Debtor:
    return debtor_of(case.customer, opted_out=batch.opted_out.get(case.customer_id, frozenset()))


# The languages `customer_text` is written in.
_DECLINE_TEXT_LANGUAGES = frozenset(WORDING_TEXT[Wording.BANK_DECLINED])


def _payment_problem(case: Case, batch: Batch) -> str | None:
    """What a charge_automatically message says of the case's latest decline, or None.

    In the closest language there is to the customer's, as templates are chosen
    (th-TH reads Thai; a language nobody wrote reads English).
    """
    decline = batch.declines.get(case.pk)  # only charge_automatically cases have one
    if decline is None:
        return None
    for language in locale_candidates(case.customer.locale):
        if language in _DECLINE_TEXT_LANGUAGES:
            return customer_text(decline, language, retry_planned=bool(case.retry_key)) or None
    return None


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


def decide_case(case: Case, *, batch: Batch, now: datetime, rules: ContactRules) -> int:
    """Plan one case into `batch`; returns the number of step actions it took."""
    policy = batch.policy(case)
    result: Plan = plan(
        case=_facts(case),
        policy=policy,
        history=batch.history(case),
        rules=rules,
        debtor=_debtor(case, batch),
        now=now,
    )
    # A stored zone this machine does not know: the contact rules hold every message,
    # so none is written; UTC only keeps the pass going (`fields.known_zone`).
    zone = known_zone(case.customer.time_zone) or UTC_ZONE
    for action in result.actions:
        message = compose(
            case,
            invoices=batch.owing.get(case.pk, ()),
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
            payment_problem=_payment_problem(case, batch),
            templates=batch.templates.resolve,
        )
        if isinstance(message, str):
            batch.event(case, type="message.not_sent", reason=message)
            continue
        batch.add_message(message)
        if action.reasons:
            batch.event(case, type="message.planned", reason="; ".join(action.reasons))
    for deferral in result.deferred:
        when = f"until {deferral.until.isoformat()}" if deferral.until else "for good"
        batch.event(
            case,
            type="message.deferred" if deferral.until else "message.blocked",
            reason=f"{deferral.step} by {deferral.channel} held {when}: "
            + "; ".join(deferral.reasons),
            step=deferral.step,
            channel=deferral.channel,
        )
    for effect in result.effects:
        batch.event(
            case,
            type=ACTION_EVENT,
            reason=f"{effect.action} (step {effect.step})",
            step=effect.step,
            action=effect.action,
        )
        # For the business's systems: they pause service, cancel, hand over.
        batch.ledger_events.append(
            new_event(
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
        )
    final = any(effect.action.is_final for effect in result.effects)
    if final:
        transition = core_cases.exhaust_case(CaseState(case.state), reason="final action taken")
        batch.event(
            case,
            type=transition.event.type,
            reason=transition.event.reason,
            frm=case.state,
            to=transition.state,
        )
        case.state = transition.state
    case.next_action_at = None if final else result.next_wake_at
    case.updated_at = now
    batch.changed.append(case)
    return len(result.effects)


def _later_actions(policy: Policy, step_key: str) -> tuple[Action, ...]:
    """The actions of the steps after `step_key`: what a final notice warns of."""
    steps = policy.steps
    keys = [step.key for step in steps]
    index = keys.index(step_key)
    return tuple(action for step in steps[index + 1 :] for action in step.actions)
