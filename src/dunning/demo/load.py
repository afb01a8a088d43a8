"""Writing the demo into the ledger, through the same services as every other source of facts.

Facts are written in the order they happened, each with `now` set to its own
moment: the events then read as a history (customer created, card saved,
invoice issued, charge failed, retried, paid ...) and every created_at and
recorded_at is when the fact happened, not when the demo was loaded.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, Sum

from dunning.demo.data import DemoData, DemoInvoice
from dunning.demo.generate import GATEWAY
from dunning.ledger import selectors, services
from dunning.ledger.models import (
    AttemptOutcome,
    Customer,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAttempt,
)
from dunning.ledger.models.customers import PaymentMethod, PaymentMethodType

SOURCE = "demo"

# At one moment, facts are written in this order: a customer exists before
# their card, a card and an invoice before a charge, a payment before a write-off.
_CUSTOMER, _CARD, _INVOICE, _MONEY, _STATUS = range(5)

# (when, kind, order of generation, the invoice it is about or "", the write)
_Write = tuple[datetime, int, int, str, Callable[[], Any]]


class DatabaseNotEmpty(Exception):
    """The demo loads only into an empty ledger, so it never mixes with real customers."""

    def __init__(self, customers: int):
        super().__init__(
            f"the database already has {customers} customer(s); "
            "the demo loads only into an empty database"
        )
        self.customers = customers


def load(data: DemoData, *, source: str = SOURCE, until: datetime | None = None) -> Later:
    """Write `data` into an empty ledger in one transaction, or raise DatabaseNotEmpty.

    With `until`, only the facts that happened by then; the rest come back, in
    order, for `Later.write_until` as the engine plays the time after it.
    """
    writes = sorted(_writes(data, source), key=lambda step: step[:3])
    due = len(writes) if until is None else bisect_right([w[0] for w in writes], until)
    with transaction.atomic():
        customers = Customer.objects.count()
        if customers:
            raise DatabaseNotEmpty(customers)
        for *_, write in writes[:due]:
            write()
    return Later(deque(writes[due:]))


@dataclass
class Later:
    """The demo's facts still to come, written as the engine's clock reaches them.

    So the engine never sees a fact from its future: at each moment of the
    playback it acts on what had happened by then, and the facts that follow
    meet what it did.  A fact about an invoice the engine has collected
    meanwhile is left out (`left_out`): its retry took the money before the
    billing system's next try or the customer's transfer would have.
    """

    writes: deque[_Write]
    left_out: int = 0

    def write_until(self, until: datetime) -> None:
        while self.writes and self.writes[0][0] <= until:
            *_, invoice, write = self.writes.popleft()
            if invoice and _paid(invoice):
                self.left_out += 1
                continue
            with transaction.atomic():
                write()


def _paid(invoice: str) -> bool:
    return Invoice.objects.filter(external_id=invoice, status=InvoiceStatus.PAID).exists()


def _writes(data: DemoData, source: str) -> Iterator[_Write]:
    order = iter(range(10**9))  # ties at one moment keep the order of generation
    for customer in data.customers:
        yield (
            customer.created_at,
            _CUSTOMER,
            next(order),
            "",
            partial(
                services.upsert_customer,
                external_id=customer.external_id,
                now=customer.created_at,
                source=source,
                name=customer.name,
                email=customer.email,
                phone=customer.phone,
                locale=customer.locale,
                time_zone=customer.time_zone,
                country=customer.country,
                is_business=customer.is_business,
            ),
        )
    for card in data.cards:
        yield (
            card.added_at,
            _CARD,
            next(order),
            "",
            partial(
                services.upsert_payment_method,
                external_id=card.external_id,
                customer=card.customer,
                now=card.added_at,
                source=source,
                type=PaymentMethodType.CARD,
                brand=card.brand,
                last4=card.last4,
                exp_month=card.exp_month,
                exp_year=card.exp_year,
                country=card.country,
                is_default=True,
            ),
        )
    for invoice in data.invoices:
        yield from _invoice_writes(invoice, source, order)


def _invoice_writes(invoice: DemoInvoice, source: str, order: Iterator[int]) -> Iterator[_Write]:
    facts = services.InvoiceFacts(
        external_id=invoice.external_id,
        customer=invoice.customer,
        number=invoice.number,
        currency=invoice.currency,
        amount_due=invoice.amount_due,
        issued_at=invoice.issued_at,
        due_at=invoice.due_at,
        collection_method=invoice.collection_method,
        lines=[
            services.InvoiceLine(line.description, line.quantity, line.amount)
            for line in invoice.lines
        ],
        context=dict(invoice.context),
    )
    yield (
        invoice.issued_at,
        _INVOICE,
        next(order),
        invoice.external_id,
        partial(services.upsert_invoice, facts=facts, now=invoice.issued_at, source=source),
    )
    for attempt in invoice.attempts:
        yield (
            attempt.attempted_at,
            _MONEY,
            next(order),
            invoice.external_id,
            partial(
                services.record_payment_attempt,
                invoice=invoice.external_id,
                attempted_at=attempt.attempted_at,
                outcome=attempt.outcome,
                now=attempt.attempted_at,
                source=source,
                amount=attempt.amount,
                decline_code=attempt.decline_code,
                advice_code=attempt.advice_code,
                network_code=attempt.network_code,
                gateway=GATEWAY,
                reference=attempt.reference,
                payment_method=attempt.payment_method,
            ),
        )
    for payment in invoice.payments:
        yield (
            payment.received_at,
            _MONEY,
            next(order),
            invoice.external_id,
            partial(
                services.record_payment,
                invoice=invoice.external_id,
                amount=payment.amount,
                currency=invoice.currency,
                received_at=payment.received_at,
                method=payment.method,
                reference=payment.reference,
                now=payment.received_at,
                source=source,
            ),
        )
    if change := invoice.status_change:
        yield (
            change.at,
            _STATUS,
            next(order),
            invoice.external_id,
            partial(
                services.change_invoice_status,
                invoice=invoice.external_id,
                status=change.status,
                now=change.at,
                source=source,
                reason=change.reason,
            ),
        )


@dataclass(frozen=True, slots=True)
class CurrencyTotals:
    currency: str
    invoices: int
    open: int
    overdue: int
    overdue_amount: int  # minor units still owed on the overdue invoices


@dataclass(frozen=True, slots=True)
class Summary:
    """What the ledger holds, read back from the database after a load."""

    customers: int
    businesses: int
    locales: dict[str, int]
    cards: int
    cards_expiring: int  # this month or next
    cards_expired: int
    currencies: tuple[CurrencyTotals, ...]
    attempts: int
    failed_attempts: int
    payments: int


def summarize(*, now: datetime) -> Summary:
    overdue: dict[str, tuple[int, int]] = {
        row["currency"]: (row["count"], row["owed"])
        for row in selectors.overdue_invoices(now=now)
        .values("currency")
        .annotate(count=Count("id"), owed=Sum("amount_remaining"))
    }
    currencies = tuple(
        CurrencyTotals(
            row["currency"], row["count"], row["open"], *overdue.get(row["currency"], (0, 0))
        )
        for row in Invoice.objects.values("currency")
        .annotate(count=Count("id"), open=Count("id", filter=Q(status="open")))
        .order_by("-count")
    )
    this_month = now.year * 12 + now.month
    card_months = [
        year * 12 + month
        for year, month in PaymentMethod.objects.filter(type=PaymentMethodType.CARD).values_list(
            "exp_year", "exp_month"
        )
        if year and month
    ]
    locales = Counter(Customer.objects.values_list("locale", flat=True))
    return Summary(
        customers=sum(locales.values()),
        businesses=Customer.objects.filter(is_business=True).count(),
        locales=dict(locales.most_common()),
        cards=len(card_months),
        cards_expiring=sum(1 for m in card_months if this_month <= m <= this_month + 1),
        cards_expired=sum(1 for m in card_months if m < this_month),
        currencies=currencies,
        attempts=PaymentAttempt.objects.count(),
        failed_attempts=PaymentAttempt.objects.filter(outcome=AttemptOutcome.FAILED).count(),
        payments=Payment.objects.count(),
    )
