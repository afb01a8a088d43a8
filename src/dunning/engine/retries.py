"""The retry stage: plan each declined charge's next try, and make it when it is due.

A case's `next_retry_at` is its wake-up for this stage.  With no `retry_key`
it means "plan": the core (`dunning.core.retry_timing.plan_retry`, inside the
window `dunning.core.network_rules.earliest_retry` allows) picks the moment,
which is stored with its reason and the idempotency key of the charge to
come.  With a key it means "charge": the claim leases the case, the charge
goes to the gateway outside any transaction, and the outcome is recorded
through the ledger's services, which recover the case on success; a case
still active afterwards is planned again in the same transaction.

A batch is read in a fixed number of queries (`RetryBatch.load`): the cases'
invoices to charge, their customers' cards, the attempts the network rules
count, and the payments and declines paydays are learned from.  Each case is
planned in memory and the plans are written together.  Charges are recorded
in chunks, each in one transaction: up to CHUNK answers, or what came back in
RECORD_AFTER seconds, whichever is first (a real gateway's answers are
recorded within a second of arriving; a simulated one's, a hundred at a time).

A planned charge is stored with its key: the invoice, card and amount the
key was made for (`Case.retry_invoice`, `retry_payment_method`,
`retry_amount`).  From the moment a worker sends it until its answer is
recorded, it is in doubt (`Case.charge_in_doubt_since`): a timeout, a 5xx or
a worker that dies leaves it so, and it is asked about again as the very same
request under the same key, which the gateway answers once.  Past
IN_DOUBT_LIMIT (before the gateway forgets the key), or once its invoice has
changed (another request could be a second charge), it is no longer sent
again: a gateway that can find a charge by its key is asked what became of
it (recorded when found, planned afresh when the charge never happened).  An
operator checks when the gateway cannot look it up or cannot tell (for
LOOKUP_LIMIT, or for good), and when it refuses the same charge asked again.
The operator who checked the gateway and found no charge releases the case
(`release_charge_in_doubt`); one who found the money taken records the
payment.  An invoice the gateway retries itself (Stripe's
`next_payment_attempt`, kept as `Invoice.gateway_retry_at`) is left to it
while it does: dunning takes over once the gateway says it will not retry any
more, or GATEWAY_SILENCE after the time it named with no word of that retry.

Replanning is asked for by the ledger's signals: a decline recorded from
outside (a webhook), a new or updated card (retried at once) and a change of
the gateway's own retry time.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    CharField,
    DateTimeField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models import Case as Cond
from django.db.models.functions import Coalesce, Lower, Trim, Upper

from dunning.core.backoff import MAX_ATTEMPTS, retry_delay
from dunning.core.cases import CaseEventType, CaseState
from dunning.core.declines import (
    CARD_WIDE_ADVICE_CODES,
    CARD_WIDE_DECLINE_CODES,
    CARD_WIDE_NETWORK_CODES,
    Brand,
    Classification,
    CustomerRequest,
    DeclineClass,
    classify_decline,
)
from dunning.core.fields import UTC_ZONE, known_zone
from dunning.core.formatting import format_money
from dunning.core.network_rules import Card, Charge, PastAttempt, earliest_retry, never_again
from dunning.core.policy import Policy
from dunning.core.retry_timing import (
    FUNDS_LAST,
    CardChange,
    HourStats,
    Paydays,
    RetryContext,
    RetryPlan,
    Strategy,
    card_segments,
    hours_for,
    plan_retry,
)
from dunning.db import (
    Param,
    ParamList,
    PlusDays,
    Prepared,
    PreparedUpdate,
    bulk_insert,
    claimable,
    update_each,
)
from dunning.engine import cases as engine_cases
from dunning.engine import policies
from dunning.engine.decisions import attach_customers
from dunning.engine.models import (
    Case,
    CaseEvent,
    CaseInvoice,
    PolicyVersion,
    RetryStat,
)
from dunning.gateways.base import (
    AbandonGateway,
    ChargeLookupGateway,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    Gateway,
    GatewayError,
)
from dunning.ledger.errors import LedgerError
from dunning.ledger.models import (
    AttemptOutcome,
    CollectionMethod,
    Customer,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAttempt,
    PaymentMethod,
    PaymentMethodType,
)
from dunning.ledger.services import AttemptFacts, record_payment_attempts

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
IN_DOUBT_LIMIT = timedelta(hours=20)  # under the gateways' idempotency-key lifetime (24 h)
# Past IN_DOUBT_LIMIT a gateway that can find a charge by its key is asked for it
# (`ChargeLookupGateway`) until it can tell, for at most this long; then an operator.
LOOKUP_LIMIT = timedelta(days=7)
# A gateway's own retry (Stripe's next_payment_attempt) is reported by webhook within
# minutes; one unheard of for this long after its time is taken as not coming.
GATEWAY_SILENCE = timedelta(hours=12)
NETWORK_LOOKBACK = timedelta(days=31)  # the longest network window (30 days) and a day
# Paydays are learned from the last year of payments and declines (and a month,
# so a yearly rhythm's last beat is seen), at most this many of each.
PAYDAY_LOOKBACK = timedelta(days=400)
PAYDAY_SUCCESSES = 200
PAYDAY_DECLINES = 400
# A decline is evidence of a payday only within FUNDS_LAST local days before a
# payment; in UTC that is within a day more for time zones, and one for summer time.
ARRIVAL_WITHIN = FUNDS_LAST + timedelta(days=2)
CHUNK = 100  # at most this many answers are recorded per transaction
RECORD_AFTER = 1.0  # seconds of charging after which the answers so far are recorded
RECHECK_AFTER = 0.5  # seconds of charging after which the next charge re-checks its case
SOURCE = "engine"
# The pay page's keys start so (`pay_now`); the retry stage's with "case".
ON_SESSION = "pay"
# How long a payment of the pay page's waits for a customer sent to the bank's page
# (3-D Secure) before it is looked up, and canceled if they never confirmed it.
AUTHENTICATION_WINDOW = timedelta(hours=1)
# On the case's timeline: a pay-page payment left at the bank was canceled.
ABANDONED = "pay_page.abandoned"
# A case's retry_reason while another case's charge on the same card is under way.
SAME_CARD = "another charge on the same card is under way: planned again after its answer"
# A case's retry_reason while a worker asks the gateway about its charge in doubt.
LOOKING_UP = "asking the gateway what became of the charge in doubt"
# A case's retry_reason while the gateway refuses dunning's own requests (a wrong or
# revoked API key): charges wait, tried again every ACCOUNT_REFUSED_WAIT.
ACCOUNT_REFUSED = (
    "the gateway refuses dunning's own requests (its API key or permissions): "
    "no charge is made until that is fixed"
)
ACCOUNT_REFUSED_WAIT = timedelta(minutes=15)
# A case's retry_reason while the manual gateway is configured (`resume_charges`).
CHARGES_OFF = "charges are off: payments are collected manually"
# A customer's saved cards, the one to charge first: the default, then the one whose
# charge details are newest (saved, renewed or reissued last); not the one updated
# last, which may be a notice about it (its expiry coming, its country filled in).
CARD_ORDER = (
    F("is_default").desc(),
    Coalesce("details_changed_at", "created_at").desc(),
    F("id").desc(),
)


def card_to_charge(customer_id: int) -> PaymentMethod | None:
    """The card a charge of this customer's goes on (the first in CARD_ORDER), if any;
    never one off the customer's file (`PaymentMethod.detached_at`)."""
    return (
        PaymentMethod.objects.filter(
            customer_id=customer_id, type=PaymentMethodType.CARD, detached_at__isnull=True
        )
        .order_by(*CARD_ORDER)
        .first()
    )


def never_to_charge(method: PaymentMethod, invoice: Invoice) -> list[str]:
    """Why `method` may never be charged for `invoice` again, even with the customer
    present (the pay page): its never-retry declines (`network_rules.never_again`), and
    those recorded without their card that may have been on it (`_past`).
    Empty when it may be."""
    declines = list(
        PaymentAttempt.objects.filter(
            Q(invoice=invoice)
            | Q(payment_method=method)
            | Q(customer_id=method.customer_id, payment_method__isnull=True),
            outcome=AttemptOutcome.FAILED,
        ).select_related("invoice", "payment_method")
    )
    refs = {decline.invoice_id: decline.invoice.external_id for decline in declines}
    past = [_past(decline, refs, on_file=method) for decline in declines]
    charge = Charge(invoice.external_id, invoice.amount_remaining, invoice.currency)
    return never_again(card=_card(method), charge=charge, attempts=past)


def needs_new_details(method: PaymentMethod, invoice: Invoice) -> bool:
    """Whether the latest decline of `method` for `invoice`, made with the details it has
    now, waits for the customer to bring other details, not to confirm the payment with
    their bank (the pay page asks for them).  A decline recorded without its card counts
    as the card's if it had those details then (`_past`)."""
    latest = (
        PaymentAttempt.objects.filter(
            Q(payment_method=method) | Q(payment_method__isnull=True),
            invoice=invoice,
            outcome=AttemptOutcome.FAILED,
            attempted_at__gte=method.details_since,
        )
        .select_related("payment_method")
        .order_by("-attempted_at", "-id")
        .first()
    )
    if latest is None:
        return False
    decline = _classify(latest, on_file=method)
    return (
        decline.kind is DeclineClass.CUSTOMER_ACTION
        and decline.request is not CustomerRequest.AUTHENTICATE
    )


@dataclass(frozen=True, slots=True)
class RetryReport:
    planned: int = 0
    charged: int = 0
    recovered: int = 0
    declined: int = 0
    unknown: int = 0
    looked_up: int = 0  # charges in doubt asked about (`ChargeLookupGateway.find_charge`)
    stopped: int = 0  # charges in doubt left to an operator by the claim
    # Another call now may find work: the claim was full, or a plan landed at
    # or before now (a new card is retried at once).
    more_due: bool = False


@dataclass(frozen=True, slots=True)
class _Due:
    """A charge to make or ask about: exactly what its key was made for."""

    case: Case
    invoice: Invoice
    method: PaymentMethod
    key: str
    amount: int


def resume_charges(*, now: datetime, gateway: Gateway) -> int:
    """Plan afresh the cases left unplanned while the manual gateway was configured.

    Under "manual" each case's plan is stored as no retry (CHARGES_OFF), and
    nothing would wake it when a gateway that charges takes over: a worker
    calls this as it starts, so the switch resumes retries at once.  Returns
    how many cases it woke.  A case stopped with a charge in doubt stays with
    the operator: that charge may have gone through the gateway used before.
    """
    if gateway.name == "manual":
        return 0
    return Case.objects.filter(
        state=CaseState.ACTIVE, next_retry_at=None, retry_reason=CHARGES_OFF
    ).update(next_retry_at=now, retry_reason="", updated_at=now)


