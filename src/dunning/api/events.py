from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate

from dunning.api.common import ObjectId, OldestFirst, not_found
from dunning.api.schemas import EventOut, ExternalId, ShortText
from dunning.ledger.models import Event

router = Router(tags=["events"])


class EventFilters(Schema):
    type: ShortText | None = Field(None, description="e.g. invoice.paid")
    customer: ExternalId | None = Field(None, description="the customer's external_id")
    invoice: ExternalId | None = Field(None, description="the invoice's external_id")


@router.get("", response=list[EventOut], summary="The event log, oldest first")
@paginate(OldestFirst)
def list_events(request: HttpRequest, filters: Query[EventFilters]) -> QuerySet[Event]:
    """Append-only: follow `next` to read everything recorded since your last page."""
    query = Event.objects.select_related("customer", "invoice")
    if filters.type is not None:
        query = query.filter(type=filters.type)
    if filters.customer is not None:
        query = query.filter(customer__external_id=filters.customer)
    if filters.invoice is not None:
        query = query.filter(invoice__external_id=filters.invoice)
    return query


@router.get("/{id}", response=EventOut, summary="Get an event")
def get_event(request: HttpRequest, id: ObjectId) -> Event:
    event = Event.objects.select_related("customer", "invoice").filter(pk=id).first()
    if event is None:
        raise not_found("event", id)
    return event
