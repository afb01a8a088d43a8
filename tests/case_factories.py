"""Cases, their events and messages, written straight to the engine's tables for tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from dunning.core.policy import SEND_INVOICE_DEFAULT
from dunning.core.policy_json import to_dict
from dunning.engine.models import Case, CaseEvent, CaseInvoice, Message, PolicyVersion
from dunning.ledger.models import Invoice
from tests.conftest import NOW


def policy() -> PolicyVersion:
    """A stored policy the engine can read (the default send_invoice one, under a test key)."""
    found = PolicyVersion.objects.filter(key="test.default", version=1).first()
    return found or PolicyVersion.objects.create(
        key="test.default",
        version=1,
        name="Test policy",
        definition=to_dict(SEND_INVOICE_DEFAULT),
        created_at=NOW,
    )


def make_case(*invoices: Invoice, state: str = "active", **values: Any) -> Case:
    """A case over `invoices` (one customer, one currency), opened a day before NOW."""
    first = invoices[0]
    opened = NOW - timedelta(days=1)
    values.setdefault("next_action_at", NOW + timedelta(hours=6))
    case = Case.objects.create(
        customer=first.customer,
        currency=first.currency,
        state=state,
        collection_method=first.collection_method,
        policy=policy(),
        amount_due=sum(i.amount_remaining for i in invoices),
        due_at=min(i.due_at for i in invoices),
        opened_at=opened,
        created_at=opened,
        updated_at=opened,
        **values,
    )
    for invoice in invoices:
        CaseInvoice.objects.create(case=case, invoice=invoice, added_at=opened)
    return case


def add_event(case: Case, type: str, at: datetime, **values: Any) -> CaseEvent:
    values.setdefault("reason", type)
    return CaseEvent.objects.create(case=case, type=type, occurred_at=at, **values)


def add_message(case: Case, at: datetime, **values: Any) -> Message:
    """A message written at `at`; pass status="sent" and sent_at for one that went out."""
    values.setdefault("channel", "email")
    values.setdefault("to", case.customer.email)
    values.setdefault("locale", case.customer.locale)
    values.setdefault("subject", "Payment reminder")
    values.setdefault("body_text", "Your invoice is overdue.")
    values.setdefault("step", "overdue_1")
    values.setdefault("template", "reminder_overdue")
    values.setdefault("send_after", at)
    return Message.objects.create(
        case=case,
        customer=case.customer,
        idempotency_key=uuid4().hex,
        created_at=at,
        updated_at=at,
        **values,
    )
