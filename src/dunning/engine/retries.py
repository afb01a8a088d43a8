"""The retry stage: plan each declined charge's next try, and make it when it is due.

A case's `next_retry_at` is its wake-up for this stage.  With no `retry_key`
it means "plan": the core (`dunning.core.retry_timing.plan_retry`, inside the
window `dunning.core.network_rules.earliest_retry` allows) picks the moment,
which is stored with its reason and the idempotency key of the charge to
come.  With a key it means "charge": the claim leases the case, the charge
goes to the gateway outside any transaction, and the outcome is recorded
through the ledger's services, which recover the case on success; a decline
is planned again at once.

A charge whose outcome is unknown (a timeout, a 5xx) keeps its key, so the
next try is the same charge to the gateway and is never made twice.  An
invoice the gateway retries itself (Stripe's `next_payment_attempt`, kept as
`Invoice.gateway_retry_at`) is left to it.

Replanning is asked for by the ledger's signals: a decline recorded from
outside (a webhook) and a new or updated card (retried at once).
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import F, Q

from dunning.core.backoff import MAX_ATTEMPTS, retry_delay
from dunning.core.cases import CaseState
from dunning.core.declines import Brand, Classification, classify_decline
from dunning.core.network_rules import Card, Charge, PastAttempt, earliest_retry
from dunning.core.retry_timing import (
    CardChange,
    HourStats,
    Paydays,
    RetryContext,
    RetryPlan,
    Strategy,
    plan_retry,
)
from dunning.engine import policies
from dunning.engine.decisions import attach_customers
from dunning.engine.models import Case, CaseEvent, RetryHourStat
from dunning.gateways.base import ChargeRequest, ChargeResult, ChargeStatus, Gateway, GatewayError
from dunning.ledger.errors import LedgerError
from dunning.ledger.models import (
    AttemptOutcome,
    CollectionMethod,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAttempt,
    PaymentMethod,
    PaymentMethodType,
)
from dunning.ledger.services import record_payment_attempt

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
IN_DOUBT_LIMIT = timedelta(hours=20)  # under the gateways' idempotency-key lifetime (24 h)
NETWORK_LOOKBACK = timedelta(days=31)  # the longest network window (30 days) and a day
SOURCE = "engine"


@dataclass(frozen=True, slots=True)
class RetryReport:
    planned: int = 0
    charged: int = 0
    recovered: int = 0
    declined: int = 0
    unknown: int = 0


@dataclass(frozen=True, slots=True)
class _Due:
    case: Case
    invoice: Invoice
    method: PaymentMethod
    key: str


def claim_due_retries(*, now: datetime, limit: int) -> list[Case]:
    """Active cases whose retry wake-up is due (case_retry_due_idx); locked until commit."""
    due = Case.objects.filter(state=CaseState.ACTIVE, next_retry_at__lte=now).order_by(
        "next_retry_at", "id"
    )
    if connection.features.has_select_for_update_skip_locked:
        due = due.select_for_update(skip_locked=True)
    cases = list(due[:limit])
    attach_customers(cases)  # by primary key, not joined into the claim (see decisions)
    return cases


def retry_due(
    *,
    now: datetime,
    gateway: Gateway,
    strategy: Strategy = Strategy.SMART,
    limit: int = 100,
    rng: random.Random | None = None,
) -> RetryReport:
    """Plan the cases that need a plan and charge the ones whose retry is due."""
    rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)
    planned = 0
    charges: list[_Due] = []
    with transaction.atomic():
        hours = _hour_stats()
        for case in claim_due_retries(now=now, limit=limit):
            if gateway.name == "manual" and case.charge_in_doubt_since is None:
                _store(
                    case,
                    RetryPlan(None, "charges are off: payments are collected manually"),
                    now=now,
                )
                planned += 1
                continue
            if case.retry_key:
                due = _charge_target(case, now=now)
                if due is not None:
                    charges.append(due)
                    continue
            plan_case(case, now=now, strategy=strategy, hours=hours)
            planned += 1
        lease = now + LEASE
        Case.objects.filter(pk__in=[due.case.pk for due in charges]).update(
            next_retry_at=lease, updated_at=now
        )
    recovered = declined = unknown = 0
    for due in charges:
        if not _still_ours(due, lease=lease):
            continue
        try:
            outcome = _charge(
                due, now=now, gateway=gateway, strategy=strategy, rng=rng, hours=hours
            )
        except LedgerError as error:
            # The ledger refused the outcome (a webhook recorded the payment
            # first, or the invoice changed under the charge).
            _not_recorded(due, error=error, now=now)
            continue
        except Exception:
            # Whatever went wrong stays with this case: the others are charged,
            # and this one is asked again with the same key after a while.
            log.exception("case %s: the retry failed", due.case.pk)
            _in_doubt(due.case, now=now, rng=rng, reason="the retry failed unexpectedly")
            unknown += 1
            continue
        recovered += outcome == "recovered"
        declined += outcome == "declined"
        unknown += outcome == "unknown"
    return RetryReport(
        planned=planned,
        charged=len(charges),
        recovered=recovered,
        declined=declined,
        unknown=unknown,
    )


# ---------------------------------------------------------------- planning


def plan_case(
    case: Case, *, now: datetime, strategy: Strategy, hours: HourStats | None = None
) -> RetryPlan:
    """Decide the case's next retry and store it (in the caller's transaction)."""
    plan, key = _plan(case, now=now, strategy=strategy, hours=hours or _hour_stats())
    _store(case, plan, key=key, now=now, strategy=strategy)
    return plan


def _store(
    case: Case, plan: RetryPlan, *, key: str = "", now: datetime, strategy: Strategy | None = None
) -> None:
    key = key if plan.at is not None else ""
    changed = (case.next_retry_at, case.retry_reason) != (plan.at, plan.reason[:300])
    case.next_retry_at, case.retry_reason, case.retry_key = plan.at, plan.reason[:300], key
    Case.objects.filter(pk=case.pk).update(
        next_retry_at=plan.at,
        retry_reason=case.retry_reason,
        retry_key=key,
        charge_in_doubt_since=None,
        updated_at=now,
    )
    if changed:
        CaseEvent.objects.create(
            case=case,
            type="retry.planned" if plan.at else "retry.stopped",
            reason=plan.reason,
            data={"at": plan.at.isoformat() if plan.at else None, "strategy": strategy or ""},
            occurred_at=now,
        )


def _charge_key(case: Case, invoice: Invoice, method: PaymentMethod) -> str:
    """The idempotency key of the case's next charge.

    It names the charge's content (invoice, card, amount) and the number of
    attempts recorded on that invoice before it.  Planned again with the same content, as after
    a charge whose outcome is unknown, it is the same key, so the gateway
    answers with that charge's outcome instead of charging twice; a new card
    or a new amount is a new charge with a new key.
    """
    tries = PaymentAttempt.objects.filter(invoice=invoice).count()
    content = f"{invoice.pk}:{method.pk}:{invoice.amount_remaining}"
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]
    return f"case{case.pk}:try{tries + 1}:{digest}"


def _plan(
    case: Case, *, now: datetime, strategy: Strategy, hours: HourStats
) -> tuple[RetryPlan, str]:
    """The plan, and the idempotency key of the charge it plans ("" for none)."""
    if case.collection_method != CollectionMethod.CHARGE_AUTOMATICALLY:
        return RetryPlan(None, "invoices sent for payment are not charged"), ""
    invoice = _target_invoice(case)
    if invoice is None:
        return RetryPlan(None, "nothing left to charge"), ""
    if invoice.gateway_retry_at is not None:
        return RetryPlan(
            None,
            "the gateway retries this invoice itself at "
            f"{invoice.gateway_retry_at:%d %b %H:%M} UTC",
        ), ""
    method = _payment_method(case.customer_id)
    if method is None:
        return RetryPlan(None, "no saved card to charge: waiting for the customer"), ""
    policy = policies.load(case.policy)
    attempts = list(
        PaymentAttempt.objects.filter(
            Q(invoice=invoice) | Q(payment_method=method, attempted_at__gte=now - NETWORK_LOOKBACK)
        )
        .select_related("payment_method", "invoice")
        .order_by("attempted_at", "id")
    )
    failures = [
        a for a in attempts if a.invoice_id == invoice.pk and a.outcome == AttemptOutcome.FAILED
    ]
    if not failures:
        return RetryPlan(None, "no declined charge to retry"), ""
    last = failures[-1]
    zone = ZoneInfo(case.customer.time_zone)
    card = _card(method)
    charge = Charge(
        invoice=invoice.external_id, amount=invoice.amount_remaining, currency=invoice.currency
    )
    past = [_past(attempt) for attempt in attempts]
    window = earliest_retry(
        now=now,
        card=card,
        charge=charge,
        attempts=past,
        budget=policy.retry,
        first_failure_at=failures[0].attempted_at,
    )
    classification = _classify(last)
    context = RetryContext(
        now=now,
        zone=zone,
        decline_code=last.decline_code or "generic_decline",
        classification=classification,
        first_failure_at=failures[0].attempted_at,
        # This invoice's first charge: `attempts` also holds other invoices' on the card.
        original_charge_at=next(a.attempted_at for a in attempts if a.invoice_id == invoice.pk),
        retries_done=len(failures) - 1,
        budget=policy.retry,
        window=window,
        paydays=Paydays.learn(
            _successes(case.customer_id),
            zone,
            failures=_declines_before(case.customer_id, failures[0]),
        ),
        hours=hours,
        card_change=_card_change(last, method),
    )
    plan = plan_retry(context, strategy)
    return plan, _charge_key(case, invoice, method) if plan.at is not None else ""


def _card_change(last: PaymentAttempt, method: PaymentMethod) -> CardChange:
    """Another card since the last decline, or this one updated (new expiry, details)."""
    if last.payment_method_id is None:
        return CardChange.NONE
    if last.payment_method_id != method.pk:
        return CardChange.NEW
    return CardChange.UPDATED if method.updated_at > last.attempted_at else CardChange.NONE


def _target_invoice(case: Case) -> Invoice | None:
    return (
        Invoice.objects.filter(
            cases=case,
            status=InvoiceStatus.OPEN,
            amount_remaining__gt=0,
            collection_method=CollectionMethod.CHARGE_AUTOMATICALLY,
        )
        .order_by("due_at", "id")
        .first()
    )


def _payment_method(customer_id: int) -> PaymentMethod | None:
    return (
        PaymentMethod.objects.filter(customer_id=customer_id, type=PaymentMethodType.CARD)
        .order_by("-is_default", "-updated_at", "-id")
        .first()
    )


def _card(method: PaymentMethod, *, used_at: datetime | None = None) -> Card:
    """The card as the network rules see it.

    `details` is the version of what the customer or a card updater can change
    without a new number (expiry, billing details): an attempt made before the
    payment method's last update was made with other details, so a decline
    that asked the customer to act does not block the updated card.
    """
    if used_at is not None and used_at < method.updated_at:
        details = f"before {method.updated_at.isoformat()}"
    else:
        details = f"{method.exp_month}/{method.exp_year} as of {method.updated_at.isoformat()}"
    return Card(number=method.external_id, brand=Brand.parse(method.brand), details=details)


def _classify(attempt: PaymentAttempt) -> Classification:
    brand = Brand.parse(attempt.payment_method.brand) if attempt.payment_method else Brand.OTHER
    return classify_decline(
        attempt.decline_code or "generic_decline",
        advice_code=attempt.advice_code,
        network_decline_code=attempt.network_code,
        brand=brand,
    )


def _past(attempt: PaymentAttempt) -> PastAttempt:
    method = attempt.payment_method
    card = (
        _card(method, used_at=attempt.attempted_at)
        if method
        else Card(number="unknown", brand=Brand.OTHER)
    )
    invoice = attempt.invoice
    return PastAttempt(
        at=attempt.attempted_at,
        card=card,
        charge=Charge(
            invoice=invoice.external_id, amount=attempt.amount, currency=attempt.currency
        ),
        succeeded=attempt.outcome == AttemptOutcome.SUCCEEDED,
        classification=None if attempt.outcome == AttemptOutcome.SUCCEEDED else _classify(attempt),
    )


def _successes(customer_id: int) -> list[datetime]:
    """When the customer's money came in before: what their paydays are learned from."""
    return list(
        Payment.objects.filter(customer_id=customer_id)
        .order_by("-received_at")
        .values_list("received_at", flat=True)[:200]
    )


