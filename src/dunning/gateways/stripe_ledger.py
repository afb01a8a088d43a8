"""Stripe events written into the ledger, through the ledger's services only.

`apply_event` takes one verified, parsed event and records its facts; every
write goes through `dunning.ledger.services`, so each leaves an Event behind
and money arriving wakes the engine (the `invoices_changed` signal).  Facts
with no ledger noun (disputes, subscription changes, an expiring card, an
invoice about to fall due) are recorded as Events of type `stripe.<type>`.

Out of order.  Stripe does not promise delivery order, and each event carries
a snapshot of its object as it was at the event's `created` time.  For every
object whose snapshot is applied (invoice, customer, payment method)
`GatewayObject.last_event_created` keeps the `created` time of the newest
event applied; a snapshot older than that is not applied (outcome `stale`).
Stripe's `created` has one-second resolution, so two events of one second are
both applied, and the ledger's own rules keep that safe: money is only ever
added (the payment recorded is what Stripe's `amount_paid` has over the
ledger's), and a paid or void invoice never goes back to open.  So an old
`invoice.payment_failed` arriving after `invoice.paid` neither reopens nor
unpays the invoice, nor sets a gateway retry on it.

Settled at Stripe.  An invoice Stripe calls paid (or owing nothing) with less
received through Stripe than the ledger holds (marked paid outside Stripe, a
credit) is settled in the ledger by one payment of what remains, its method
`stripe_out_of_band` or `stripe_settled`, with an event keeping Stripe's
figures: the case closes and nothing more is charged or sent for it.

Cards.  Only a card on the customer's file is charged or offered.
payment_method.attached and customer.source.* put a card on file;
payment_method.detached and customer.source.deleted take it off
(`PaymentMethod.detached_at`), keeping it and its attempts as history.  A
card first met on a declined charge is kept for the networks' caps but off
file, unless the decline shows it on the customer (a PaymentIntent's card
names them) or the customer names it their default.  The default a
customer.* event names is remembered (`GatewayObject.default_payment_method`),
so a card whose payment_method.attached arrives after it still becomes it.

Declined charges.  The ledger's failed attempt is keyed by the charge id, which
both `charge.failed` and `payment_intent.payment_failed` carry: whichever
arrives first records the attempt (with decline, advice and network codes and
the card), the other finds it and changes nothing.  Current API versions no
longer name the invoice on a charge or payment intent, so the invoice is found
from, in order: the object's own `invoice` field (older API versions); the
invoice this payment intent was seen paying or failing before; the customer's
single open, automatically charged invoice of that amount and currency.  A
failure that fits no invoice yet is recorded as a `stripe.charge.failed` (or
`stripe.payment_intent.payment_failed`) event with `matched: false`, and the
next event about a fitting invoice turns it into the attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q

from dunning.gateways.models import GatewayObject, WebhookOutcome
from dunning.gateways.stripe_events import (
    PROVIDER,
    ChargeFailure,
    EventFormatError,
    InvoiceSnapshot,
    PaymentMethodFacts,
    StripeEvent,
    charge_failure,
    customer_facts,
    dispute_data,
    invoice_payment_link,
    invoice_snapshot,
    ledger_amount,
    nested,
    payment_intent_failure,
    payment_method_facts,
    subscription_data,
)
from dunning.gateways.stripe_gateway import (
    CARD_SETUP_METADATA_KEY,
    INVOICE_METADATA_KEY,
    stripe_id,
)
from dunning.ledger import services
from dunning.ledger.errors import LedgerError
from dunning.ledger.models import (
    AttemptOutcome,
    CollectionMethod,
    Customer,
    Event,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAttempt,
    PaymentMethod,
)

logger = logging.getLogger(__name__)

SOURCE = "stripe"
TERMINAL = (InvoiceStatus.PAID, InvoiceStatus.VOID)
OWING = (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)
UNMATCHED_FAILURE_TYPES = ("stripe.charge.failed", "stripe.payment_intent.payment_failed")
# Payment methods of what settles an invoice Stripe calls paid with less received
# through Stripe: marked paid outside Stripe, or nothing left to pay at Stripe.
OUT_OF_BAND = "stripe_out_of_band"
SETTLED_AT_STRIPE = "stripe_settled"


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: str
    notes: str = ""


def _charging_live() -> bool | None:
    """Whether dunning's Stripe key is a live one (secret or restricted); None when no
    key says (the manual gateway, a key of another form)."""
    key = settings.DUNNING_STRIPE_API_KEY
    if key.startswith(("sk_live_", "rk_live_")):
        return True
    if key.startswith(("sk_test_", "rk_test_")):
        return False
    return None


def apply_event(event: StripeEvent, *, now: datetime) -> Applied:
    """Record `event`'s facts in the ledger; raises LedgerError when the ledger refuses one."""
    handler = HANDLERS.get(event.type)
    if handler is None:
        return Applied(WebhookOutcome.IGNORED, "dunning does not use this event type")
    if event.account:
        # A Connect endpoint's event: its customers, invoices and cards live on
        # the connected account, which dunning neither charges nor speaks for.
        logger.warning(
            "stripe %s (%s) of connected account %s ignored: dunning collects for its "
            "own Stripe account only; is this URL set as a Connect endpoint?",
            event.id,
            event.type,
            event.account,
        )
        return Applied(WebhookOutcome.IGNORED, f"an event of connected account {event.account}")
    live = _charging_live()
    if event.livemode is not None and live is not None and event.livemode != live:
        # A test endpoint's secret beside the live one (or the other way round):
        # its customers and invoices are not the ones dunning charges.
        mode = "live" if event.livemode else "test"
        logger.warning(
            "stripe %s (%s) in %s mode ignored: dunning charges in %s mode "
            "(DUNNING_STRIPE_API_KEY); is the other mode's secret in "
            "DUNNING_STRIPE_WEBHOOK_SECRET?",
            event.id,
            event.type,
            mode,
            "live" if live else "test",
        )
        return Applied(WebhookOutcome.IGNORED, f"an event in {mode} mode")
    kinds = next(kinds for prefix, kinds in OBJECTS if event.type.startswith(prefix))
    if event.object.get("object") not in kinds:
        # Each handler reads its own kind of object; read as another, an
        # invoice would become a card (it has an id and a customer).
        raise EventFormatError(
            f"data.object.object: expected {' or '.join(kinds)} for {event.type}, "
            f"got {str(event.object.get('object'))[:40]!r}"
        )
    return handler(event, now)


