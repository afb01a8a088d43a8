from typing import Literal

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from dunning.api.common import SOURCE, NewestFirst, ObjectId, not_found, now
from dunning.api.schemas import (
    ExternalId,
    PaymentAttemptIn,
    PaymentAttemptOut,
    PaymentIn,
    PaymentMethodIn,
    PaymentMethodOut,
    PaymentOut,
)
from dunning.ledger import services
from dunning.ledger.models import Payment, PaymentAttempt, PaymentMethod

payments_router = Router(tags=["payments"])
attempts_router = Router(tags=["payment attempts"])
methods_router = Router(tags=["payment methods"])


class ByInvoiceAndCustomer(Schema):
    invoice: ExternalId | None = Field(None, description="the invoice's external_id")
    customer: ExternalId | None = Field(None, description="the customer's external_id")


class AttemptFilters(ByInvoiceAndCustomer):
    outcome: Literal["succeeded", "failed"] | None = None


# --- payments ----------------------------------------------------------------------------


@payments_router.post("", response={201: PaymentOut}, summary="Record a payment")
def record_payment(request: HttpRequest, payload: PaymentIn) -> Status[Payment]:
    """Applies money received to an invoice and reduces its `amount_remaining`.

    Partial payments are fine; the invoice becomes `paid` when nothing remains.
    A second payment with the same `reference` on the same invoice is refused
    (409), so a re-sent notification is not counted twice.
    """
    payment = services.record_payment(
        invoice=payload.invoice,
        amount=payload.amount,
        currency=payload.currency,
        received_at=payload.received_at,
        method=payload.method,
        reference=payload.reference,
        now=now(request),
        source=SOURCE,
    )
    return Status(201, payment)


@payments_router.get("", response=list[PaymentOut], summary="List payments, newest first")
@paginate(NewestFirst)
def list_payments(request: HttpRequest, filters: Query[ByInvoiceAndCustomer]) -> QuerySet[Payment]:
    query = Payment.objects.select_related("invoice", "customer")
    if filters.invoice is not None:
        query = query.filter(invoice__external_id=filters.invoice)
    if filters.customer is not None:
        query = query.filter(customer__external_id=filters.customer)
    return query


@payments_router.get("/{id}", response=PaymentOut, summary="Get a payment")
def get_payment(request: HttpRequest, id: ObjectId) -> Payment:
    payment = Payment.objects.select_related("invoice", "customer").filter(pk=id).first()
    if payment is None:
        raise not_found("payment", id)
    return payment


# --- payment attempts --------------------------------------------------------------------


@attempts_router.post("", response={201: PaymentAttemptOut}, summary="Record a payment attempt")
def record_attempt(request: HttpRequest, payload: PaymentAttemptIn) -> Status[PaymentAttempt]:
    """Records one try to charge an invoice, with the processor's decline and advice codes.

    A `succeeded` attempt also records the payment (for `amount`, by default
    what remains), so do not post the same money to `/payments` as well.
    """
    attempt = services.record_payment_attempt(
        invoice=payload.invoice,
        attempted_at=payload.attempted_at,
        outcome=payload.outcome,
        amount=payload.amount,
        decline_code=payload.decline_code,
        advice_code=payload.advice_code,
        network_code=payload.network_code,
        network_advice_code=payload.network_advice_code,
        gateway=payload.gateway,
        reference=payload.reference,
        payment_method=payload.payment_method,
        now=now(request),
        source=SOURCE,
    )
    return Status(201, attempt)


@attempts_router.get(
    "", response=list[PaymentAttemptOut], summary="List payment attempts, newest first"
)
@paginate(NewestFirst)
def list_attempts(request: HttpRequest, filters: Query[AttemptFilters]) -> QuerySet[PaymentAttempt]:
    query = PaymentAttempt.objects.select_related("invoice", "customer", "payment_method")
    if filters.invoice is not None:
        query = query.filter(invoice__external_id=filters.invoice)
    if filters.customer is not None:
        query = query.filter(customer__external_id=filters.customer)
    if filters.outcome is not None:
        query = query.filter(outcome=filters.outcome)
    return query


@attempts_router.get("/{id}", response=PaymentAttemptOut, summary="Get a payment attempt")
def get_attempt(request: HttpRequest, id: ObjectId) -> PaymentAttempt:
    attempt = (
        PaymentAttempt.objects.select_related("invoice", "customer", "payment_method")
        .filter(pk=id)
        .first()
    )
    if attempt is None:
        raise not_found("payment attempt", id)
    return attempt


# --- payment methods ---------------------------------------------------------------------


@methods_router.post(
    "", response={200: PaymentMethodOut, 201: PaymentMethodOut}, summary="Save a payment method"
)
def upsert_method(request: HttpRequest, payload: PaymentMethodIn) -> Status[PaymentMethod]:
    """Creates (201) or updates (200) a saved payment method: brand, last 4 digits, expiry."""
    values = payload.model_dump(exclude={"external_id", "customer"})
    values["last4"] = values["last4"] or ""
    method, created = services.upsert_payment_method(
        external_id=payload.external_id,
        customer=payload.customer,
        now=now(request),
        source=SOURCE,
        **values,
    )
    return Status(201 if created else 200, method)


@methods_router.get(
    "", response=list[PaymentMethodOut], summary="List payment methods, newest first"
)
@paginate(NewestFirst)
def list_methods(
    request: HttpRequest, customer: ExternalId | None = None
) -> QuerySet[PaymentMethod]:
    query = PaymentMethod.objects.select_related("customer")
    if customer is not None:
        query = query.filter(customer__external_id=customer)
    return query


@methods_router.get("/{id}", response=PaymentMethodOut, summary="Get a payment method")
def get_method(request: HttpRequest, id: ObjectId) -> PaymentMethod:
    method = PaymentMethod.objects.select_related("customer").filter(pk=id).first()
    if method is None:
        raise not_found("payment method", id)
    return method
