"""Turning a planned message into an outbox row: pick the template, render it, store it.

`compose` renders one planned message into an unsaved outbox row; the decide
stage saves a whole batch of them in one statement, in the decision's
transaction.  A row holds the message exactly as it will be sent.  Its
idempotency key (case, step, channel) is unique, so a decision replayed after a
crash cannot write the same message twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Protocol, cast
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import BigIntegerField, CharField, DateTimeField

from dunning.core.contact_rules import RulePackContactRules
from dunning.core.contacts import CONTACT_LOOKBACK_DAYS, Channel, Contact, Debtor, Verdict
from dunning.core.fields import UTC_ZONE, known_zone
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
from dunning.db import Param, ParamList, Prepared, bulk_insert
from dunning.engine import links, templates
from dunning.engine.models import (
    Case,
    CaseEvent,
    CaseInvoice,
    ContactOptOut,
    Message,
    MessageStatus,
)
from dunning.engine.templates import TemplateResolver
from dunning.ledger.models import Customer, Invoice, InvoiceStatus


class TemplateSource(Protocol):
    def __call__(self, key: str, locale: str, *, variant: str = "") -> MessageTemplate: ...


# What a final notice says will happen, per action and language: only what the
# action does, never a step that may not follow (Thailand's Debt Collection Act
# forbids misleading a debtor, s.11-12, rules.md), in the active voice of Thai letters.
CONSEQUENCES = {
    Action.LATE_FEE: {
        "en": "a late fee will be added as set out in your terms",
        "th": "เราจะเรียกเก็บค่าธรรมเนียมการชำระล่าช้าตามเงื่อนไขการให้บริการ",
    },
    Action.PAUSE_SERVICE: {
        "en": "your service will be paused until the balance is paid",
        "th": "เราจะระงับบริการของท่านชั่วคราวจนกว่าจะได้รับชำระเงิน",
    },
    Action.CANCEL: {
        "en": "your subscription will be cancelled",
        "th": "เราจะยกเลิกการสมัครใช้บริการของท่าน",
    },
    Action.MARK_UNCOLLECTIBLE: {
        "en": "automatic reminders will stop and our accounts team will contact you "
        "about the unpaid balance",
        "th": "ระบบจะหยุดส่งการแจ้งเตือนอัตโนมัติ และฝ่ายบัญชีของเราจะติดต่อท่านเกี่ยวกับยอดค้างชำระ",
    },
    Action.HAND_TO_AGENCY: {
        "en": "the balance will be referred to a collection agency",
        "th": "เราจะส่งเรื่องยอดค้างชำระให้บริษัทติดตามหนี้ดำเนินการต่อ",
    },
}
# How a final notice joins two of them: English lists them; Thai says "and".
_JOIN = {"en": "; ", "th": " และ"}


def _language(locale: str) -> str:
    return "th" if locale.lower().startswith("th") else "en"


def consequences_of(actions: tuple[Action, ...], *, locale: str) -> str:
    """What the final notice says will happen, as a sentence's end: a full stop in
    English, none in Thai, which does not use one."""
    language = _language(locale)
    texts = [CONSEQUENCES[action][language] for action in actions if action in CONSEQUENCES]
    if not texts:
        return ""
    return _JOIN[language].join(texts) + ("" if language == "th" else ".")


def summaries(
    invoices: Iterable[Invoice], *, zone: ZoneInfo, paid: bool = False
) -> tuple[InvoiceSummary, ...]:
    """What a message lists: each invoice with what it still owes (nothing, once `paid`)."""
    return tuple(
        InvoiceSummary(
            number=invoice.number,
            issued_on=invoice.issued_at.astimezone(zone).date(),
            due_on=invoice.due_at.astimezone(zone).date(),
            amount=invoice.amount_due,
            remaining=0 if paid else invoice.amount_remaining,
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
    # Calendar days where the customer is, as the due date the message prints.
    zone = known_zone(customer.time_zone) or UTC_ZONE  # unknown: see `fields.known_zone`
    days_overdue = (
        max(0, (now.astimezone(zone).date() - case.due_at.astimezone(zone).date()).days)
        if case.due_at
        else 0
    )
    unsubscribe = links.unsubscribe_link(customer, channel)
    context = MessageContext(
        customer=template_customer(customer),
        company=company(),
        invoices=summaries(invoices, zone=zone, paid=paid),
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


def template_customer(customer: Customer) -> TemplateCustomer:
    """The customer as messages and pages name and greet them (`.addressee`)."""
    return TemplateCustomer(
        name=customer.name, locale=customer.locale, is_business=customer.is_business
    )


def company() -> Company:
    """The sender as messages name it (settings)."""
    return Company(
        name=settings.DUNNING_COMPANY_NAME,
        support_email=settings.DUNNING_SUPPORT_EMAIL,
        support_phone=settings.DUNNING_SUPPORT_PHONE or None,
    )


def write_thank_yous(cases: Sequence[Case], *, now: datetime) -> list[Message]:
    """The one "thank you, payment received" message of each recovered case, in a few queries.

    Even a thank-you is a contact: it waits for the customer's window and
    counts towards the daily cap (Thailand: one contact a day, any subject),
    so two cases of one customer recovered together are judged one after the
    other.  A case thanked before (a replay) is left as it is.
    """
    step, channel = "payment_received", Channel.EMAIL
    keys = {case.pk: idempotency_key(case, step, channel) for case in cases}
    written = {key for (key,) in _WRITTEN().rows(keys=list(keys.values()))}
    cases = [case for case in cases if keys[case.pk] not in written]
    if not cases:
        return []
    paid: dict[int, list[Invoice]] = defaultdict(list)
    for link in _PAID_INVOICES().instances(cases=[case.pk for case in cases]):
        paid[link.case_id].append(link.invoice)
    lock_contacts(case.customer_id for case in cases)
    book = ContactBook.load([case.customer for case in cases], now=now)
    resolve = TemplateResolver.load().resolve
    messages: list[Message] = []
    events: list[CaseEvent] = []
    for case in cases:
        message = compose(
            case,
            invoices=paid[case.pk],
            step=step,
            channel=channel,
            template_key=PAYMENT_RECEIVED_TEMPLATE,
            variant="",
            tone="friendly",
            now=now,
            paid=True,
            templates=resolve,
        )
        if isinstance(message, str):
            events.append(
                CaseEvent(case=case, type="message.not_sent", reason=message, occurred_at=now)
            )
            continue
        verdict = book.verdict(case.customer, debt=str(case.pk), now=now)
        if verdict.allowed_at is None:
            events.append(
                CaseEvent(
                    case=case,
                    type="message.blocked",
                    reason="payment_received by email held for good: " + "; ".join(verdict.reasons),
                    occurred_at=now,
                )
            )
            continue
        message.send_after = verdict.allowed_at
        book.add(case.customer_id, at=verdict.allowed_at, debt=str(case.pk))
        messages.append(message)
        if verdict.allowed_at > now:
            events.append(
                CaseEvent(
                    case=case,
                    type="message.deferred",
                    reason="payment_received by email held until "
                    f"{verdict.allowed_at.isoformat()}: " + "; ".join(verdict.reasons),
                    occurred_at=now,
                )
            )
    bulk_insert(messages)
    bulk_insert(events)
    return messages


def lock_contacts(customer_ids: Iterable[int], *, skip_locked: bool = False) -> set[int]:
    """Hold these customers' contacts until commit; returns the ids now held.

    Two transactions judging one customer's contacts at once (a webhook's
    thank-you and the decide stage's reminder) would each miss the other's
    message and both send today, where Thailand allows one contact a day.  A
    row lock on each customer serialises them: the second judges after the
    first commits, and sees its message.  FOR NO KEY UPDATE leaves rows that
    merely reference the customer free to be written.  Locks are taken in id
    order.  With `skip_locked` a customer another transaction holds is left
    out instead of waited for: the decide stage, which holds its claimed cases
    meanwhile, never waits, so it cannot close a cycle of waits.  SQLite has
    one writer at a time, which serialises them already.
    """
    ids = sorted(set(customer_ids))
    if not ids or not connection.features.has_select_for_update:
        return set(ids)
    return set(
        Customer.objects.select_for_update(no_key=True, skip_locked=skip_locked)
        .filter(pk__in=ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


class ContactBook:
    """Customers' recent contacts and opt-outs, read in two queries, to judge emails by.

    Counts every message a customer got or will get, whatever it was about:
    each is a contact.  `add` counts one more, so the next verdict for the
    same customer sees it.
    """

    def __init__(
        self, contacts: dict[int, list[Contact]], opted_out: dict[int, frozenset[Channel]]
    ):
        self._contacts = contacts
        self._opted_out = opted_out

    @classmethod
    def load(cls, customers: Iterable[Customer], *, now: datetime) -> ContactBook:
        ids = list({customer.pk for customer in customers})
        contacts: dict[int, list[Contact]] = defaultdict(list)
        since = now - timedelta(days=CONTACT_LOOKBACK_DAYS)
        for customer_id, sent_at, send_after, channel, case_id in _RECENT().rows(
            customers=ids, since=since
        ):
            contacts[customer_id].append(
                Contact(at=sent_at or send_after, channel=Channel(channel), debt=str(case_id or ""))
            )
        return cls(contacts, opted_out(ids))

    def verdict(self, customer: Customer, *, debt: str, now: datetime) -> Verdict:
        """When the contact rules let an email to `customer` about `debt` go out (None: never)."""
        debtor = debtor_of(customer, opted_out=self._opted_out.get(customer.pk, frozenset()))
        return _RULES.earliest(
            at=now,
            channel=Channel.EMAIL,
            debtor=debtor,
            history=self._contacts.get(customer.pk, []),
            debt=debt,
        )

    def add(self, customer_id: int, *, at: datetime, debt: str) -> None:
        self._contacts[customer_id].append(Contact(at=at, channel=Channel.EMAIL, debt=debt))


_RULES = RulePackContactRules()

# The reads of `write_thank_yous` and `ContactBook.load`, compiled once each: every
# recovery and every contact verdict runs them.
_WRITTEN = Prepared(
    lambda: Message.objects.filter(idempotency_key__in=ParamList("keys", CharField())).values_list(
        "idempotency_key"
    )
)
_PAID_INVOICES: Prepared[CaseInvoice] = Prepared(
    lambda: CaseInvoice.objects.filter(
        case_id__in=ParamList("cases", BigIntegerField()),
        invoice__status=InvoiceStatus.PAID,
        # An invoice credited to nothing is "paid" with no money received: not thanked for.
        invoice__amount_paid__gt=0,
    ).select_related("invoice")
)
_RECENT = Prepared(
    lambda: (
        Message.objects.filter(
            customer_id__in=ParamList("customers", BigIntegerField()),
            created_at__gte=Param("since", DateTimeField()),
        )
        .exclude(status__in=[MessageStatus.CANCELED, MessageStatus.FAILED])
        .values_list("customer_id", "sent_at", "send_after", "channel", "case_id")
    )
)
_OPTED_OUT = Prepared(
    lambda: ContactOptOut.objects.filter(
        customer_id__in=ParamList("customers", BigIntegerField())
    ).values_list("customer_id", "channel")
)


def opted_out(customers: Iterable[int]) -> dict[int, frozenset[Channel]]:
    """The channels each of these customers opted out of (those who opted out of any)."""
    found: dict[int, set[Channel]] = defaultdict(set)
    for customer_id, channel in _OPTED_OUT().rows(customers=list(customers)):
        found[customer_id].add(Channel(channel))
    return {customer_id: frozenset(channels) for customer_id, channels in found.items()}


def contact_verdict(customer: Customer, *, debt: str, now: datetime) -> Verdict:
    """When the contact rules let an email to `customer` about `debt` go out (None: never).

    `debt` is the case's id, or "" for a message about no debt (a card about to
    expire), which the rules count against every debt.
    """
    return ContactBook.load([customer], now=now).verdict(customer, debt=debt, now=now)


def debtor_of(customer: Customer, *, opted_out: frozenset[Channel] = frozenset()) -> Debtor:
    """What the contact rules need to know of a customer."""
    return Debtor(
        time_zone=customer.time_zone,
        country=customer.country,
        is_business=customer.is_business,
        opted_out=opted_out,
    )
