"""Stripe event payloads read as ledger facts: parsing only, no database, no clock.

Each function takes the plain JSON of a Stripe object (an event's
`data.object`) and returns a frozen dataclass holding what the ledger keeps.
Writing those facts is `dunning.gateways.webhooks`' job.

Stripe amounts are integers of Stripe's minor unit (2900 is USD 29.00, 1500
is JPY 1,500); they are read into the ledger's ISO 4217 minor units through
`stripe_amounts.from_stripe`, since for a few currencies the two differ (ISK,
MGA).  Currencies arrive lower case and are kept upper case, as ISO 4217 and
the ledger spell them.  Card numbers never reach
Stripe webhooks and nothing here would keep one: a card is brand, last 4,
expiry and issuing country.

Shapes follow API version 2026-06-24.dahlia (the fixtures under
shared/fixtures/external/stripe), with the older fields still read where they
exist (2023-08-16: `invoice.charge`, `invoice.payment_intent`,
`charge.invoice`, `payment_intent.invoice`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from dunning.core import fields
from dunning.core.money import MAX_MINOR_UNITS, MoneyError, exponent
from dunning.gateways.stripe_amounts import StripeAmountError, from_stripe

PROVIDER = "stripe"

Obj = Mapping[str, Any]


class EventFormatError(ValueError):
    """The body is not a Stripe event dunning can read; the message names the field."""


# What the envelope's columns hold (gateways.models.WebhookEvent); Stripe's own
# ids and type names are far shorter.
EVENT_ID_LENGTH, EVENT_TYPE_LENGTH = 255, 128


def to_datetime(value: Any, field: str) -> datetime | None:
    """A Stripe unix timestamp (seconds) as an aware UTC datetime; None stays None.

    Only the ledger's range of dates (dunning.core.fields): a later one would
    overflow when the engine turns it into a customer's local time.
    """
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, int):
        raise EventFormatError(f"{field}: expected a unix timestamp, got {_shown(value)}")
    if not fields.EARLIEST.timestamp() <= value < fields.LATEST.timestamp():
        raise EventFormatError(
            f"{field}: not a time between {fields.EARLIEST.year} and {fields.LATEST.year}"
        )
    return datetime.fromtimestamp(value, tz=UTC)


def _shown(value: Any) -> str:
    """A value for an error message, cut short: a message is no copy of the body."""
    return f"{value!r:.40}"


def _json_type(value: Any) -> str:
    """What a value is, for a message that must not repeat it (an address, a name)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, Mapping) else "null"


