"""Opening, extending and recovering cases from the ledger's facts.

`sync_cases` finds invoices that need dunning and are in no case yet, and
groups them by customer and currency (account-level dunning: one case, one
message listing every invoice).  `on_invoices_changed` reacts to money
arriving: a partial payment reduces the case, a full one recovers it, cancels
what was waiting to go out and thanks the customer.  A case left owing nothing
with no money received on its invoices (all voided or credited to nothing) is
closed instead, unthanked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import (
    BigIntegerField,
    CharField,
    Count,
    DateTimeField,
    Exists,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)

from dunning.core import cases as core_cases
from dunning.core.cases import CaseFacts, CaseState, OpenReason
from dunning.core.formatting import format_money
from dunning.core.policy import Policy, choose_policy
from dunning.db import Param, ParamList, Prepared, PreparedUpdate, bulk_insert, update_each
from dunning.engine import policies
from dunning.engine.models import (
    CARD_REQUEST_STEP,
    OPEN_STATES,
    Case,
    CaseEvent,
    CaseInvoice,
    Message,
    MessageStatus,
    PolicyVersion,
)
from dunning.engine.writer import write_thank_yous
from dunning.ledger.models import (
    AttemptOutcome,
    CollectionMethod,
    Dispute,
    Invoice,
    InvoiceStatus,
    PaymentAttempt,
)

# A send_invoice case opens this long before the due date, so the policy's
# courtesy reminder (3 days before, in the default policy) can go out.
COURTESY_LEAD = timedelta(days=3)
OWING = (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)


def invoices_needing_a_case(*, now: datetime, limit: int) -> list[Invoice]:
    """Open invoices with money owed, in no case yet: send_invoice ones from shortly before
    their due date, charge_automatically ones once a charge has failed (uses invoice_open_due_idx).
    """
    found: list[Invoice] = _NEEDING_A_CASE(limit).instances(due_by=now + COURTESY_LEAD)
    return found


def _needing_a_case(limit: int) -> QuerySet[Invoice]:
    failed = PaymentAttempt.objects.filter(invoice=OuterRef("pk"), outcome=AttemptOutcome.FAILED)
    in_case = CaseInvoice.objects.filter(invoice=OuterRef("pk"))
    # The due date bounds the index range outright (not inside the OR), so open
    # invoices not yet due are never read.  "In no case" comes before the OR:
    # most open invoices past due are in a case, and one probe rules them out.
    return (
        Invoice.objects.filter(
            status=InvoiceStatus.OPEN,
            amount_remaining__gt=0,
            due_at__lte=Param("due_by", DateTimeField()),
        )
        .exclude(Exists(in_case))
        .filter(
            Q(collection_method=CollectionMethod.SEND_INVOICE)
            | Q(Exists(failed), collection_method=CollectionMethod.CHARGE_AUTOMATICALLY)
        )
        .select_related("customer")
        .order_by("due_at", "id")[:limit]
    )


_NEEDING_A_CASE = Prepared(_needing_a_case)  # asked at every pass: compiled once


def sync_cases(*, now: datetime, limit: int = 500) -> int:
    """Put every invoice that needs dunning into its customer's case; returns how many.

    The invoices are grouped by customer and currency and written together:
    the new cases, their timeline entries and their invoices in one statement
    each.  A customer whose case another worker opened meanwhile (the
    case_one_open_per_customer_currency constraint) sends the call the slow
    way: one group at a time, each joining the case that exists by then.
    """
    invoices = invoices_needing_a_case(now=now, limit=limit)
    if not invoices:
        return 0
    groups: dict[tuple[int, str], list[Invoice]] = defaultdict(list)
    for invoice in invoices:
        groups[(invoice.customer_id, invoice.currency)].append(invoice)
    active = policies.active_policies()  # once for every case this call may open
    try:
        with transaction.atomic():
            _add_to_cases(groups, now=now, active=active)
    except IntegrityError:
        for group in groups.values():
            with transaction.atomic():
                _add_to_case(group, now=now, active=active)
    return len(invoices)


def _add_to_cases(
    groups: dict[tuple[int, str], list[Invoice]],
    *,
    now: datetime,
    active: list[tuple[PolicyVersion, Policy]],
) -> None:
    """Each group into its customer's open case in that currency, or a new one."""
    existing = {
        (case.customer_id, case.currency): case
        for case in _OPEN_CASES().instances(customers=list({c for c, _ in groups}))
    }
    new = [group for key, group in groups.items() if key not in existing]
    opening = [invoice.pk for group in new for invoice in group]
    first_failures = dict(_FIRST_FAILURES().rows(invoices=opening) if opening else ())
    opened: list[tuple[Case, list[CaseEvent], list[Invoice]]] = []
    disputed = open_disputes({group[0].customer_id for group in new}) if new else {}
    for group in new:
        failed_at = min(
            (first_failures[invoice.pk] for invoice in group if invoice.pk in first_failures),
            default=None,
        )
        made = _new_case(
            group,
            failed_at=failed_at,
            now=now,
            active=active,
            dispute=disputed.get(group[0].customer_id),
        )
        if made is not None:
            opened.append((*made, group))
    bulk_insert([case for case, _, _ in opened])
    for case, events, _ in opened:
        for event in events:
            event.case = case
    bulk_insert([event for _, events, _ in opened for event in events])
    bulk_insert(
        [
            CaseInvoice(case=case, invoice=invoice, added_at=now)
            for case, _, group in opened
            for invoice in group
        ]
    )
    if opened:
        _WITHDRAW_CARD_REQUESTS().run(
            customers=list({case.customer_id for case, _, _ in opened}), now=now
        )
    for key, case in existing.items():
        if key in groups:
            _extend_case(case, groups[key], now=now)


