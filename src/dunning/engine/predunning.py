"""Pre-dunning: a friendly request to update a card that will stop working before the renewal.

The card asked about is the one a charge would go on (`retries.card_to_charge`:
the default, else the card saved last), so the request, the card page it links
to and the charge all speak of the same card.  A card stops working at the
first instant of the month after its expiry month, in the customer's time
zone.  When that comes before the customer's next renewal (the latest
charge_automatically invoice's due date plus the customer's billing interval:
the months between their last two such invoices, rounded to 1, 3, 6 or 12, or
one month when there is only one), and that renewal is at most
RENEWAL_HORIZON away, the customer gets one email asking
them to update the card: shortly before it matters, not a year early, and
before any payment has failed.

The message belongs to no case (nothing is overdue) but it is a contact: it
waits for the customer's contact window, counts towards the daily caps, and is
never written to a customer who opted out of email.  Its idempotency key names
the card and its expiry, so each expiry of each card is asked about once, ever;
a card updated to a new expiry that is running out again is asked about again.
A request still waiting to go out (for the customer's morning, the daily cap)
is canceled when the card it asks about stops being the card to charge with
that expiry: updated by the customer or a card updater, replaced, taken off file.
"""

from __future__ import annotations

import calendar
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import IntegrityError, transaction
from django.db.models import F, OuterRef, Q, Subquery

from dunning.core.cases import CaseState
from dunning.core.contacts import Channel
from dunning.core.formatting import card_brand_name
from dunning.core.rendering import CardSummary, MessageContext, RenderError, render
from dunning.engine import links, templates
from dunning.engine.models import CARD_REQUEST_STEP, OPEN_STATES, Message, MessageStatus
from dunning.engine.retries import CARD_ORDER, card_to_charge
from dunning.engine.writer import (
    company,
    contact_verdict,
    lock_contacts,
    outbox_row,
    template_customer,
)
from dunning.ledger.models import (
    CollectionMethod,
    Event,
    Invoice,
    PaymentMethod,
    PaymentMethodType,
)

log = logging.getLogger(__name__)

CARD_EXPIRING_TEMPLATE = "card.expiring"
STEP = CARD_REQUEST_STEP
# Ask when the renewal the card would miss is at most this far away: early
# enough to update the card, late enough that the request still feels relevant.
RENEWAL_HORIZON = timedelta(days=30)
# The ledger's events about a customer's subscriptions at Stripe, and the statuses
# after which a subscription renews no more.
SUBSCRIPTION_EVENTS = "stripe.customer.subscription."
ENDED_SUBSCRIPTIONS = frozenset({"canceled", "incomplete_expired"})
# A customer with a case in these states owes money: the request, which says
# there is nothing to pay, is not theirs.
OWING_STATES = (*OPEN_STATES, CaseState.EXHAUSTED)


@dataclass(frozen=True, slots=True)
class ExpiringCard:
    method: PaymentMethod
    stops_at: datetime  # the first instant the card no longer works
    renewal: datetime  # when the next renewal will charge it

    @property
    def idempotency_key(self) -> str:
        return expiring_card_key(self.method, Channel.EMAIL)


def expiring_card_key(method: PaymentMethod, channel: Channel | str) -> str:
    """One request per card, expiry and channel, however often the worker passes."""
    return f"card{method.pk}:exp{method.exp_year}-{method.exp_month:02d}:{Channel(channel).value}"


def remind_expiring_cards(*, now: datetime, limit: int = 500) -> int:
    """Write the requests due as of `now` (at most `limit`); returns how many were written."""
    due = expiring_cards(now=now)
    if not due:
        return 0
    asked = set(
        Message.objects.filter(
            idempotency_key__in=[card.idempotency_key for card in due]
        ).values_list("idempotency_key", flat=True)
    )
    written = 0
    for card in due:
        if written >= limit:
            break
        if card.idempotency_key not in asked and _write_request(card, now=now) is not None:
            written += 1
    return written