# --- per-object ordering -------------------------------------------------------------------


def _is_newest(event: StripeEvent, *, object_id: str, type: str, now: datetime) -> bool:
    """True, and remembered, when `event` is not older than the last one applied to the object."""
    record, _ = GatewayObject.objects.select_for_update().get_or_create(
        provider=PROVIDER, object_id=object_id, defaults={"type": type, "updated_at": now}
    )
    if record.last_event_created and event.created < record.last_event_created:
        return False
    record.last_event_created, record.last_event_id, record.updated_at = (
        event.created,
        event.id,
        now,
    )
    record.save(update_fields=["last_event_created", "last_event_id", "updated_at"])
    return True


def _link_payment_intent(payment_intent: str, *, invoice: str, now: datetime) -> None:
    if not payment_intent:
        return
    GatewayObject.objects.update_or_create(
        provider=PROVIDER,
        object_id=payment_intent,
        defaults={"invoice": invoice, "updated_at": now},
        create_defaults={"type": "payment_intent", "invoice": invoice, "updated_at": now},
    )


def _linked_invoice(payment_intent: str) -> str:
    if not payment_intent:
        return ""
    return (
        GatewayObject.objects.filter(provider=PROVIDER, object_id=payment_intent)
        .values_list("invoice", flat=True)
        .first()
        or ""
    )


# --- customers -----------------------------------------------------------------------------


def _ensure_customer(
    external_id: str, *, now: datetime, values: dict[str, Any] | None = None, name: str = ""
) -> Customer:
    """The customer, created from what this event knows when dunning has not met it yet.

    Stripe often speaks of a customer (on an invoice, a card, a subscription)
    before any customer.* event: the new customer is named from the event, or
    by its id until a later event says its name.
    """
    values = dict(values or {})
    customer = Customer.objects.filter(external_id=external_id).first()
    if customer is not None:
        # Fill what dunning does not know yet; never overwrite what it does
        # (customer.* events are the ones that change a customer's details).
        gaps = {
            name: value
            for name, value in values.items()
            if value and (not getattr(customer, name) or getattr(customer, name) == external_id)
        }
        if gaps:
            customer = _upsert_customer(external_id, gaps, now=now)
        return customer
    values["name"] = values.get("name") or name or values.get("email") or external_id
    return _upsert_customer(external_id, values, now=now)


def _upsert_customer(external_id: str, values: dict[str, Any], *, now: datetime) -> Customer:
    try:
        customer, _ = services.upsert_customer(
            external_id=external_id, now=now, source=SOURCE, **values
        )
    except LedgerError as error:
        if error.field != "phone":
            raise
        # A number dunning cannot read is no reason to lose the customer.
        values.pop("phone")
        customer, _ = services.upsert_customer(
            external_id=external_id, now=now, source=SOURCE, **values
        )
    return customer