# The reads of `_add_to_cases`, compiled once each: every pass that finds invoices runs them.
_OPEN_CASES: Prepared[Case] = Prepared(
    lambda: Case.objects.select_for_update().filter(
        customer_id__in=ParamList("customers", BigIntegerField()), state__in=OPEN_STATES
    )
)
_FIRST_FAILURES = Prepared(
    lambda: (
        PaymentAttempt.objects.filter(
            invoice_id__in=ParamList("invoices", BigIntegerField()),
            outcome=AttemptOutcome.FAILED,
        )
        .values("invoice_id")
        .annotate(first=Min("attempted_at"))
        .values_list("invoice_id", "first")
    )
)


# A case opening withdraws the customer's card requests still waiting to go out
# (engine.predunning): its own reminders ask for what is needed, and the request
# would take a day's contact (one a day in Thailand) ahead of its first reminder.
_WITHDRAW_CARD_REQUESTS = PreparedUpdate(
    lambda: (
        Message.objects.filter(
            customer_id__in=ParamList("customers", BigIntegerField()),
            case__isnull=True,
            step=CARD_REQUEST_STEP,
            status=MessageStatus.SCHEDULED,
        ),
        {"status": MessageStatus.CANCELED, "updated_at": Param("now", DateTimeField())},
    )
)


def _add_to_case(
    invoices: list[Invoice], *, now: datetime, active: list[tuple[PolicyVersion, Policy]]
) -> Case | None:
    first = invoices[0]
    case = (
        Case.objects.select_for_update()
        .filter(customer_id=first.customer_id, currency=first.currency, state__in=OPEN_STATES)
        .first()
    )
    if case is not None:
        _extend_case(case, invoices, now=now)
        return case
    failed_at = (
        PaymentAttempt.objects.filter(invoice__in=invoices, outcome=AttemptOutcome.FAILED)
        .aggregate(first=Min("attempted_at"))
        .get("first")
    )
    dispute = open_disputes([first.customer_id]).get(first.customer_id)
    made = _new_case(invoices, failed_at=failed_at, now=now, active=active, dispute=dispute)
    if made is None:
        return None
    case, events = made
    case.save(force_insert=True)
    for event in events:
        event.case = case
    bulk_insert(events)
    bulk_insert([CaseInvoice(case=case, invoice=invoice, added_at=now) for invoice in invoices])
    _WITHDRAW_CARD_REQUESTS().run(customers=[case.customer_id], now=now)
    return case


def _extend_case(case: Case, invoices: list[Invoice], *, now: datetime) -> None:
    """Add invoices to an open case: its amounts grow and both stages look again now."""
    bulk_insert(
        [CaseInvoice(case=case, invoice=invoice, added_at=now) for invoice in invoices],
        ignore_conflicts=True,
    )
    refresh_amounts(case, now=now)
    if case.state == CaseState.ACTIVE:
        # Decide again now: the next message lists the new invoices too, and
        # the retry stage looks at the new declined charge.
        retry = (
            {"next_retry_at": now, "retry_key": ""}
            if case.collection_method == CollectionMethod.CHARGE_AUTOMATICALLY
            # A charge in doubt keeps its key until it is answered.
            and case.charge_in_doubt_since is None
            else {}
        )
        Case.objects.filter(pk=case.pk).update(next_action_at=now, **retry)


