"""Turning a planned message into an outbox row: pick the template, render it, store it.

The row is written in the decision's transaction and holds the message exactly
as it will be sent.  Its idempotency key (case, step, channel) is unique, so a
decision replayed after a crash cannot write the same message twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import cast
from zoneinfo import ZoneInfo

from django.conf import settings

from dunning.core.contacts import Channel
from dunning.core.policy import PAYMENT_RECEIVED_TEMPLATE, Action
from dunning.core.rendering import (
    Company,
    InvoiceSummary,
    MessageContext,
    Tone,
    default_template,
    render,
)
from dunning.core.rendering import (
    Customer as TemplateCustomer,
)
from dunning.engine import links
from dunning.engine.models import Case, CaseEvent, Message
from dunning.ledger.models import Invoice, InvoiceStatus

# What a final notice says will happen, per action and language.
CONSEQUENCES = {
    Action.LATE_FEE: {
        "en": "a late fee will be added as set out in your terms",
        "th": "จะมีค่าธรรมเนียมการชำระล่าช้าตามเงื่อนไขการให้บริการ",
    },
    Action.PAUSE_SERVICE: {
        "en": "your service will be paused until the balance is paid",
        "th": "บริการของท่านจะถูกระงับชั่วคราวจนกว่าจะได้รับชำระเงิน",
    },
    Action.CANCEL: {
        "en": "your subscription will be cancelled",
        "th": "การสมัครใช้บริการของท่านจะถูกยกเลิก",
    },
    Action.MARK_UNCOLLECTIBLE: {
        "en": "the balance will be passed to our collections team",
        "th": "ยอดค้างชำระจะถูกส่งต่อให้ฝ่ายติดตามหนี้ของเรา",
    },
    Action.HAND_TO_AGENCY: {
        "en": "the balance will be referred to a collection agency",
        "th": "ยอดค้างชำระจะถูกส่งต่อให้บริษัทติดตามหนี้",
    },
}


def _language(locale: str) -> str:
    return "th" if locale.lower().startswith("th") else "en"


def consequences_of(actions: tuple[Action, ...], *, locale: str) -> str:
    texts = [
        CONSEQUENCES[action][_language(locale)] for action in actions if action in CONSEQUENCES
    ]
    return "; ".join(texts)


def _summaries(case: Case, *, statuses: tuple[str, ...]) -> tuple[InvoiceSummary, ...]:
    zone = ZoneInfo(case.customer.time_zone)
    invoices = Invoice.objects.filter(cases=case, status__in=statuses).order_by("due_at", "id")
    return tuple(
        InvoiceSummary(
            number=invoice.number,
            issued_on=invoice.issued_at.astimezone(zone).date(),
            due_on=invoice.due_at.astimezone(zone).date(),
            amount=invoice.amount_due,
            remaining=invoice.amount_remaining if statuses != ("paid",) else invoice.amount_due,
            currency=invoice.currency,
            description=str(invoice.context.get("plan", "")) if invoice.context else "",
        )
        for invoice in invoices
    )


def write_message(
    case: Case,
    *,
    step: str,
    channel: Channel,
    template_key: str,
    variant: str,
    tone: str,
    now: datetime,
    deadline: date | None = None,
    consequences: str | None = None,
    statuses: tuple[str, ...] = (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE),
    is_final: bool = False,
) -> Message | None:
    """Render and store one message; None (with a timeline entry) when it cannot be sent."""
    customer = case.customer
    if channel != Channel.EMAIL:
        _note(case, now, f"{channel} is not available yet; step {step} goes out by email only")
        return None
    if not customer.email:
        _note(case, now, f"no email address for {customer.name}: step {step} not sent")
        return None
    invoices = _summaries(case, statuses=statuses)
    if not invoices:
        return None
    template = default_template(template_key, customer.locale)
    days_overdue = max(0, (now - case.due_at).days) if case.due_at else 0
    unsubscribe = links.unsubscribe_link(customer, channel)
    context = MessageContext(
        customer=TemplateCustomer(name=customer.name, locale=customer.locale),
        company=Company(
            name=settings.DUNNING_COMPANY_NAME,
            support_email=settings.DUNNING_SUPPORT_EMAIL,
            support_phone=settings.DUNNING_SUPPORT_PHONE or None,
        ),
        invoices=invoices,
        days_overdue=days_overdue,
        pay_link=links.pay_link(customer, case),
        tone=cast(Tone, str(tone)),  # policy tones and template tones share their names
        is_final=is_final,
        deadline=deadline,
        consequences=consequences,
        unsubscribe_link=unsubscribe,
    )
    rendered = render(template, context)
    message, _ = Message.objects.get_or_create(
        idempotency_key=f"case{case.pk}:{step}:{channel}",
        defaults={
            "case": case,
            "customer": customer,
            "channel": channel,
            "to": customer.email,
            "locale": template.locale,
            "subject": rendered.subject,
            "body_text": rendered.text,
            "body_html": rendered.html,
            "headers": {"unsubscribe_url": unsubscribe},
            "step": step,
            "template": template_key,
            "variant": variant,
            "send_after": now,
            "created_at": now,
            "updated_at": now,
        },
    )
    return message


def write_thank_you(case: Case, *, now: datetime) -> Message | None:
    """The one "thank you, payment received" message of a recovered case."""
    return write_message(
        case,
        step="payment_received",
        channel=Channel.EMAIL,
        template_key=PAYMENT_RECEIVED_TEMPLATE,
        variant="",
        tone="friendly",
        now=now,
        statuses=(InvoiceStatus.PAID,),
    )


def _note(case: Case, now: datetime, reason: str) -> None:
    CaseEvent.objects.create(case=case, type="message.not_sent", reason=reason, occurred_at=now)
