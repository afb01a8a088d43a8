"""Every write to the ledger goes through these functions.

They take `now` (when the write is recorded) from the caller and `source`
(who reported the fact: api, import, admin, demo, stripe ...), write the rows
and the matching events in one transaction, and raise `LedgerError` naming the
field at fault when the fact contradicts what is recorded.  Inputs arrive
normalised (see `dunning.core.fields`); these functions judge them against the
ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ParamSpec

from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, CharField

from dunning.core import fields
from dunning.db import ParamList, Prepared, bulk_insert, update_each
from dunning.ledger.errors import ErrorCode, LedgerError
from dunning.ledger.models import (
    DISPUTE_CLOSED,
    AttemptOutcome,
    CollectionMethod,
    Customer,
    Dispute,
    Event,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAttempt,
    PaymentMethod,
)
from dunning.ledger.signals import (
    attempts_recorded,
    dispute_changed,
    gateway_retry_changed,
    invoices_changed,
    payment_method_changed,
)

P = ParamSpec("P")

CUSTOMER_FIELDS = (
    "name",
    "email",
    "phone",
    "locale",
    "time_zone",
    "country",
    "is_business",
    "metadata",
)


def new_event(
    *,
    type: str,
    now: datetime,
    source: str,
    occurred_at: datetime | None = None,
    customer: Customer | None = None,
    invoice: Invoice | None = None,
    data: Mapping[str, Any] | None = None,
) -> Event:
    """An event of the ledger's, not saved yet: for a batch to write many at once.
    `record_event` takes the same arguments and writes it at once."""
    return Event(
        type=type,
        occurred_at=occurred_at or now,
        recorded_at=now,
        source=source,
        customer=customer,
        invoice=invoice,
        data=dict(data or {}),
    )


def _saved(make: Callable[P, Event]) -> Callable[P, Event]:
    def save(*args: P.args, **kwargs: P.kwargs) -> Event:
        event = make(*args, **kwargs)
        event.save()
        return event

    return save


record_event = _saved(new_event)  # `new_event`'s event, written at once


def upsert_customer(
    *, external_id: str, now: datetime, source: str, **values: Any
) -> tuple[Customer, bool]:
    """Create the customer with `external_id`, or update the fields given in `values`.

    Fields left out of `values` keep what is recorded.  A new customer without a
    time zone takes its country's, when the country has only one (TH:
    Asia/Bangkok), else UTC.  Returns (customer, created).
    """
    unknown = set(values) - set(CUSTOMER_FIELDS)
    if unknown:
        raise TypeError(f"unknown customer fields: {sorted(unknown)}")
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(external_id=external_id).first()
        country = values.get("country") or (customer.country if customer else "")
        if values.get("phone"):
            # A national number ("081 234 5678") is read in the customer's country.
            try:
                values["phone"] = fields.normalize_phone(values["phone"], country=country)
            except fields.FieldError as error:
                raise LedgerError(str(error), field="phone") from None
        if customer is None:
            if not values.get("name"):
                raise LedgerError("required for a new customer", field="name")
            if not values.get("time_zone"):
                values["time_zone"] = fields.default_time_zone(country) or "UTC"
            try:
                with transaction.atomic():
                    customer = Customer.objects.create(
                        external_id=external_id, created_at=now, updated_at=now, **values
                    )
            except IntegrityError:
                # Another request created it between our read and our insert.
                # Any other integrity error is not a race: retrying would loop.
                if not Customer.objects.filter(external_id=external_id).exists():
                    raise
                return upsert_customer(external_id=external_id, now=now, source=source, **values)
            record_event(
                type="customer.created",
                now=now,
                source=source,
                customer=customer,
                data={"external_id": external_id},
            )
            return customer, True

        changes = {
            name: [getattr(customer, name), value]
            for name, value in values.items()
            if getattr(customer, name) != value
        }
        if changes:
            for name, (_, value) in changes.items():
                setattr(customer, name, value)
            customer.updated_at = now
            customer.save(update_fields=[*changes, "updated_at"])
            record_event(
                type="customer.updated",
                now=now,
                source=source,
                customer=customer,
                data={"changed": sorted(changes)},
            )
        return customer, False


def get_customer(external_id: str, *, field: str = "customer") -> Customer:
    # get(), not first(): first() adds an ORDER BY id that the unique lookup does not need.
    try:
        return Customer.objects.get(external_id=external_id)
    except Customer.DoesNotExist:
        raise LedgerError(
            "no customer with this external_id", field=field, code=ErrorCode.NOT_FOUND
        ) from None


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    description: str
    quantity: int
    amount: int  # minor units; negative for a discount or credit line


@dataclass(frozen=True, slots=True)
class InvoiceFacts:
    external_id: str
    customer: str  # the customer's external_id
    number: str
    currency: str
    amount_due: int
    issued_at: datetime
    due_at: datetime
    collection_method: str = CollectionMethod.SEND_INVOICE
    status: str = InvoiceStatus.OPEN
    lines: Sequence[InvoiceLine] = ()
    context: Mapping[str, Any] = field(default_factory=dict)


def upsert_invoice(*, facts: InvoiceFacts, now: datetime, source: str) -> tuple[Invoice, bool]:
    """Create the invoice, or bring an existing one (same external_id) up to date.

    An update may change the number, dates, lines, context, collection method
    and amount due (never below what is already paid); it may not move the
    invoice to another customer or currency.  Returns (invoice, created).
    """
    if facts.status not in (InvoiceStatus.DRAFT, InvoiceStatus.OPEN):
        raise LedgerError(
            "a new invoice is draft or open; use the void and "
            "mark-uncollectible actions to change its status later",
            field="status",
        )
    lines = [
        {"description": ln.description, "quantity": ln.quantity, "amount": ln.amount}
        for ln in facts.lines
    ]
    # Most posts are new invoices, so insert first and fall back to the update
    # when the external_id is taken: no read-then-insert, no savepoint (the
    # ingest benchmark measured both as a third of the request's cost).
    try:
        with transaction.atomic():
            customer = get_customer(facts.customer)
            invoice = Invoice.objects.create(
                external_id=facts.external_id,
                number=facts.number,
                customer=customer,
                currency=facts.currency,
                amount_due=facts.amount_due,
                amount_paid=0,
                amount_remaining=facts.amount_due,
                issued_at=facts.issued_at,
                due_at=facts.due_at,
                status=InvoiceStatus.PAID if facts.amount_due == 0 else facts.status,
                paid_at=facts.issued_at if facts.amount_due == 0 else None,
                collection_method=facts.collection_method,
                lines=lines,
                context=dict(facts.context),
                created_at=now,
                updated_at=now,
            )
            record_event(
                type="invoice.created",
                now=now,
                source=source,
                occurred_at=facts.issued_at,
                customer=customer,
                invoice=invoice,
                data={
                    "amount_due": facts.amount_due,
                    "currency": facts.currency,
                    "due_at": facts.due_at.isoformat(),
                },
            )
            return invoice, True
    except IntegrityError:
        # Only a taken external_id means "update"; any other violation is a bug to surface.
        if not Invoice.objects.filter(external_id=facts.external_id).exists():
            raise
    with transaction.atomic():
        customer = get_customer(facts.customer)
        invoice = Invoice.objects.select_for_update().get(external_id=facts.external_id)
        return _update_invoice(
            invoice, customer=customer, facts=facts, lines=lines, now=now, source=source
        ), False


def _update_invoice(
    invoice: Invoice,
    *,
    customer: Customer,
    facts: InvoiceFacts,
    lines: list[dict[str, Any]],
    now: datetime,
    source: str,
) -> Invoice:
    if invoice.customer_id != customer.pk:
        raise LedgerError(
            "an invoice cannot move to another customer", field="customer", code=ErrorCode.CONFLICT
        )
    if invoice.currency != facts.currency:
        raise LedgerError(
            f"the invoice is in {invoice.currency}; its currency cannot change",
            field="currency",
            code=ErrorCode.CONFLICT,
        )
    if (
        invoice.status in (InvoiceStatus.VOID, InvoiceStatus.PAID)
        and facts.amount_due != invoice.amount_due
    ):
        raise LedgerError(
            f"the invoice is {invoice.status}; its amount cannot change",
            field="amount_due",
            code=ErrorCode.CONFLICT,
        )
    if facts.amount_due < invoice.amount_paid:
        raise LedgerError(
            f"{invoice.amount_paid} is already paid; amount_due cannot be less",
            field="amount_due",
            code=ErrorCode.CONFLICT,
        )
    wanted = {
        "number": facts.number,
        "amount_due": facts.amount_due,
        "issued_at": facts.issued_at,
        "due_at": facts.due_at,
        "collection_method": facts.collection_method,
        "lines": lines,
        "context": dict(facts.context),
    }
    if invoice.status == InvoiceStatus.DRAFT and facts.status == InvoiceStatus.OPEN:
        wanted["status"] = InvoiceStatus.OPEN
    changed = sorted(name for name, value in wanted.items() if getattr(invoice, name) != value)
    if not changed:
        return invoice
    for name in changed:
        setattr(invoice, name, wanted[name])
    invoice.amount_remaining = invoice.amount_due - invoice.amount_paid
    update = [*changed, "amount_remaining", "updated_at"]
    if invoice.amount_remaining == 0 and invoice.status in (
        InvoiceStatus.OPEN,
        InvoiceStatus.UNCOLLECTIBLE,
    ):
        invoice.status, invoice.paid_at = InvoiceStatus.PAID, now
        update += ["status", "paid_at"]
    invoice.updated_at = now
    invoice.save(update_fields=sorted(set(update)))
    record_event(
        type="invoice.updated",
        now=now,
        source=source,
        customer=customer,
        invoice=invoice,
        data={"changed": changed},
    )
    if "paid_at" in update:
        record_event(
            type="invoice.paid", now=now, source=source, customer=customer, invoice=invoice
        )
    invoices_changed.send(sender=Invoice, invoices=[invoice], now=now, source=source)
    return invoice


def get_invoice(external_id: str, *, field: str = "invoice", lock: bool = False) -> Invoice:
    query = Invoice.objects.select_related("customer")
    if lock:
        query = query.select_for_update(of=("self",))
    invoice = query.filter(external_id=external_id).first()
    if invoice is None:
        raise LedgerError("no invoice with this external_id", field=field, code=ErrorCode.NOT_FOUND)
    return invoice


def record_payment(
    *,
    invoice: str,
    amount: int,
    currency: str,
    received_at: datetime,
    method: str,
    reference: str = "",
    now: datetime,
    source: str,
    attempt: PaymentAttempt | None = None,
) -> Payment:
    """Apply money received to an invoice; the invoice becomes paid when nothing remains."""
    with transaction.atomic():
        target = get_invoice(invoice, lock=True)
        _check_payment(
            target,
            amount=amount,
            currency=currency,
            reference_taken=bool(reference)
            and Payment.objects.filter(invoice=target, reference=reference).exists(),
        )
        payment = Payment.objects.create(
            invoice=target,
            customer=target.customer,
            amount=amount,
            currency=currency,
            received_at=received_at,
            method=method,
            reference=reference,
            attempt=attempt,
            created_at=now,
        )
        applied = _apply_payment(target, payment, now=now)
        target.save(
            update_fields=["amount_paid", "amount_remaining", "status", "paid_at", "updated_at"]
        )
        bulk_insert(_payment_events(applied, now=now, source=source))
        invoices_changed.send(sender=Invoice, invoices=[target], now=now, source=source)
        return payment


def _check_payment(target: Invoice, *, amount: int, currency: str, reference_taken: bool) -> None:
    """Raise the LedgerError that refuses this payment on `target`, if any."""
    if target.status in (InvoiceStatus.VOID, InvoiceStatus.DRAFT):
        raise LedgerError(
            f"the invoice is {target.status} and takes no payments",
            field="invoice",
            code=ErrorCode.CONFLICT,
        )
    if currency != target.currency:
        raise LedgerError(f"the invoice is in {target.currency}", field="currency")
    if amount <= 0:
        raise LedgerError("must be greater than zero", field="amount")
    if reference_taken:
        raise LedgerError(
            "a payment with this reference is already recorded on this invoice",
            field="reference",
            code=ErrorCode.CONFLICT,
        )
    if amount > target.amount_remaining:
        raise LedgerError(
            f"more than the {target.amount_remaining} that remains on the invoice",
            field="amount",
            code=ErrorCode.CONFLICT,
        )


@dataclass(frozen=True, slots=True)
class _Applied:
    """A payment applied to its invoice: what remained after it, and whether it paid it off."""

    payment: Payment
    remaining: int
    pays_off: bool


def _apply_payment(target: Invoice, payment: Payment, *, now: datetime) -> _Applied:
    """Apply `payment` to the invoice in memory; the invoice is paid when nothing remains."""
    target.amount_paid += payment.amount
    target.amount_remaining -= payment.amount
    target.updated_at = now
    pays_off = target.amount_remaining == 0
    if pays_off:
        target.status, target.paid_at = InvoiceStatus.PAID, payment.received_at
    return _Applied(payment=payment, remaining=target.amount_remaining, pays_off=pays_off)


def _payment_events(applied: _Applied, *, now: datetime, source: str) -> list[Event]:
    payment = applied.payment
    events = [
        Event(
            type="payment.recorded",
            occurred_at=payment.received_at,
            recorded_at=now,
            source=source,
            customer=payment.customer,
            invoice=payment.invoice,
            data={
                "payment": payment.pk,
                "amount": payment.amount,
                "currency": payment.currency,
                "amount_remaining": applied.remaining,
            },
        )
    ]
    if applied.pays_off:
        events.append(
            Event(
                type="invoice.paid",
                occurred_at=payment.received_at,
                recorded_at=now,
                source=source,
                customer=payment.customer,
                invoice=payment.invoice,
            )
        )
    return events


@dataclass(frozen=True, slots=True)
class AttemptFacts:
    """One try to collect an invoice, as `record_payment_attempts` takes it."""

    invoice: str  # external id
    attempted_at: datetime
    outcome: str
    amount: int | None = None  # None: what remains on the invoice
    decline_code: str = ""
    advice_code: str = ""
    network_code: str = ""
    network_advice_code: str = ""  # Mastercard's merchant advice code
    gateway: str = ""
    reference: str = ""
    payment_method: str | None = None  # external id


def record_payment_attempt(
    *,
    invoice: str,
    attempted_at: datetime,
    outcome: str,
    now: datetime,
    source: str,
    amount: int | None = None,
    decline_code: str = "",
    advice_code: str = "",
    network_code: str = "",
    network_advice_code: str = "",
    gateway: str = "",
    reference: str = "",
    payment_method: str | None = None,
) -> PaymentAttempt:
    """Record one try to collect an invoice.  A success also records the payment."""
    facts = AttemptFacts(
        invoice=invoice,
        attempted_at=attempted_at,
        outcome=outcome,
        amount=amount,
        decline_code=decline_code,
        advice_code=advice_code,
        network_code=network_code,
        network_advice_code=network_advice_code,
        gateway=gateway,
        reference=reference,
        payment_method=payment_method,
    )
    (recorded,) = record_payment_attempts([facts], now=now, source=source)
    if isinstance(recorded, LedgerError):
        raise recorded
    return recorded


def record_payment_attempts(
    attempts: Sequence[AttemptFacts], *, now: datetime, source: str
) -> list[PaymentAttempt | LedgerError]:
    """Record tries to collect invoices, in a handful of statements whatever their number.

    Each is judged as `record_payment_attempt` judges one, in the order given
    (a second success on an invoice the first one paid is refused): a try the
    ledger refuses takes its `LedgerError` in the returned list, in its place,
    and writes nothing; the others are written, with their events, and a
    success also records its payment.  The invoices are locked until the
    caller's transaction ends.
    """
    if not attempts:
        return []
    with transaction.atomic():
        invoices = {
            invoice.external_id: invoice
            for invoice in _ATTEMPTED_INVOICES().instances(
                ids=list({facts.invoice for facts in attempts})
            )
        }
        wanted = list({facts.payment_method for facts in attempts if facts.payment_method})
        methods = {
            method.external_id: method
            for method in (_PAYMENT_METHODS().instances(ids=wanted) if wanted else ())
        }
        # Only a success records a payment, whose reference must be new on its invoice.
        references = list(
            {
                facts.reference
                for facts in attempts
                if facts.reference and facts.outcome == AttemptOutcome.SUCCEEDED
            }
        )
        taken: set[tuple[int, str]] = (
            set(
                _TAKEN_REFERENCES().rows(
                    invoices=[invoice.pk for invoice in invoices.values()], references=references
                )
            )
            if references and invoices
            else set()
        )
        results: list[PaymentAttempt | LedgerError] = []
        paid: dict[int, tuple[PaymentAttempt, _Applied]] = {}  # by place in `results`
        for facts in attempts:
            try:
                attempt, applied = _judge_attempt(facts, invoices, methods, taken, now=now)
            except LedgerError as error:
                results.append(error)
                continue
            if applied is not None:
                paid[len(results)] = (attempt, applied)
            results.append(attempt)
        recorded = [attempt for attempt in results if isinstance(attempt, PaymentAttempt)]
        bulk_insert(recorded)
        for attempt, applied in paid.values():
            applied.payment.attempt = attempt
        bulk_insert([applied.payment for _, applied in paid.values()])
        changed = {
            applied.payment.invoice_id: applied.payment.invoice for _, applied in paid.values()
        }
        update_each(
            list(changed.values()),
            ["amount_paid", "amount_remaining", "status", "paid_at", "updated_at"],
        )
        bulk_insert(
            [
                event
                for place, attempt in enumerate(results)
                if isinstance(attempt, PaymentAttempt)
                for event in _attempt_events(
                    attempt, paid[place][1] if place in paid else None, now=now, source=source
                )
            ]
        )
        if recorded:
            attempts_recorded.send(sender=PaymentAttempt, attempts=recorded, now=now, source=source)
        if changed:
            invoices_changed.send(
                sender=Invoice, invoices=list(changed.values()), now=now, source=source
            )
        return results


# The statements `record_payment_attempts` runs for every batch of answers, compiled
# once each (`Prepared`).
_ATTEMPTED_INVOICES: Prepared[Invoice] = Prepared(
    lambda: (
        Invoice.objects.select_related("customer")
        .select_for_update(of=("self",))
        .filter(external_id__in=ParamList("ids", CharField()))
        .order_by("pk")
    )  # one lock order for every worker
)
_PAYMENT_METHODS: Prepared[PaymentMethod] = Prepared(
    lambda: PaymentMethod.objects.filter(external_id__in=ParamList("ids", CharField()))
)
_TAKEN_REFERENCES = Prepared(
    lambda: Payment.objects.filter(
        invoice_id__in=ParamList("invoices", BigIntegerField()),
        reference__in=ParamList("references", CharField()),
    ).values_list("invoice_id", "reference")
)


def _judge_attempt(
    facts: AttemptFacts,
    invoices: Mapping[str, Invoice],
    methods: Mapping[str, PaymentMethod],
    taken: set[tuple[int, str]],
    *,
    now: datetime,
) -> tuple[PaymentAttempt, _Applied | None]:
    """The rows one try writes, or the LedgerError that refuses it (nothing changed then).

    A success is applied to its invoice in memory (`taken` and the invoice's
    amounts), so the next try on the same invoice is judged against it.
    """
    target = invoices.get(facts.invoice)
    if target is None:
        raise LedgerError(
            "no invoice with this external_id", field="invoice", code=ErrorCode.NOT_FOUND
        )
    method = None
    if facts.payment_method:
        method = methods.get(facts.payment_method)
        if method is None or method.customer_id != target.customer_id:
            raise LedgerError(
                "no payment method with this external_id for this customer",
                field="payment_method",
                code=ErrorCode.NOT_FOUND,
            )
    if facts.outcome == AttemptOutcome.SUCCEEDED and facts.decline_code:
        raise LedgerError("a succeeded attempt has no decline code", field="decline_code")
    charged = target.amount_remaining if facts.amount is None else facts.amount
    attempt = PaymentAttempt(
        invoice=target,
        customer=target.customer,
        payment_method=method,
        attempted_at=facts.attempted_at,
        outcome=facts.outcome,
        amount=charged,
        currency=target.currency,
        decline_code=facts.decline_code,
        advice_code=facts.advice_code,
        network_code=facts.network_code,
        network_advice_code=facts.network_advice_code,
        gateway=facts.gateway,
        reference=facts.reference,
        created_at=now,
    )
    if facts.outcome != AttemptOutcome.SUCCEEDED:
        return attempt, None
    _check_payment(
        target,
        amount=charged,
        currency=target.currency,
        reference_taken=bool(facts.reference) and (target.pk, facts.reference) in taken,
    )
    payment = Payment(
        invoice=target,
        customer=target.customer,
        amount=charged,
        currency=target.currency,
        received_at=facts.attempted_at,
        method=method.type if method else "card",
        reference=facts.reference,
        created_at=now,
    )
    if facts.reference:
        taken.add((target.pk, facts.reference))
    return attempt, _apply_payment(target, payment, now=now)


def _attempt_events(
    attempt: PaymentAttempt, applied: _Applied | None, *, now: datetime, source: str
) -> list[Event]:
    """The events one recorded try writes: the try, and for a success its payment."""
    event = Event(
        type=f"payment_attempt.{attempt.outcome}",
        occurred_at=attempt.attempted_at,
        recorded_at=now,
        source=source,
        customer=attempt.customer,
        invoice=attempt.invoice,
        data={
            "attempt": attempt.pk,
            "amount": attempt.amount,
            "decline_code": attempt.decline_code,
            "advice_code": attempt.advice_code,
            "network_advice_code": attempt.network_advice_code,
            "gateway": attempt.gateway,
        },
    )
    if applied is None:
        return [event]
    return [event, *_payment_events(applied, now=now, source=source)]


def upsert_payment_method(
    *,
    external_id: str,
    customer: str,
    now: datetime,
    source: str,
    skip_unchanged: bool = False,
    **values: Any,
) -> tuple[PaymentMethod, bool]:
    """Create or update a saved payment method (card brand, last 4, expiry; never the number).

    Every call records an update (the API's PUT says it was made).  With
    `skip_unchanged`, a method that already holds these values is returned as
    it is, with no event and no replan: a webhook's replay, a reloaded page.
    """
    with transaction.atomic():
        owner = get_customer(customer)
        method = PaymentMethod.objects.select_for_update().filter(external_id=external_id).first()
        created = method is None
        if method is None:
            method = PaymentMethod(external_id=external_id, customer=owner, created_at=now)
        elif method.customer_id != owner.pk:
            raise LedgerError(
                "a payment method cannot move to another customer",
                field="customer",
                code=ErrorCode.CONFLICT,
            )
        elif skip_unchanged and all(getattr(method, k) == v for k, v in values.items()):
            return method, False
        # Details filled in where none were known (a card first seen without
        # them) are not a change: only a known value replaced by another.
        details = ("type", "brand", "last4", "exp_month", "exp_year")
        if not created and any(
            name in details and getattr(method, name) not in ("", None, value)
            for name, value in values.items()
        ):
            method.details_changed_at = now
        if not created and any(
            name in ("brand", "last4") and getattr(method, name) not in ("", value)
            for name, value in values.items()
        ):
            method.number_changed_at = now
        for name, value in values.items():
            setattr(method, name, value)
        if method.detached_at is not None:
            method.is_default = False  # a card off file is nobody's default
        method.updated_at = now
        method.save()
        if method.is_default:
            PaymentMethod.objects.filter(customer=owner, is_default=True).exclude(
                pk=method.pk
            ).update(is_default=False, updated_at=now)
        record_event(
            type="payment_method.created" if created else "payment_method.updated",
            now=now,
            source=source,
            customer=owner,
            data={
                "payment_method": external_id,
                "type": method.type,
                "brand": method.brand,
                "last4": method.last4,
                "exp_month": method.exp_month,
                "exp_year": method.exp_year,
            },
        )
        payment_method_changed.send(
            sender=PaymentMethod, method=method, created=created, now=now, source=source
        )
        return method, created


def detach_payment_method(
    *, external_id: str, now: datetime, source: str, reason: str = ""
) -> PaymentMethod | None:
    """Take a card off its customer's file (detached or deleted at the gateway): it is
    never charged or offered again, and stops being the default; its row and attempts
    stay as history.  None when no such card is known; a card already off file is
    returned as it is.  Saving it again (`upsert_payment_method` with
    `detached_at=None`) puts it back on file."""
    with transaction.atomic():
        method = (
            PaymentMethod.objects.select_for_update()
            .select_related("customer")
            .filter(external_id=external_id)
            .first()
        )
        if method is None or method.detached_at is not None:
            return method
        method.detached_at, method.is_default, method.updated_at = now, False, now
        method.save(update_fields=["detached_at", "is_default", "updated_at"])
        record_event(
            type="payment_method.detached",
            now=now,
            source=source,
            customer=method.customer,
            data={"payment_method": external_id, "reason": reason},
        )
        payment_method_changed.send(
            sender=PaymentMethod, method=method, created=False, now=now, source=source
        )
        return method


def change_invoice_status(
    *, invoice: str, status: str, now: datetime, source: str, reason: str = ""
) -> Invoice:
    """Void an invoice or mark it uncollectible (money may still arrive on an uncollectible one)."""
    allowed = {
        InvoiceStatus.VOID: {InvoiceStatus.DRAFT, InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE},
        InvoiceStatus.UNCOLLECTIBLE: {InvoiceStatus.OPEN},
    }
    with transaction.atomic():
        target = get_invoice(invoice, lock=True)
        if target.status == status:
            return target
        if target.status not in allowed[InvoiceStatus(status)]:
            raise LedgerError(
                f"a {target.status} invoice cannot become {status}",
                field="status",
                code=ErrorCode.CONFLICT,
            )
        previous = target.status
        target.status, target.updated_at = status, now
        target.save(update_fields=["status", "updated_at"])
        record_event(
            type=f"invoice.{'voided' if status == InvoiceStatus.VOID else 'marked_uncollectible'}",
            now=now,
            source=source,
            customer=target.customer,
            invoice=target,
            data={"from": previous, "reason": reason},
        )
        invoices_changed.send(sender=Invoice, invoices=[target], now=now, source=source)
        return target


def set_gateway_retry(*, invoice: str, at: datetime | None, now: datetime, source: str) -> Invoice:
    """Record when the gateway itself will charge the invoice again (None: it will not).

    A paid or void invoice is never retried, so for one the time is cleared
    whatever `at` says.  Writes (and records an event) only when it changes.
    """
    with transaction.atomic():
        target = get_invoice(invoice, lock=True)
        if target.status in (InvoiceStatus.PAID, InvoiceStatus.VOID):
            at = None
        if target.gateway_retry_at == at:
            return target
        previous = target.gateway_retry_at
        target.gateway_retry_at, target.updated_at = at, now
        target.save(update_fields=["gateway_retry_at", "updated_at"])
        record_event(
            type="invoice.gateway_retry_scheduled" if at else "invoice.gateway_retry_cleared",
            now=now,
            source=source,
            customer=target.customer,
            invoice=target,
            data={
                "at": at.isoformat() if at else None,
                "previous": previous.isoformat() if previous else None,
            },
        )
        gateway_retry_changed.send(sender=Invoice, invoice=target, now=now, source=source)
        return target


@dataclass(frozen=True, slots=True)
class DisputeFacts:
    """A dispute as the gateway reports it at `at` (its event's time)."""

    external_id: str
    customer: Customer
    invoice: Invoice | None
    amount: int
    currency: str
    reason: str
    status: str
    at: datetime


def record_dispute(facts: DisputeFacts, *, now: datetime, source: str) -> Dispute:
    """Record a dispute or its new status; a status older than the one on record (events
    come in any order) changes nothing.  Sends `dispute_changed` when it changed."""
    with transaction.atomic():
        closed = facts.status in DISPUTE_CLOSED
        dispute = Dispute.objects.select_for_update().filter(external_id=facts.external_id).first()
        if dispute is None:
            dispute = Dispute(
                external_id=facts.external_id,
                customer=facts.customer,
                invoice=facts.invoice,
                amount=facts.amount,
                currency=facts.currency,
                reason=facts.reason,
                status=facts.status,
                opened_at=facts.at,
                closed_at=facts.at if closed else None,
                status_at=facts.at,
                created_at=now,
                updated_at=now,
            )
            try:
                with transaction.atomic():
                    dispute.save(force_insert=True)
            except IntegrityError:
                # Another delivery recorded it meanwhile: judge this one against it.
                return record_dispute(facts, now=now, source=source)
            dispute_changed.send(
                sender=Dispute, dispute=dispute, opened=not closed, now=now, source=source
            )
            return dispute
        if facts.at < dispute.opened_at:
            # An older word arriving late (the opening after the closing) dates it.
            dispute.opened_at, dispute.updated_at = facts.at, now
            dispute.save(update_fields=["opened_at", "updated_at"])
        if facts.at < dispute.status_at or (
            facts.at == dispute.status_at and dispute.status == facts.status
        ):
            return dispute
        was_open = dispute.is_open
        dispute.status, dispute.status_at, dispute.updated_at = facts.status, facts.at, now
        dispute.reason = facts.reason or dispute.reason
        dispute.closed_at = (dispute.closed_at or facts.at) if closed else None
        dispute.save()
        dispute_changed.send(
            sender=Dispute,
            dispute=dispute,
            opened=dispute.is_open and not was_open,
            now=now,
            source=source,
        )
        return dispute