def _new_case(
    invoices: list[Invoice],
    *,
    failed_at: datetime | None,
    now: datetime,
    active: list[tuple[PolicyVersion, Policy]],
    dispute: Dispute | None = None,
) -> tuple[Case, list[CaseEvent]] | None:
    """The case these invoices open and its timeline entries, unsaved; None when no
    active policy applies to them.  A new case wakes both stages now, unless the
    customer disputes a payment (`engine.disputes`): then it opens paused."""
    first = invoices[0]
    customer = first.customer
    method = first.collection_method
    facts = CaseFacts(
        case_id="new",
        state=CaseState.ACTIVE,
        collection_method=method,
        currency=first.currency,
        amount_due=sum(invoice.amount_remaining for invoice in invoices),
        country=customer.country,
        is_business=customer.is_business,
        due_at=min(invoice.due_at for invoice in invoices),
        failed_at=failed_at,
    )
    chosen = choose_policy([policy for _, policy in active], facts)
    if chosen is None:
        return None
    version = next(record for record, policy in active if policy is chosen)
    reason = (
        OpenReason.PAYMENT_FAILED
        if failed_at
        else (
            OpenReason.INVOICE_OVERDUE
            if facts.due_at and facts.due_at <= now
            else OpenReason.INVOICE_DUE_SOON
        )
    )
    transition = core_cases.open_case(reason=reason)
    case = Case(
        customer=customer,
        currency=first.currency,
        state=transition.state,
        collection_method=method,
        policy=version,
        amount_due=facts.amount_due,
        due_at=facts.due_at,
        failed_at=failed_at,
        opened_at=now,
        next_action_at=now,
        # A declined charge: the retry stage plans its next try at once.
        next_retry_at=now if method == CollectionMethod.CHARGE_AUTOMATICALLY else None,
        created_at=now,
        updated_at=now,
    )
    event = CaseEvent(
        type=transition.event.type,
        reason=transition.event.reason,
        from_state="",
        to_state=transition.state,
        data={"policy": f"{version.key} v{version.version}"},
        occurred_at=now,
    )
    if dispute is None:
        return case, [event]
    paused = core_cases.pause_case(transition.state, reason=dispute_pause_reason(dispute))
    case.state, case.next_action_at, case.next_retry_at = paused.state, None, None
    return case, [
        event,
        CaseEvent(
            type=paused.event.type,
            reason=paused.event.reason,
            from_state=transition.state,
            to_state=paused.state,
            data={"source": "dispute", "dispute": dispute.external_id},
            occurred_at=now,
        ),
    ]


def open_disputes(customers: Iterable[int]) -> dict[int, Dispute]:
    """Each customer's earliest open dispute, for those who have one (`engine.disputes`)."""
    found: dict[int, Dispute] = {}
    for dispute in _OPEN_DISPUTES().instances(customers=list(customers)):
        found.setdefault(dispute.customer_id, dispute)
    return found


# Asked whenever cases open, in every pass that opens one: compiled once.
_OPEN_DISPUTES: Prepared[Dispute] = Prepared(
    lambda: Dispute.objects.filter(
        customer_id__in=ParamList("customers", BigIntegerField()), closed_at__isnull=True
    ).order_by("opened_at", "id")
)


def dispute_pause_reason(dispute: Dispute) -> str:
    """Why a case is paused for `dispute`, for its timeline (staff, not the customer)."""
    amount = format_money(dispute.amount, dispute.currency, locale="en")
    why = f", reason {dispute.reason}" if dispute.reason else ""
    return (
        f"the customer disputes a payment of {amount} at their bank (dispute "
        f"{dispute.external_id}{why}): automatic dunning is paused until someone resumes it"
    )


def refresh_amounts(case: Case, *, now: datetime) -> int:
    """Recompute what the case's invoices still owe; returns it."""
    _refresh_amounts([case], now=now)
    return case.amount_due


def _refresh_amounts(cases: Sequence[Case], *, now: datetime) -> None:
    """Recompute what each case's invoices still owe and their earliest due date (2 queries)."""
    owed = {
        case_id: (amount, due)
        for case_id, amount, due in _OWED().rows(cases=[case.pk for case in cases])
    }
    for case in cases:
        amount, due = owed.get(case.pk, (0, None))
        case.amount_due, case.due_at, case.updated_at = amount or 0, due or case.due_at, now
    update_each(cases, ["amount_due", "due_at", "updated_at"])