def nested(value: Any, field: str) -> Obj:
    """A nested object; null (or left out) is an empty one, anything else is refused."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise EventFormatError(f"{field}: expected an object, got {_json_type(value)}")
    return value


def _objects(value: Any, field: str) -> list[Obj]:
    """A list of objects (a Stripe list's `data`); null is an empty one."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise EventFormatError(f"{field}: expected a list of objects, got {_json_type(value)}")
    return value


def _id(value: Any) -> str:
    """An id field that may be expanded into its object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventFormatError(f"{field}: expected an integer, got {_shown(value)}")
    return value


def _currency(value: Any) -> str:
    code = _str(value).upper()
    try:
        exponent(code)  # one the ledger counts in
    except MoneyError:
        raise EventFormatError(
            f"currency: expected an ISO 4217 code, got {_shown(value)}"
        ) from None
    return code


def ledger_amount(value: Any, currency: str, *, field: str, signed: bool = False) -> int:
    """A Stripe amount of `currency` in the ledger's minor units.

    Only an invoice line is ever negative at Stripe (a discount, a credit);
    an amount the ledger could not store is refused here, not by the database.
    """
    amount = _int(value, field)
    if amount < 0 and not signed:
        raise EventFormatError(f"{field}: must not be negative, got {amount}")
    try:
        amount = from_stripe(amount, currency)
    except StripeAmountError as error:
        raise EventFormatError(f"{field}: {error}") from None
    if abs(amount) > MAX_MINOR_UNITS:
        raise EventFormatError(f"{field}: too large, at most {MAX_MINOR_UNITS} minor units")
    return amount


@dataclass(frozen=True, slots=True)
class StripeEvent:
    id: str
    type: str
    created: datetime
    object: Obj
    previous_attributes: Obj = field(default_factory=dict)
    # The connected account it happened on (Connect endpoints); "" for this account's own.
    account: str = ""
    # Live or test mode; None when the event does not say.
    livemode: bool | None = None

    @property
    def object_id(self) -> str:
        return _str(self.object.get("id"))


def parse_event(body: Any) -> StripeEvent:
    if not isinstance(body, Mapping):
        raise EventFormatError("the body is not a JSON object")
    if body.get("object") != "event":
        raise EventFormatError("object: expected 'event'")
    event_id, event_type = _str(body.get("id")), _str(body.get("type"))
    if not event_id:
        raise EventFormatError("id: missing")
    if not event_type:
        raise EventFormatError("type: missing")
    if len(event_id) > EVENT_ID_LENGTH or len(event_type) > EVENT_TYPE_LENGTH:
        raise EventFormatError("id or type: longer than any Stripe sends")
    created = to_datetime(body.get("created"), "created")
    if created is None:
        raise EventFormatError("created: missing")
    data = body.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("object"), Mapping):
        raise EventFormatError("data.object: missing")
    previous = data.get("previous_attributes")
    return StripeEvent(
        id=event_id,
        type=event_type,
        created=created,
        object=data["object"],
        previous_attributes=previous if isinstance(previous, Mapping) else {},
        account=_str(body.get("account")),
        livemode=body.get("livemode") if isinstance(body.get("livemode"), bool) else None,
    )


# --- customers -----------------------------------------------------------------------------


# The ledger's Customer.name holds 255 characters; Stripe takes 256.
NAME_LENGTH = 255
# How the API reads each detail (dunning.core.fields): Stripe stores some of
# them as sent, e.g. any text in address.country (stripe/stripe-node#1680).
_READERS = {
    "email": fields.normalize_email,
    "locale": fields.normalize_locale,
    "country": fields.normalize_country,
}


def customer_name(value: Any) -> str:
    """A name as the ledger holds it: no NUL, at most NAME_LENGTH characters."""
    return _str(value).replace("\x00", "").strip()[:NAME_LENGTH]


def customer_values(**stated: Any) -> tuple[dict[str, str], tuple[str, ...]]:
    """The customer details Stripe stated, read as the API reads them, and the names
    of those left out because the ledger could not hold them.

    A detail Stripe leaves empty is left out too, so it never erases what dunning
    knows; so is one the API would refuse (an address the email channel cannot
    send to, a country that is no ISO 3166 code, which would also steer the
    contact rules wrong).  The phone is read by the ledger, in the customer's
    country.
    """
    values: dict[str, str] = {}
    left_out: list[str] = []
    for name, raw in stated.items():
        value = customer_name(raw) if name == "name" else _str(raw).strip()
        if not value:
            continue
        read = _READERS.get(name)
        if read is not None:
            try:
                value = read(value)
            except fields.FieldError:
                left_out.append(name)
                continue
        values[name] = value
    return values, tuple(left_out)


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    external_id: str
    # Only what Stripe stated: name, email, phone, locale, country (`customer_values`).
    values: Mapping[str, Any]
    default_payment_method: str = ""
    left_out: tuple[str, ...] = ()  # details stated but not readable


def customer_facts(obj: Obj) -> CustomerFacts:
    external_id = _str(obj.get("id"))
    if not external_id.startswith("cus_"):
        raise EventFormatError("customer.id: expected cus_...")
    locales = obj.get("preferred_locales") or []
    address = nested(obj.get("address"), "address")
    values, left_out = customer_values(
        name=obj.get("name"),
        email=obj.get("email"),
        phone=obj.get("phone"),
        locale=locales[0] if isinstance(locales, list) and locales else "",
        country=address.get("country"),
    )
    settings = nested(obj.get("invoice_settings"), "invoice_settings")
    return CustomerFacts(
        external_id=external_id,
        values=values,
        default_payment_method=_id(settings.get("default_payment_method"))
        or _id(obj.get("default_source")),
        left_out=left_out,
    )


# --- payment methods -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentMethodFacts:
    external_id: str  # pm_... or a legacy card_...
    customer: str
    type: str  # the ledger's PaymentMethodType: card, bank_account, other
    brand: str = ""
    last4: str = ""
    exp_month: int | None = None
    exp_year: int | None = None
    country: str = ""
    name: str = ""  # the cardholder's name, only to name a customer not met before

    def ledger_values(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "brand": self.brand,
            "last4": self.last4,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
            "country": self.country,
        }


def _card(card: Obj, *, external_id: str, customer: str, name: str = "") -> PaymentMethodFacts:
    exp_month, exp_year = card.get("exp_month"), card.get("exp_year")
    return PaymentMethodFacts(
        external_id=external_id,
        customer=customer,
        type="card",
        # Legacy Card objects say "Visa", payment methods "visa": one spelling.
        brand=_str(card.get("brand")).lower().replace(" ", "_"),
        last4=_str(card.get("last4"))[-4:],
        exp_month=exp_month if isinstance(exp_month, int) and 1 <= exp_month <= 12 else None,
        exp_year=exp_year if isinstance(exp_year, int) and exp_year > 0 else None,
        country=_str(card.get("country")).upper()[:2],
        name=name,
    )


def payment_method_facts(obj: Obj) -> PaymentMethodFacts:
    """A PaymentMethod (pm_...) or a legacy source (card_..., ba_...)."""
    external_id = _str(obj.get("id"))
    if not external_id:
        raise EventFormatError("payment method id: missing")
    customer = _id(obj.get("customer"))
    billing = nested(obj.get("billing_details"), "billing_details")
    name = customer_name(billing.get("name")) or customer_name(obj.get("name"))
    if obj.get("object") == "card":  # a legacy Card source: the card fields are top level
        return _card(obj, external_id=external_id, customer=customer, name=name)
    kind = _str(obj.get("type")) or _str(obj.get("object"))
    if kind == "card" and isinstance(obj.get("card"), Mapping):
        return _card(obj["card"], external_id=external_id, customer=customer, name=name)
    if kind in ("bank_account", "us_bank_account", "sepa_debit", "bacs_debit", "au_becs_debit"):
        inner = obj.get(kind)
        details: Obj = inner if isinstance(inner, Mapping) else obj
        return PaymentMethodFacts(
            external_id=external_id,
            customer=customer,
            type="bank_account",
            brand=_str(details.get("bank_name"))[:32],
            last4=_str(details.get("last4"))[-4:],
            country=_str(details.get("country")).upper()[:2],
            name=name,
        )
    return PaymentMethodFacts(
        external_id=external_id, customer=customer, type="other", brand=kind[:32], name=name
    )


# --- invoices ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    description: str
    quantity: int
    amount: int


@dataclass(frozen=True, slots=True)
class InvoiceSnapshot:
    external_id: str
    customer: str
    customer_values: Mapping[str, Any]  # name, email, phone, country as printed on the invoice
    number: str
    status: str  # draft, open, paid, void, uncollectible
    currency: str
    amount_due: int
    amount_paid: int
    amount_remaining: int
    issued_at: datetime
    due_at: datetime
    collection_method: str
    lines: tuple[Line, ...]
    context: Mapping[str, Any]
    next_payment_attempt: datetime | None
    paid_at: datetime | None
    attempt_count: int
    # Payment intents and charges the invoice names (older API versions, or an
    # expanded `payments` list): the references its payments are recorded under.
    payment_refs: tuple[str, ...] = ()
    # The business marked it paid outside Stripe (a bank transfer, cash): Stripe
    # calls it paid with no money of its own behind it.
    paid_out_of_band: bool = False


def invoice_snapshot(obj: Obj) -> InvoiceSnapshot | None:
    """The invoice as the ledger keeps it; None for a preview (`invoice.upcoming` has no id)."""
    external_id = _str(obj.get("id"))
    if not external_id:
        return None
    customer = _id(obj.get("customer"))
    if not customer:
        raise EventFormatError("invoice.customer: missing")
    transitions = nested(obj.get("status_transitions"), "status_transitions")
    created = to_datetime(obj.get("created"), "created")
    if created is None:
        raise EventFormatError("invoice.created: missing")
    # An invoice takes effect when finalized; a charge_automatically invoice has
    # no due_date and is due then (Stripe charges it at once).
    issued_at = (
        to_datetime(obj.get("effective_at"), "effective_at")
        or to_datetime(transitions.get("finalized_at"), "status_transitions.finalized_at")
        or created
    )
    due_at = to_datetime(obj.get("due_date"), "due_date") or issued_at
    currency = _currency(obj.get("currency"))
    items = _objects(nested(obj.get("lines"), "lines").get("data"), "lines.data")
    lines = tuple(
        Line(
            description=_str(line.get("description")),
            quantity=quantity if isinstance(quantity := line.get("quantity"), int) else 1,
            amount=ledger_amount(line.get("amount"), currency, field="lines.amount", signed=True),
        )
        for line in items
    )
    periods = [nested(line.get("period"), "lines.period") for line in items]
    starts = [p["start"] for p in periods if isinstance(p.get("start"), int)]
    ends = [p["end"] for p in periods if isinstance(p.get("end"), int)]
    parent = nested(obj.get("parent"), "parent")
    details = nested(parent.get("subscription_details"), "parent.subscription_details")
    subscription = _id(details.get("subscription")) or _id(obj.get("subscription"))
    context: dict[str, Any] = {
        key: value
        for key, value in {
            "subscription": subscription,
            "billing_reason": _str(obj.get("billing_reason")),
            "period_start": _iso(min(starts, default=None), "lines.period.start"),
            "period_end": _iso(max(ends, default=None), "lines.period.end"),
            "hosted_invoice_url": _str(obj.get("hosted_invoice_url")),
            # Stripe Billing issued it: a retry pays this invoice on Stripe.
            "gateway": "stripe",
        }.items()
        if value
    }
    refs = [_id(obj.get("payment_intent")), _id(obj.get("charge"))]
    for payment in _objects(nested(obj.get("payments"), "payments").get("data"), "payments.data"):
        inner = nested(payment.get("payment"), "payments.payment")
        refs += [_id(inner.get("payment_intent")), _id(inner.get("charge"))]
    address = nested(obj.get("customer_address"), "customer_address")
    stated, _ = customer_values(
        name=obj.get("customer_name"),
        email=obj.get("customer_email"),
        phone=obj.get("customer_phone"),
        country=address.get("country"),
    )
    amount_due = ledger_amount(obj.get("amount_due"), currency, field="amount_due")
    amount_paid = ledger_amount(obj.get("amount_paid"), currency, field="amount_paid")
    remaining = obj.get("amount_remaining")
    return InvoiceSnapshot(
        external_id=external_id,
        customer=customer,
        customer_values=stated,
        number=_str(obj.get("number")) or external_id,
        status=_str(obj.get("status")) or "draft",
        currency=currency,
        amount_due=amount_due,
        amount_paid=amount_paid,
        amount_remaining=(
            amount_due - amount_paid
            if remaining is None
            else ledger_amount(remaining, currency, field="amount_remaining")
        ),
        issued_at=issued_at,
        due_at=due_at,
        collection_method=_str(obj.get("collection_method")) or "charge_automatically",
        lines=lines,
        context=context,
        next_payment_attempt=to_datetime(obj.get("next_payment_attempt"), "next_payment_attempt"),
        paid_at=to_datetime(transitions.get("paid_at"), "status_transitions.paid_at"),
        attempt_count=_int(obj.get("attempt_count") or 0, "attempt_count"),
        payment_refs=tuple(dict.fromkeys(ref for ref in refs if ref)),
        paid_out_of_band=obj.get("paid_out_of_band") is True,
    )


def _iso(value: Any, field: str) -> str:
    moment = to_datetime(value, field)
    return moment.isoformat() if moment else ""


@dataclass(frozen=True, slots=True)
class InvoicePaymentLink:
    """An invoice_payment: which payment intent (or charge) pays which invoice."""

    invoice: str
    payment_intent: str
    charge: str


def invoice_payment_link(obj: Obj) -> InvoicePaymentLink:
    payment = nested(obj.get("payment"), "payment")
    invoice = _id(obj.get("invoice"))
    if not invoice:
        raise EventFormatError("invoice_payment.invoice: missing")
    return InvoicePaymentLink(
        invoice=invoice,
        payment_intent=_id(payment.get("payment_intent")),
        charge=_id(payment.get("charge")),
    )


# --- failed charges ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChargeFailure:
    """One declined charge: the ledger's failed payment attempt."""

    charge: str  # ch_...: the attempt's reference, shared by charge.failed and the PI event
    payment_intent: str
    customer: str
    invoice: str  # named only by older API versions; otherwise found from the payment intent
    amount: int
    currency: str
    attempted_at: datetime
    decline_code: str
    advice_code: str
    network_code: str
    message: str
    payment_method: PaymentMethodFacts | None
    # The charge shows its card on the customer's file (the card object names the
    # customer); a card only tried, never saved, does not.
    on_file: bool = False
    network_advice_code: str = ""  # Mastercard's merchant advice code

    def data(self) -> dict[str, Any]:
        """What an event about this failure keeps (no card details beyond the method id)."""
        return {
            "charge": self.charge,
            "payment_intent": self.payment_intent,
            "invoice": self.invoice,
            "amount": self.amount,
            "currency": self.currency,
            "attempted_at": self.attempted_at.isoformat(),
            "decline_code": self.decline_code,
            "advice_code": self.advice_code,
            "network_code": self.network_code,
            "network_advice_code": self.network_advice_code,
            "payment_method": self.payment_method.external_id if self.payment_method else "",
        }


def charge_failure(obj: Obj) -> ChargeFailure:
    """From a failed Charge: the decline is in `outcome` (reason, advice and network codes)."""
    charge = _str(obj.get("id"))
    if not charge:
        raise EventFormatError("charge.id: missing")
    outcome = nested(obj.get("outcome"), "outcome")
    customer = _id(obj.get("customer"))
    method = None
    details = nested(obj.get("payment_method_details"), "payment_method_details")
    method_id = _id(obj.get("payment_method")) or _id(obj.get("source"))
    billing_name = customer_name(nested(obj.get("billing_details"), "billing_details").get("name"))
    source = obj.get("source")
    on_file = (
        isinstance(source, Mapping) and bool(customer) and _id(source.get("customer")) == customer
    )
    if method_id and isinstance(details.get("card"), Mapping):
        method = _card(details["card"], external_id=method_id, customer=customer, name=billing_name)
    elif isinstance(source, Mapping):
        method = payment_method_facts({**source, "customer": customer})
    created = to_datetime(obj.get("created"), "created")
    if created is None:
        raise EventFormatError("charge.created: missing")
    currency = _currency(obj.get("currency"))
    return ChargeFailure(
        charge=charge,
        payment_intent=_id(obj.get("payment_intent")),
        customer=customer,
        invoice=_id(obj.get("invoice")),
        amount=ledger_amount(obj.get("amount"), currency, field="amount"),
        currency=currency,
        attempted_at=created,
        decline_code=_str(outcome.get("reason")) or _str(obj.get("failure_code")),
        advice_code=_str(outcome.get("advice_code")),
        network_code=_str(outcome.get("network_decline_code")),
        network_advice_code=_str(outcome.get("network_advice_code")),
        message=_str(obj.get("failure_message")),
        payment_method=method,
        on_file=on_file,
    )


def refused_by_the_card(error: Mapping[str, Any]) -> bool:
    """Whether a PaymentIntent's `last_payment_error` is a decline of the card: a
    `card_error`.  Another type is no decline and counts toward no network cap: a
    customer who failed or left 3-D Secure on the bank's page
    (`payment_intent_authentication_failure`, an `invalid_request_error`) was never
    sent to the issuer for authorisation."""
    return bool(error) and str(error.get("type") or "card_error") == "card_error"


def payment_intent_failure(obj: Obj, *, occurred_at: datetime) -> ChargeFailure | None:
    """From a PaymentIntent's `last_payment_error`; None when there is none, or when it is
    no decline of the card (`refused_by_the_card`)."""
    error = obj.get("last_payment_error")
    if not isinstance(error, Mapping) or not refused_by_the_card(error):
        return None
    intent = _str(obj.get("id"))
    customer = _id(obj.get("customer"))
    method_obj = error.get("payment_method") or error.get("source")
    method = None
    on_file = False
    if isinstance(method_obj, Mapping):
        method = payment_method_facts(method_obj)
        on_file = bool(customer) and method.customer == customer
        if not method.customer:
            method = replace(method, customer=customer)
    charge = _id(error.get("charge")) or _id(obj.get("latest_charge"))
    currency = _currency(obj.get("currency"))
    return ChargeFailure(
        # Without a charge (e.g. authentication required before any charge) the
        # payment intent itself is the attempt's reference.
        charge=charge or intent,
        payment_intent=intent,
        customer=customer,
        invoice=_id(obj.get("invoice")),
        amount=ledger_amount(obj.get("amount"), currency, field="amount"),
        currency=currency,
        attempted_at=occurred_at,
        decline_code=_str(error.get("decline_code")) or _str(error.get("code")),
        advice_code=_str(error.get("advice_code")),
        network_code=_str(error.get("network_decline_code")),
        network_advice_code=_str(error.get("network_advice_code")),
        message=_str(error.get("message")),
        payment_method=method,
        on_file=on_file,
    )


# --- notices: facts with no ledger noun ---------------------------------------------------


def dispute_data(obj: Obj) -> dict[str, Any]:
    evidence = nested(obj.get("evidence_details"), "evidence_details")
    currency = _currency(obj.get("currency"))
    return {
        "dispute": _str(obj.get("id")),
        "charge": _id(obj.get("charge")),
        "payment_intent": _id(obj.get("payment_intent")),
        "amount": ledger_amount(obj.get("amount"), currency, field="amount"),
        "currency": currency,
        "reason": _str(obj.get("reason")),
        "status": _str(obj.get("status")),
        "evidence_due_by": _iso(evidence.get("due_by"), "evidence_details.due_by"),
    }


def subscription_data(obj: Obj, previous: Obj) -> dict[str, Any]:
    data = {
        "subscription": _str(obj.get("id")),
        "status": _str(obj.get("status")),
        "latest_invoice": _id(obj.get("latest_invoice")),
        "cancel_at": _iso(obj.get("cancel_at"), "cancel_at"),
        "canceled_at": _iso(obj.get("canceled_at"), "canceled_at"),
        "ended_at": _iso(obj.get("ended_at"), "ended_at"),
    }
    if "status" in previous:
        data["previous_status"] = _str(previous.get("status"))
    return data
