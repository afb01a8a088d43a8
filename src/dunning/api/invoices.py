from typing import Literal

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from dunning.api.common import SOURCE, NewestFirst, ObjectId, not_found, now
from dunning.api.schemas import Currency, ExternalId, InvoiceIn, InvoiceOut, StatusChangeIn
from dunning.ledger import selectors, services
from dunning.ledger.models import Invoice, InvoiceStatus

router = Router(tags=["invoices"])


class InvoiceFilters(Schema):
    external_id: ExternalId | None = None
    customer: ExternalId | None = Field(None, description="the customer's external_id")
    status: Literal["draft", "open", "paid", "void", "uncollectible"] | None = None
    overdue: bool | None = Field(None, description="open, past due, with money remaining")
    currency: Currency | None = None
    collection_method: Literal["charge_automatically", "send_invoice"] | None = None


@router.post("", response={200: InvoiceOut, 201: InvoiceOut}, summary="Create or update an invoice")
def upsert_invoice(request: HttpRequest, payload: InvoiceIn) -> Status[Invoice]:
    """Creates the invoice (201), or updates the one with this `external_id` (200).

    An update may change the number, dates, lines, context, collection method
    and the amount due (never below what is paid); never the customer or currency.
    """
    facts = services.InvoiceFacts(
        external_id=payload.external_id,
        customer=payload.customer,
        number=payload.number,
        currency=payload.currency,
        amount_due=payload.amount_due,
        issued_at=payload.issued_at,
        due_at=payload.due_at or payload.issued_at,
        collection_method=payload.collection_method,
        status=payload.status,
        lines=[
            services.InvoiceLine(ln.description, ln.quantity, ln.amount) for ln in payload.lines
        ],
        context=payload.context,
    )
    invoice, created = services.upsert_invoice(facts=facts, now=now(request), source=SOURCE)
    return Status(201 if created else 200, invoice)


@router.get("", response=list[InvoiceOut], summary="List invoices, newest first")
@paginate(NewestFirst)
def list_invoices(request: HttpRequest, filters: Query[InvoiceFilters]) -> QuerySet[Invoice]:
    query = Invoice.objects.select_related("customer")
    if filters.overdue is True:
        query = selectors.overdue_invoices(now=now(request)).select_related("customer")
    elif filters.overdue is False:
        query = selectors.not_overdue_invoices(now=now(request)).select_related("customer")
    if filters.external_id is not None:
        query = query.filter(external_id=filters.external_id)
    if filters.customer is not None:
        query = query.filter(customer__external_id=filters.customer)
    if filters.status is not None:
        query = query.filter(status=filters.status)
    if filters.currency is not None:
        query = query.filter(currency=filters.currency)
    if filters.collection_method is not None:
        query = query.filter(collection_method=filters.collection_method)
    return query


@router.get("/{id}", response=InvoiceOut, summary="Get an invoice")
def get_invoice(request: HttpRequest, id: ObjectId) -> Invoice:
    invoice = Invoice.objects.select_related("customer").filter(pk=id).first()
    if invoice is None:
        raise not_found("invoice", id)
    return invoice


@router.post("/{id}/void", response=InvoiceOut, summary="Void an invoice")
def void_invoice(request: HttpRequest, id: ObjectId, payload: StatusChangeIn) -> Invoice:
    return _change_status(request, id, InvoiceStatus.VOID, payload.reason)


@router.post(
    "/{id}/mark-uncollectible", response=InvoiceOut, summary="Mark an invoice uncollectible"
)
def mark_uncollectible(request: HttpRequest, id: ObjectId, payload: StatusChangeIn) -> Invoice:
    return _change_status(request, id, InvoiceStatus.UNCOLLECTIBLE, payload.reason)


def _change_status(request: HttpRequest, id: int, status: str, reason: str) -> Invoice:
    external_id = Invoice.objects.filter(pk=id).values_list("external_id", flat=True).first()
    if external_id is None:
        raise not_found("invoice", id)
    return services.change_invoice_status(
        invoice=external_id, status=status, now=now(request), source=SOURCE, reason=reason
    )