def _on_customer(event: StripeEvent, now: datetime) -> Applied:
    facts = customer_facts(event.object)
    if not _is_newest(event, object_id=facts.external_id, type="customer", now=now):
        return Applied(WebhookOutcome.STALE, "an event newer than this one was applied")
    values = dict(facts.values)
    exists = Customer.objects.filter(external_id=facts.external_id).exists()
    if not exists:
        values["name"] = values.get("name") or values.get("email") or facts.external_id
    customer = _upsert_customer(facts.external_id, values, now=now)
    # Remembered even when the card is not known yet: its payment_method.attached
    # may come later, and then makes it the default (`_apply_remembered_default`).
    GatewayObject.objects.filter(provider=PROVIDER, object_id=facts.external_id).update(
        default_payment_method=facts.default_payment_method
    )
    notes = []
    if facts.left_out:
        # The names only: the values are the customer's details.
        logger.warning(
            "stripe %s: customer %s: left out, not readable: %s",
            event.id,
            facts.external_id,
            ", ".join(facts.left_out),
        )
        notes.append(f"not readable, left out: {', '.join(facts.left_out)}")
    if facts.default_payment_method:
        method = PaymentMethod.objects.filter(
            external_id=facts.default_payment_method, customer=customer
        ).first()
        if method is None:
            notes.append(f"default payment method {facts.default_payment_method} not known yet")
        elif _may_become_default(method, event=event):
            _make_default(method.external_id, customer=customer.external_id, now=now)
            notes.append(f"default payment method {method.external_id}")
    return Applied(WebhookOutcome.APPLIED, "; ".join(notes))


def _may_become_default(method: PaymentMethod, *, event: StripeEvent) -> bool:
    """Whether the customer's event naming `method` its default makes it so.

    Stripe names only a card on the customer's file as their default, so the
    event also puts a card dunning holds off file (one seen only on a decline)
    back on it; not one detached by an event newer than this one.
    """
    if method.detached_at is None:
        return not method.is_default
    return not _card_event_since(method.external_id, event.created)


def _apply_remembered_default(method: PaymentMethod, *, now: datetime) -> bool:
    """Make `method` the default when its customer's newest event named it so before
    the card itself was known (Stripe does not promise the order of the two)."""
    if method.is_default or method.detached_at is not None:
        return False
    customer = method.customer.external_id
    named = (
        GatewayObject.objects.filter(provider=PROVIDER, object_id=customer)
        .values_list("default_payment_method", flat=True)
        .first()
    )
    if named != method.external_id:
        return False
    _make_default(method.external_id, customer=customer, now=now)
    return True


def _card_event_since(method: str, moment: datetime) -> bool:
    """Whether an event of the card's own newer than `moment` was applied (a detach)."""
    return GatewayObject.objects.filter(
        provider=PROVIDER, object_id=method, last_event_created__gt=moment
    ).exists()


def _make_default(method: str, *, customer: str, now: datetime) -> None:
    services.upsert_payment_method(
        external_id=method,
        customer=customer,
        now=now,
        source=SOURCE,
        is_default=True,
        detached_at=None,
    )


# --- payment methods -----------------------------------------------------------------------


def _save_payment_method(
    facts: PaymentMethodFacts, *, now: datetime, **values: Any
) -> PaymentMethod | None:
    """Create or update the method when something changed; None if it belongs to someone else.

    `values` adds to the card's details: `detached_at` None puts it on the
    customer's file, a time saves it off file.
    """
    customer = _ensure_customer(facts.customer, now=now, name=facts.name)
    method = PaymentMethod.objects.filter(external_id=facts.external_id).first()
    if method is not None and method.customer_id != customer.pk:
        return None
    # A detail the object leaves out (missing or null) is no news about it: a card
    # keeps what is on file, and a blank is not read as a new number or expiry.
    said = {name: value for name, value in facts.ledger_values().items() if value not in ("", None)}
    method, _ = services.upsert_payment_method(
        external_id=facts.external_id,
        customer=customer.external_id,
        now=now,
        source=SOURCE,
        skip_unchanged=True,
        **said,
        **values,
    )
    return method