def expiring_cards(*, now: datetime) -> list[ExpiringCard]:
    """Cards to charge that stop working before a renewal at most RENEWAL_HORIZON away."""
    renewals = Invoice.objects.filter(
        customer=OuterRef("customer"), collection_method=CollectionMethod.CHARGE_AUTOMATICALLY
    ).order_by("-due_at")
    latest_due = Subquery(renewals.values("due_at")[:1])
    previous_due = Subquery(renewals.values("due_at")[1:2])
    # The card a charge of the customer's goes on, as `retries.card_to_charge` picks it.
    charged = Subquery(
        PaymentMethod.objects.filter(
            customer=OuterRef("customer"), type=PaymentMethodType.CARD, detached_at__isnull=True
        )
        .order_by(*CARD_ORDER)
        .values("pk")[:1]
    )
    # A coarse filter the database can answer; the exact test, in each
    # customer's time zone, follows.  A card that stops between now and the
    # horizon expires in one of these months (a day of slack for time zones).
    months = Q()
    for year, month in _months(now - timedelta(days=1), now + RENEWAL_HORIZON + timedelta(days=1)):
        months |= Q(exp_year=year, exp_month=month)
    # Renewal = latest due + the interval (at most a year), between now and now +
    # horizon: the latest due date is at most a year (366 days) back and a few days
    # ahead (a month's renewal in February).
    methods = (
        PaymentMethod.objects.filter(months, type=PaymentMethodType.CARD, detached_at__isnull=True)
        .annotate(charged=charged)
        .filter(pk=F("charged"))
        # Nobody to write to: no address, or opted out of email (checked again on writing).
        .exclude(customer__email="")
        .exclude(customer__opt_outs__channel=Channel.EMAIL.value)
        # In dunning already: the case's messages ask for what is needed, and a
        # "nothing is owed" card request would use up the day's one contact.
        # Nor after its final action (exhausted): the money is still owed.
        .exclude(customer__cases__state__in=[state.value for state in OWING_STATES])
        .annotate(latest_due=latest_due, previous_due=previous_due)
        .filter(
            latest_due__gte=now - timedelta(days=367),
            latest_due__lte=now + RENEWAL_HORIZON - timedelta(days=27),
        )
        .select_related("customer")
        .order_by("id")
    )
    cards = []
    candidates = list(methods)
    ended = _subscriptions_ended({method.customer_id for method in candidates})
    for method in candidates:
        if method.customer_id in ended:
            continue  # no renewal is coming: nothing to keep running
        try:
            zone = ZoneInfo(method.customer.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("customer %s: unknown time zone; card not checked", method.customer_id)
            continue
        assert method.exp_year is not None and method.exp_month is not None  # filtered above
        stops_at = _first_of_next_month(method.exp_year, method.exp_month, zone)
        interval = billing_interval(method.latest_due, method.previous_due)
        renewal = add_months(method.latest_due, zone, interval)
        if now < stops_at <= renewal <= now + RENEWAL_HORIZON:
            cards.append(ExpiringCard(method=method, stops_at=stops_at, renewal=renewal))
    return cards


def _subscriptions_ended(customers: set[int]) -> set[int]:
    """The customers every one of whose subscriptions the gateway last reported ended
    (Stripe's, as `gateways.stripe_ledger` records them): no renewal will charge the
    card.  A customer of whose subscriptions nothing is known is not among them."""
    if not customers:
        return set()
    latest: dict[tuple[int, str], str] = {}
    for customer_id, data in (
        Event.objects.filter(customer_id__in=customers, type__startswith=SUBSCRIPTION_EVENTS)
        .order_by("occurred_at", "id")
        .values_list("customer_id", "data")
    ):
        latest[customer_id, str(data.get("subscription", ""))] = str(data.get("status", ""))
    statuses: dict[int, set[str]] = defaultdict(set)
    for (customer_id, _), status in latest.items():
        statuses[customer_id].add(status)
    return {customer for customer, seen in statuses.items() if seen <= ENDED_SUBSCRIPTIONS}


def _write_request(card: ExpiringCard, *, now: datetime) -> Message | None:
    with transaction.atomic():
        lock_contacts([card.method.customer_id])
        return _request(card, now=now)


def _request(card: ExpiringCard, *, now: datetime) -> Message | None:
    method = card.method
    customer = method.customer
    verdict = contact_verdict(customer, debt="", now=now)
    if verdict.allowed_at is None:
        # Opted out of email, or no lawful window: the card stays the dunning's concern.
        log.info("customer %s: card request held for good: %s", customer.pk, verdict.reasons)
        return None
    assert method.exp_year is not None and method.exp_month is not None
    link = links.card_link(customer, method)
    unsubscribe = links.unsubscribe_link(customer, Channel.EMAIL)
    context = MessageContext(
        customer=template_customer(customer),
        company=company(),
        invoices=(),  # about the card, not a debt: no invoice, no amount
        days_overdue=0,
        pay_link=link,
        tone="friendly",
        unsubscribe_link=unsubscribe,
        card=CardSummary(
            brand=card_brand_name(method.brand),
            last4=method.last4,
            expires=date(method.exp_year, method.exp_month, 1),
            update_link=link,
        ),
    )
    template = templates.resolve(CARD_EXPIRING_TEMPLATE, customer.locale)
    try:
        rendered = render(template, context)
    except RenderError:
        log.exception("customer %s: the card request does not render", customer.pk)
        return None
    message = outbox_row(
        case=None,
        customer=customer,
        channel=Channel.EMAIL,
        template=template,
        rendered=rendered,
        unsubscribe=unsubscribe,
        step=STEP,
        variant="",
        # The customer's window and the daily caps: a request is a contact too.
        send_after=verdict.allowed_at,
        key=card.idempotency_key,
        now=now,
    )
    try:
        with transaction.atomic():
            message.save(force_insert=True)
    except IntegrityError:
        return None  # another worker wrote this request in the meantime
    return message


def on_payment_method_changed(*, method: PaymentMethod, now: datetime, **_: Any) -> None:
    """A card saved, updated or taken off file: withdraw the requests it answers."""
    withdraw_answered_requests(customer_id=method.customer_id, now=now)


def withdraw_answered_requests(*, customer_id: int, now: datetime) -> int:
    """Cancel the customer's card requests still waiting to go out that no longer ask
    about the card to charge as it is now; returns how many were canceled."""
    waiting = Message.objects.filter(
        customer_id=customer_id, case=None, step=STEP, status=MessageStatus.SCHEDULED
    )
    keys = set(waiting.values_list("idempotency_key", flat=True))
    if not keys:
        return 0  # the usual answer: one indexed look-up per card change
    current = card_to_charge(customer_id)
    if current is not None and current.exp_year and current.exp_month:
        keys.discard(expiring_card_key(current, Channel.EMAIL))
    canceled = waiting.filter(idempotency_key__in=keys).update(
        status=MessageStatus.CANCELED, updated_at=now
    )
    if canceled:
        log.info(
            "customer %s: %s card request(s) answered before they went out", customer_id, canceled
        )
    return canceled


INTERVALS = (1, 3, 6, 12)  # the billing intervals renewals are read as, in months


def billing_interval(latest: datetime, previous: datetime | None) -> int:
    """The months between renewals, read from the last two: the nearest of INTERVALS
    (a month when there is no earlier renewal)."""
    if previous is None:
        return 1
    months = (latest - previous).days / (365.25 / 12)
    return min(INTERVALS, key=lambda interval: abs(interval - months))


def add_months(moment: datetime, zone: ZoneInfo, months: int = 1) -> datetime:
    """The same local day and time `months` calendar months later (31 January and one
    month: 28 or 29 February)."""
    local = moment.astimezone(zone)
    year, month = divmod(local.month - 1 + months, 12)
    year, month = local.year + year, month + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


def _first_of_next_month(year: int, month: int, zone: ZoneInfo) -> datetime:
    """When a card expiring in `month` stops working: it is good through the month's end."""
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(year, month, 1, tzinfo=zone)


def _months(start: datetime, end: datetime) -> list[tuple[int, int]]:
    months = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months
