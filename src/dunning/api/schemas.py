"""Request and response shapes.  Field names here are the public contract."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt

from dunning.core import fields, money

MAX_AMOUNT = money.MAX_MINOR_UNITS


def _text(max_length: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        return fields.check_text(value, max_length=max_length)

    return check


def _json_safe(value: Any, depth: int = 0) -> Any:
    """Metadata and context: JSON that PostgreSQL's jsonb can store (no NUL), not too deep."""
    if depth > 8:
        raise ValueError("nested too deeply (8 levels at most)")
    if isinstance(value, str):
        return fields.check_text(value, max_length=10_000)
    if isinstance(value, dict):
        return {_json_safe(k, depth + 1): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v, depth + 1) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        raise ValueError("integers in metadata must fit in 53 bits")
    if isinstance(value, float) and not math.isfinite(value):
        # json.loads reads NaN, Infinity and 1e400 (inf); no database stores them as JSON.
        raise ValueError("numbers must be finite")
    return value


def _size_limited(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > 50:
        raise ValueError("50 keys at most")
    return value


ExternalId = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_text(255))]
Name = Annotated[str, Field(max_length=255), AfterValidator(_text(255))]
ShortText = Annotated[str, Field(max_length=64), AfterValidator(_text(64))]
Reference = Annotated[str, Field(max_length=255), AfterValidator(_text(255))]
Currency = Annotated[str, Field(examples=["THB"]), AfterValidator(money.normalize_currency)]
Amount = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT, description="integer minor units")]
PositiveAmount = Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT, description="integer minor units")]
LineAmount = Annotated[
    StrictInt,
    Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT, description="minor units; negative for a discount"),
]
Instant = Annotated[
    datetime,
    BeforeValidator(fields.parse_instant),
    Field(
        description="ISO 8601 with a UTC offset, or a date (midnight UTC)",
        examples=["2026-03-15T09:30:00+07:00"],
    ),
]
Metadata = Annotated[dict[str, Any], AfterValidator(_size_limited), AfterValidator(_json_safe)]
Email = Annotated[str, AfterValidator(lambda v: fields.normalize_email(v) if v else "")]
Locale = Annotated[str, Field(examples=["th-TH"]), AfterValidator(fields.normalize_locale)]
TimeZone = Annotated[
    str, Field(examples=["Asia/Bangkok"]), AfterValidator(fields.normalize_time_zone)
]
Country = Annotated[
    str, Field(examples=["TH"]), AfterValidator(lambda v: fields.normalize_country(v) if v else "")
]


class Input(Schema):
    # Unknown fields are refused: a typo in a money field must not pass silently.
    model_config = ConfigDict(extra="forbid")


# --- customers ---------------------------------------------------------------------------


class CustomerIn(Input):
    external_id: ExternalId
    name: Name | None = None
    email: Email | None = None
    phone: Annotated[str, Field(max_length=40), AfterValidator(_text(40))] | None = None
    locale: Locale | None = None
    time_zone: TimeZone | None = None
    country: Country | None = None
    is_business: StrictBool | None = None
    metadata: Metadata | None = None


def _external_id_of(name: str) -> Callable[[Any], str | None]:
    def resolve(obj: Any) -> str | None:
        related = getattr(obj, name)
        return None if related is None else related.external_id

    return staticmethod(resolve)  # type: ignore[return-value]


class CustomerOut(Schema):
    id: int
    external_id: str
    name: str
    email: str
    phone: str
    locale: str
    time_zone: str
    country: str
    is_business: bool
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


# --- invoices ----------------------------------------------------------------------------


class LineIn(Input):
    description: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_text(500))]
    quantity: Annotated[StrictInt, Field(ge=1, le=1_000_000)] = 1
    amount: LineAmount


class LineOut(Schema):
    description: str
    quantity: int
    amount: int


class InvoiceIn(Input):
    external_id: ExternalId
    customer: ExternalId = Field(description="the customer's external_id")
    number: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_text(64))]
    currency: Currency
    amount_due: Amount
    issued_at: Instant
    due_at: Instant | None = Field(
        default=None, description="defaults to issued_at (due on issue, as for automatic charges)"
    )
    collection_method: Literal["charge_automatically", "send_invoice"] = "send_invoice"
    status: Literal["draft", "open"] = "open"
    lines: Annotated[list[LineIn], Field(max_length=500)] = []
    context: Metadata = {}


