"""The `/api/v1/` NinjaAPI: one router per noun, errors and auth shared."""

from __future__ import annotations

from ninja import NinjaAPI

from dunning import __version__
from dunning.api import errors
from dunning.api.auth import ApiKeyAuth
from dunning.api.customers import router as customers
from dunning.api.events import router as events
from dunning.api.invoices import router as invoices
from dunning.api.payments import attempts_router, methods_router, payments_router

api = NinjaAPI(
    title="dunning",
    version=__version__,
    description=(
        "Record the facts dunning acts on: customers, invoices, payments, payment "
        "attempts and payment methods. Amounts are integer minor units of the "
        "invoice's ISO 4217 currency (JPY 0 decimals, THB 2, KWD 3). Every POST "
        "accepts an `Idempotency-Key` header."
    ),
    auth=ApiKeyAuth(),
    urls_namespace="api",
)
errors.install(api)
api.add_router("/customers", customers)
api.add_router("/invoices", invoices)
api.add_router("/payments", payments_router)
api.add_router("/payment-attempts", attempts_router)
api.add_router("/payment-methods", methods_router)
api.add_router("/events", events)