def _declines_before(customer_id: int, first: PaymentAttempt) -> list[datetime]:
    """The customer's earlier declines: a payment days after one shows when money arrived."""
    return list(
        PaymentAttempt.objects.filter(
            customer_id=customer_id,
            outcome=AttemptOutcome.FAILED,
            attempted_at__lt=first.attempted_at,
        )
        .order_by("-attempted_at")
        .values_list("attempted_at", flat=True)[:400]
    )


def _hour_stats() -> HourStats:
    hours = [(0, 0)] * 24
    for row in RetryHourStat.objects.all():
        hours[row.hour] = (row.successes, row.attempts)
    return HourStats(tuple(hours))


# ---------------------------------------------------------------- charging


def _charge_target(case: Case, *, now: datetime) -> _Due | None:
    invoice = _target_invoice(case)
    if invoice is None or invoice.gateway_retry_at is not None:
        return None
    method = _payment_method(case.customer_id)
    if case.charge_in_doubt_since is not None:
        # Ask about the very charge in doubt: the card its key was made for,
        # even if another card has become the default since.
        cards = PaymentMethod.objects.filter(
            customer_id=case.customer_id, type=PaymentMethodType.CARD
        )
        method = next(
            (card for card in cards if _charge_key(case, invoice, card) == case.retry_key), None
        )
    if method is None:
        return None
    return _Due(case=case, invoice=invoice, method=method, key=case.retry_key)


