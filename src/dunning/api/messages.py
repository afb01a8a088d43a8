"""`/messages`: every contact the engine wrote, exactly as stored (the outbox and the record)."""

from datetime import datetime
from typing import Annotated, Literal

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate

from dunning.api.common import MAX_ID, NewestFirst, ObjectId, not_found
from dunning.api.schemas import ExternalId
from dunning.engine.models import Message

router = Router(tags=["messages"])

MessageStatusName = Literal["scheduled", "sent", "failed", "canceled"]
ChannelName = Literal["email", "sms", "line", "letter", "call"]


class MessageOut(Schema):
    id: int
    case: int | None = Field(
        alias="case_id", description="the case it is about; null for a card about to expire"
    )
    customer: str
    channel: str
    to: str
    locale: str
    subject: str
    body_text: str
    step: str
    template: str
    variant: str
    status: str
    send_after: datetime = Field(description="when it is due to go out; once sent, when it went")
    attempts: int
    last_error: str
    sent_at: datetime | None
    created_at: datetime

    @staticmethod
    def resolve_customer(obj: Message) -> str:
        return obj.customer.external_id


class MessageFilters(Schema):
    case: Annotated[int, Field(ge=1, le=MAX_ID)] | None = Field(None, description="the case's id")
    customer: ExternalId | None = Field(None, description="the customer's external_id")
    status: MessageStatusName | None = None
    channel: ChannelName | None = None


@router.get("", response=list[MessageOut], summary="List messages, newest first")
@paginate(NewestFirst)
def list_messages(request: HttpRequest, filters: Query[MessageFilters]) -> QuerySet[Message]:
    query = Message.objects.select_related("customer")
    if filters.case is not None:
        query = query.filter(case_id=filters.case)
    if filters.customer is not None:
        query = query.filter(customer__external_id=filters.customer)
    if filters.status is not None:
        query = query.filter(status=filters.status)
    if filters.channel is not None:
        query = query.filter(channel=filters.channel)
    return query


@router.get("/{id}", response=MessageOut, summary="Get a message")
def get_message(request: HttpRequest, id: ObjectId) -> Message:
    message = Message.objects.select_related("customer").filter(pk=id).first()
    if message is None:
        raise not_found("message", id)
    return message
