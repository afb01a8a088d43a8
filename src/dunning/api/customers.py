from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from dunning.api.common import SOURCE, NewestFirst, ObjectId, not_found, now
from dunning.api.schemas import CustomerIn, CustomerOut, ExternalId, Name, ShortText
from dunning.ledger import services
from dunning.ledger.models import Customer

router = Router(tags=["customers"])


class CustomerFilters(Schema):
    external_id: ExternalId | None = None
    # Text that PostgreSQL can compare: a NUL in a filter is a 422, not a 500.
    email: Name | None = Field(None, max_length=254)
    country: ShortText | None = Field(None, max_length=2)


@router.post(
    "", response={200: CustomerOut, 201: CustomerOut}, summary="Create or update a customer"
)
def upsert_customer(request: HttpRequest, payload: CustomerIn) -> Status[Customer]:
    """Creates the customer with this `external_id`, or updates the fields sent.

    Answers 201 when it created the customer and 200 when it updated one.
    Without a `time_zone`, a new customer takes its country's time zone when
    the country has only one (TH: Asia/Bangkok); otherwise UTC.
    """
    values = payload.model_dump(exclude_unset=True, exclude={"external_id"})
    values = {name: value for name, value in values.items() if value is not None}
    customer, created = services.upsert_customer(
        external_id=payload.external_id, now=now(request), source=SOURCE, **values
    )
    return Status(201 if created else 200, customer)


@router.get("", response=list[CustomerOut], summary="List customers, newest first")
@paginate(NewestFirst)
def list_customers(request: HttpRequest, filters: Query[CustomerFilters]) -> QuerySet[Customer]:
    query = Customer.objects.all()
    if filters.external_id is not None:
        query = query.filter(external_id=filters.external_id)
    if filters.email is not None:
        query = query.filter(email__iexact=filters.email)
    if filters.country is not None:
        query = query.filter(country=filters.country.upper())
    return query


@router.get("/{id}", response=CustomerOut, summary="Get a customer")
def get_customer(request: HttpRequest, id: ObjectId) -> Customer:
    customer = Customer.objects.filter(pk=id).first()
    if customer is None:
        raise not_found("customer", id)
    return customer