def claim_due_retries(*, now: datetime, limit: int) -> list[Case]:
    """Active cases whose retry wake-up is due (case_retry_due_idx), then cases paused or
    exhausted with a charge in doubt whose question is due (case_doubt_due_idx): the
    money's fate is asked about whatever the dunning does.  Locked until commit."""
    cases: list[Case] = _DUE_RETRIES(limit).instances(now=now)
    if len(cases) < limit:
        cases += _DUE_DOUBTS(limit - len(cases)).instances(now=now)
    attach_customers(cases)  # by primary key, not joined into the claim (see decisions)
    return cases


def _due_retries(limit: int) -> QuerySet[Case]:
    due = Case.objects.filter(
        state=CaseState.ACTIVE, next_retry_at__lte=Param("now", DateTimeField())
    ).order_by("next_retry_at", "id")
    return claimable(due)[:limit]


def _due_doubts(limit: int) -> QuerySet[Case]:
    doubts = (
        Case.objects.filter(
            charge_in_doubt_since__isnull=False, next_retry_at__lte=Param("now", DateTimeField())
        )
        .exclude(state=CaseState.ACTIVE)
        .order_by("next_retry_at", "id")
    )
    return claimable(doubts)[:limit]


# Both run at every pass, mostly finding few cases or none: compiled once.
_DUE_RETRIES = Prepared(_due_retries)
_DUE_DOUBTS = Prepared(_due_doubts)


def retry_due(
    *,
    now: datetime,
    gateway: Gateway,
    strategy: Strategy = Strategy.SMART,
    limit: int = 100,
    rng: random.Random | None = None,
) -> RetryReport:
    """Plan the cases that need a plan and charge the ones whose retry is due; a charge
    in doubt past IN_DOUBT_LIMIT is looked up instead (`_look_up`)."""
    rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)
    with transaction.atomic():
        cases = claim_due_retries(now=now, limit=limit)
        if not cases:
            return RetryReport()
        batch = RetryBatch.load(cases, now=now, strategy=strategy)
        charges: list[_Due] = []
        lookups: list[_Due] = []
        stopped: list[tuple[Case, str]] = []
        cards_charged: set[int] = set()
        for case in cases:
            in_doubt = case.charge_in_doubt_since is not None
            if gateway.name == "manual":
                if in_doubt:
                    # Charges were turned off while one was in doubt: nobody can ask.
                    stopped.append((case, "charges are off while a charge is in doubt"))
                    continue
                batch.store(case, RetryPlan(None, CHARGES_OFF))
                continue
            due = batch.named_charge(case) if case.retry_key else None
            if in_doubt:  # so is every case the claim took that is not active
                # A case no longer active (paused for a dispute or a promise to pay) is
                # not charged: had the first request been lost on the way, the same
                # request would be a first charge.  A gateway that can find the charge
                # by its key is asked for it instead.
                may_send = case.state == CaseState.ACTIVE or not isinstance(
                    gateway, ChargeLookupGateway
                )
                if due is None:
                    # A case from before charges were stored with their key.
                    stopped.append((case, "the charge in doubt is not known in full"))
                elif (
                    may_send
                    and batch.can_make(due)
                    and not on_session(due.key)
                    and not _past_the_key(case, now=now, gateway=gateway)
                ):
                    charges.append(due)  # the same request: the gateway answers it once
                elif isinstance(gateway, ChargeLookupGateway):
                    lookups.append(due)
                else:
                    # Past the key's lifetime, or asked again for an invoice that has
                    # changed since, the same request could be a second charge.
                    stopped.append((case, _cannot_ask(case, due, batch=batch, now=now)))
                continue
            if due is not None and batch.can_make(due):
                if due.method.pk in cards_charged:
                    # Planned without the charge this batch makes on the same card
                    # (another case of the customer's): its answer counts against
                    # the card's network caps, so this one is planned after it.
                    batch.store(case, RetryPlan(now, SAME_CARD))
                    continue
                cards_charged.add(due.method.pk)
                charges.append(due)
                continue
            # No charge planned, or its invoice or card changed since: planned afresh.
            batch.plan(case)
        for due, again in _on_busy_cards(charges, now=now):
            charges.remove(due)
            batch.store(due.case, RetryPlan(again, SAME_CARD))
        batch.save()
        lease = now + LEASE
        if lookups:
            Case.objects.filter(pk__in=[due.case.pk for due in lookups]).update(
                next_retry_at=lease, retry_reason=LOOKING_UP, updated_at=now
            )
        # From the moment it is sent until its answer is recorded, a charge is in
        # doubt: a worker that dies in between leaves it to be asked about, not
        # charged afresh under another key.
        if charges:
            _SENDING().run(ids=[due.case.pk for due in charges], lease=lease, now=now)
        for case, reason in stopped:
            _stop_in_doubt(case, now=now, reason=reason)
    counts: Counter[str] = Counter()
    if lookups:
        changed = {due.case.pk for due in lookups if _changed_since_sent(due, batch)}
        found = _look_up(
            lookups, now=now, lease=lease, changed=changed, gateway=gateway, rng=rng, counts=counts
        )
        _record(found, now=now, strategy=strategy, counts=counts)
    start = 0
    while start < len(charges):
        answered, start = _charge_chunk(
            charges, start, lease=lease, now=now, gateway=gateway, rng=rng, counts=counts
        )
        _record(answered, now=now, strategy=strategy, counts=counts)
    return RetryReport(
        planned=batch.planned,
        charged=len(charges),
        recovered=counts["recovered"],
        declined=counts["declined"],
        unknown=counts["unknown"],
        looked_up=len(lookups),
        stopped=len(stopped),
        more_due=len(cases) >= limit or batch.due_now + counts["due_now"] > 0,
    )


# ---------------------------------------------------------------- the batch


# The columns the planner reads of an attempt: `_Attempt`'s fields, in its order.
_ATTEMPT_FIELDS = (
    "pk",
    "customer_id",
    "invoice_id",
    "payment_method_id",
    "attempted_at",
    "outcome",
    "amount",
    "currency",
    "decline_code",
    "advice_code",
    "network_code",
    "network_advice_code",
)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """A recorded attempt as the planner reads it: plain values, not a model instance."""

    pk: int
    customer_id: int
    invoice_id: int
    payment_method_id: int | None
    attempted_at: datetime
    outcome: str
    amount: int
    currency: str
    decline_code: str
    advice_code: str
    network_code: str
    network_advice_code: str
    payment_method: PaymentMethod | None


@dataclass(frozen=True, slots=True)
class _History:
    """What planning needs beyond the invoice and the card: read only when a case is planned."""

    hours: dict[str, HourStats]  # by segment (`retry_timing.card_segments`), as far as needed
    policies: dict[int, Policy]  # by PolicyVersion id
    by_invoice: dict[int, list[_Attempt]]  # the target invoices' attempts
    by_card: dict[int, list[_Attempt]]  # each card's attempts in the network windows
    # By customer: attempts recorded without their card in the network windows (the
    # API allows it), which may have been on any card on file then (`_past`).
    cardless: dict[int, list[_Attempt]]
    invoice_refs: dict[int, str]  # external ids of the invoices those attempts were on
    payments: dict[int, list[datetime]]  # by customer, newest first
    declines: dict[int, list[datetime]]  # by customer, newest first


