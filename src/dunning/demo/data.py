"""The demo's facts as plain, frozen values: what `generate` returns and `load` writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from dunning.demo.catalog import DemoLine

__all__ = [
    "DemoAttempt",
    "DemoCard",
    "DemoCustomer",
    "DemoData",
    "DemoInvoice",
    "DemoLine",
    "DemoPayment",
    "DemoStatusChange",
    "overdue_days",
]


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    external_id: str
    name: str
    email: str
    phone: str
    locale: str
    time_zone: str
    country: str
    is_business: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DemoCard:
    external_id: str
    customer: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    country: str
    added_at: datetime  # it becomes the customer's default card


@dataclass(frozen=True, slots=True)
class DemoAttempt:
    attempted_at: datetime
    outcome: str  # "succeeded" (which also records the payment) or "failed"
    amount: int
    payment_method: str
    reference: str
    decline_code: str = ""
    advice_code: str = ""
    network_code: str = ""


@dataclass(frozen=True, slots=True)
class DemoPayment:
    """Money received outside the card gateway: a bank transfer, PromptPay, a cheque."""

    received_at: datetime
    amount: int
    method: str
    reference: str


@dataclass(frozen=True, slots=True)
class DemoStatusChange:
    status: str  # "void" or "uncollectible"
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class DemoInvoice:
    external_id: str
    number: str
    customer: str
    currency: str
    amount_due: int
    issued_at: datetime
    due_at: datetime
    collection_method: str
    lines: tuple[DemoLine, ...]
    context: Mapping[str, str]
    attempts: tuple[DemoAttempt, ...] = ()
    payments: tuple[DemoPayment, ...] = ()
    status_change: DemoStatusChange | None = None

    @property
    def amount_paid(self) -> int:
        charged = sum(a.amount for a in self.attempts if a.outcome == "succeeded")
        return charged + sum(p.amount for p in self.payments)

    @property
    def status(self) -> str:
        """The status the ledger will give the invoice once everything is loaded."""
        if self.status_change and self.status_change.status == "void":
            return "void"
        if self.amount_paid == self.amount_due:
            return "paid"
        return self.status_change.status if self.status_change else "open"


@dataclass(frozen=True, slots=True)
class DemoData:
    seed: int
    now: datetime
    customers: tuple[DemoCustomer, ...]
    cards: tuple[DemoCard, ...]
    invoices: tuple[DemoInvoice, ...]


def overdue_days(invoice: DemoInvoice, now: datetime) -> int | None:
    """Whole days an open invoice is past due; None when it is not open or not yet due."""
    if invoice.status != "open" or invoice.due_at > now:
        return None
    return (now - invoice.due_at).days