def _on_payment_method(event: StripeEvent, now: datetime) -> Applied:
    """payment_method.attached/updated/automatically_updated, customer.source.*: a saved card."""
    facts = payment_method_facts(event.object)
    if not facts.customer:
        return Applied(WebhookOutcome.IGNORED, "the payment method belongs to no customer")
    newest = _is_newest(event, object_id=facts.external_id, type="payment_method", now=now)
    # The object names its customer: the card is on their file (a detached one
    # names none, and is ignored above).
    method = _save_payment_method(facts, now=now, detached_at=None) if newest else None
    if newest and method is None:
        return Applied(WebhookOutcome.IGNORED, "the payment method belongs to another customer")
    notes = ""
    if method is not None and _apply_remembered_default(method, now=now):
        notes = f"default payment method {method.external_id}, as the customer named it"
    if event.type in ("customer.source.expiring", "payment_method.automatically_updated"):
        # Evidence for the timeline even when stale: the notice itself happened.
        services.record_event(
            type=f"stripe.{event.type}",
            now=now,
            source=SOURCE,
            occurred_at=event.created,
            customer=Customer.objects.filter(external_id=facts.customer).first(),
            data={
                "payment_method": facts.external_id,
                "brand": facts.brand,
                "last4": facts.last4,
                "exp_month": facts.exp_month,
                "exp_year": facts.exp_year,
            },
        )
    if not newest:
        return Applied(WebhookOutcome.STALE, "an event newer than this one was applied")
    return Applied(WebhookOutcome.APPLIED, notes)


def _on_payment_method_detached(event: StripeEvent, now: datetime) -> Applied:
    """payment_method.detached, customer.source.deleted: the card left the customer's file.

    It stays in the ledger for its history, never charged or offered again.  An
    attach older than this detach, delivered after it, is stale and changes nothing.
    """
    method_id = event.object_id
    if not method_id:
        raise EventFormatError("payment method id: missing")
    if not _is_newest(event, object_id=method_id, type="payment_method", now=now):
        return Applied(WebhookOutcome.STALE, "an event newer than this one was applied")
    method = services.detach_payment_method(
        external_id=method_id, now=now, source=SOURCE, reason=f"stripe {event.type}"
    )
    if method is None:
        return Applied(WebhookOutcome.IGNORED, "a payment method dunning does not know")
    return Applied(WebhookOutcome.APPLIED, f"{method_id} is off the customer's file")


def _on_setup_intent_succeeded(event: StripeEvent, now: datetime) -> Applied:
    """A card the customer saved on the card page's Stripe page becomes their default.

    The return page does this too; this is for a customer who never came back
    to it (a closed tab, a lost redirect).  Only setups the card page started
    (marked in their metadata): a card saved elsewhere is the business's call.
    A card not on file yet is added without its details, which its
    `payment_method.attached` fills in.
    """
    intent = event.object
    if nested(intent.get("metadata"), "metadata").get(CARD_SETUP_METADATA_KEY) != "true":
        return Applied(WebhookOutcome.IGNORED, "not a card saved from dunning's pages")
    customer_id = stripe_id(intent.get("customer"))
    method_id = stripe_id(intent.get("payment_method"))
    customer = Customer.objects.filter(external_id=customer_id).first() if customer_id else None
    if customer is None or not method_id:
        return Applied(WebhookOutcome.IGNORED, "no customer or card of ours")
    method = PaymentMethod.objects.filter(external_id=method_id).first()
    if method is not None and method.customer_id != customer.pk:
        return Applied(WebhookOutcome.IGNORED, "the payment method belongs to another customer")
    if method is not None and method.is_default:
        return Applied(WebhookOutcome.APPLIED, f"{method_id} is the default already")
    known: dict[str, Any] = {} if method is not None else {"type": "card"}
    services.upsert_payment_method(
        external_id=method_id,
        customer=customer_id,
        now=now,
        source=SOURCE,
        is_default=True,
        detached_at=None,  # saved on Stripe's page: on the customer's file
        **known,
    )
    return Applied(WebhookOutcome.APPLIED, f"default payment method {method_id}")


# --- invoices ------------------------------------------------------------------------------