@dataclass
class RetryBatch:
    """What planning and charging a batch of claimed cases needs, and the plans it will write.

    The invoices to charge and the customers' cards are read at once: a batch
    of due charges needs nothing else.  The history the planner weighs is read
    for the whole batch the first time a case is planned.
    """

    now: datetime
    strategy: Strategy
    cases: Sequence[Case]
    cards: dict[int, list[PaymentMethod]]  # by customer: saved cards, the one to charge first
    # By case: the invoices left to charge, by id, the oldest (the one to charge) first.
    owing: dict[int, dict[int, Invoice]]
    planned: int = 0
    due_now: int = 0  # plans at or before now: the claim's next call takes them
    updates: list[tuple[Case, RetryPlan, _Due | None]] = field(default_factory=list)
    _history: _History | None = None

    @classmethod
    def load(cls, cases: Sequence[Case], *, now: datetime, strategy: Strategy) -> RetryBatch:
        owing: dict[int, dict[int, Invoice]] = defaultdict(dict)
        for link in _Reads.owing().instances(cases=[case.pk for case in cases]):
            owing[link.case_id][link.invoice_id] = link.invoice
        cards: dict[int, list[PaymentMethod]] = defaultdict(list)
        for method in _Reads.cards().instances(customers=list({c.customer_id for c in cases})):
            cards[method.customer_id].append(method)
        return cls(now=now, strategy=strategy, cases=cases, cards=cards, owing=owing)

    @cached_property
    def targets(self) -> dict[int, Invoice]:
        """By case: the oldest invoice left to charge."""
        return {case_id: next(iter(invoices.values())) for case_id, invoices in self.owing.items()}

    def history(self) -> _History:
        if self._history is None:
            self._history = self._load_history()
        return self._history

    def _load_history(self) -> _History:
        now = self.now
        customer_ids = {case.customer_id for case in self.cases}
        card_ids = {methods[0].pk for methods in self.cards.values()}
        target_ids = {invoice.pk for invoice in self.targets.values()}
        by_invoice: dict[int, list[_Attempt]] = defaultdict(list)
        by_card: dict[int, list[_Attempt]] = defaultdict(list)
        cardless: dict[int, list[_Attempt]] = defaultdict(list)
        window = now - NETWORK_LOOKBACK
        rows = _Reads.attempts().rows(
            invoices=list(target_ids),
            cards=list(card_ids),
            customers=list(customer_ids),
            window=window,
        )
        # Before the network windows, only what may bar a card for good counts.
        card_wide = _Reads.card_wide().rows(
            cards=list(card_ids), customers=list(customer_ids), window=window
        )
        # The cards those attempts were made on: mostly the batch's own, read already.
        known = {method.pk: method for methods in self.cards.values() for method in methods}
        card_column = _ATTEMPT_FIELDS.index("payment_method_id")
        wanted = {row[card_column] for row in rows} - {None} - known.keys()
        if wanted:
            known |= {
                method.pk: method for method in _Reads.other_cards().instances(ids=list(wanted))
            }

        def attempt_of(values: tuple[Any, ...]) -> _Attempt:
            # The columns are _Attempt's fields in its order (a hot loop: no dict per row).
            method_id = values[card_column]
            row = (*values, known.get(method_id) if method_id else None)
            return _Attempt(*row)

        def on_its_card(attempt: _Attempt) -> None:
            if attempt.payment_method_id in card_ids:
                by_card[attempt.payment_method_id].append(attempt)
            elif attempt.payment_method_id is None:
                cardless[attempt.customer_id].append(attempt)

        for attempt in map(attempt_of, rows):
            if attempt.invoice_id in target_ids:
                by_invoice[attempt.invoice_id].append(attempt)
            if attempt.attempted_at >= window:
                on_its_card(attempt)
        for attempt in map(attempt_of, card_wide):
            on_its_card(attempt)
        seen_invoices = {
            a.invoice_id
            for groups in (by_card, cardless)
            for group in groups.values()
            for a in group
        }
        invoice_refs = {invoice.pk: invoice.external_id for invoice in self.targets.values()}
        missing = seen_invoices - invoice_refs.keys()
        if missing:
            invoice_refs |= dict(_Reads.invoice_refs().rows(ids=list(missing)))
        since = now - PAYDAY_LOOKBACK
        payments: dict[int, list[datetime]] = defaultdict(list)
        customers = list(customer_ids)
        for customer_id, received_at in _Reads.payments().rows(customers=customers, since=since):
            payments[customer_id].append(received_at)
        declines: dict[int, list[datetime]] = defaultdict(list)
        for customer_id, attempted_at in _Reads.declines().rows(customers=customers, since=since):
            declines[customer_id].append(attempted_at)
        versions = {
            version.pk: version
            for version in _Reads.versions().instances(
                ids=list({case.policy_id for case in self.cases})
            )
        }
        return _History(
            hours=_learned_hours(
                {segment for case in self.cases for segment in self._segments(case)}
            ),
            policies={pk: policies.load(version) for pk, version in versions.items()},
            by_invoice=by_invoice,
            by_card=by_card,
            cardless=cardless,
            invoice_refs=invoice_refs,
            payments=payments,
            declines=declines,
        )

    # ------------------------------------------------------------ planning

    def plan(self, case: Case) -> RetryPlan:
        """Decide the case's next retry; written by `save`."""
        plan, charge = self._plan(case)
        self.store(case, plan, charge=charge)
        return plan

    def store(self, case: Case, plan: RetryPlan, *, charge: _Due | None = None) -> None:
        self.updates.append((case, plan, charge if plan.at is not None else None))
        self.planned += 1
        if plan.at is not None and plan.at <= self.now:
            self.due_now += 1

    def save(self) -> None:
        """Write the plans: wake-ups, reasons, and the charges planned with their keys; a
        timeline entry for each change."""
        events = []
        for case, plan, charge in self.updates:
            reason = plan.reason[:300]
            if (case.next_retry_at, case.retry_reason) != (plan.at, reason):
                events.append(
                    CaseEvent(
                        case=case,
                        type="retry.planned" if plan.at else "retry.stopped",
                        reason=plan.reason,
                        data={
                            "at": plan.at.isoformat() if plan.at else None,
                            "strategy": str(self.strategy),
                        },
                        occurred_at=self.now,
                    )
                )
            case.next_retry_at, case.retry_reason = plan.at, reason
            case.retry_key = charge.key if charge else ""
            case.retry_invoice = charge.invoice if charge else None
            case.retry_payment_method = charge.method if charge else None
            case.retry_amount = charge.amount if charge else None
            case.charge_in_doubt_since, case.updated_at = None, self.now
        update_each(
            [case for case, _, _ in self.updates],
            [
                "next_retry_at",
                "retry_reason",
                "retry_key",
                "retry_invoice",
                "retry_payment_method",
                "retry_amount",
                "charge_in_doubt_since",
                "updated_at",
            ],
        )
        bulk_insert(events)
        self.updates = []

    def _plan(self, case: Case) -> tuple[RetryPlan, _Due | None]:
        """The plan, and the charge it plans with its idempotency key (None for none)."""
        if case.collection_method != CollectionMethod.CHARGE_AUTOMATICALLY:
            return RetryPlan(None, "invoices sent for payment are not charged"), None
        invoice = self.targets.get(case.pk)
        if invoice is None:
            return RetryPlan(None, "nothing left to charge"), None
        if self._left_to_gateway(invoice):
            assert invoice.gateway_retry_at is not None
            # A wake-up, not a charge (no key): should word of the gateway's own
            # retry never come, dunning takes over then.
            takes_over = invoice.gateway_retry_at + GATEWAY_SILENCE
            return RetryPlan(
                takes_over,
                "the gateway retries this invoice itself at "
                f"{invoice.gateway_retry_at:%d %b %H:%M} UTC; dunning takes over "
                f"if nothing is heard of that retry by {takes_over:%d %b %H:%M} UTC",
            ), None
        methods = self.cards.get(case.customer_id)
        if not methods:
            return RetryPlan(None, "no saved card to charge: waiting for the customer"), None
        method = methods[0]
        history = self.history()
        on_invoice = history.by_invoice.get(invoice.pk, [])
        failures = [a for a in on_invoice if a.outcome == AttemptOutcome.FAILED]
        if not failures:
            return RetryPlan(None, "no declined charge to retry"), None
        attempts = _merge(
            on_invoice,
            history.by_card.get(method.pk, []),
            history.cardless.get(case.customer_id, []),
        )
        policy = history.policies[case.policy_id]
        first, last = failures[0], failures[-1]
        # A stored zone this machine does not know: the charge is no contact, so it is
        # still made, at hours reckoned in UTC, and the reason says so.
        known = known_zone(case.customer.time_zone)
        zone = known or UTC_ZONE
        window = earliest_retry(
            now=self.now,
            card=_card(method),
            charge=Charge(
                invoice=invoice.external_id,
                amount=invoice.amount_remaining,
                currency=invoice.currency,
            ),
            attempts=[_past(attempt, history.invoice_refs, on_file=method) for attempt in attempts],
            budget=policy.retry,
            first_failure_at=first.attempted_at,
        )
        context = RetryContext(
            now=self.now,
            zone=zone,
            decline_code=last.decline_code or "generic_decline",
            classification=_classify(last, on_file=method),
            first_failure_at=first.attempted_at,
            original_charge_at=on_invoice[0].attempted_at,  # this invoice's first charge
            retries_done=len(failures) - 1,
            budget=policy.retry,
            window=window,
            paydays=Paydays.learn(
                history.payments.get(case.customer_id, [])[:PAYDAY_SUCCESSES],
                zone,
                failures=[
                    at
                    for at in history.declines.get(case.customer_id, [])
                    if at < first.attempted_at
                ][:PAYDAY_DECLINES],
            ),
            hours=hours_for(history.hours, self._segments(case)),
            card_change=_card_change(last, method),
        )
        plan = plan_retry(context, self.strategy)
        if plan.at is None:
            return plan, None
        if known is None:
            plan = RetryPlan(
                plan.at,
                f"unknown time zone {case.customer.time_zone!r}, so hours are reckoned in "
                f"UTC; {plan.reason}",
            )
        key = _charge_key(case, invoice, method, tries=len(on_invoice))
        return plan, _Due(case, invoice, method, key, amount=invoice.amount_remaining)

    # ------------------------------------------------------------ charging

    def named_charge(self, case: Case) -> _Due | None:
        """The charge the case's key was made for: its invoice, card and amount as stored
        with the key; None for a case from before they were stored."""
        invoice_id, method_id = case.retry_invoice_id, case.retry_payment_method_id
        if invoice_id is None or method_id is None or case.retry_amount is None:
            return None
        invoice = self.owing.get(case.pk, {}).get(invoice_id)
        if invoice is None:
            # Paid, voided or out of the case since: read for a lookup.
            invoice = self._invoice(invoice_id)
        methods = self.cards.get(case.customer_id, [])
        method = next((m for m in methods if m.pk == method_id), None)
        if method is None and case.charge_in_doubt_since is not None:
            # Taken off file since the charge was sent: what was sent is what is asked.
            method = PaymentMethod.objects.filter(pk=method_id).first()
        if invoice is None or method is None:
            return None
        return _Due(case, invoice, method, case.retry_key, amount=case.retry_amount)

    def can_make(self, due: _Due) -> bool:
        """Whether the charge can be made as it was planned: its invoice still owes that
        amount, to be charged by dunning, on a card still the one to charge first."""
        invoice = self.owing.get(due.case.pk, {}).get(due.invoice.pk)
        methods = self.cards.get(due.case.customer_id, [])
        return (
            invoice is not None
            and invoice.amount_remaining == due.amount
            and not self._left_to_gateway(invoice)
            and (
                due.case.charge_in_doubt_since is not None
                or (bool(methods) and methods[0].pk == due.method.pk)
            )
        )

    def _left_to_gateway(self, invoice: Invoice) -> bool:
        """Whether the gateway will charge the invoice again itself (Stripe's
        next_payment_attempt), so dunning does not.  A retry time GATEWAY_SILENCE past
        with no word of it is the gateway's forgotten plan, not a promise."""
        at = invoice.gateway_retry_at
        return at is not None and self.now < at + GATEWAY_SILENCE

    def _segments(self, case: Case) -> tuple[str, ...]:
        """What the hour statistics of the card to charge are learned under."""
        methods = self.cards.get(case.customer_id)
        return _card_segments(methods[0] if methods else None, case.customer)

    def _invoice(self, pk: int) -> Invoice | None:
        return Invoice.objects.filter(pk=pk).first()


def _ids(name: str) -> ParamList:
    return ParamList(name, BigIntegerField())


def _since(name: str) -> Param:
    return Param(name, DateTimeField())


def _arrival() -> Exists:
    """A payment shortly after the decline (`Paydays.learn`): the others, most of a
    struggling customer's declines, tell nothing of when money arrives, and stay unread."""
    return Exists(
        Payment.objects.filter(
            customer_id=OuterRef("customer_id"),
            received_at__gt=OuterRef("attempted_at"),
            received_at__lte=PlusDays(OuterRef("attempted_at"), ARRIVAL_WITHIN.days),
        )
    )