class InvoiceOut(Schema):
    id: int
    external_id: str
    customer: str
    resolve_customer = _external_id_of("customer")
    number: str
    currency: str
    amount_due: int
    amount_paid: int
    amount_remaining: int
    issued_at: datetime
    due_at: datetime
    status: str
    collection_method: str
    lines: list[LineOut]
    context: dict[str, Any]
    paid_at: datetime | None
    created_at: datetime
    updated_at: datetime


class StatusChangeIn(Input):
    reason: Annotated[str, Field(max_length=500), AfterValidator(_text(500))] = ""


# --- payments ----------------------------------------------------------------------------


class PaymentIn(Input):
    invoice: ExternalId = Field(description="the invoice's external_id")
    amount: PositiveAmount
    currency: Currency
    received_at: Instant
    # Payment.method is a 32-character column: a longer value is a 422 here, not a
    # DataError on PostgreSQL (SQLite does not enforce the length).
    method: Annotated[str, Field(max_length=32), AfterValidator(_text(32))] = Field(
        examples=["bank_transfer", "card", "promptpay", "cash"]
    )
    reference: Reference = ""


class PaymentOut(Schema):
    id: int
    invoice: str
    customer: str
    resolve_invoice = _external_id_of("invoice")
    resolve_customer = _external_id_of("customer")
    amount: int
    currency: str
    received_at: datetime
    method: str
    reference: str
    attempt: int | None = Field(None, alias="attempt_id")
    created_at: datetime


class PaymentAttemptIn(Input):
    invoice: ExternalId = Field(description="the invoice's external_id")
    attempted_at: Instant
    outcome: Literal["succeeded", "failed"]
    amount: PositiveAmount | None = Field(default=None, description="defaults to what remains")
    decline_code: ShortText = ""
    advice_code: ShortText = ""
    network_code: ShortText = ""
    network_advice_code: ShortText = Field(
        default="", description="Mastercard's merchant advice code (Stripe's network_advice_code)"
    )
    gateway: Annotated[str, Field(max_length=32), AfterValidator(_text(32))] = ""
    reference: Reference = ""
    payment_method: ExternalId | None = Field(default=None, description="its external_id")


class PaymentAttemptOut(Schema):
    id: int
    invoice: str
    customer: str
    payment_method: str | None
    resolve_invoice = _external_id_of("invoice")
    resolve_customer = _external_id_of("customer")
    resolve_payment_method = _external_id_of("payment_method")
    attempted_at: datetime
    outcome: str
    amount: int
    currency: str
    decline_code: str
    advice_code: str
    network_code: str
    network_advice_code: str
    gateway: str
    reference: str
    created_at: datetime


# --- payment methods ---------------------------------------------------------------------


class PaymentMethodIn(Input):
    external_id: ExternalId
    customer: ExternalId = Field(description="the customer's external_id")
    type: Literal["card", "bank_account", "promptpay", "other"]
    brand: Annotated[str, Field(max_length=32), AfterValidator(_text(32))] = ""
    last4: Annotated[str, Field(pattern=r"^\d{4}$")] | None = Field(
        default=None, description="the last four digits only; a full card number is refused"
    )
    exp_month: Annotated[StrictInt, Field(ge=1, le=12)] | None = None
    exp_year: Annotated[StrictInt, Field(ge=2000, le=2200)] | None = None
    country: Country = ""
    is_default: StrictBool = False


class PaymentMethodOut(Schema):
    id: int
    external_id: str
    customer: str
    resolve_customer = _external_id_of("customer")
    type: str
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None
    country: str
    is_default: bool
    # Off the customer's file at the gateway since then (never charged or offered).
    detached_at: datetime | None
    created_at: datetime
    updated_at: datetime


# --- events ------------------------------------------------------------------------------


class EventOut(Schema):
    id: int
    type: str
    occurred_at: datetime
    recorded_at: datetime
    source: str
    customer: str | None
    invoice: str | None
    data: dict[str, Any]
    resolve_customer = _external_id_of("customer")
    resolve_invoice = _external_id_of("invoice")