def _on_invoice(event: StripeEvent, now: datetime) -> Applied:
    snapshot = invoice_snapshot(event.object)
    if snapshot is None:
        return Applied(WebhookOutcome.IGNORED, "a preview invoice (no id)")
    existing = Invoice.objects.filter(external_id=snapshot.external_id).first()
    if existing is None and snapshot.status == InvoiceStatus.DRAFT:
        return Applied(WebhookOutcome.IGNORED, "a draft; dunning starts when it is finalized")
    if not _is_newest(event, object_id=snapshot.external_id, type="invoice", now=now):
        return Applied(WebhookOutcome.STALE, "an event newer than this one was applied")
    customer = _ensure_customer(snapshot.customer, values=dict(snapshot.customer_values), now=now)
    notes: list[str] = []
    if existing is None or existing.status not in TERMINAL:
        services.upsert_invoice(
            facts=services.InvoiceFacts(
                external_id=snapshot.external_id,
                customer=customer.external_id,
                number=snapshot.number,
                currency=snapshot.currency,
                amount_due=snapshot.amount_due,
                issued_at=snapshot.issued_at,
                due_at=snapshot.due_at,
                collection_method=snapshot.collection_method,
                status=(
                    InvoiceStatus.DRAFT
                    if snapshot.status == InvoiceStatus.DRAFT
                    else InvoiceStatus.OPEN
                ),
                lines=[
                    services.InvoiceLine(
                        description=line.description, quantity=line.quantity, amount=line.amount
                    )
                    for line in snapshot.lines
                ],
                context=snapshot.context,
            ),
            now=now,
            source=SOURCE,
        )
    invoice = Invoice.objects.get(external_id=snapshot.external_id)

    # Money: only what Stripe has received beyond what the ledger holds.
    unpaid = min(snapshot.amount_paid - invoice.amount_paid, invoice.amount_remaining)
    if unpaid > 0 and invoice.status not in (InvoiceStatus.VOID, InvoiceStatus.DRAFT):
        reference = _payment_reference(snapshot.payment_refs, invoice=invoice, event=event)
        services.record_payment(
            invoice=invoice.external_id,
            amount=unpaid,
            currency=invoice.currency,
            received_at=snapshot.paid_at or event.created,
            method="card",
            reference=reference,
            now=now,
            source=SOURCE,
        )
        notes.append(f"payment {unpaid} {invoice.currency} ({reference})")
        invoice.refresh_from_db()

    if snapshot.status == InvoiceStatus.VOID and invoice.status != InvoiceStatus.VOID:
        services.change_invoice_status(
            invoice=invoice.external_id,
            status=InvoiceStatus.VOID,
            now=now,
            source=SOURCE,
            reason=f"stripe {event.type}",
        )
    elif snapshot.status == InvoiceStatus.UNCOLLECTIBLE and invoice.status == InvoiceStatus.OPEN:
        services.change_invoice_status(
            invoice=invoice.external_id,
            status=InvoiceStatus.UNCOLLECTIBLE,
            now=now,
            source=SOURCE,
            reason=f"stripe {event.type}",
        )
    elif _settled_at_stripe(snapshot) and invoice.status in OWING:
        notes.append(_settle_as_stripe_says(invoice, snapshot, event=event, now=now))
        invoice.refresh_from_db()

    services.set_gateway_retry(
        invoice=invoice.external_id, at=snapshot.next_payment_attempt, now=now, source=SOURCE
    )
    if event.type in ("invoice.will_be_due", "invoice.overdue"):
        services.record_event(
            type=f"stripe.{event.type}",
            now=now,
            source=SOURCE,
            occurred_at=event.created,
            customer=customer,
            invoice=invoice,
            data={
                "due_at": snapshot.due_at.isoformat(),
                "amount_remaining": snapshot.amount_remaining,
            },
        )
    claimed = _claim_unmatched_failures(Invoice.objects.get(pk=invoice.pk), now=now)
    if claimed:
        notes.append(f"{claimed} earlier declined charge(s) attached")
    return Applied(WebhookOutcome.APPLIED, "; ".join(notes))


def _settled_at_stripe(snapshot: InvoiceSnapshot) -> bool:
    """Stripe calls the invoice paid, or owes nothing on it any more."""
    return snapshot.status == InvoiceStatus.PAID or (
        snapshot.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)
        and snapshot.amount_remaining == 0
    )


def _settle_as_stripe_says(
    invoice: Invoice, snapshot: InvoiceSnapshot, *, event: StripeEvent, now: datetime
) -> str:
    """Settle in the ledger an invoice Stripe settled without money of its own behind it.

    Marked "paid outside of Stripe" (a bank transfer the business received), or
    nothing left to pay for another reason: what remains in the ledger is
    recorded as one payment whose method says so (OUT_OF_BAND, or SETTLED_AT_STRIPE),
    beside an event keeping Stripe's figures, so the books show why the invoice
    is settled, the case closes, and no reminder or charge goes out for it.
    """
    method = OUT_OF_BAND if snapshot.paid_out_of_band else SETTLED_AT_STRIPE
    remaining = invoice.amount_remaining
    services.record_payment(
        invoice=invoice.external_id,
        amount=remaining,
        currency=invoice.currency,
        received_at=snapshot.paid_at or event.created,
        method=method,
        reference=f"{method}:{invoice.external_id}",
        now=now,
        source=SOURCE,
    )
    services.record_event(
        type="stripe.invoice.settled_without_payment",
        now=now,
        source=SOURCE,
        occurred_at=snapshot.paid_at or event.created,
        customer=invoice.customer,
        invoice=invoice,
        data={
            "event": event.id,
            "status": snapshot.status,
            "paid_out_of_band": snapshot.paid_out_of_band,
            "stripe_amount_paid": snapshot.amount_paid,
            "stripe_amount_remaining": snapshot.amount_remaining,
            "settled": remaining,
            "method": method,
        },
    )
    return f"settled as Stripe says: {remaining} {invoice.currency} ({method})"