class _Reads:
    """The queries of `RetryBatch.load` and `_load_history`, compiled once each
    (`Prepared`): every batch runs them."""

    # The cases' invoices left to charge, the oldest first.
    owing: Prepared[CaseInvoice] = Prepared(
        lambda: (
            CaseInvoice.objects.filter(
                case_id__in=_ids("cases"),
                invoice__status=InvoiceStatus.OPEN,
                invoice__amount_remaining__gt=0,
                invoice__collection_method=CollectionMethod.CHARGE_AUTOMATICALLY,
            )
            .select_related("invoice")
            .order_by("invoice__due_at", "invoice_id")
        )
    )
    # The cards on file, as `card_to_charge` picks them.
    cards: Prepared[PaymentMethod] = Prepared(
        lambda: PaymentMethod.objects.filter(
            customer_id__in=_ids("customers"),
            type=PaymentMethodType.CARD,
            detached_at__isnull=True,
        ).order_by(*CARD_ORDER)
    )
    # The target invoices' attempts, and each card's in the network windows, and the
    # customers' attempts recorded without their card in those windows.
    attempts = Prepared(
        lambda: (
            PaymentAttempt.objects.filter(
                Q(invoice_id__in=_ids("invoices"))
                | Q(payment_method_id__in=_ids("cards"), attempted_at__gte=_since("window"))
                | Q(
                    customer_id__in=_ids("customers"),
                    payment_method__isnull=True,
                    attempted_at__gte=_since("window"),
                )
            )
            .order_by("attempted_at", "id")
            .values_list(*_ATTEMPT_FIELDS)
        )
    )
    # The cards' declines from before the network windows that may bar a card for good
    # (`declines.may_be_card_wide`), and the customers' recorded without their card.
    card_wide = Prepared(
        lambda: (
            PaymentAttempt.objects.alias(
                code=Lower(Trim("decline_code")),
                network=Upper(Trim("network_code")),
                mac=Upper(Trim("network_advice_code")),
            )
            .filter(
                Q(payment_method_id__in=_ids("cards"))
                | Q(customer_id__in=_ids("customers"), payment_method__isnull=True),
                outcome=AttemptOutcome.FAILED,
                attempted_at__lt=_since("window"),
            )
            .filter(
                Q(code__in=sorted(CARD_WIDE_DECLINE_CODES))
                | Q(network__in=sorted(CARD_WIDE_NETWORK_CODES))
                | Q(mac__in=sorted(CARD_WIDE_ADVICE_CODES))
            )
            .order_by("attempted_at", "id")
            .values_list(*_ATTEMPT_FIELDS)
        )
    )
    payments = Prepared(
        lambda: (
            Payment.objects.filter(
                customer_id__in=_ids("customers"), received_at__gte=_since("since")
            )
            .order_by("-received_at")
            .values_list("customer_id", "received_at")
        )
    )
    declines = Prepared(
        lambda: (
            PaymentAttempt.objects.filter(
                customer_id__in=_ids("customers"),
                outcome=AttemptOutcome.FAILED,
                attempted_at__gte=_since("since"),
            )
            .filter(_arrival())
            .order_by("-attempted_at")
            .values_list("customer_id", "attempted_at")
        )
    )
    versions: Prepared[PolicyVersion] = Prepared(
        lambda: PolicyVersion.objects.filter(pk__in=_ids("ids"))
    )
    # The cards and invoices of history beyond the batch's own (other cards, past invoices).
    other_cards: Prepared[PaymentMethod] = Prepared(
        lambda: PaymentMethod.objects.filter(pk__in=_ids("ids"))
    )
    invoice_refs = Prepared(
        lambda: Invoice.objects.filter(pk__in=_ids("ids")).values_list("pk", "external_id")
    )


def _on_busy_cards(charges: Sequence[_Due], *, now: datetime) -> list[tuple[_Due, datetime]]:
    """The new charges among `charges` on a card another case's charge is under way on,
    each with when to look at it again: not made now.

    The networks cap the charges on a card, whichever of the customer's cases
    makes them (two currencies, one card), and each case's plan counts only the
    answers recorded when it was made.  Two workers that each claimed one of
    those cases would both charge the card: the claim holds each card it charges
    until commit (a card another claim holds is left to it), and a card with
    another case's charge sent but unanswered (in doubt: being sent by another
    worker, asked again, made on the pay page, or lost) waits for that answer,
    which plans the customer's other cases again (`_replan_the_customers_others`).
    A charge in doubt asked again is the same request, not another charge.
    """
    fresh = [due for due in charges if due.case.charge_in_doubt_since is None]
    cards = sorted({due.method.pk for due in fresh})
    if not cards:
        return []
    held = set(cards)
    if connection.features.has_select_for_update_skip_locked:
        # FOR NO KEY UPDATE: a webhook recording an attempt on the card (a row that
        # merely references it) is not held up; another claim of the card is.
        held = set(
            PaymentMethod.objects.select_for_update(no_key=True, skip_locked=True)
            .filter(pk__in=cards)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    again = now + LEASE
    busy = {card: again for card in cards if card not in held}
    # This batch's own new charges are one to a card already (`cards_charged`);
    # its charges in doubt, asked again or looked up, count like any other.
    others = _OTHERS_IN_DOUBT().rows(
        customers=list({due.case.customer_id for due in fresh}),
        cards=sorted(held),
        cases=[due.case.pk for due in fresh],
    )
    for card, asked_at in others:
        # Looked at again when the other charge is next asked about, at the latest.
        at = asked_at if asked_at is not None and asked_at > now else again
        busy[card] = min(busy.get(card, at), at)
    return [(due, busy[due.method.pk]) for due in fresh if due.method.pk in busy]


# The customers' other cases with a charge in doubt on those cards: every batch with
# new charges asks it, compiled once.
_OTHERS_IN_DOUBT = Prepared(
    lambda: (
        Case.objects.filter(
            customer_id__in=_ids("customers"),
            retry_payment_method_id__in=_ids("cards"),
            charge_in_doubt_since__isnull=False,
        )
        .exclude(pk__in=_ids("cases"))
        .values_list("retry_payment_method_id", "next_retry_at")
    )
)


def _past_the_key(case: Case, *, now: datetime, gateway: Gateway) -> bool:
    """Whether a charge in doubt is past IN_DOUBT_LIMIT, after which it is not sent again
    (the gateway may forget its key): a gateway that can look it up is asked for it
    from the limit on; another is asked the same request one last time at the limit."""
    since = case.charge_in_doubt_since
    if since is None:
        return False
    if isinstance(gateway, ChargeLookupGateway):
        return now - since >= IN_DOUBT_LIMIT
    return now - since > IN_DOUBT_LIMIT


def _cannot_ask(case: Case, due: _Due, *, batch: RetryBatch, now: datetime) -> str:
    """Why a charge in doubt goes to an operator at a gateway that cannot look it up."""
    if on_session(due.key):
        return (
            "it was made on the pay page with the customer present: it is not sent again "
            "without them, and this gateway cannot look charges up (cancel it at the "
            "gateway if it still waits for the customer)"
        )
    if not batch.can_make(due):
        return (
            "its invoice changed since it was sent (paid, voided or another amount): sent "
            "again, it could be a second charge, and this gateway cannot look charges up"
        )
    return f"no answer for {now - (case.charge_in_doubt_since or now)}, past the key's lifetime"


def _past(
    attempt: _Attempt | PaymentAttempt,
    invoice_refs: dict[int, str],
    *,
    on_file: PaymentMethod | None = None,
) -> PastAttempt:
    """The attempt as the network rules read it, when planning a charge on `on_file`.

    An attempt recorded without its card (the API allows it) may have been made
    on any card the customer had on file then, so it counts as made on
    `on_file` if that card was saved by then: its caps and never-retry declines
    are never undercounted (a card saved later is certainly another card, as
    `_card_change` has it).
    """
    method = _card_of(attempt, on_file)
    card = (
        _card(method, used_at=attempt.attempted_at)
        if method
        else Card(number="unknown", brand=Brand.OTHER)
    )
    succeeded = attempt.outcome == AttemptOutcome.SUCCEEDED
    return PastAttempt(
        at=attempt.attempted_at,
        card=card,
        charge=Charge(
            invoice=invoice_refs.get(attempt.invoice_id, str(attempt.invoice_id)),
            amount=attempt.amount,
            currency=attempt.currency,
        ),
        succeeded=succeeded,
        classification=None if succeeded else _classify(attempt, on_file=on_file),
    )


def _card_of(
    attempt: _Attempt | PaymentAttempt, on_file: PaymentMethod | None
) -> PaymentMethod | None:
    """The card `attempt` was made on, or may have been (`_past`)."""
    if attempt.payment_method is not None:
        return attempt.payment_method
    if on_file is not None and on_file.created_at <= attempt.attempted_at:
        return on_file
    return None


def _merge(*groups: Iterable[_Attempt]) -> list[_Attempt]:
    """The attempts of all groups, each once, in the order they were made."""
    unique = {attempt.pk: attempt for group in groups for attempt in group}
    return sorted(unique.values(), key=lambda a: (a.attempted_at, a.pk))


def _charge_key(case: Case, invoice: Invoice, method: PaymentMethod, *, tries: int) -> str:
    """The idempotency key of the case's next charge (`charge_key` under "case<id>")."""
    return charge_key(f"case{case.pk}", invoice, method, tries=tries)


def on_session(key: str) -> bool:
    """Whether the charge under `key` was made on the pay page, the customer present: its
    request cannot be sent again without them, so while in doubt it is only looked up."""
    return key.startswith(ON_SESSION)


def charge_request(
    case: Case,
    invoice: Invoice,
    method: PaymentMethod,
    *,
    key: str,
    amount: int,
    gateway_invoice: bool = False,
) -> ChargeRequest:
    """The request charging `amount` of `invoice` on `method` under `key`: the same for the
    charge and for every later question about it (`find_charge` compares them)."""
    metadata = {"dunning_case": str(case.pk)}
    if on_session(key):
        metadata["dunning_on_session"] = "true"
    return ChargeRequest(
        amount=amount,
        currency=invoice.currency,
        customer_external_id=case.customer.external_id,
        payment_method_external_id=method.external_id,
        invoice_external_id=invoice.external_id,
        idempotency_key=key,
        description=f"Invoice {invoice.number}",
        metadata=metadata,
        gateway_invoice=gateway_invoice,
    )


def charge_key(prefix: str, invoice: Invoice, method: PaymentMethod, *, tries: int) -> str:
    """An idempotency key for charging `invoice` on `method`; `prefix` names who charges.

    It names the charge's content (invoice, card, amount) and the number of
    attempts recorded on that invoice before it (`tries`).  Made again with
    the same content, as after a charge whose outcome is unknown, it is the
    same key, so the gateway answers with that charge's outcome instead of
    charging twice; a new card or a new amount is a new charge with a new key.
    """
    content = f"{invoice.pk}:{method.pk}:{invoice.amount_remaining}"
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]
    return f"{prefix}:try{tries + 1}:{digest}"


def _card_change(last: _Attempt, method: PaymentMethod) -> CardChange:
    """Another card since the last decline, or this one updated (new expiry, details)."""
    if last.payment_method_id is None:
        # A decline recorded without its card (the API allows it): a card saved after
        # it is certainly another card; one whose details changed since, an update.
        if method.created_at > last.attempted_at:
            return CardChange.NEW
    elif last.payment_method_id != method.pk:
        return CardChange.NEW
    changed = method.details_changed_at
    return CardChange.UPDATED if changed and changed > last.attempted_at else CardChange.NONE