def _still_ours(due: _Due, *, lease: datetime) -> bool:
    """Just before charging: the case is still this worker's and still owes the same.

    The claim was taken at the start of the batch; charges before this one took
    time.  Another worker that claimed the case since moved its lease, a
    payment or a void changed the invoice: then this charge is not made.
    """
    case = (
        Case.objects.filter(pk=due.case.pk, next_retry_at=lease, retry_key=due.key)
        .only("state")
        .first()
    )
    if case is None or case.state != CaseState.ACTIVE:
        return False
    invoice = Invoice.objects.filter(pk=due.invoice.pk).only("status", "amount_remaining").first()
    return (
        invoice is not None
        and invoice.status == InvoiceStatus.OPEN
        and invoice.amount_remaining == due.invoice.amount_remaining
    )


def _not_recorded(due: _Due, *, error: LedgerError, now: datetime) -> None:
    """The gateway answered, the ledger refused the answer: say so, loudly if money moved."""
    CaseEvent.objects.create(
        case=due.case,
        type="retry.not_recorded",
        reason=f"the charge's outcome was not recorded: {error}",
        occurred_at=now,
    )
    log.error(
        "case %s: charge %s was answered but not recorded (%s); "
        "if the gateway took the money, a refund may be owed",
        due.case.pk,
        due.key,
        error,
    )


