"""`POST /webhooks/stripe`: Stripe's events, verified, stored once, applied to the ledger.

Signature (reference/rules.md 7.2).  `Stripe-Signature: t=<unix>,v1=<hex>`
is checked with the official library (`stripe.WebhookSignature.verify_header`:
HMAC-SHA256 of `"<t>.<raw body>"` keyed by the secret as UTF-8, `whsec_`
included; any matching `v1` passes, other schemes are ignored) against every
secret in `DUNNING_STRIPE_WEBHOOK_SECRET`, so a rolled secret keeps working
while Stripe signs with both.  The 300 s tolerance is checked here rather than
by the library, which reads the wall clock: the view reads the time from
`clock()`, which tests replace (the shared vectors have fixed timestamps).  As
in stripe-python, a timestamp older than now - 300 s is refused and a future
one is not.

Answers.  A missing, malformed, wrong or stale signature, or a body that is
not a Stripe event: 400 with a JSON error, logged at WARNING without the
secret, the signature or the body.  No secret configured: 503, logged at
ERROR; Stripe keeps retrying for days, so nothing is lost while an operator
sets the secret, and nothing unverified is ever accepted.  Otherwise 200,
including for event types dunning does not use (stored, outcome `ignored`)
and for facts the ledger refuses (outcome `rejected`, notes say why: a retry
would be refused again).  An unexpected error answers 500 and stores nothing,
so Stripe's retry gets a second chance.

Once only.  The `WebhookEvent` row is inserted first, in the same transaction
as the event's effects, under a unique (provider, event id) constraint: a
redelivery, or a concurrent duplicate that waits on the first one's insert,
fails the insert, rolls back and answers 200 `duplicate`.  If the first
delivery rolls back, its row goes with it and the next delivery applies the
event.  How late and out-of-order events are kept from undoing newer ones is
in `dunning.gateways.stripe_ledger`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from dunning.gateways.models import WebhookEvent, WebhookOutcome
from dunning.gateways.stripe_events import PROVIDER, EventFormatError, StripeEvent, parse_event
from dunning.gateways.stripe_ledger import Applied, apply_event
from dunning.ledger.errors import LedgerError

logger = logging.getLogger(__name__)

# Stripe's default (stripe-python Webhook.DEFAULT_TOLERANCE), reference/rules.md 7.2.
TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "Stripe-Signature"


def clock() -> datetime:
    """The time the view judges signatures by and records facts at; tests replace it."""
    return timezone.now()


class SignatureError(Exception):
    """The request is not proven to come from Stripe; the message says why (never a secret)."""


def verify_signature(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    now: datetime,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Raise SignatureError unless `header` signs `payload` with one of `secrets`, recently."""
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureError("the body is not UTF-8") from None
    reason = "no secret configured"
    for secret in secrets:
        try:
            # tolerance=None: the library checks the signature only; time is judged below.
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
        except stripe.SignatureVerificationError as error:
            reason = str(error.user_message or error)
            continue
        break
    else:
        raise SignatureError(reason)
    timestamp = _timestamp(header)
    if timestamp < now.timestamp() - tolerance:
        raise SignatureError(f"the timestamp is more than {tolerance} s old")


def _timestamp(header: str) -> int:
    # Read as stripe-python reads it (WebhookSignature._get_timestamp_and_signatures);
    # verify_header has already refused a header where this fails.
    items = [item.split("=", 2) for item in header.split(",")]
    return int(next(item[1] for item in items if item[0] == "t"))


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


@csrf_exempt
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        response = _error(405, "method_not_allowed", "Only POST is allowed here.")
        response["Allow"] = "POST"
        return response
    secrets = settings.DUNNING_STRIPE_WEBHOOK_SECRET
    if not secrets:
        logger.error("Stripe webhook refused: DUNNING_STRIPE_WEBHOOK_SECRET is not set")
        return _error(
            503,
            "not_configured",
            "Stripe webhooks are not configured on this server (no signing secret).",
        )
    now = clock()
    try:
        verify_signature(request.body, request.headers.get(SIGNATURE_HEADER), secrets, now=now)
    except SignatureError as error:
        logger.warning("Stripe webhook refused: bad signature (%s)", error)
        return _error(400, "bad_signature", f"The {SIGNATURE_HEADER} header is not valid.")
    try:
        event = parse_event(json.loads(request.body))
    except (ValueError, EventFormatError) as error:
        logger.warning("Stripe webhook refused: not a Stripe event (%s)", error)
        return _error(400, "invalid", f"The body is not a Stripe event: {error}")
    return receive(event, now=now)


def receive(event: StripeEvent, *, now: datetime) -> JsonResponse:
    """Store and apply a verified event once; the answer says what became of it."""
    try:
        with transaction.atomic():
            record = WebhookEvent.objects.create(
                provider=PROVIDER,
                event_id=event.id,
                type=event.type,
                object_id=event.object_id[:255],
                created=event.created,
                received_at=now,
            )
            applied = _apply(event, now=now)
            record.outcome, record.notes, record.processed_at = applied.outcome, applied.notes, now
            record.save(update_fields=["outcome", "notes", "processed_at"])
    except IntegrityError:
        if WebhookEvent.objects.filter(provider=PROVIDER, event_id=event.id).exists():
            logger.info("Stripe event %s (%s) already received", event.id, event.type)
            return JsonResponse({"received": True, "duplicate": True})
        raise
    return JsonResponse({"received": True, "outcome": applied.outcome})


def _apply(event: StripeEvent, *, now: datetime) -> Applied:
    try:
        with transaction.atomic():
            return apply_event(event, now=now)
    except LedgerError as error:
        logger.error(
            "Stripe event %s (%s) refused by the ledger: %s: %s",
            event.id,
            event.type,
            error.field,
            error.message,
        )
        return Applied(WebhookOutcome.REJECTED, f"{error.field or 'event'}: {error.message}")
    except EventFormatError as error:
        logger.error("Stripe event %s (%s) unreadable: %s", event.id, event.type, error)
        return Applied(WebhookOutcome.REJECTED, f"unreadable: {error}")
