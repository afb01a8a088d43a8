"""Turning a planned message into an outbox row: pick the template, render it, store it.

`compose` renders one planned message into an unsaved outbox row; the decide
stage saves a whole batch of them in one statement, in the decision's
transaction.  A row holds the message exactly as it will be sent.  Its
idempotency key (case, step, channel) is unique, so a decision replayed after a
crash cannot write the same message twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Protocol, cast
from zoneinfo import ZoneInfo

from django.conf import settings

from dunning.core.contact_rules import RulePackContactRules
from dunning.core.contacts import CONTACT_LOOKBACK_DAYS, Channel, Contact, Debtor, Verdict
from dunning.core.policy import PAYMENT_RECEIVED_TEMPLATE, Action
from dunning.core.rendering import (
    Company,
    InvoiceSummary,
    MessageContext,
    MessageTemplate,
    RenderedMessage,
    Tone,
    render,
)
from dunning.core.rendering import (
    Customer as TemplateCustomer,
)
from dunning.engine import links, templates
from dunning.engine.models import Case, CaseEvent, ContactOptOut, Message, MessageStatus
from dunning.ledger.models import Customer, Invoice, InvoiceStatus


class TemplateSource(Protocol):
    def __call__(self, key: str, locale: str, *, variant: str = "") -> MessageTemplate: ...


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


def summaries(
    invoices: Iterable[Invoice], *, zone: ZoneInfo, paid: bool = False
) -> tuple[InvoiceSummary, ...]:
    """What a message lists: each invoice with what it still owes (or, once paid, what it was)."""
    return tuple(
        InvoiceSummary(
            number=invoice.number,
            issued_on=invoice.issued_at.astimezone(zone).date(),
            due_on=invoice.due_at.astimezone(zone).date(),
            amount=invoice.amount_due,
            remaining=invoice.amount_due if paid else invoice.amount_remaining,
            currency=invoice.currency,
            description=str(invoice.context.get("plan", "")) if invoice.context else "",
        )
        for invoice in sorted(invoices, key=lambda invoice: (invoice.due_at, invoice.pk))
    )


def idempotency_key(case: Case, step: str, channel: Channel | str) -> str:
    """One message per case, step and channel, however often the decision is replayed."""
    return f"case{case.pk}:{step}:{channel}"


def compose(
    case: Case,
    *,
    invoices: Sequence[Invoice],
    step: str,
    channel: Channel,
    template_key: str,
    variant: str,
    tone: str,
    now: datetime,
    deadline: date | None = None,
    consequences: str | None = None,
    is_final: bool = False,
    paid: bool = False,
    payment_problem: str | None = None,
    templates: TemplateSource = templates.resolve,
) -> Message | str:
    """The unsaved outbox row for one planned message, or why it cannot be sent.

    The caller loads `invoices` (the case's owing ones, or its paid ones for a
    thank-you) and saves the row, so the decide stage can do both for a whole
    batch in a few queries; it passes `templates` too, the store as read once
    for the batch (`TemplateResolver.resolve`).  The row records the wording
    used: the template's key (a variant's own, when it has one) and version.
    `payment_problem` is a declined card's neutral explanation and request, in
    the customer's language (`dunning.core.declines.customer_text`), or None.
    """
    customer = case.customer
    if channel != Channel.EMAIL:
        return f"{channel} is not available yet; step {step} goes out by email only"
    if not customer.email:
        return f"no email address for {customer.name}: step {step} not sent"
    if not invoices:
        return f"nothing owed on the case any more: step {step} not sent"
    template = templates(template_key, customer.locale, variant=variant)
    days_overdue = max(0, (now - case.due_at).days) if case.due_at else 0
    unsubscribe = links.unsubscribe_link(customer, channel)
    context = MessageContext(
        customer=TemplateCustomer(name=customer.name, locale=customer.locale),
        company=company(),
        invoices=summaries(invoices, zone=ZoneInfo(customer.time_zone), paid=paid),
        days_overdue=days_overdue,
        pay_link=links.pay_link(customer, case),
        tone=cast(Tone, str(tone)),  # policy tones and template tones share their names
        is_final=is_final,
        deadline=deadline,
        consequences=consequences,
        unsubscribe_link=unsubscribe,
        payment_problem=payment_problem,
    )
    return outbox_row(
        case=case,
        customer=customer,
        channel=channel,
        template=template,
        rendered=render(template, context),
        unsubscribe=unsubscribe,
        step=step,
        variant=variant,
        send_after=now,
        key=idempotency_key(case, step, channel),
        now=now,
    )


def outbox_row(
    *,
    case: Case | None,
    customer: Customer,
    channel: Channel,
    template: MessageTemplate,
    rendered: RenderedMessage,
    unsubscribe: str,
    step: str,
    variant: str,
    send_after: datetime,
    key: str,
    now: datetime,
) -> Message:
    """The unsaved outbox row for a rendered message, exactly as it will be sent."""
    return Message(
        case=case,
        customer=customer,
        channel=channel,
        to=customer.email,
        locale=template.locale,
        subject=rendered.subject,
        body_text=rendered.text,
        body_html=rendered.html,
        headers={"unsubscribe_url": unsubscribe},
        step=step,
        template=template.key,
        template_version=template.version,
        variant=variant,
        send_after=send_after,
        idempotency_key=key,
        created_at=now,
        updated_at=now,
    )


def company() -> Company:
    """The sender as messages name it (settings)."""
    return Company(
        name=settings.DUNNING_COMPANY_NAME,
        support_email=settings.DUNNING_SUPPORT_EMAIL,
        support_phone=settings.DUNNING_SUPPORT_PHONE or None,
    )


def write_thank_you(case: Case, *, now: datetime) -> Message | None:
    """The one "thank you, payment received" message of a recovered case."""
    step, channel = "payment_received", Channel.EMAIL
    paid = Invoice.objects.filter(cases=case, status=InvoiceStatus.PAID)
    message = compose(
        case,
        invoices=list(paid),
        step=step,
        channel=channel,
        template_key=PAYMENT_RECEIVED_TEMPLATE,
        variant="",
        tone="friendly",
        now=now,
        paid=True,
    )
    if isinstance(message, str):
        CaseEvent.objects.create(
            case=case, type="message.not_sent", reason=message, occurred_at=now
        )
        return None
    existing = Message.objects.filter(idempotency_key=message.idempotency_key).first()
    if existing is not None:
        return existing
    verdict = _contact_verdict(case, now=now)
    if verdict.allowed_at is None:
        CaseEvent.objects.create(
            case=case,
            type="message.blocked",
            reason=f"payment_received by email held for good: {'; '.join(verdict.reasons)}",
            occurred_at=now,
        )
        return None
    # Even a thank-you is a contact: it waits for the customer's window and
    # counts towards the daily cap (Thailand: one contact a day, any subject).
    message.send_after = verdict.allowed_at
    message.save(force_insert=True)
    if verdict.allowed_at > now:
        CaseEvent.objects.create(
            case=case,
            type="message.deferred",
            reason=f"payment_received by email held until {verdict.allowed_at.isoformat()}: "
            + "; ".join(verdict.reasons),
            occurred_at=now,
        )
    return message


def _contact_verdict(case: Case, *, now: datetime) -> Verdict:
    return contact_verdict(case.customer, debt=str(case.pk), now=now)


def contact_verdict(customer: Customer, *, debt: str, now: datetime) -> Verdict:
    """When the contact rules let an email to `customer` about `debt` go out (None: never).

    `debt` is the case's id, or "" for a message about no debt (a card about to
    expire), which the rules count against every debt.  Counts every message
    the customer got or will get, whatever it was about: each is a contact.
    """
    recent = Message.objects.filter(
        customer=customer, created_at__gte=now - timedelta(days=CONTACT_LOOKBACK_DAYS)
    ).exclude(status__in=[MessageStatus.CANCELED, MessageStatus.FAILED])
    history = [
        Contact(
            at=m.sent_at or m.send_after,
            channel=Channel(m.channel),
            debt=str(m.case_id or ""),
        )
        for m in recent.only("sent_at", "send_after", "channel", "case_id")
    ]
    opted_out = frozenset(
        Channel(c)
        for c in ContactOptOut.objects.filter(customer=customer).values_list("channel", flat=True)
    )
    debtor = debtor_of(customer, opted_out=opted_out)
    return RulePackContactRules().earliest(
        at=now, channel=Channel.EMAIL, debtor=debtor, history=history, debt=debt
    )


def debtor_of(customer: Customer, *, opted_out: frozenset[Channel] = frozenset()) -> Debtor:
    """What the contact rules need to know of a customer."""
    return Debtor(
        time_zone=customer.time_zone,
        country=customer.country,
        is_business=customer.is_business,
        opted_out=opted_out,
    )