def _charge(
    due: _Due,
    *,
    now: datetime,
    gateway: Gateway,
    strategy: Strategy,
    rng: random.Random,
    hours: HourStats,
) -> str:
    case, invoice, method = due.case, due.invoice, due.method
    request = ChargeRequest(
        amount=invoice.amount_remaining,
        currency=invoice.currency,
        customer_external_id=case.customer.external_id,
        payment_method_external_id=method.external_id,
        invoice_external_id=invoice.external_id,
        idempotency_key=due.key,
        description=f"Invoice {invoice.number}",
        metadata={"dunning_case": str(case.pk)},
        gateway_invoice=(invoice.context or {}).get("gateway") == gateway.name,
    )
    try:
        result = gateway.charge(request)
    except GatewayError as error:
        return _charge_failed(case, error=error, now=now, rng=rng)
    if result.status in (ChargeStatus.NOT_ATTEMPTED, ChargeStatus.PENDING):
        return _not_settled(case, result=result, now=now)
    local_hour = now.astimezone(ZoneInfo(case.customer.time_zone)).hour
    with transaction.atomic():
        record_payment_attempt(
            invoice=invoice.external_id,
            attempted_at=now,
            now=now,
            source=SOURCE,
            payment_method=method.external_id,
            **result.attempt_fields(),
        )
        _learn(local_hour, succeeded=result.succeeded)
        case.refresh_from_db()
        if case.state == CaseState.ACTIVE:
            plan_case(case, now=now, strategy=strategy, hours=hours)
    return "recovered" if result.succeeded else "declined"


