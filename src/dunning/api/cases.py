"""`/cases`: what the engine is collecting, its timeline; pausing, resuming, releasing a charge."""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate
from pydantic import AfterValidator

from dunning.api.common import SOURCE, NewestFirst, ObjectId, not_found, now
from dunning.api.messages import MessageOut
from dunning.api.schemas import Currency, ExternalId, Input, _text
from dunning.core.cases import CaseTransitionError
from dunning.engine import actions, retries
from dunning.engine.models import Case, CaseEvent, CaseInvoice, Message
from dunning.engine.retry_status import retry_status
from dunning.ledger.errors import ErrorCode, LedgerError

router = Router(tags=["cases"])

CaseStatus = Literal["active", "paused", "recovered", "exhausted", "closed"]


class CaseInvoiceOut(Schema):
    external_id: str
    number: str
    amount_due: int
    amount_remaining: int
    due_at: datetime
    status: str


class CaseOut(Schema):
    id: int
    customer: str
    status: CaseStatus
    currency: str
    amount_due: int = Field(description="minor units still owed across its invoices")
    collection_method: str
    policy: str = Field(description="the policy's key")
    policy_version: int
    invoices: list[CaseInvoiceOut]
    due_at: datetime | None
    failed_at: datetime | None
    opened_at: datetime
    closed_at: datetime | None
    next_action_at: datetime | None = Field(
        description="when the engine looks at the case again; null when nothing is planned"
    )
    next_retry_at: datetime | None = Field(
        description="when dunning tries the declined charge again; null when it will not "
        "(also while a pay-page payment waits for its answer: it is never sent again "
        "without the customer, only looked up; and while the gateway retries the invoice "
        "itself, as Stripe does: retry_reason names that time)"
    )
    retry_reason: str = Field(
        description='why that moment, or why no retry ("funds usually arrive on the 25th")'
    )
    charge_in_doubt_since: datetime | None = Field(
        description="since when a charge's outcome has been unknown (a retry's after a "
        "timeout or a lost answer; a pay-page payment's until its answer is recorded); "
        "null when none is.  With no next_retry_at, the engine has stopped asking (unless "
        "retry_reason says a pay-page payment is being looked up): an operator checks the "
        "gateway, records any payment it took and releases the charge"
    )
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_customer(obj: Case) -> str:
        return obj.customer.external_id

    @staticmethod
    def resolve_status(obj: Case) -> str:
        return obj.state

    @staticmethod
    def resolve_next_retry_at(obj: Case, context: dict[str, Any]) -> datetime | None:
        return retry_status(obj, now=now(context["request"])).at

    @staticmethod
    def resolve_retry_reason(obj: Case, context: dict[str, Any]) -> str:
        return retry_status(obj, now=now(context["request"])).reason

    @staticmethod
    def resolve_policy(obj: Case) -> str:
        return obj.policy.key

    @staticmethod
    def resolve_policy_version(obj: Case) -> int:
        return obj.policy.version

    @staticmethod
    def resolve_invoices(obj: Case) -> list[Any]:
        return [link.invoice for link in obj.caseinvoice_set.all()]


class CaseEventOut(Schema):
    id: int
    type: str
    reason: str
    from_state: str
    to_state: str
    data: dict[str, Any]
    occurred_at: datetime


class TimelineEntryOut(Schema):
    kind: Literal["event", "message"]
    at: datetime = Field(
        description="an event's occurred_at; a message's sent_at, or created_at until it is sent"
    )
    event: CaseEventOut | None = None
    message: MessageOut | None = None


class CaseDetailOut(CaseOut):
    timeline: list[TimelineEntryOut] = Field(description="events and messages, oldest first")

    @staticmethod
    def resolve_timeline(obj: Case) -> list[Any]:
        return timeline(obj)


class CaseFilters(Schema):
    customer: ExternalId | None = Field(None, description="the customer's external_id")
    status: CaseStatus | None = None
    currency: Currency | None = None


class CaseActionIn(Input):
    reason: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_text(500))] = Field(
        description="why; kept on the case's timeline", examples=["customer promised to pay"]
    )


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    kind: str
    at: datetime
    event: CaseEvent | None = None
    message: Message | None = None