_OWED = Prepared(
    lambda: (
        CaseInvoice.objects.filter(
            case_id__in=ParamList("cases", BigIntegerField()), invoice__status__in=OWING
        )
        .values("case_id")
        .annotate(amount=Sum("invoice__amount_remaining"), due=Min("invoice__due_at"))
        .values_list("case_id", "amount", "due")
    )
)  # every payment on a case


def on_invoices_changed(
    *, invoices: Sequence[Invoice], now: datetime, source: str, **_: Any
) -> None:
    """Money arrived or invoices changed: reduce, recover or leave their open cases.

    A handful of queries whatever the number of invoices: one finds the cases
    of all of them (most payments belong to none: they went through at the
    first charge), one sums what each case still owes, and the recovered ones
    are closed and thanked together.
    """
    by_id = {invoice.pk: invoice for invoice in invoices}
    if not by_id:
        return
    changed: dict[int, tuple[Case, Invoice]] = {}
    for link in _CASES_OF_INVOICES().instances(ids=list(by_id)):
        changed.setdefault(link.case_id, (link.case, by_id[link.invoice_id]))
    if not changed:
        return
    before = {case_id: case.amount_due for case_id, (case, _) in changed.items()}
    _refresh_amounts([case for case, _ in changed.values()], now=now)
    settled = [case.pk for case, _ in changed.values() if case.amount_due == 0]
    # A case owing nothing with no money received on its invoices had its debt voided
    # or credited away, not paid: it is closed, not recovered (no "thank you for your
    # payment" of nothing).
    paid = {pk for (pk,) in _WITH_A_PAID_INVOICE().rows(cases=settled)} if settled else set()
    events: list[CaseEvent] = []
    recovered: list[Case] = []
    voided: list[Case] = []
    for case, invoice in changed.values():
        if case.amount_due == before[case.pk]:
            continue
        void = invoice.status == InvoiceStatus.VOID
        transition = core_cases.invoice_changed(
            CaseState(case.state),
            remaining=case.amount_due,
            money_received=case.pk in paid,  # asked only of cases owing nothing
            voided=void,
            reason=f"{source}: invoice {invoice.number}"
            + (" voided; the rest is still owed" if void and case.amount_due else ""),
            closing_reason=f"{source}: invoice {invoice.number} is {invoice.status} "
            f"(amount due {invoice.amount_due}); nothing is owed any more, and no "
            "money was received for it",
        )
        if transition.state == CaseState.CLOSED:
            voided.append(case)
        events.append(
            CaseEvent(
                case=case,
                type=transition.event.type,
                reason=transition.event.reason,
                from_state=case.state,
                to_state=transition.state,
                data={"amount_due": case.amount_due},
                occurred_at=now,
            )
        )
        if transition.state == CaseState.RECOVERED:
            recovered.append(case)
    bulk_insert(events)
    if recovered:
        _recover(recovered, now=now)
    if voided:
        _close(voided, state=CaseState.CLOSED, now=now)


def _closed(now: Any, state: Any = CaseState.RECOVERED) -> dict[str, Any]:
    """A recovered (or closed) case's fields (`now` and `state`: values, or `Param`s in a
    prepared update)."""
    return {
        "state": state,
        "closed_at": now,
        "next_action_at": now,
        "updated_at": now,
    }


def _settled(reason: Any) -> dict[str, Any]:
    """A settled case's retry fields: no retry, and `reason` ("paid" once recovered)."""
    return {"next_retry_at": None, "retry_key": "", "retry_reason": reason}


def _recovering() -> QuerySet[Case]:
    return Case.objects.filter(pk__in=ParamList("cases", BigIntegerField()))


def _waiting() -> QuerySet[Message]:
    return Message.objects.filter(
        case_id__in=ParamList("cases", BigIntegerField()), status=MessageStatus.SCHEDULED
    )


# Each recovery runs these, so they are compiled once.
_WAITING = Prepared(
    lambda: _waiting().values("case_id").annotate(n=Count("id")).values_list("case_id", "n")
)
_CANCEL_WAITING = PreparedUpdate(
    lambda: (
        _waiting(),
        {"status": MessageStatus.CANCELED, "updated_at": Param("now", DateTimeField())},
    )
)
_CLOSE_SETTLED = PreparedUpdate(
    lambda: (
        _recovering().filter(charge_in_doubt_since=None),
        {
            **_closed(Param("now", DateTimeField()), Param("state", CharField())),
            **_settled(Param("reason", CharField())),
        },
    )
)
_CLOSE_IN_DOUBT = PreparedUpdate(
    lambda: (
        _recovering().exclude(charge_in_doubt_since=None),
        _closed(Param("now", DateTimeField()), Param("state", CharField())),
    )
)
_WITH_A_PAID_INVOICE = Prepared(
    lambda: (
        CaseInvoice.objects.filter(
            case_id__in=ParamList("cases", BigIntegerField()),
            invoice__status=InvoiceStatus.PAID,
            invoice__amount_paid__gt=0,  # an invoice credited to nothing is "paid" too
        )
        .values_list("case_id")
        .distinct()
    )
)  # every case a change leaves owing nothing
_IN_DOUBT = Prepared(lambda: _recovering().exclude(charge_in_doubt_since=None).values_list("pk"))