def _card(method: PaymentMethod, *, used_at: datetime | None = None) -> Card:
    """The card as the network rules see it.

    `number` is the payment method, and the time its number changed if it did.
    `details` is the version of what the customer or a card updater can change
    without a new number (the expiry): an attempt made before the card's
    details last changed was made with other details, so a decline that asked
    the customer to act does not block the updated card.  Other updates (the
    country, the default flag) leave the details as they were.
    """
    since = method.details_since
    if used_at is not None and used_at < since:
        details = f"before {since.isoformat()}"
    else:
        details = f"{method.exp_month}/{method.exp_year} as of {since.isoformat()}"
    # The networks count reattempts per card number (rules.md 2.1, 2.2): a number the
    # card updater replaced (a lost card reissued) is another card, a renewed expiry
    # is not.
    number = method.external_id
    changed = method.number_changed_at
    if changed is not None:
        number += f" before {changed.isoformat()}" if used_at and used_at < changed else " now"
    return Card(number=number, brand=Brand.parse(method.brand), details=details)


def _classify(
    attempt: _Attempt | PaymentAttempt, *, on_file: PaymentMethod | None = None
) -> Classification:
    method = _card_of(attempt, on_file)
    brand = Brand.parse(method.brand) if method else Brand.OTHER
    return classify_decline(
        attempt.decline_code or "generic_decline",
        advice_code=attempt.advice_code,
        network_decline_code=attempt.network_code,
        network_advice_code=attempt.network_advice_code,
        brand=brand,
    )


def _learned_hours(segments: set[str]) -> dict[str, HourStats]:
    """The tenant's hour statistics of these segments (`RetryStat`)."""
    tables: dict[str, list[tuple[int, int]]] = {}
    for segment, hour, successes, attempts in _HOUR_STATS().rows(segments=sorted(segments)):
        tables.setdefault(segment, [(0, 0)] * 24)[hour] = (successes, attempts)
    return {segment: HourStats(tuple(table), segment) for segment, table in tables.items()}


_HOUR_STATS = Prepared(
    lambda: RetryStat.objects.filter(segment__in=ParamList("segments", CharField())).values_list(
        "segment", "hour", "successes", "attempts"
    )
)  # read by every batch that plans


# ---------------------------------------------------------------- charging


def _charge_chunk(
    dues: Sequence[_Due],
    start: int,
    *,
    lease: datetime,
    now: datetime,
    gateway: Gateway,
    rng: random.Random,
    counts: Counter[str],
) -> tuple[list[tuple[_Due, ChargeResult]], int]:
    """Charge the due cases from `start` on that are still this worker's, until CHUNK
    answers are in or RECORD_AFTER seconds have passed; the answers to record, and
    where the next chunk starts.

    The claim was taken at the start of the batch and charges take time, so a
    case is checked again (`_still_ours`) before its charge whenever
    RECHECK_AFTER seconds of charging have passed since the last check.
    """
    answered: list[tuple[_Due, ChargeResult]] = []
    ours: set[int] = set()
    began = time.monotonic()
    checked, checked_until = began - RECHECK_AFTER, start
    index = start
    while index < len(dues) and len(answered) < CHUNK:
        if answered and time.monotonic() - began >= RECORD_AFTER:
            break
        if index >= checked_until or time.monotonic() - checked >= RECHECK_AFTER:
            checked_until = min(index + CHUNK, len(dues))
            ours = _still_ours(dues[index:checked_until], lease=lease, now=now)
            checked = time.monotonic()
        due = dues[index]
        index += 1
        if due.case.pk not in ours:
            continue
        try:
            result = gateway.charge(_request(due, gateway=gateway))
        except GatewayError as error:
            counts["unknown"] += 1
            if error.account_refused:
                # Refused for who is asking, not for this charge: every charge left
                # would be refused alike, so none is sent until the gateway accepts us.
                _held_back(dues[index - 1 :], error=error, lease=lease, now=now)
                return answered, len(dues)
            _charge_failed(due.case, error=error, now=now, rng=rng)
            continue
        except Exception:
            # Whatever went wrong stays with this case: the others are charged,
            # and this one is asked again with the same key after a while.
            log.exception("case %s: the retry failed", due.case.pk)
            counts["unknown"] += 1
            _in_doubt(due.case, now=now, rng=rng, reason="the retry failed unexpectedly")
            continue
        if result.status is ChargeStatus.PENDING:
            # Processing (a bank's confirmation, a slow network): it may still take
            # the money, so it stays in doubt, asked about until its answer comes
            # (its webhook, the same key, or a lookup).
            counts["unknown"] += 1
            _in_doubt(due.case, now=now, rng=rng, reason="the charge is processing")
            continue
        if result.status is ChargeStatus.NOT_ATTEMPTED:
            counts["unknown"] += 1
            _not_settled(due.case, now=now)
            continue
        answered.append((due, result))
    return answered, index


def _request(due: _Due, *, gateway: Gateway) -> ChargeRequest:
    return charge_request(
        due.case,
        due.invoice,
        due.method,
        key=due.key,
        amount=due.amount,
        gateway_invoice=(due.invoice.context or {}).get("gateway") == gateway.name,
    )


def _still_ours(dues: Sequence[_Due], *, lease: datetime, now: datetime) -> set[int]:
    """The cases among `dues` still leased by this worker and owing what they owed.

    Another worker that claimed a case since moved its lease; a payment or a
    void changed its invoice: then that charge is not made.  One this worker
    still holds is handed back (`_unsent`).
    """
    cases = {
        pk: (state, wake, key)
        for pk, state, wake, key in _ChargeQueries.leases().rows(ids=[due.case.pk for due in dues])
    }
    invoices = {
        pk: (status, remaining)
        for pk, status, remaining in _ChargeQueries.invoice_amounts().rows(
            ids=[due.invoice.pk for due in dues]
        )
    }
    held = [due for due in dues if cases.get(due.case.pk, ())[1:] == (lease, due.key)]
    ours = {
        due.case.pk
        for due in held
        if _may_charge(cases[due.case.pk][0], due)
        and invoices.get(due.invoice.pk) == (InvoiceStatus.OPEN, due.amount)
    }
    _unsent([due for due in held if due.case.pk not in ours], lease=lease, now=now)
    return ours


def _when_paused(now: Any) -> Any:
    """`now` for a paused case (planned afresh when resumed), no wake-up for the others."""
    return Cond(
        When(state=CaseState.PAUSED, then=now),
        default=None,
        output_field=DateTimeField(),
    )


# Answered cases no longer active: every recorded chunk.
_ANSWERED_INACTIVE = PreparedUpdate(
    lambda: (
        Case.objects.filter(pk__in=_ids("ids")).exclude(state=CaseState.ACTIVE),
        {
            "retry_key": "",
            "charge_in_doubt_since": None,
            "next_retry_at": _when_paused(_since("now")),
            "retry_reason": _no_reason(),
        },
    )
)


def _may_charge(state: str, due: _Due) -> bool:
    """An active case is charged; one paused or exhausted only asks again about the
    charge in doubt it had when it was claimed (the same request under its key)."""
    if state == CaseState.ACTIVE:
        return True
    return due.case.charge_in_doubt_since is not None and state in (
        CaseState.PAUSED,
        CaseState.EXHAUSTED,
    )


def _unsent(dues: Sequence[_Due], *, lease: datetime, now: datetime) -> None:
    """Charges this worker leased and will not send: no longer in doubt on its account,
    and the case is looked at again at once (planned afresh, or asked about)."""
    if not dues:
        return
    sent_before = [due.case.pk for due in dues if due.case.charge_in_doubt_since is not None]
    fresh = [due.case.pk for due in dues if due.case.charge_in_doubt_since is None]
    Case.objects.filter(pk__in=fresh, next_retry_at=lease).update(
        next_retry_at=now, charge_in_doubt_since=None, updated_at=now
    )
    Case.objects.filter(pk__in=sent_before, next_retry_at=lease).update(
        next_retry_at=now, updated_at=now
    )


def _record(
    answered: Sequence[tuple[_Due, ChargeResult]],
    *,
    now: datetime,
    strategy: Strategy,
    counts: Counter[str],
) -> None:
    """Record a chunk's answers and plan again the cases still active, in one transaction.

    The ledger judges each answer on its own (`record_payment_attempts`): one it
    refuses (a webhook recorded the payment first) leaves the others.  A case
    whose answer is recorded is planned in the same transaction, so a worker
    stopped in between leaves nothing half done.
    """
    if not answered:
        return
    learned: dict[tuple[str, int], tuple[int, int]] = defaultdict(lambda: (0, 0))
    with transaction.atomic():
        # An answer its own webhook (payment_intent.*) recorded first is on the
        # ledger already, under the same reference: it is not recorded twice.
        # Judged under the invoices' locks, which the webhooks take too.
        seen = _recorded_already(answered)
        fresh = [pair for pair in answered if pair not in seen]
        outcomes = iter(
            record_payment_attempts(
                [
                    AttemptFacts(
                        invoice=due.invoice.external_id,
                        attempted_at=now,
                        payment_method=due.method.external_id,
                        **result.attempt_fields(),
                    )
                    for due, result in fresh
                ],
                now=now,
                source=SOURCE,
            )
        )
        recorded: list[_Due] = []
        for due, result in answered:
            if (due, result) not in seen:
                outcome = next(outcomes)
                if isinstance(outcome, LedgerError):
                    # The ledger refused the outcome (the invoice was paid another
                    # way, or changed under the charge).
                    _not_recorded(due, result, error=outcome, now=now)
                    continue
            counts["recovered" if result.succeeded else "declined"] += 1
            recorded.append(due)
            customer = due.case.customer
            zone = known_zone(customer.time_zone)
            if zone is None:
                continue  # its local hour is not known: nothing to learn of hours
            hour = now.astimezone(zone).hour
            for segment in _card_segments(due.method, customer):
                successes, attempts = learned[segment, hour]
                learned[segment, hour] = (successes + int(result.succeeded), attempts + 1)
        _learn(learned)
        # Answered: no longer in doubt.  A case paused, exhausted or closed is not
        # planned; it keeps no key (a paused one is planned afresh when resumed).
        # Only a case still holding this charge's key: one that has moved on (this
        # worker's lease ran out, another recorded the same answer and planned the
        # case, a payment on the pay page is in doubt since) is not planned again
        # over its next charge, which would forget that charge and make another.
        ids = _still_holding(recorded)
        if ids:
            _ANSWERED_INACTIVE().run(ids=ids, now=now)
        active = _ChargeQueries.active().instances(ids=ids) if ids else []
        if active:
            attach_customers(active)
            batch = RetryBatch.load(active, now=now, strategy=strategy)
            for case in active:
                batch.plan(case)
            batch.save()
            counts["due_now"] += batch.due_now
        _replan_the_customers_others(answered, planned=set(ids), now=now)


def _still_holding(dues: Sequence[_Due]) -> list[int]:
    """The cases of `dues` that still hold the key their charge was sent under, locked
    until commit (a payment started on the pay page meanwhile waits for it)."""
    if not dues:
        return []
    keys = dict(_ChargeQueries.keys().rows(ids=[due.case.pk for due in dues]))
    return [due.case.pk for due in dues if keys.get(due.case.pk) == due.key]