def _charge_failed(case: Case, *, error: GatewayError, now: datetime, rng: random.Random) -> str:
    if error.outcome_unknown:
        _in_doubt(case, now=now, rng=rng, reason=f"the gateway did not answer ({error})")
        return "unknown"
    Case.objects.filter(pk=case.pk).update(
        next_retry_at=None, retry_key="", retry_reason=f"the gateway refused: {error}"[:300]
    )
    CaseEvent.objects.create(
        case=case,
        type="retry.stopped",
        reason=f"the gateway refused the charge: {error}",
        occurred_at=now,
    )
    return "unknown"


def _in_doubt(case: Case, *, now: datetime, rng: random.Random, reason: str) -> None:
    """A charge with no answer: ask again with the same key, backing off, for a while.

    Gateways keep idempotency keys for about a day (Stripe: 24 hours); past
    IN_DOUBT_LIMIT the same key could charge again, so the case stops and an
    operator checks the gateway.
    """
    since = case.charge_in_doubt_since or now
    waited = now - since
    if waited >= IN_DOUBT_LIMIT:
        Case.objects.filter(pk=case.pk).update(
            next_retry_at=None,
            retry_reason="a charge's outcome is unknown: check the gateway before charging again",
            updated_at=now,
        )
        CaseEvent.objects.create(
            case=case,
            type="retry.in_doubt",
            reason=f"{reason}; no answer for {waited}: retries stop until an operator checks",
            occurred_at=now,
        )
        log.error("case %s: charge %s in doubt for %s", case.pk, case.retry_key, waited)
        return
    tries = min(1 + int(waited / timedelta(minutes=10)), MAX_ATTEMPTS)
    wait = min(retry_delay(tries, rng=rng), IN_DOUBT_LIMIT - waited)
    Case.objects.filter(pk=case.pk).update(
        next_retry_at=now + wait, charge_in_doubt_since=since, updated_at=now
    )
    CaseEvent.objects.create(
        case=case,
        type="retry.unknown",
        reason=f"{reason}; asking again with the same key",
        occurred_at=now,
    )


def _not_settled(case: Case, *, result: ChargeResult, now: datetime) -> str:
    reason = (
        "payments are collected manually"
        if result.status == ChargeStatus.NOT_ATTEMPTED
        else "the charge is processing; its webhook will settle it"
    )
    Case.objects.filter(pk=case.pk).update(
        next_retry_at=None, retry_key="", retry_reason=reason, updated_at=now
    )
    return "unknown"


def _learn(hour: int, *, succeeded: bool) -> None:
    updated = RetryHourStat.objects.filter(hour=hour).update(
        attempts=F("attempts") + 1, successes=F("successes") + int(succeeded)
    )
    if not updated:
        RetryHourStat.objects.get_or_create(
            hour=hour, defaults={"attempts": 1, "successes": int(succeeded)}
        )


# ---------------------------------------------------------------- signals


def on_attempt_recorded(*, attempt: PaymentAttempt, now: datetime, source: str, **_: Any) -> None:
    """A decline recorded from outside (a webhook, the API): plan the case's next retry."""
    if source == SOURCE or attempt.outcome != AttemptOutcome.FAILED:
        return
    _replan(Case.objects.filter(invoices=attempt.invoice_id), now=now)


def on_payment_method_changed(
    *, method: PaymentMethod, now: datetime, source: str, **_: Any
) -> None:
    """A new or updated card: plan again, which retries at once when the card is new."""
    _replan(Case.objects.filter(customer_id=method.customer_id), now=now)


def _replan(cases: Any, *, now: datetime) -> None:
    cases.filter(
        state=CaseState.ACTIVE,
        collection_method=CollectionMethod.CHARGE_AUTOMATICALLY,
        # A charge in doubt keeps its key until it is answered: a new key could
        # charge twice.  Its answer replans the case anyway.
        charge_in_doubt_since__isnull=True,
    ).update(next_retry_at=now, retry_key="", updated_at=now)