# Asked for every batch of payments recorded (most are in no case: paid at the first charge).
_CASES_OF_INVOICES: Prepared[CaseInvoice] = Prepared(
    lambda: (
        CaseInvoice.objects.select_for_update(of=("case",))
        .filter(
            invoice_id__in=ParamList("ids", BigIntegerField()),
            case__state__in=[*OPEN_STATES, CaseState.EXHAUSTED],
        )
        .select_related("case__customer")
        .order_by("case_id", "invoice_id")
    )
)


def _recover(cases: Sequence[Case], *, now: datetime) -> None:
    """Close paid cases: cancel what waits to go out, and thank each customer."""
    _close(cases, state=CaseState.RECOVERED, now=now)
    write_thank_yous(cases, now=now)


def _close(cases: Sequence[Case], *, state: CaseState, now: datetime) -> None:
    """Close cases that owe nothing any more (`state`: recovered when paid, closed when
    voided or credited away): cancel what waits to go out."""
    ids = [case.pk for case in cases]
    canceled = dict(_WAITING().rows(cases=ids))
    if canceled:
        _CANCEL_WAITING().run(cases=ids, now=now)
    # A charge in doubt keeps its key and its questions: it may have taken the money
    # too, and a payment left at the bank's page must be canceled before it can
    # (the retry stage asks about it at once: `retries.ask_about_changed_invoices`).
    reason = "paid" if state == CaseState.RECOVERED else ""
    _CLOSE_SETTLED().run(cases=ids, now=now, state=state, reason=reason)
    _CLOSE_IN_DOUBT().run(cases=ids, now=now, state=state)
    in_doubt = {pk for (pk,) in _IN_DOUBT().rows(cases=ids)}
    closed = _closed(now, state)
    settled = {**closed, **_settled(reason)}
    for case in cases:
        for name, value in (closed if case.pk in in_doubt else settled).items():
            setattr(case, name, value)
    bulk_insert(
        [
            CaseEvent(
                case=case,
                type="messages.canceled",
                reason=f"{canceled[case.pk]} unsent message(s): {reason or 'nothing is owed'}",
                occurred_at=now,
            )
            for case in cases
            if case.pk in canceled
        ]
    )


def pause(
    case: Case, *, now: datetime, reason: str, source: str, data: dict[str, object] | None = None
) -> None:
    """Hold every contact of `case`, whose row the caller has locked: its scheduled messages
    are canceled and nothing new is planned.  `data` joins the timeline entry's."""
    transition = core_cases.pause_case(CaseState(case.state), reason=reason)
    canceled = Message.objects.filter(case=case, status=MessageStatus.SCHEDULED).update(
        status=MessageStatus.CANCELED, updated_at=now
    )
    case.next_action_at = None
    data = {"canceled_messages": canceled, **(data or {})}
    _change_state(case, transition, now=now, source=source, data=data)


def resume(case: Case, *, now: datetime, reason: str, source: str) -> None:
    """Back to the policy's schedule for `case`, whose row the caller has locked: the worker
    looks at it again from `now`.  What was canceled on pausing is not revived."""
    transition = core_cases.resume_case(CaseState(case.state), reason=reason)
    case.next_action_at = now
    _change_state(case, transition, now=now, source=source, data={})


def _change_state(
    case: Case,
    transition: core_cases.Transition,
    *,
    now: datetime,
    source: str,
    data: dict[str, object],
) -> None:
    event = transition.event
    case.state = transition.state.value
    case.updated_at = now
    case.save(update_fields=["state", "next_action_at", "updated_at"])
    CaseEvent.objects.create(
        case=case,
        type=event.type.value,
        reason=event.reason,
        from_state=event.from_state.value if event.from_state else "",
        to_state=event.to_state.value,
        data={"source": source, **data},
        occurred_at=now,
    )
