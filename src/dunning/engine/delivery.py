"""The delivery stage: claim due outbox rows, send them, record what happened.

Runs after the decisions have committed, so a rolled-back decision never
leaves the building.  A claim is a short transaction that pushes the rows'
`send_after` forward by a lease; the send happens outside any transaction.
A worker that dies mid-send leaves its rows to come due again when the lease
ends: at worst the messages sent since its last flush (FLUSH_EVERY) are sent
twice, with the same Message-ID (and provider idempotency key), and none is
lost.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message as MimeMessage
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BigIntegerField, DateTimeField, F, QuerySet

from dunning.channels import TransportError
from dunning.channels.email.message import OutgoingEmail, build_email
from dunning.channels.email.transport import FileTransport, SmtpConfig, SmtpTransport
from dunning.core.backoff import retry_delay, should_give_up
from dunning.core.contact_rules import RulePackContactRules
from dunning.core.contacts import Channel
from dunning.db import Param, ParamList, Prepared, PreparedUpdate, claimable
from dunning.engine.models import CaseEvent, Message, MessageStatus
from dunning.engine.writer import debtor_of, opted_out

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
# Sends are recorded this many at a time: one commit per message cost more than
# the SMTP exchange.  A worker that dies between a send and its flush leaves at
# most this many messages to be sent again, with their same Message-IDs.
FLUSH_EVERY = 20
# A batch is read once, and a message canceled since (its case paused or paid) must not
# leave: the rest of the batch is read again before a send once this many seconds have
# passed since the last read.  Against a fast server, one read per dozens of sends;
# against a slow one, a read before each.
RECHECK_AFTER = 0.05


class EmailTransport(Protocol):
    def send(self, message: MimeMessage) -> str: ...

    def close(self) -> None: ...


def email_transport() -> SmtpTransport | FileTransport:
    """SMTP when DUNNING_SMTP_URL is set, else .eml files in DUNNING_OUTBOX_DIR."""
    if settings.DUNNING_SMTP_URL:
        return SmtpTransport(SmtpConfig.from_url(settings.DUNNING_SMTP_URL))
    return FileTransport(settings.DUNNING_OUTBOX_DIR)


def claim_due_messages(*, now: datetime, limit: int = 100) -> list[int]:
    """Ids of up to `limit` due rows, leased to this worker (uses message_due_idx)."""
    with transaction.atomic():
        ids = [pk for (pk,) in _DUE_MESSAGES(limit).rows(now=now)]
        if ids:
            _LEASE_MESSAGES().run(ids=ids, lease=now + LEASE, now=now)
    return ids


def _due_messages(limit: int) -> QuerySet[Message, Any]:
    due = Message.objects.filter(
        status=MessageStatus.SCHEDULED, send_after__lte=Param("now", DateTimeField())
    ).order_by("send_after", "id")
    # Several workers share the outbox: each skips the rows another holds.
    return claimable(due).values_list("id")[:limit]


_LEASE_MESSAGES = PreparedUpdate(
    lambda: (
        Message.objects.filter(id__in=ParamList("ids", BigIntegerField())),
        {
            "send_after": Param("lease", DateTimeField()),
            "attempts": F("attempts") + 1,
            "updated_at": Param("now", DateTimeField()),
        },
    )
)
_DUE_MESSAGES = Prepared(_due_messages)  # every pass claims, mostly finding few rows or none


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def deliver_due(
    *, now: datetime, transport: EmailTransport, rng: random.Random, limit: int = 100
) -> DeliveryReport:
    """Claim one batch and send it; returns what became of it."""
    ids = claim_due_messages(now=now, limit=limit)
    if not ids:
        return DeliveryReport()
    return deliver(ids, now=now, transport=transport, rng=rng)


def deliver(
    ids: Sequence[int], *, now: datetime, transport: EmailTransport, rng: random.Random
) -> DeliveryReport:
    sent: list[tuple[int, str]] = []  # (row, provider id), written every FLUSH_EVERY sends
    retrying = failed = delivered = 0
    hours: dict[tuple[str, str, bool, str], datetime | None] = {}  # one verdict per kind
    messages = _TO_SEND().instances(ids=list(ids))
    # The customer may have opted out since the message was written (an unsubscribe
    # overnight, before the morning's send): checked at the last moment.
    opt_outs = opted_out({message.customer_id for message in messages})
    waiting, checked = {message.pk for message in messages}, time.monotonic()
    for index, message in enumerate(messages):
        if time.monotonic() - checked >= RECHECK_AFTER:
            waiting = {
                pk for (pk,) in _STILL_SCHEDULED().rows(ids=[m.pk for m in messages[index:]])
            }
            checked = time.monotonic()
        if message.pk not in waiting:
            continue  # canceled while the batch was being sent
        if Channel(message.channel) in opt_outs.get(message.customer_id, ()):
            _cancel_opted_out(message, now=now)
            continue
        customer = message.customer
        kind = (customer.time_zone, customer.country, customer.is_business, message.channel)
        if kind not in hours:
            hours[kind] = _outside_window(message, now=now)
        held_until = hours[kind]
        if held_until is not None:
            _hold(message, until=held_until, now=now)
            retrying += 1
            continue
        try:
            provider_id = transport.send(build_email(_outgoing(message, now=now)))
        except TransportError as error:
            if error.permanent or should_give_up(message.attempts):
                _mark_failed(message, now=now, error=error)
                failed += 1
            else:
                _retry_later(message, now=now, error=error, rng=rng)
                retrying += 1
            continue
        sent.append((message.pk, provider_id))
        if len(sent) >= FLUSH_EVERY:
            delivered += _mark_sent(sent, now=now)
            sent = []
    delivered += _mark_sent(sent, now=now)
    return DeliveryReport(sent=delivered, retrying=retrying, failed=failed)


_TO_SEND: Prepared[Message] = Prepared(
    lambda: (
        Message.objects.filter(
            id__in=ParamList("ids", BigIntegerField()), status=MessageStatus.SCHEDULED
        )
        .select_related("customer")
        .order_by("id")
    )
)  # every claimed batch


_STILL_SCHEDULED = Prepared(
    lambda: Message.objects.filter(
        id__in=ParamList("ids", BigIntegerField()), status=MessageStatus.SCHEDULED
    ).values_list("id")
)  # every batch whose sending takes longer than RECHECK_AFTER


def _cancel_opted_out(message: Message, *, now: datetime) -> None:
    with transaction.atomic():
        canceled = Message.objects.filter(pk=message.pk, status=MessageStatus.SCHEDULED).update(
            status=MessageStatus.CANCELED, updated_at=now
        )
        if canceled and message.case_id is not None:
            CaseEvent.objects.create(
                case_id=message.case_id,
                type="message.canceled",
                reason=f"{message.step} by {message.channel} was not sent: the customer "
                f"opted out of {message.channel} after it was written",
                data={"message": message.pk},
                occurred_at=now,
            )


def _outside_window(message: Message, *, now: datetime) -> datetime | None:
    """When `message` may go out if now is outside the customer's contact hours, else None.

    The hours and the daily caps were judged when the message was written; a
    send delayed since (the server was down, a lease ran out, the worker was
    stopped overnight) is judged against the hours again, so it never goes
    out at night.  The caps still count it as planned, so only hours matter.
    """
    debtor = debtor_of(message.customer)
    verdict = _RULES.earliest(at=now, channel=Channel(message.channel), debtor=debtor, history=())
    if verdict.allowed_at is not None and verdict.allowed_at <= now:
        return None
    return verdict.allowed_at or now + timedelta(days=1)


def _hold(message: Message, *, until: datetime, now: datetime) -> None:
    held = Message.objects.filter(pk=message.pk, status=MessageStatus.SCHEDULED).update(
        send_after=until, updated_at=now
    )
    if held and message.case_id is not None:
        CaseEvent.objects.create(
            case_id=message.case_id,
            type="message.deferred",
            reason=f"{message.step} by {message.channel} was delayed past the customer's "
            f"contact hours: held until {until.isoformat()}",
            occurred_at=now,
        )


_RULES = RulePackContactRules()


def _mark_sent(sent: Sequence[tuple[int, str]], *, now: datetime) -> int:
    """Record sends in one transaction (one statement on PostgreSQL, one prepared elsewhere).

    Conditional on the row still being scheduled: a row canceled while it was
    in flight keeps its status.  `send_after` becomes the time it went: the
    claim's lease, which it held meanwhile, would read as a send before it was due.
    """
    if not sent:
        return 0
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Message._meta.db_table} AS m"  # noqa: S608 (a model table name)
                " SET status = %s, sent_at = %s, send_after = %s, provider_id = v.provider_id,"
                " last_error = '', updated_at = %s"
                " FROM unnest(%s::bigint[], %s::text[]) AS v(id, provider_id)"
                " WHERE m.id = v.id AND m.status = %s",
                [
                    MessageStatus.SENT,
                    now,
                    now,
                    now,
                    [pk for pk, _ in sent],
                    [provider_id for _, provider_id in sent],
                    MessageStatus.SCHEDULED,
                ],
            )
            return cursor.rowcount
    # Elsewhere one conditional UPDATE, prepared once and run for each row.
    at = connection.ops.adapt_datetimefield_value(now)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {Message._meta.db_table}"  # noqa: S608 (a model table name)
            " SET status = %s, sent_at = %s, send_after = %s, provider_id = %s,"
            " last_error = '', updated_at = %s WHERE id = %s AND status = %s",
            [
                [MessageStatus.SENT, at, at, provider_id, at, pk, MessageStatus.SCHEDULED]
                for pk, provider_id in sent
            ],
        )
        return cursor.rowcount


def _outgoing(message: Message, *, now: datetime) -> OutgoingEmail:
    headers = dict(message.headers)
    return OutgoingEmail(
        sender_name=settings.DUNNING_COMPANY_NAME,
        sender_address=settings.DUNNING_FROM_EMAIL,
        to_name=message.customer.name,
        to_address=message.to,
        subject=message.subject,
        text=message.body_text,
        html=message.body_html,
        idempotency_key=message.idempotency_key,
        date=now,
        reply_to=settings.DUNNING_SUPPORT_EMAIL,
        unsubscribe_url=headers.pop("unsubscribe_url", ""),
        unsubscribe_mailto=headers.pop("unsubscribe_mailto", ""),
        headers=headers,
    )


def _retry_later(
    message: Message, *, now: datetime, error: TransportError, rng: random.Random
) -> None:
    Message.objects.filter(pk=message.pk, status=MessageStatus.SCHEDULED).update(
        send_after=now + retry_delay(message.attempts, rng=rng),
        last_error=str(error)[:500],
        updated_at=now,
    )


def _mark_failed(message: Message, *, now: datetime, error: TransportError) -> None:
    with transaction.atomic():
        changed = Message.objects.filter(pk=message.pk, status=MessageStatus.SCHEDULED).update(
            status=MessageStatus.FAILED, last_error=str(error)[:500], updated_at=now
        )
        if not changed:
            return
        if message.case_id is None:
            # A message about no case (a card about to expire): no timeline to write on.
            log.warning(
                "message %s (%s to %s) failed after %s tries: %s",
                message.pk,
                message.channel,
                message.to,
                message.attempts,
                error,
            )
            return
        CaseEvent.objects.create(
            case_id=message.case_id,
            type="message.failed",
            reason=f"{message.channel} to {message.to} failed after "
            f"{message.attempts} tries: {error}",
            data={"message": message.pk, "permanent": error.permanent},
            occurred_at=now,
        )
