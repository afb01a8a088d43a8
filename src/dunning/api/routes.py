"""The `/api/v1/` NinjaAPI: one router per noun, errors and auth shared."""

from __future__ import annotations

from typing import Any

from ninja import NinjaAPI

from dunning import __version__
from dunning.api import errors
from dunning.api.auth import ApiKeyAuth
from dunning.api.cases import router as cases_router
from dunning.api.customers import router as customers
from dunning.api.events import router as events
from dunning.api.invoices import router as invoices
from dunning.api.messages import router as messages_router
from dunning.api.payments import attempts_router, methods_router, payments_router
from dunning.api.policies import router as policies_router
from dunning.api.templates import router as templates_router

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        }
    },
}
ERRORS = {
    "400": "The body is not JSON, or the Idempotency-Key is malformed.",
    "401": "No API key, or an unknown or revoked one.",
    "404": "No such object, or the request names one that does not exist.",
    "409": "The request collides with what is recorded, or reuses an Idempotency-Key.",
    "413": "The body is too large.",
    "422": "A field is malformed or contradicts the ledger; `fields` names each one.",
}


class DunningAPI(NinjaAPI):
    """Adds the one error shape to every operation of the OpenAPI document."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for operations in schema["paths"].values():
            for method, operation in operations.items():
                wanted = (
                    ERRORS
                    if method == "post"
                    else {
                        code: text for code, text in ERRORS.items() if code in ("401", "404", "422")
                    }
                )
                for code, text in wanted.items():
                    operation["responses"].setdefault(
                        code, {"description": text, "content": reference}
                    )
        return schema


api = DunningAPI(
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
api.add_router("/cases", cases_router)
api.add_router("/messages", messages_router)
api.add_router("/policies", policies_router)
api.add_router("/templates", templates_router)