def _replan_the_customers_others(
    answered: Sequence[tuple[_Due, ChargeResult]], *, planned: set[int], now: datetime
) -> None:
    """A charge counts against its card's network caps for every case that would charge
    that card: the customer's other cases (in other currencies), planned before it, are
    planned again."""
    customers = list({due.case.customer_id for due, _ in answered})
    others = [
        pk
        for (pk,) in _ChargeQueries.customers_cases().rows(customers=customers)
        if pk not in planned
    ]
    if others:
        _REPLAN_CASES().run(ids=others, now=now)


def _recorded_already(
    answered: Sequence[tuple[_Due, ChargeResult]],
) -> set[tuple[_Due, ChargeResult]]:
    """The answers the ledger holds already: an attempt on the same invoice, with the
    same outcome, under the charge's reference or the payment's (a webhook names
    either).  Locks the invoices first, in the ledger's order, so that no webhook
    records one meanwhile."""
    invoices = sorted({due.invoice.pk for due, _ in answered})
    _ChargeQueries.lock_invoices().rows(ids=invoices)
    references = list(
        {
            ref
            for _, result in answered
            for ref in (result.reference, result.charge_reference)
            if ref
        }
    )
    if not references:
        return set()
    held = set(_ChargeQueries.attempts().rows(invoices=invoices, references=references))
    # A success may be on the ledger as a bare payment (Stripe's invoice.paid); only
    # a success can match one.
    if any(result.succeeded for _, result in answered):
        held |= {
            (invoice_id, reference, AttemptOutcome.SUCCEEDED)
            for invoice_id, reference in _ChargeQueries.payments().rows(
                invoices=invoices, references=references
            )
        }
    return {
        (due, result)
        for due, result in answered
        if any(
            (due.invoice.pk, ref, result.attempt_fields()["outcome"]) in held
            for ref in (result.reference, result.charge_reference)
            if ref
        )
        or _paid_at_its_gateway_already(due, result)
    }


def _paid_at_its_gateway_already(due: _Due, result: ChargeResult) -> bool:
    """A success paying the gateway's own invoice (Stripe Billing's), whose payment that
    gateway's webhook recorded first under a reference the answer does not name.

    The gateway pays its invoice once, so a payment of the same amount its webhooks
    recorded is this one, whatever reference each side knew it by: the webhook
    may name the payment before its link to the PaymentIntent arrived, the answer
    may name only the invoice.  A payment recorded any other way (a bank transfer
    through the API) is not matched: then the money was taken twice.
    """
    if not result.succeeded or (due.invoice.context or {}).get("gateway") != result.gateway:
        return False
    by_gateway = [
        data.get("payment")
        for data in due.invoice.events.filter(
            type="payment.recorded", source=result.gateway
        ).values_list("data", flat=True)
    ]
    return Payment.objects.filter(
        invoice_id=due.invoice.pk,
        pk__in=[pk for pk in by_gateway if isinstance(pk, int)],
        attempt__isnull=True,
        amount=result.amount,
        currency=result.currency,
    ).exists()


def _references(name: str) -> ParamList:
    return ParamList(name, CharField())


class _ChargeQueries:
    """The queries that record a chunk of answers (`_recorded_already`, `_record`) and
    check a chunk before its charges (`_still_ours`), compiled once each (`Prepared`)."""

    lock_invoices = Prepared(
        lambda: (
            Invoice.objects.select_for_update()
            .filter(pk__in=_ids("ids"))
            .order_by("pk")
            .values_list("pk")
        )
    )
    attempts = Prepared(
        lambda: PaymentAttempt.objects.filter(
            invoice_id__in=_ids("invoices"), reference__in=_references("references")
        ).values_list("invoice_id", "reference", "outcome")
    )
    payments = Prepared(
        lambda: Payment.objects.filter(
            invoice_id__in=_ids("invoices"), reference__in=_references("references")
        ).values_list("invoice_id", "reference")
    )
    active: Prepared[Case] = Prepared(
        lambda: Case.objects.select_for_update().filter(pk__in=_ids("ids"), state=CaseState.ACTIVE)
    )
    keys = Prepared(
        lambda: (
            Case.objects.select_for_update()
            .filter(pk__in=_ids("ids"))
            .order_by("pk")
            .values_list("pk", "retry_key")
        )
    )
    customers_cases = Prepared(
        lambda: Case.objects.filter(
            customer_id__in=_ids("customers"), state=CaseState.ACTIVE
        ).values_list("pk")
    )
    leases = Prepared(
        lambda: Case.objects.filter(pk__in=_ids("ids")).values_list(
            "pk", "state", "next_retry_at", "retry_key"
        )
    )
    invoice_amounts = Prepared(
        lambda: Invoice.objects.filter(pk__in=_ids("ids")).values_list(
            "pk", "status", "amount_remaining"
        )
    )


def _not_recorded(due: _Due, result: ChargeResult, *, error: LedgerError, now: datetime) -> None:
    """The gateway answered, the ledger refused the answer: say so, loudly if money moved.

    Money taken that the ledger will not hold (more than the invoice owes by
    now, an invoice voided meanwhile) keeps the charge in doubt and stops the
    retries: nothing replans the case or charges the customer again until an
    operator has refunded or applied the money, then released the charge or
    recorded the payment.  A refused decline leaves the case to be planned afresh.
    """
    reason = f"the charge's outcome was not recorded: {error}"
    if result.succeeded:
        # The ledger holds no trace of the money taken: the timeline names the charge
        # and its amount, for the refund.
        taken = format_money(result.amount, result.currency, locale="en")
        reason = f"charge {result.reference or due.key} took {taken}, but {reason}"
    CaseEvent.objects.create(
        case=due.case,
        type="retry.not_recorded",
        reason=reason,
        data={
            "reference": result.reference,
            "amount": result.amount,
            "currency": result.currency,
            "key": due.key,
            "invoice": due.invoice.external_id,
        },
        occurred_at=now,
    )
    if result.succeeded:
        hold_for_refund(due.case.pk, due.case.retry_key, now=now)
        log.error(
            "case %s: charge %s (%s) took the money but was not recorded (%s); "
            "a refund may be owed",
            due.case.pk,
            due.key,
            result.reference,
            error,
        )
        return
    _still_sent(due.case).update(
        next_retry_at=now, retry_key="", charge_in_doubt_since=None, updated_at=now
    )
    log.warning("case %s: decline %s not recorded (%s)", due.case.pk, due.key, error)


def hold_for_refund(case_id: int, key: str, *, now: datetime) -> None:
    """The charge under `key` took money the ledger will not hold: it stays in doubt and
    the retries stop, so that nothing charges the customer again until an operator has
    refunded or applied the money and released the charge (`release_charge_in_doubt`).

    An active case is paused too: the customer has paid what the ledger says they
    still owe (a transfer or a credit note landed while the charge was under way), and
    its reminders would ask them for it again, up to the final notice and its action.
    Whoever applies the money recovers the case; whoever refunds it resumes the case.
    """
    if not key:
        return
    held = Case.objects.filter(pk=case_id, retry_key=key).update(
        next_retry_at=None,
        retry_reason="the card was charged but the payment was not recorded: "
        "check for a refund before charging again",
        charge_in_doubt_since=_in_doubt_from(now),
        updated_at=now,
    )
    if held:
        _pause_for_refund(case_id, key, now=now)


# On the "paused" event of a case `hold_for_refund` paused: the key of the charge it
# holds, whose release resumes the case (`release_charge_in_doubt`).
HELD_CHARGE = "held_charge"


def _pause_for_refund(case_id: int, key: str, *, now: datetime) -> None:
    """Pause an active case whose card took money the ledger refused (`hold_for_refund`),
    as an operator would: its scheduled messages are canceled."""
    case = Case.objects.select_for_update().get(pk=case_id)
    if case.state != CaseState.ACTIVE:
        return  # recovered, exhausted or paused: no reminder goes out anyway
    engine_cases.pause(
        case,
        now=now,
        reason="the card was charged but the payment was not recorded: reminders wait "
        "until someone has applied the money (recording the payment) or refunded it and "
        "resumed the case",
        source=SOURCE,
        data={HELD_CHARGE: key},
    )


def _held_back(
    dues: Sequence[_Due], *, error: GatewayError, lease: datetime, now: datetime
) -> None:
    """Charges this worker leased and will not send, because the gateway refuses dunning's
    own requests (`GatewayError.account_refused`: a wrong or revoked API key).

    Nothing was charged, and nothing is wrong with the charges: each keeps its plan
    and its key (never used) and is tried again ACCOUNT_REFUSED_WAIT later, and so
    on until the gateway accepts dunning again.  A charge in doubt asked again stays
    in doubt.  One error in the log for the batch; one timeline entry for each
    case when it starts waiting, not at every try.
    """
    log.error(
        "the gateway refuses dunning's requests (%s): %d charges wait, tried again every %s",
        error,
        len(dues),
        ACCOUNT_REFUSED_WAIT,
    )
    leased = Case.objects.filter(pk__in=[due.case.pk for due in dues], next_retry_at=lease)
    fresh = leased.filter(
        pk__in=[due.case.pk for due in dues if due.case.charge_in_doubt_since is None]
    )
    starting = list(fresh.exclude(retry_reason=ACCOUNT_REFUSED).values_list("pk", flat=True))
    later = now + ACCOUNT_REFUSED_WAIT
    fresh.update(
        next_retry_at=later,
        retry_reason=ACCOUNT_REFUSED,
        charge_in_doubt_since=None,  # refused before anything was charged
        updated_at=now,
    )
    leased.update(next_retry_at=later, updated_at=now)  # the ones in doubt, asked again then
    bulk_insert(
        [
            CaseEvent(
                case_id=pk,
                type="retry.held",
                reason=f"{ACCOUNT_REFUSED} ({error})",
                data={"until": later.isoformat()},
                occurred_at=now,
            )
            for pk in starting
        ]
    )


def _charge_failed(case: Case, *, error: GatewayError, now: datetime, rng: random.Random) -> None:
    if error.outcome_unknown:
        _in_doubt(case, now=now, rng=rng, reason=f"the gateway did not answer ({error})")
        return
    if case.charge_in_doubt_since is not None:
        # Asked again about a charge in doubt, the gateway refuses the question (a
        # key it saved with other parameters): the first charge may have gone through.
        _stop_in_doubt(case, now=now, reason=f"the gateway refused the same charge again ({error})")
        return
    _still_sent(case).update(
        next_retry_at=None,
        retry_key="",
        retry_reason=f"the gateway refused: {error}"[:300],
        charge_in_doubt_since=None,  # refused, so not made
        updated_at=now,
    )
    CaseEvent.objects.create(
        case=case,
        type="retry.stopped",
        reason=f"the gateway refused the charge: {error}",
        occurred_at=now,
    )