def _payment_reference(refs: tuple[str, ...], *, invoice: Invoice, event: StripeEvent) -> str:
    """The payment intent or charge that paid: named on the invoice, or learned before."""
    linked = (
        GatewayObject.objects.filter(provider=PROVIDER, invoice=invoice.external_id)
        .order_by("-updated_at", "-id")
        .values_list("object_id", flat=True)
    )
    used = set(invoice.payments.values_list("reference", flat=True))
    for reference in [*refs, *linked]:
        if reference not in used:
            return reference
    return event.id  # unique and stable across redeliveries


def _on_invoice_payment(event: StripeEvent, now: datetime) -> Applied:
    """invoice_payment.*: remember which payment intent pays which invoice."""
    link = invoice_payment_link(event.object)
    _link_payment_intent(link.payment_intent or link.charge, invoice=link.invoice, now=now)
    return Applied(
        WebhookOutcome.APPLIED, f"{link.payment_intent or link.charge} pays {link.invoice}"
    )


# --- declined charges ----------------------------------------------------------------------


def _on_charge_failed(event: StripeEvent, now: datetime) -> Applied:
    return _record_failure(charge_failure(event.object), event=event, now=now)


def _on_payment_intent_failed(event: StripeEvent, now: datetime) -> Applied:
    failure = payment_intent_failure(event.object, occurred_at=event.created)
    if failure is None:
        return Applied(WebhookOutcome.IGNORED, "no decline of the card in last_payment_error")
    return _record_failure(failure, event=event, now=now)


def _on_payment_intent_succeeded(event: StripeEvent, now: datetime) -> Applied:
    """A PaymentIntent dunning made succeeded: recorded here if nobody recorded its answer.

    The pay page records the payment when the customer comes back from the
    bank; one who confirms in a banking app and never returns is recorded by
    this event.  Only PaymentIntents that name a dunning invoice in their
    metadata are ours; Stripe Billing's own are recorded through `invoice.paid`.
    """
    obj = event.object
    invoice_id = str(nested(obj.get("metadata"), "metadata").get(INVOICE_METADATA_KEY) or "")
    if not invoice_id:
        return Applied(WebhookOutcome.IGNORED, "not a payment dunning made")
    customer = stripe_id(obj.get("customer"))
    invoice = (
        Invoice.objects.select_for_update(of=("self",))
        .filter(external_id=invoice_id, customer__external_id=customer)
        .first()
    )
    if invoice is None:
        return Applied(WebhookOutcome.IGNORED, f"no invoice {invoice_id} of customer {customer}")
    reference, charge = str(obj.get("id") or ""), stripe_id(obj.get("latest_charge"))
    references = [ref for ref in (reference, charge) if ref]
    # Recorded as a success already; a decline recorded under the same id (a
    # PaymentIntent confirmed again after it failed) does not hide its success.
    if (
        PaymentAttempt.objects.filter(
            invoice=invoice, reference__in=references, outcome=AttemptOutcome.SUCCEEDED
        ).exists()
        or Payment.objects.filter(invoice=invoice, reference__in=references).exists()
    ):
        return Applied(WebhookOutcome.IGNORED, f"the payment {reference} is already recorded")
    received = obj.get("amount_received") or obj.get("amount")
    if str(obj.get("currency") or "").upper() != invoice.currency or not isinstance(received, int):
        return Applied(WebhookOutcome.IGNORED, f"{reference} is not in {invoice.currency}")
    amount = ledger_amount(received, invoice.currency, field="amount_received")
    method = stripe_id(obj.get("payment_method"))
    known = (
        bool(method)
        and PaymentMethod.objects.filter(
            external_id=method, customer_id=invoice.customer_id
        ).exists()
    )
    try:
        services.record_payment_attempt(
            invoice=invoice.external_id,
            attempted_at=event.created,
            outcome=AttemptOutcome.SUCCEEDED,
            amount=amount,
            gateway=SOURCE,
            reference=reference,
            payment_method=method if known else None,
            now=now,
            source=SOURCE,
        )
    except LedgerError as error:
        logger.error(
            "stripe %s: payment %s on invoice %s not recorded (%s); a refund may be owed",
            event.id,
            reference,
            invoice.external_id,
            error,
        )
        return Applied(WebhookOutcome.IGNORED, f"not recorded: {error}")
    return Applied(WebhookOutcome.APPLIED, f"payment {reference} on {invoice.external_id}")