def timeline(case: Case) -> list[TimelineEntry]:
    """Events and messages merged by time; at the same moment an event comes first, then by id."""
    entries = [TimelineEntry("event", e.occurred_at, event=e) for e in case.events.all()]
    entries += [
        TimelineEntry("message", m.sent_at or m.created_at, message=m)
        for m in case.messages.select_related("customer")
    ]

    def order(entry: TimelineEntry) -> tuple[datetime, int, int]:
        item = entry.event or entry.message
        assert item is not None
        return (entry.at, 0 if entry.kind == "event" else 1, item.pk)

    return sorted(entries, key=order)


def _cases() -> QuerySet[Case]:
    return Case.objects.select_related("customer", "policy").prefetch_related(
        Prefetch(
            "caseinvoice_set",
            queryset=CaseInvoice.objects.select_related("invoice").order_by(
                "invoice__due_at", "id"
            ),
        )
    )


@router.get("", response=list[CaseOut], summary="List cases, newest first")
@paginate(NewestFirst)
def list_cases(request: HttpRequest, filters: Query[CaseFilters]) -> QuerySet[Case]:
    query = _cases()
    if filters.customer is not None:
        query = query.filter(customer__external_id=filters.customer)
    if filters.status is not None:
        query = query.filter(state=filters.status)
    if filters.currency is not None:
        query = query.filter(currency=filters.currency)
    return query


@router.get("/{id}", response=CaseDetailOut, summary="Get a case with its timeline")
def get_case(request: HttpRequest, id: ObjectId) -> Case:
    return _get(id)


@router.post("/{id}/pause", response=CaseDetailOut, summary="Pause a case")
def pause_case(request: HttpRequest, id: ObjectId, payload: CaseActionIn) -> Case:
    """Holds every contact: the case's scheduled messages are canceled.  Only an active case."""
    try:
        actions.pause_case(id, now=now(request), reason=payload.reason, source=SOURCE)
    except Case.DoesNotExist:
        raise not_found("case", id) from None
    except CaseTransitionError:
        raise _conflict(id, "paused", "an active") from None
    return _get(id)


@router.post("/{id}/resume", response=CaseDetailOut, summary="Resume a paused case")
def resume_case(request: HttpRequest, id: ObjectId, payload: CaseActionIn) -> Case:
    """Back on the policy's schedule: the engine plans the next step from now."""
    try:
        actions.resume_case(id, now=now(request), reason=payload.reason, source=SOURCE)
    except Case.DoesNotExist:
        raise not_found("case", id) from None
    except CaseTransitionError:
        raise _conflict(id, "resumed", "a paused") from None
    return _get(id)


@router.post(
    "/{id}/charge-in-doubt/release",
    response=CaseDetailOut,
    summary="Release a charge in doubt that took no money",
)
def release_charge_in_doubt(request: HttpRequest, id: ObjectId, payload: CaseActionIn) -> Case:
    """For an operator who checked the gateway: the charge in doubt took no money
    (missing, declined, canceled) or it was refunded.  The case forgets the charge's key
    and the engine plans the next retry afresh.  If the gateway took the money, record
    the payment first (`POST /payments` with the gateway's reference): released without
    it, the invoice would be charged again.  Only a charge the engine has stopped asking
    about (`next_retry_at` null)."""
    try:
        retries.release_charge_in_doubt(id, now=now(request), reason=payload.reason, source=SOURCE)
    except Case.DoesNotExist:
        raise not_found("case", id) from None
    except retries.NoChargeInDoubt:
        raise LedgerError(
            f"case {id} has no charge in doubt left to an operator", code=ErrorCode.CONFLICT
        ) from None
    return _get(id)


def _conflict(id: int, verb: str, need: str) -> LedgerError:
    # Not the transition's own message: it repeats the submitted reason back.
    state = Case.objects.filter(pk=id).values_list("state", flat=True).first()
    return LedgerError(
        f"case {id} is {state}: only {need} case can be {verb}", code=ErrorCode.CONFLICT
    )


def _get(id: int) -> Case:
    case = _cases().filter(pk=id).first()
    if case is None:
        raise not_found("case", id)
    return case