def _in_doubt(case: Case, *, now: datetime, rng: random.Random, reason: str) -> None:
    """A charge with no answer: ask again with the same key, backing off, for a while.

    Gateways keep idempotency keys for about a day (Stripe: 24 hours); past
    IN_DOUBT_LIMIT the same key could charge again, so the charge is not made
    again.  The last question falls on the limit: there a gateway that can find
    the charge by its key is asked for it instead (`_to_look_up`, `_look_up`);
    with any other, the case stops and an operator checks.
    """
    since = case.charge_in_doubt_since or now
    _ask_again(
        case,
        since=since,
        now=now,
        rng=rng,
        between=(since, since + IN_DOUBT_LIMIT),
        retry_reason="a charge's outcome is unknown: asking the gateway again with the same key",
        event_reason=f"{reason}; asking again with the same key",
        stop_reason=f"{reason}; no answer for {now - since}",
    )


@transaction.atomic
def _ask_again(
    case: Case,
    *,
    since: datetime,
    now: datetime,
    rng: random.Random,
    between: tuple[datetime, datetime],
    retry_reason: str,
    event_reason: str,
    stop_reason: str,
) -> None:
    """Ask about the charge in doubt again later: backing off from the first moment of
    `between` on, never past its last; from then on, an operator checks."""
    first, last = between
    if now >= last:
        _stop_in_doubt(case, now=now, reason=stop_reason)
        return
    # A lookup before the window opens (the invoice changed, or a payment made on the
    # pay page) backs off from the doubt's start.
    if first > now:
        first = since
    tries = min(1 + int((now - first) / timedelta(minutes=10)), MAX_ATTEMPTS)
    _still_sent(case).update(
        next_retry_at=now + min(retry_delay(tries, rng=rng), last - now),
        charge_in_doubt_since=since,
        retry_reason=retry_reason,
        updated_at=now,
    )
    CaseEvent.objects.create(case=case, type="retry.unknown", reason=event_reason, occurred_at=now)


def _in_doubt_from(now: datetime | Param) -> Coalesce:
    """The doubt's start for an UPDATE: kept when the charge was in doubt already."""
    if isinstance(now, Param):
        return Coalesce("charge_in_doubt_since", now)
    return Coalesce("charge_in_doubt_since", Value(now, output_field=DateTimeField()))


# The charges a batch is about to send, leased and in doubt: every batch that charges.
_SENDING = PreparedUpdate(
    lambda: (
        Case.objects.filter(pk__in=_ids("ids")),
        {
            "next_retry_at": _since("lease"),
            "charge_in_doubt_since": _in_doubt_from(_since("now")),
            "updated_at": _since("now"),
        },
    )
)


def _still_sent(case: Case) -> QuerySet[Case]:
    """The case's row while it still holds the key this worker sent or asked about:
    an operator's release or a payment that closed the case meanwhile is not undone."""
    return Case.objects.filter(pk=case.pk, retry_key=case.retry_key)


@transaction.atomic
def _stop_in_doubt(case: Case, *, now: datetime, reason: str) -> None:
    cancel_first = (
        "cancel it at the gateway if it still waits for the customer, "
        if on_session(case.retry_key)
        else ""
    )
    _still_sent(case).update(
        next_retry_at=None,
        retry_reason=(
            "a charge's outcome is unknown: check the gateway, "
            f"{cancel_first}record any payment it took and release the charge in doubt"
        ),
        updated_at=now,
    )
    CaseEvent.objects.create(
        case=case,
        type="retry.in_doubt",
        reason=f"{reason}: retries stop until an operator checks",
        occurred_at=now,
    )
    log.error(
        "case %s: charge %s in doubt since %s",
        case.pk,
        case.retry_key,
        case.charge_in_doubt_since,
    )


def _look_up(
    dues: Sequence[_Due],
    *,
    now: datetime,
    lease: datetime,
    changed: set[int],
    gateway: Gateway,
    rng: random.Random,
    counts: Counter[str],
) -> list[tuple[_Due, ChargeResult]]:
    """Ask the gateway what became of each charge in doubt; the answers to record.

    The gateway looks from the moment the key can first have been used (the
    invoice's last attempt, after which it was made).  Found and settled:
    recorded like any answer (`_record`), which plans the case again.  Not
    found: the charge never happened, and the case is planned afresh.  Still
    settling, no answer, or an unexpected failure: asked again later, backing
    off, until LOOKUP_LIMIT; so is one that refuses dunning's own credentials
    for now.  A gateway that cannot say for good (a permanent error): an
    operator checks.  A payment of the pay page's that still waits
    for the customer at the bank AUTHENTICATION_WINDOW after it was made, or
    once its invoice has changed (paid another way: the cases in `changed`), is
    canceled (`AbandonGateway`), so that it cannot take the money once
    something else has paid or charged the invoice.
    """
    assert isinstance(gateway, ChargeLookupGateway)  # chosen by the claim
    found: list[tuple[_Due, ChargeResult]] = []
    for due in dues:
        case = due.case
        since = case.charge_in_doubt_since
        assert since is not None
        request = _request(due, gateway=gateway)
        try:
            result = gateway.find_charge(request, since=since)
            left = _left_at_the_bank(due, result, now=now, changed=case.pk in changed)
            if left and result is not None and isinstance(gateway, AbandonGateway):
                result = gateway.abandon(result.reference, request)
                if result is None:
                    _abandoned(due, now=now, lease=lease)
                    counts["due_now"] += 1  # planned by the claim's next call
                    continue
        except GatewayError as error:
            counts["unknown"] += 1
            # Refused for who asks (`account_refused`): that says nothing of the charge.
            if not error.outcome_unknown and not error.account_refused:
                _stop_in_doubt(
                    case, now=now, reason=f"the gateway cannot say what became of it ({error})"
                )
                continue
            _ask_later(
                case,
                now=now,
                rng=rng,
                reason=f"the gateway could not say what became of the charge ({error})",
            )
            continue
        except Exception:
            # As with a charge: whatever went wrong stays with this case.
            log.exception("case %s: looking up charge %s failed", case.pk, due.key)
            counts["unknown"] += 1
            _ask_later(case, now=now, rng=rng, reason="looking the charge up failed unexpectedly")
            continue
        if result is not None and result.status is ChargeStatus.WAITING:
            counts["unknown"] += 1
            _ask_later(case, now=now, rng=rng, reason="the customer is confirming it at the bank")
            continue
        if result is not None and result.status in (
            ChargeStatus.NOT_ATTEMPTED,
            ChargeStatus.PENDING,
        ):
            counts["unknown"] += 1
            _ask_later(case, now=now, rng=rng, reason="the charge found is still settling")
            continue
        if result is None:
            _never_made(
                due,
                now=now,
                lease=lease,
                type="retry.not_charged",
                reason=f"the gateway holds no charge under key {due.key} since "
                f"{since:%d %b %H:%M} UTC: it never happened; the next retry is planned "
                "afresh",
            )
            counts["due_now"] += 1  # planned by the claim's next call
            continue
        found.append((due, result))
    return found


def _changed_since_sent(due: _Due, batch: RetryBatch) -> bool:
    """The charge's invoice no longer owes what it asked for, or (for a payment of the pay
    page's) the customer's card to charge is another by now."""
    invoice = due.invoice
    if invoice.status != InvoiceStatus.OPEN or invoice.amount_remaining != due.amount:
        return True
    methods = batch.cards.get(due.case.customer_id, [])
    return on_session(due.key) and (not methods or methods[0].pk != due.method.pk)


def _left_at_the_bank(
    due: _Due, result: ChargeResult | None, *, now: datetime, changed: bool
) -> bool:
    """A payment of the pay page's still waiting for the customer after the window, or
    once its invoice no longer owes what it asked for."""
    since = due.case.charge_in_doubt_since
    return (
        result is not None
        and result.status is ChargeStatus.WAITING
        and since is not None
        and (changed or now - since >= AUTHENTICATION_WINDOW)
    )


def _abandoned(due: _Due, *, now: datetime, lease: datetime) -> None:
    """The customer never confirmed the payment at the bank, and it is canceled: nothing
    was taken, and the case is planned afresh.  The timeline names the invoice, so that
    the pay page's next payment of it is a new one under a new key."""
    _never_made(
        due,
        now=now,
        lease=lease,
        type=ABANDONED,
        reason=f"the customer did not confirm paying invoice {due.invoice.number} at the "
        f"bank within {AUTHENTICATION_WINDOW}: the payment was canceled, nothing was "
        "taken, and the next retry is planned afresh",
        data={"invoice": due.invoice.external_id, "key": due.key},
    )


def _never_made(
    due: _Due,
    *,
    now: datetime,
    lease: datetime,
    type: str,
    reason: str,
    data: dict[str, Any] | None = None,
) -> None:
    """A charge in doubt took no money: no longer in doubt, and the case is planned afresh
    at the claim's next call.  Under this lookup's lease only: a payment the customer
    started on the pay page meanwhile is not forgotten with it."""
    _still_sent(due.case).filter(next_retry_at=lease).update(**_settled(now))
    CaseEvent.objects.create(
        case=due.case, type=type, reason=reason, data=data or {}, occurred_at=now
    )


def _ask_later(case: Case, *, now: datetime, rng: random.Random, reason: str) -> None:
    """Look the charge in doubt up again later, backing off, until LOOKUP_LIMIT."""
    since = case.charge_in_doubt_since
    assert since is not None
    _ask_again(
        case,
        since=since,
        now=now,
        rng=rng,
        between=(since + IN_DOUBT_LIMIT, since + LOOKUP_LIMIT),
        retry_reason="a charge's outcome is unknown: asking the gateway for it by its key",
        event_reason=f"{reason}; asking again later",
        stop_reason=f"{reason}, for {now - since}",
    )


class NoChargeInDoubt(Exception):
    """The case holds no charge in doubt that the engine has left to an operator."""