def _record_failure(failure: ChargeFailure, *, event: StripeEvent, now: datetime) -> Applied:
    if not failure.customer:
        return Applied(WebhookOutcome.IGNORED, "a charge for no customer")
    name = failure.payment_method.name if failure.payment_method else ""
    customer = _ensure_customer(failure.customer, now=now, name=name)
    if failure.payment_method:
        _save_declined_card(failure, failure.payment_method, now=now)
    invoice = _invoice_for(failure, customer=customer)
    if invoice is None:
        services.record_event(
            type=f"stripe.{event.type}",
            now=now,
            source=SOURCE,
            occurred_at=failure.attempted_at,
            customer=customer,
            data={**failure.data(), "matched": False},
        )
        return Applied(WebhookOutcome.APPLIED, "no invoice fits yet; kept as an unmatched decline")
    return _record_attempt(invoice, failure, now=now)


def _save_declined_card(
    failure: ChargeFailure, facts: PaymentMethodFacts, *, now: datetime
) -> None:
    """The card of a declined charge, kept for its attempts (the networks' caps count
    per card).  Only a card on the customer's file may be charged: a decline that shows
    its card on file (a PaymentIntent's card names the customer) puts it there, unless
    the card was detached by a newer event; a card first met on a decline that does not
    (a charge.failed alone, a card tried once at a checkout and never saved) is saved
    off file, until its payment_method.attached, a decline that shows it on file, or
    the customer naming it their default."""
    known = PaymentMethod.objects.filter(external_id=facts.external_id).exists()
    if failure.on_file and not _card_event_since(facts.external_id, failure.attempted_at):
        _save_payment_method(facts, now=now, detached_at=None)
    elif known:
        _save_payment_method(facts, now=now)
    else:
        _save_payment_method(facts, now=now, detached_at=failure.attempted_at)


def _invoice_for(failure: ChargeFailure, *, customer: Customer) -> Invoice | None:
    for external_id in (failure.invoice, _linked_invoice(failure.payment_intent)):
        if external_id:
            found = Invoice.objects.filter(external_id=external_id, customer=customer).first()
            if found is not None:
                return found
    candidates = list(
        Invoice.objects.filter(
            customer=customer,
            currency=failure.currency,
            status=InvoiceStatus.OPEN,
            collection_method=CollectionMethod.CHARGE_AUTOMATICALLY,
            amount_remaining=failure.amount,
        )[:2]
    )
    return candidates[0] if len(candidates) == 1 else None


def _record_attempt(invoice: Invoice, failure: ChargeFailure, *, now: datetime) -> Applied:
    # Locked, so a charge.failed and its payment_intent.payment_failed delivered
    # at once record one attempt between them.
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    _link_payment_intent(failure.payment_intent, invoice=invoice.external_id, now=now)
    # The engine records its own charges under the PaymentIntent's id; the
    # webhook knows the charge and the PaymentIntent: either is the same attempt.
    references = [ref for ref in (failure.charge, failure.payment_intent) if ref]
    if PaymentAttempt.objects.filter(
        invoice=invoice, gateway=SOURCE, reference__in=references
    ).exists():
        return Applied(WebhookOutcome.IGNORED, f"the attempt {failure.charge} is already recorded")
    method = failure.payment_method
    known_method = (
        method is not None
        and PaymentMethod.objects.filter(
            external_id=method.external_id, customer_id=invoice.customer_id
        ).exists()
    )
    services.record_payment_attempt(
        invoice=invoice.external_id,
        attempted_at=failure.attempted_at,
        outcome=AttemptOutcome.FAILED,
        amount=failure.amount,
        decline_code=failure.decline_code,
        advice_code=failure.advice_code,
        network_code=failure.network_code,
        network_advice_code=failure.network_advice_code,
        gateway=SOURCE,
        reference=failure.charge,
        payment_method=method.external_id if method and known_method else None,
        now=now,
        source=SOURCE,
    )
    return Applied(
        WebhookOutcome.APPLIED,
        f"failed attempt {failure.charge} ({failure.decline_code}) on {invoice.external_id}",
    )


def _claim_unmatched_failures(invoice: Invoice, *, now: datetime) -> int:
    """Declines recorded before their invoice was known, that fit this invoice: now attempts."""
    pending = Event.objects.filter(
        customer_id=invoice.customer_id,
        type__in=UNMATCHED_FAILURE_TYPES,
        data__matched=False,
        data__currency=invoice.currency,
    ).filter(Q(data__invoice=invoice.external_id) | Q(data__amount=invoice.amount_remaining))
    claimed = 0
    for event in pending:
        data = event.data
        named = data.get("invoice") or _linked_invoice(data.get("payment_intent", ""))
        if named and named != invoice.external_id:
            continue
        if not named and invoice.status != InvoiceStatus.OPEN:
            continue
        if PaymentAttempt.objects.filter(gateway=SOURCE, reference=data["charge"]).exists():
            continue
        failure = ChargeFailure(
            charge=data["charge"],
            payment_intent=data.get("payment_intent", ""),
            customer=invoice.customer.external_id,
            invoice=invoice.external_id,
            amount=data["amount"],
            currency=data["currency"],
            attempted_at=datetime.fromisoformat(data["attempted_at"]),
            decline_code=data.get("decline_code", ""),
            advice_code=data.get("advice_code", ""),
            network_code=data.get("network_code", ""),
            network_advice_code=data.get("network_advice_code", ""),
            message="",
            payment_method=(
                PaymentMethodFacts(
                    external_id=data["payment_method"],
                    customer=invoice.customer.external_id,
                    type="card",
                )
                if data.get("payment_method")
                else None
            ),
        )
        _record_attempt(invoice, failure, now=now)
        claimed += 1
    return claimed


