"""Replaying a scenario through the real engine on a virtual clock.

The simulator plays everyone else's part: the billing system (invoices, and
each invoice's first charge at its due date), the issuers (the simulated
gateway answers from the scenario's truth, `world.charge_outcome`), the card
updater and the customers (a replacement card takes over when the scenario
says), and the mail server (a transport that records who got what, when).
The engine does its own part unchanged: cases, the planner and contact
rules, the outbox and its delivery, and the retry stage with the strategy
under test.

Every hour of the scenario is one worker pass as of that hour; hours in
which nothing is due are skipped.  The billing system's first charges are
not on that grid: each is made at its invoice's due_at and reaches the
ledger at the next pass (`_catch_up`).  The referees (`checkers`) watch the
gateway's charges and the delivered messages on their own: they share no code
with the engine, so a rule the engine breaks is counted, not excused.

The database is whatever Django is configured with: the `simulate` command
runs this in a throw-away SQLite file.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import Message as MimeMessage
from email.utils import parseaddr
from typing import Any

from django.db import transaction
from django.db.models import CharField, QuerySet

from dunning.channels.email.message import wire_address
from dunning.core.cases import CaseState
from dunning.core.policy import CHARGE_AUTOMATICALLY_DEFAULT, DEFAULT_POLICIES, RetryBudget
from dunning.core.policy_json import format_duration
from dunning.core.retry_timing import Strategy
from dunning.db import ParamList, Prepared, insert_rows
from dunning.engine import policies
from dunning.engine.cases import sync_cases
from dunning.engine.decisions import decide_due_cases
from dunning.engine.delivery import deliver_due
from dunning.engine.models import Case, Message, MessageStatus
from dunning.engine.retries import retry_due
from dunning.gateways.base import ChargeRequest, ChargeResult, ChargeStatus
from dunning.gateways.simulated import SimulatedGateway, declined, succeeded
from dunning.ledger.models import (
    AttemptOutcome,
    Customer,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAttempt,
    PaymentMethod,
)
from dunning.ledger.services import (
    AttemptFacts,
    record_payment_attempts,
    upsert_payment_method,
)
from dunning.simulator.ceiling import Grid, first_chance
from dunning.simulator.checkers import (
    ChargeAttempt,
    ContactRuleChecker,
    NetworkRuleChecker,
    SentMessage,
)
from dunning.simulator.scenario import (
    CardRole,
    ChargeOutcome,
    HistoryCharge,
    Scenario,
    SimCustomer,
)
from dunning.simulator.world import charge_outcome, replacement_takes_over

SOURCE = "simulator"
TICK = timedelta(hours=1)
BATCH = 500
HISTORY_GROUP = timedelta(days=14)  # retries of one past charge fall within this
MAX_RETRY_ROUNDS = 5
REPLACEMENT_SUFFIX = "_replacement"  # of the replacement card's id: pm_<customer>_replacement
LAST_INSTANT = timedelta(microseconds=1)  # the clock stops before `end`, so charges do too


@dataclass
class _Mailbox:
    """The mail server: who received which message when (the card trigger and the referee)."""

    by_email: dict[str, SimCustomer]
    now: datetime
    received: dict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    contacts: ContactRuleChecker = field(default_factory=ContactRuleChecker)
    sent: int = 0
    arrivals: set[str] = field(default_factory=set)  # customers who got mail since last asked

    def send(self, message: MimeMessage) -> str:
        address = parseaddr(str(message["To"]))[1]
        customer = self.by_email[address]
        self.received[customer.id].append(self.now)
        self.arrivals.add(customer.id)
        self.contacts.record(
            SentMessage(
                at=self.now,
                customer_id=customer.id,
                country=customer.country,
                time_zone=customer.time_zone,
                channel="email",
            )
        )
        self.sent += 1
        return str(message["Message-ID"])

    def close(self) -> None:
        pass

    def take_arrivals(self) -> set[str]:
        arrivals, self.arrivals = self.arrivals, set()
        return arrivals


class _Clock:
    """The simulated gateway's clock: the pass's moment, or a first charge's due_at."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class _Issuers:
    """The oracle behind the simulated gateway: the scenario's truth, and the referee."""

    def __init__(self, customers: dict[str, SimCustomer], clock: Callable[[], datetime]):
        self.customers = customers
        self.clock = clock
        self.network = NetworkRuleChecker()

    def __call__(self, request: ChargeRequest, at: datetime) -> ChargeResult:
        customer = self.customers[request.customer_external_id]
        outcome = charge_outcome(customer, at, _card_role(request.payment_method_external_id))
        self.network.record(
            ChargeAttempt(
                at=at,
                card_id=request.payment_method_external_id,
                brand=customer.card.brand,
                charge_id=request.invoice_external_id,
                succeeded=outcome.succeeded,
                decline_code=outcome.decline_code,
                advice_code=outcome.advice_code,
                network_advice_code=outcome.network_advice_code,
                amount=request.amount,
                currency=request.currency,
            )
        )
        if outcome.succeeded:
            return succeeded(request)
        return declined(
            request,
            outcome.decline_code or "generic_decline",
            advice_code=outcome.advice_code or "",
            network_advice_code=outcome.network_advice_code or "",
            network=customer.card.brand,
        )