def release_charge_in_doubt(case_id: int, *, now: datetime, reason: str, source: str) -> Case:
    """An operator checked the gateway: the charge in doubt took no money, or it was refunded.

    For a charge the gateway does not hold, or holds as declined or canceled:
    the case forgets its key and the retry stage plans it afresh at its next
    pass, as when a lookup finds no charge (`_look_up`).  A charge that did take
    the money is recorded first, as a payment with the gateway's reference
    (`record_payment`), which recovers a case that owes nothing more; released
    without that, its invoice would be charged a second time.  A case the engine
    paused for this charge (`hold_for_refund`) is resumed: the money is refunded,
    and what the customer still owes is dunned again; unless the customer disputes
    a payment meanwhile, which keeps it paused (`engine.disputes`).  The timeline
    keeps who released which key and why.  Raises `Case.DoesNotExist`, or
    `NoChargeInDoubt` for a case with no charge in doubt or whose charge the
    engine is still asking about; either way nothing changes.
    """
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case_id)
        since = case.charge_in_doubt_since
        if since is None or case.next_retry_at is not None:
            # While the engine still asks (or a worker is sending it right now), the
            # gateway's answer is on its way: only a charge it gave up on is released.
            raise NoChargeInDoubt(f"case {case_id} has no charge in doubt left to an operator")
        key = case.retry_key
        Case.objects.filter(pk=case.pk).update(**_settled(now))
        case.refresh_from_db()
        CaseEvent.objects.create(
            case=case,
            type="retry.released",
            reason=reason,
            data={"source": source, "key": key, "in_doubt_since": since.isoformat()},
            occurred_at=now,
        )
        if case.state == CaseState.PAUSED and _paused_for(case, key):
            disputed = engine_cases.open_disputes([case.customer_id]).get(case.customer_id)
            if disputed is None:
                _resume_after_refund(case, reason=reason, source=source, now=now)
            else:
                # Paused for the refund, and disputing a payment since (perhaps this very
                # charge): dunning waits for a person, as for any case of theirs.
                CaseEvent.objects.create(
                    case=case,
                    type="dispute.still_open",
                    reason="the charge held was released, but "
                    + engine_cases.dispute_pause_reason(disputed),
                    data={"dispute": disputed.external_id},
                    occurred_at=now,
                )
    log.info("case %s: charge %s in doubt released by %s", case.pk, key, source)
    return case


def _paused_for(case: Case, key: str) -> bool:
    """Whether the case's last pause was the engine's, holding the charge under `key`."""
    last = case.events.filter(type=CaseEventType.PAUSED).order_by("-occurred_at", "-id").first()
    return last is not None and last.data.get(HELD_CHARGE) == key


def _resume_after_refund(case: Case, *, reason: str, source: str, now: datetime) -> None:
    """Resume a case `hold_for_refund` paused, as an operator would: the policy's next
    step is decided from now (the retry is planned afresh by `_settled`)."""
    engine_cases.resume(
        case, now=now, reason=f"the charge held was released: {reason}", source=source
    )
    case.refresh_from_db()


def take_charge(
    case: Case,
    request: ChargeRequest,
    *,
    invoice: Invoice,
    method: PaymentMethod,
    now: datetime,
    ask_at: datetime,
) -> None:
    """A charge made outside this stage (the pay page's, `pay_now`) becomes the case's:
    in doubt from now until its answer is recorded, in place of any retry planned, and
    looked up from `ask_at` on if nobody records an answer by then (`on_session`).
    The caller holds the case's lock and has checked that no other charge is under way."""
    Case.objects.filter(pk=case.pk).update(
        retry_key=request.idempotency_key,
        retry_invoice=invoice,
        retry_payment_method=method,
        retry_amount=request.amount,
        charge_in_doubt_since=_in_doubt_from(now),
        next_retry_at=ask_at,
        retry_reason="a payment on the pay page is under way",
        updated_at=now,
    )


def ask_about_charge(case_id: int, key: str, *, at: datetime, now: datetime) -> None:
    """Look the charge in doubt under `key` up at `at` (the customer is at the bank's page)."""
    if not key:
        return
    Case.objects.filter(pk=case_id, retry_key=key).exclude(charge_in_doubt_since=None).update(
        # A case closed meanwhile (paid another way) has it canceled at once.
        next_retry_at=Cond(
            When(
                state__in=(CaseState.ACTIVE, CaseState.PAUSED, CaseState.EXHAUSTED),
                then=Value(at, output_field=DateTimeField()),
            ),
            default=Value(now, output_field=DateTimeField()),
        ),
        updated_at=now,
    )


def forget_charge(case_id: int, key: str, *, now: datetime) -> None:
    """The charge under `key`, made outside this stage, is answered or was never made: no
    longer in doubt, and the case is planned afresh (a paused one when it is resumed).
    A case that holds another key by now is left as it is."""
    if not key:
        return
    Case.objects.filter(pk=case_id, retry_key=key).update(**_settled(now))


def _settled(now: datetime) -> dict[str, Any]:
    """A case's retry fields once its charge in doubt took no money or is answered: no key,
    no doubt, and planned afresh (`_to_plan`)."""
    return {
        "retry_key": "",
        "retry_reason": _no_reason(),
        "charge_in_doubt_since": None,
        "next_retry_at": _to_plan(now),
        "updated_at": now,
    }


def _no_reason() -> Any:
    """A settled charge's case has no retry to explain; a recovered one says it was paid."""
    return Cond(
        When(state=CaseState.RECOVERED, then=Value("paid")),
        default=Value(""),
        output_field=CharField(),
    )


def _to_plan(now: datetime) -> Any:
    """`now` for a case the retry stage plans afresh (an active one, or a paused one when
    it is resumed); no wake-up for a case closed or exhausted meanwhile."""
    return Cond(
        When(
            state__in=(CaseState.ACTIVE, CaseState.PAUSED),
            then=Value(now, output_field=DateTimeField()),
        ),
        default=None,
        output_field=DateTimeField(),
    )


def _not_settled(case: Case, *, now: datetime) -> None:
    """The manual gateway made no charge: nothing is in doubt, and nothing is planned."""
    _still_sent(case).update(
        next_retry_at=None,
        retry_key="",
        retry_reason="payments are collected manually",
        charge_in_doubt_since=None,
        updated_at=now,
    )


def _card_segments(method: PaymentMethod | None, customer: Customer) -> tuple[str, ...]:
    """The segments a charge on `method` is learned under (`retry_timing.card_segments`):
    its brand and issuing country, or the customer's country when the card's is unknown."""
    if method is None:
        return card_segments("", customer.country)
    return card_segments(method.brand, method.country or customer.country)


def _learn(learned: dict[tuple[str, int], tuple[int, int]]) -> None:
    """Add a chunk's outcomes to the tenant's success rates by segment and local hour: one
    statement, whatever other workers add at the same time (rows in one order)."""
    if not learned:
        return
    rows = sorted(learned.items())
    table = RetryStat._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (segment, hour, successes, attempts) VALUES "  # noqa: S608
            + ", ".join(["(%s, %s, %s, %s)"] * len(rows))
            + " ON CONFLICT (segment, hour) DO UPDATE SET"
            f" successes = {table}.successes + excluded.successes,"
            f" attempts = {table}.attempts + excluded.attempts",
            [value for (segment, hour), counts in rows for value in (segment, hour, *counts)],
        )


# ---------------------------------------------------------------- signals


def on_attempts_recorded(
    *, attempts: Sequence[PaymentAttempt], now: datetime, source: str, **_: Any
) -> None:
    """Declines recorded from outside (a webhook, the API, the billing system's first
    charges): plan the customers' cases again, those of the declined invoices and the
    others, whose planned charges on the same card the declines count against."""
    if source == SOURCE:
        return
    failed = [a for a in attempts if a.outcome == AttemptOutcome.FAILED]
    if failed:
        invoices = list({a.invoice_id for a in failed})
        _ASK_NOW_DECLINED().run(invoices=invoices, now=now, until=now + LEASE)
        _REPLAN_CUSTOMERS().run(customers=list({a.customer_id for a in failed}), now=now)


def on_payment_method_changed(
    *, method: PaymentMethod, now: datetime, source: str, **_: Any
) -> None:
    """A new or updated card: plan again, which retries at once when the card is new."""
    _ASK_NOW_CUSTOMER().run(customer=method.customer_id, now=now, until=now + LEASE)
    _REPLAN_CUSTOMERS().run(customers=[method.customer_id], now=now)


def plan_again(cases: Sequence[int], *, now: datetime) -> None:
    """Have the retry stage plan these cases afresh now (those it may: active, charged
    automatically, no charge in doubt), dropping any charge planned before."""
    _REPLAN_CASES().run(ids=list(cases), now=now)


def on_gateway_retry_changed(*, invoice: Invoice, now: datetime, **_: Any) -> None:
    """The gateway will charge the invoice again itself, or will not any more: its cases
    plan again, so that dunning waits for the gateway, or takes over once it has stopped."""
    _REPLAN_INVOICES().run(invoices=[invoice.pk], now=now)


def ask_about_changed_invoices(*, invoices: Sequence[Invoice], now: datetime, **_: Any) -> None:
    """The invoice a charge in doubt was for changed (paid another way, partly paid,
    voided): ask the gateway about the charge now, not at its next question, so that a
    payment left at the bank is canceled and money taken beside the change is flagged."""
    _ASK_NOW_INVOICES().run(
        invoices=[invoice.pk for invoice in invoices], now=now, until=now + LEASE
    )


def _ask_now(cases: QuerySet[Case]) -> tuple[QuerySet[Case], dict[str, Any]]:
    """The update that brings the next question about each charge in doubt among `cases`
    forward to "now"; not one a worker holds (a lease, up to "until") or one left to an
    operator (no wake-up)."""
    return cases.filter(charge_in_doubt_since__isnull=False).exclude(next_retry_at=None).exclude(
        next_retry_at__gt=_since("now"), next_retry_at__lte=_since("until")
    ), {"next_retry_at": _since("now"), "updated_at": _since("now")}


def _replan(cases: QuerySet[Case]) -> tuple[QuerySet[Case], dict[str, Any]]:
    """The update that plans `cases` again now (at `Param` "now"), compiled once."""
    return cases.filter(
        state=CaseState.ACTIVE,
        collection_method=CollectionMethod.CHARGE_AUTOMATICALLY,
        # A charge in doubt keeps its key until it is answered: a new key could
        # charge twice.  Its answer replans the case anyway.
        charge_in_doubt_since__isnull=True,
    ), {"next_retry_at": _since("now"), "retry_key": "", "updated_at": _since("now")}


# Every recorded batch of declines and every card change asks for one of these (a
# charge in doubt is asked about first: its answer replans the case).
_REPLAN_INVOICES = PreparedUpdate(
    lambda: _replan(Case.objects.filter(invoices__in=_ids("invoices")))
)
_REPLAN_CUSTOMERS = PreparedUpdate(
    lambda: _replan(Case.objects.filter(customer_id__in=_ids("customers")))
)
_REPLAN_CASES = PreparedUpdate(lambda: _replan(Case.objects.filter(pk__in=_ids("ids"))))
_ASK_NOW_INVOICES = PreparedUpdate(
    lambda: _ask_now(Case.objects.filter(retry_invoice__in=_ids("invoices")))
)
_ASK_NOW_DECLINED = PreparedUpdate(
    lambda: _ask_now(Case.objects.filter(invoices__in=_ids("invoices")))
)
_ASK_NOW_CUSTOMER = PreparedUpdate(
    lambda: _ask_now(Case.objects.filter(customer_id=Param("customer", BigIntegerField())))
)