# --- facts with no ledger noun -------------------------------------------------------------


def _on_dispute(event: StripeEvent, now: datetime) -> Applied:
    data = dispute_data(event.object)
    linked = _linked_invoice(data["payment_intent"]) or _linked_invoice(data["charge"])
    invoice = (
        Invoice.objects.select_related("customer").filter(external_id=linked).first()
        if linked
        else None
    )
    services.record_event(
        type=f"stripe.{event.type}",
        now=now,
        source=SOURCE,
        occurred_at=event.created,
        customer=invoice.customer if invoice else None,
        invoice=invoice,
        data=data,
    )
    if invoice is not None and data["dispute"]:
        # The ledger's dispute, whose opening pauses the customer's dunning.
        services.record_dispute(
            services.DisputeFacts(
                external_id=data["dispute"],
                customer=invoice.customer,
                invoice=invoice,
                amount=data["amount"] or 0,
                currency=data["currency"] or invoice.currency,
                reason=data["reason"],
                status=data["status"],
                at=event.created,
            ),
            now=now,
            source=SOURCE,
        )
    return Applied(
        WebhookOutcome.APPLIED,
        f"dispute {data['dispute']} {data['status']}"
        + ("" if invoice else "; its invoice is not known"),
    )


def _on_subscription(event: StripeEvent, now: datetime) -> Applied:
    obj = event.object
    customer_id = obj.get("customer")
    customer = (
        _ensure_customer(customer_id, now=now)
        if isinstance(customer_id, str) and customer_id
        else None
    )
    data = subscription_data(obj, event.previous_attributes)
    services.record_event(
        type=f"stripe.{event.type}",
        now=now,
        source=SOURCE,
        occurred_at=event.created,
        customer=customer,
        data=data,
    )
    return Applied(WebhookOutcome.APPLIED, f"subscription {data['subscription']} {data['status']}")


Handler = Callable[[StripeEvent, datetime], Applied]

HANDLERS: dict[str, Handler] = {
    "customer.created": _on_customer,
    "customer.updated": _on_customer,
    **{
        f"invoice.{name}": _on_invoice
        for name in (
            "finalized",
            "updated",
            "paid",
            "payment_failed",
            "payment_succeeded",
            "payment_action_required",
            "voided",
            "marked_uncollectible",
            "overdue",
            "will_be_due",
        )
    },
    "invoice_payment.paid": _on_invoice_payment,
    "payment_intent.payment_failed": _on_payment_intent_failed,
    "payment_intent.succeeded": _on_payment_intent_succeeded,
    "charge.failed": _on_charge_failed,
    "payment_method.attached": _on_payment_method,
    "payment_method.detached": _on_payment_method_detached,
    "customer.source.deleted": _on_payment_method_detached,
    "setup_intent.succeeded": _on_setup_intent_succeeded,
    "payment_method.updated": _on_payment_method,
    "payment_method.automatically_updated": _on_payment_method,
    "customer.source.created": _on_payment_method,
    "customer.source.updated": _on_payment_method,
    "customer.source.expiring": _on_payment_method,
    "customer.subscription.updated": _on_subscription,
    "customer.subscription.deleted": _on_subscription,
    "charge.dispute.created": _on_dispute,
    "charge.dispute.updated": _on_dispute,
    "charge.dispute.funds_withdrawn": _on_dispute,
    "charge.dispute.funds_reinstated": _on_dispute,
    "charge.dispute.closed": _on_dispute,
}

# The kind of object (its `object` field) each family of events carries, the
# longest prefix first.  customer.source.* carry the legacy source itself.
OBJECTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("customer.subscription.", ("subscription",)),
    ("customer.source.", ("card", "bank_account", "source")),
    ("customer.", ("customer",)),
    ("invoice_payment.", ("invoice_payment",)),
    ("invoice.", ("invoice",)),
    ("payment_intent.", ("payment_intent",)),
    ("payment_method.", ("payment_method",)),
    ("setup_intent.", ("setup_intent",)),
    ("charge.dispute.", ("dispute",)),
    ("charge.", ("charge",)),
)