@dataclass(frozen=True, slots=True)
class SimulationResult:
    strategy: str
    retry_budget: str
    customers: int
    invoices: int
    failed_invoices: int
    recovered_invoices: int
    amount_due: dict[str, int]
    recovered: dict[str, int]
    recoverable: dict[str, int]
    attempts: int
    first_charges: int
    messages: int
    median_hours_to_recovery: float | None
    network_rule_violations: int
    contact_rule_violations: int
    violations: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "retry_budget": self.retry_budget,
            "customers": self.customers,
            "invoices": self.invoices,
            "failed_invoices": self.failed_invoices,
            "recovered_invoices": self.recovered_invoices,
            "amount_due": self.amount_due,
            "recovered": self.recovered,
            "recoverable": self.recoverable,
            "attempts": self.attempts,
            "first_charges": self.first_charges,
            "messages": self.messages,
            "median_hours_to_recovery": self.median_hours_to_recovery,
            "network_rule_violations": self.network_rule_violations,
            "contact_rule_violations": self.contact_rule_violations,
            "violations": list(self.violations[:20]),
        }


def simulate(
    scenario: Scenario,
    strategy: Strategy,
    *,
    seed: int = 0,
    retry_budget: RetryBudget | None = None,
    progress: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Replay `scenario` with `strategy`; `retry_budget` replaces the default policies' budget."""
    say = progress or (lambda _: None)
    customers = {customer.id: customer for customer in scenario.customers}
    now = scenario.start  # the pass's moment: always a whole number of hours from start
    # Keyed as the email channel writes the To header (an IDN domain in ASCII).
    mailbox = _Mailbox(by_email={wire_address(c.email): c for c in scenario.customers}, now=now)
    clock = _Clock(now)
    issuers = _Issuers(customers, clock)
    gateway = SimulatedGateway(oracle=issuers, clock=clock)
    rng = random.Random(seed)  # noqa: S311 - delivery jitter, not a secret
    clocks = _Stopwatch()
    say(f"loading {len(customers):,} customers ...")
    with clocks("load"):
        _load(scenario, retry_budget=retry_budget)
    first_charges = sorted(
        (
            (invoice.due_at, customer.id, invoice.id)
            for customer in scenario.customers
            for invoice in customer.invoices
            if invoice.collection_method == "charge_automatically"
        ),
    )
    replaced: dict[str, datetime] = {}  # customer -> when the replacement card took over
    # When each customer's replacement card takes over, as far as is known yet: the
    # card updater's date, then also the moment set by the messages received.  The
    # clock stops at each, so a new card is not held back until the engine is due.
    cards_to_come = {
        c.id: takes_over
        for c in scenario.customers
        if (takes_over := replacement_takes_over(c, [])) is not None
    }
    next_charge = 0
    hours = 0
    while now < scenario.end:  # the clock stops before `end` (docs/simulator.md)
        mailbox.now = clock.now = now
        # What the rest of the world did since the last pass, in time order: new
        # cards taking over, and the billing system's first charges, each at its
        # invoice's due_at (so on the card in use then, world.card_in_use).
        due_now = next_charge
        while due_now < len(first_charges) and first_charges[due_now][0] <= now:
            due_now += 1
        cards_due = sorted(
            (takes_over, customer_id)
            for customer_id, takes_over in cards_to_come.items()
            if takes_over <= now
        )
        for customer_id, takes_over in _catch_up(
            now,
            charges=first_charges[next_charge:due_now],
            cards=cards_due,
            customers=customers,
            gateway=gateway,
            clock=clock,
            clocks=clocks,
        ):
            replaced[customer_id] = takes_over
            del cards_to_come[customer_id]
        next_charge = due_now
        _engine_pass(
            now, gateway=gateway, mailbox=mailbox, strategy=strategy, rng=rng, clocks=clocks
        )
        # A message just received may be the one after which the customer brings a new card.
        for customer_id in mailbox.take_arrivals():
            if customer_id in replaced:
                continue
            takes_over = replacement_takes_over(
                customers[customer_id], mailbox.received[customer_id]
            )
            if takes_over is not None:
                cards_to_come[customer_id] = takes_over
        hours += 1
        if hours % (24 * 7) == 0:
            say(f"{now:%Y-%m-%d}: {mailbox.sent:,} messages, {len(gateway.received):,} charges")
        with clocks("clock"):
            now = _next_moment(
                now,
                scenario.end,
                first_charges,
                next_charge,
                next_card=min(cards_to_come.values(), default=None),
            )
    say(f"{hours:,} passes; wall seconds by stage: {clocks}")
    return _result(
        scenario,
        strategy,
        retry_budget=retry_budget,
        replaced=replaced,
        mailbox=mailbox,
        issuers=issuers,
        gateway=gateway,
    )


def _budget_text(budget: RetryBudget | None) -> str:
    if budget is None:
        return "the policies' own"
    return f"{budget.max_attempts} tries within {format_duration(budget.within)}"


def _engine_pass(
    now: datetime,
    *,
    gateway: SimulatedGateway,
    mailbox: _Mailbox,
    strategy: Strategy,
    rng: random.Random,
    clocks: _Stopwatch,
) -> None:
    with clocks("cases"):
        sync_cases(now=now, limit=10_000)
    # Again while there is work: a retry planned "at once" (a new card) is
    # charged in this hour, not the next.  Bounded, in case a plan keeps
    # landing on this very moment.
    with clocks("retries"):
        for _ in range(MAX_RETRY_ROUNDS):
            retried = retry_due(now=now, gateway=gateway, strategy=strategy, limit=BATCH, rng=rng)
            if not retried.more_due:
                break
    with clocks("decide"):
        while decide_due_cases(now=now, limit=BATCH).cases >= BATCH:
            pass
    with clocks("delivery"):
        while True:
            report = deliver_due(now=now, transport=mailbox, rng=rng, limit=BATCH)
            if report.sent + report.retrying + report.failed < BATCH:
                break


class _Stopwatch:
    """Wall seconds spent in each stage of the run, for the progress report."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - started

    def __str__(self) -> str:
        return ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in self.seconds.items())


def _next_moment(
    now: datetime,
    end: datetime,
    first_charges: list[tuple[datetime, str, str]],
    index: int,
    *,
    next_card: datetime | None = None,
) -> datetime:
    """The next hour in which something is due: a charge, a case, a retry, a message
    or a replacement card (`next_card`, so a new card is not held back until the
    engine next has something to do)."""
    candidates = [
        # One query per wake-up, each the first entry of its partial index
        # (case_due_idx, case_retry_due_idx, case_doubt_due_idx, message_due_idx);
        # both of a case's in one MIN would read every active case.
        *(_first(query) for query in _WAKE_UPS),
        first_charges[index][0] if index < len(first_charges) else None,
        next_card,
    ]
    soonest = min((moment for moment in candidates if moment), default=end + TICK)
    following = now + TICK
    if soonest <= following:
        return following
    # Skip to the hour that holds the next due moment.
    skip = (soonest - now) // TICK
    return now + TICK * max(1, skip + (1 if (soonest - now) % TICK else 0))


def _soonest(rows: QuerySet[Any], column: str) -> Prepared[Any]:
    """The soonest non-null `column` among `rows`, compiled once: asked at every pass."""
    return Prepared(
        lambda: rows.filter(**{f"{column}__isnull": False}).order_by(column).values_list(column)[:1]
    )


def _first(query: Prepared[Any]) -> datetime | None:
    return next((moment for (moment,) in query().rows()), None)


_WAKE_UPS = (
    _soonest(Case.objects.filter(state=CaseState.ACTIVE), "next_action_at"),
    _soonest(Case.objects.filter(state=CaseState.ACTIVE), "next_retry_at"),
    # A charge in doubt on a case paused, exhausted or closed meanwhile is still
    # asked about (case_doubt_due_idx, as the retry stage's claim).
    _soonest(
        Case.objects.filter(charge_in_doubt_since__isnull=False).exclude(state=CaseState.ACTIVE),
        "next_retry_at",
    ),
    _soonest(Message.objects.filter(status=MessageStatus.SCHEDULED), "send_after"),
)


# ---------------------------------------------------------------- the world's parts


def _load(scenario: Scenario, *, retry_budget: RetryBudget | None = None) -> None:
    """The policies, customers, cards, past payments and this run's invoices, in bulk."""
    now = scenario.start
    policies.ensure_default_policies(now=now)
    if retry_budget is not None:
        for policy in DEFAULT_POLICIES:
            policies.save_policy(dataclasses.replace(policy, retry=retry_budget), now=now)
    with transaction.atomic():
        Customer.objects.bulk_create(
            [
                Customer(
                    external_id=c.id,
                    name=c.name,
                    email=c.email,
                    locale=c.locale,
                    time_zone=c.time_zone,
                    country=c.country,
                    created_at=now,
                    updated_at=now,
                )
                for c in scenario.customers
            ],
            batch_size=2000,
        )
        ids = dict(Customer.objects.values_list("external_id", "id"))
        PaymentMethod.objects.bulk_create(
            [
                PaymentMethod(
                    external_id=f"pm_{c.id}_original",
                    customer_id=ids[c.id],
                    type="card",
                    brand=c.card.brand,
                    last4="4242",
                    exp_month=c.card.exp_month,
                    exp_year=c.card.exp_year,
                    is_default=True,
                    created_at=now,
                    updated_at=now,
                )
                for c in scenario.customers
            ],
            batch_size=2000,
        )
        _load_history(scenario, ids, now=now)
        insert_rows(
            Invoice,
            INVOICE_COLUMNS,
            (
                (
                    invoice.id,
                    invoice.number,
                    ids[c.id],
                    invoice.currency,
                    invoice.amount_due,
                    0,
                    invoice.amount_due,
                    min(invoice.due_at, now),
                    invoice.due_at,
                    InvoiceStatus.OPEN,
                    invoice.collection_method,
                    [],
                    {},
                    None,
                    now,
                    now,
                )
                for c in scenario.customers
                for invoice in c.invoices
            ),
        )


INVOICE_COLUMNS = (
    "external_id",
    "number",
    "customer",
    "currency",
    "amount_due",
    "amount_paid",
    "amount_remaining",
    "issued_at",
    "due_at",
    "status",
    "collection_method",
    "lines",
    "context",
    "paid_at",
    "created_at",
    "updated_at",
)


def _load_history(scenario: Scenario, ids: dict[str, int], *, now: datetime) -> None:
    """Past charges, as the ledger would hold them: what smart retries learn paydays from.

    A charge and the retries that followed it (up to its success, within two
    weeks) are one past invoice: paid when the last of them succeeded, void
    when they gave up.  Every charge is an attempt; a success is a payment.
    Tens of thousands of rows: they go in as plain rows (`insert_rows`).
    """
    invoices: list[tuple[Any, ...]] = []
    charges: list[tuple[int, list[HistoryCharge]]] = []  # (customer, charges) per invoice
    for c in scenario.customers:
        groups: list[list[HistoryCharge]] = []
        for charge in sorted(c.history, key=lambda h: h.at):
            last = groups[-1][-1] if groups else None
            if (
                last is None
                or last.outcome == ChargeOutcome.SUCCEEDED
                or charge.at - last.at > HISTORY_GROUP
            ):
                groups.append([])
            groups[-1].append(charge)
        for n, group in enumerate(groups):
            first, last = group[0], group[-1]
            paid = last.outcome == ChargeOutcome.SUCCEEDED
            invoices.append(
                (
                    f"hist_{c.id}_{n}",
                    f"H-{c.id}-{n}",
                    ids[c.id],
                    first.currency,
                    first.amount,
                    first.amount if paid else 0,
                    0 if paid else first.amount,
                    first.at,
                    first.at,
                    InvoiceStatus.PAID if paid else InvoiceStatus.VOID,
                    "charge_automatically",
                    [],
                    {},
                    last.at if paid else None,
                    now,
                    now,
                )
            )
            charges.append((ids[c.id], group))
    insert_rows(Invoice, INVOICE_COLUMNS, invoices)
    saved = dict(
        Invoice.objects.filter(external_id__startswith="hist_").values_list("external_id", "id")
    )
    attempts: list[tuple[Any, ...]] = []
    payments: list[tuple[Any, ...]] = []
    for invoice, (customer, group) in zip(invoices, charges, strict=True):
        pk = saved[invoice[0]]
        for charge in group:
            succeeded = charge.outcome == ChargeOutcome.SUCCEEDED
            outcome = AttemptOutcome.SUCCEEDED if succeeded else AttemptOutcome.FAILED
            code = "" if succeeded else charge.decline_code or "generic_decline"
            # No advice or network code, gateway "history", no reference.
            attempts.append(
                (
                    *(pk, customer, charge.at, outcome, charge.amount, charge.currency, code, now),
                    *("", "", "", "history", ""),
                )
            )
            if succeeded:
                payments.append(
                    (pk, customer, charge.amount, charge.currency, charge.at, now, "card", "")
                )
    insert_rows(
        PaymentAttempt,
        (
            "invoice",
            "customer",
            "attempted_at",
            "outcome",
            "amount",
            "currency",
            "decline_code",
            "created_at",
            "advice_code",
            "network_code",
            "network_advice_code",
            "gateway",
            "reference",
        ),
        attempts,
    )
    insert_rows(
        Payment,
        (
            "invoice",
            "customer",
            "amount",
            "currency",
            "received_at",
            "created_at",
            "method",
            "reference",
        ),
        payments,
    )


def _catch_up(
    now: datetime,
    *,
    charges: Sequence[tuple[datetime, str, str]],
    cards: Sequence[tuple[datetime, str]],
    customers: dict[str, SimCustomer],
    gateway: SimulatedGateway,
    clock: _Clock,
    clocks: _Stopwatch,
) -> list[tuple[str, datetime]]:
    """Replay the first charges (due_at, customer, invoice) and the replacement cards
    (takes_over, customer) due since the last pass, in time order; returns the
    (customer, takes_over) of each card it put on file.

    Each charge is made at its own due_at, on the card on file then: a card that
    takes over at that very instant first, as `world.card_in_use` has it.  The
    ledger records both as of `now`, the pass's moment: the engine learns of them
    at its next pass, as it would from a billing system's webhooks, and every
    write keeps the clock moving forward.
    """
    events = sorted(
        [(at, 0, customer_id, "") for at, customer_id in cards]
        + [(at, 1, customer_id, invoice_id) for at, customer_id, invoice_id in charges]
    )
    batch: list[tuple[datetime, str]] = []
    replaced: list[tuple[str, datetime]] = []
    for at, kind, customer_id, invoice_id in events:
        if kind == 1:
            batch.append((at, invoice_id))
            continue
        with clocks("billing"):
            _first_charges(batch, now=now, gateway=gateway, clock=clock)
        batch = []
        with clocks("cards"):
            _replace_card(customers[customer_id], now=now)
        replaced.append((customer_id, at))
    with clocks("billing"):
        _first_charges(batch, now=now, gateway=gateway, clock=clock)
    return replaced


def _first_charges(
    charges: list[tuple[datetime, str]],
    *,
    now: datetime,
    gateway: SimulatedGateway,
    clock: _Clock,
) -> None:
    """The billing system's charges of these invoices (due_at, invoice id), each at its
    due_at on its customer's default card, recorded as of `now`."""
    if not charges:
        return
    due = {invoice_id: at for at, invoice_id in charges}
    invoice_ids = list(due)
    invoices = _TO_CHARGE().instances(ids=invoice_ids)
    cards: dict[int, PaymentMethod] = {}
    for card in _CARDS_TO_CHARGE().instances(ids=invoice_ids):
        cards[card.customer_id] = card  # the last one wins: the default, then the newest
    order = {invoice_id: place for place, invoice_id in enumerate(invoice_ids)}
    attempts = []
    try:
        for invoice in sorted(invoices, key=lambda invoice: order[invoice.external_id]):
            method = cards.get(invoice.customer_id)
            if method is None:
                continue
            clock.now = due[invoice.external_id]
            result = gateway.charge(
                ChargeRequest(
                    amount=invoice.amount_remaining,
                    currency=invoice.currency,
                    customer_external_id=invoice.customer.external_id,
                    payment_method_external_id=method.external_id,
                    invoice_external_id=invoice.external_id,
                    idempotency_key=f"first:{invoice.external_id}",
                )
            )
            if result.status in (ChargeStatus.SUCCEEDED, ChargeStatus.DECLINED):
                attempts.append(
                    AttemptFacts(
                        invoice=invoice.external_id,
                        attempted_at=due[invoice.external_id],
                        payment_method=method.external_id,
                        **result.attempt_fields(),
                    )
                )
    finally:
        clock.now = now
    record_payment_attempts(attempts, now=now, source=SOURCE)


# Asked at every hour with first charges: compiled once each.
_TO_CHARGE: Prepared[Invoice] = Prepared(
    lambda: Invoice.objects.filter(
        external_id__in=ParamList("ids", CharField()), status=InvoiceStatus.OPEN
    ).select_related("customer")
)
_CARDS_TO_CHARGE: Prepared[PaymentMethod] = Prepared(
    lambda: PaymentMethod.objects.filter(
        customer__invoices__external_id__in=ParamList("ids", CharField())
    ).order_by("is_default", "id")
)


def _card_role(external_id: str) -> CardRole:
    """Which of the scenario's two cards a saved card is (the ids `_load` and
    `_replace_card` give them)."""
    return CardRole.REPLACEMENT if external_id.endswith(REPLACEMENT_SUFFIX) else CardRole.ORIGINAL


def _replace_card(customer: SimCustomer, *, now: datetime) -> None:
    upsert_payment_method(
        external_id=f"pm_{customer.id}{REPLACEMENT_SUFFIX}",
        customer=customer.id,
        now=now,
        source=SOURCE,
        type="card",
        brand=customer.card.brand,
        last4="5555",
        exp_month=customer.card.exp_month,
        exp_year=customer.card.exp_year + 4,
        is_default=True,
    )


# ---------------------------------------------------------------- the result


def _result(
    scenario: Scenario,
    strategy: Strategy,
    *,
    retry_budget: RetryBudget | None,
    replaced: dict[str, datetime],
    mailbox: _Mailbox,
    issuers: _Issuers,
    gateway: SimulatedGateway,
) -> SimulationResult:
    run_ids = [invoice.id for c in scenario.customers for invoice in c.invoices]
    first_failure: dict[int, tuple[datetime, CardRole]] = {}
    for invoice_id, at, card in (
        PaymentAttempt.objects.filter(
            invoice__external_id__in=run_ids, outcome=AttemptOutcome.FAILED
        )
        .order_by("attempted_at", "id")
        .values_list("invoice_id", "attempted_at", "payment_method__external_id")
    ):
        if invoice_id not in first_failure:
            first_failure[invoice_id] = (at, _card_role(card))
    budget = retry_budget or CHARGE_AUTOMATICALLY_DEFAULT.retry
    grid = Grid(scenario.start, TICK)
    customers = {c.id: c for c in scenario.customers}
    amount_due: dict[str, int] = defaultdict(int)
    recovered: dict[str, int] = defaultdict(int)
    recoverable: dict[str, int] = defaultdict(int)
    recovered_invoices = 0
    hours: list[float] = []
    for invoice in Invoice.objects.filter(pk__in=first_failure).select_related("customer"):
        failed_at, failed_on = first_failure[invoice.pk]
        amount_due[invoice.currency] += invoice.amount_due
        recovered[invoice.currency] += invoice.amount_paid
        if invoice.status == InvoiceStatus.PAID and invoice.paid_at:
            recovered_invoices += 1
            hours.append((invoice.paid_at - failed_at).total_seconds() / 3600)
        customer_id = invoice.customer.external_id
        within_reach = budget.max_attempts > 0 and first_chance(
            customers[customer_id],
            failed_at=failed_at,
            failed_on=failed_on,
            closes_at=min(failed_at + budget.within, scenario.end - LAST_INSTANT),
            replaced_at=replaced.get(customer_id),
            grid=grid,
        )
        recoverable[invoice.currency] += invoice.amount_due if within_reach else 0
    first_charges = sum(
        1 for charge in gateway.charges if charge.request.idempotency_key.startswith("first:")
    )
    network = issuers.network.report()
    contacts = mailbox.contacts.report()
    return SimulationResult(
        strategy=str(strategy),
        retry_budget=_budget_text(retry_budget),
        customers=len(scenario.customers),
        invoices=len(run_ids),
        failed_invoices=len(first_failure),
        recovered_invoices=recovered_invoices,
        amount_due=dict(sorted(amount_due.items())),
        recovered=dict(sorted(recovered.items())),
        recoverable=dict(sorted(recoverable.items())),
        attempts=len(gateway.charges) - first_charges,
        first_charges=first_charges,
        messages=mailbox.sent,
        median_hours_to_recovery=round(statistics.median(hours), 1) if hours else None,
        network_rule_violations=network.count,
        contact_rule_violations=contacts.count,
        violations=network.messages + contacts.messages,
    )
