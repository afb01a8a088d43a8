"""Running the engine over a span of time on a virtual clock (the demo's history, simulations).

Each step is a full worker pass (open cases, retry, decide, ask about expiring
cards, deliver) as of that moment, so the message log looks as if the engine had
been running all along.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dunning.engine import policies
from dunning.engine.cases import sync_cases
from dunning.engine.decisions import decide_due_cases
from dunning.engine.delivery import EmailTransport, deliver_due
from dunning.engine.predunning import remind_expiring_cards
from dunning.engine.retries import retry_due
from dunning.gateways.registry import get_gateway


@dataclass(frozen=True, slots=True)
class PlaybackReport:
    passes: int
    messages: int
    sent: int


def engine_pass(
    *, now: datetime, transport: EmailTransport, rng: random.Random, batch: int = 200
) -> tuple[int, int]:
    """One worker pass as of `now`; returns (messages written, messages sent)."""
    policies.ensure_default_policies(now=now)
    sync_cases(now=now)
    written = sent = 0
    gateway = get_gateway()
    while True:
        retried = retry_due(now=now, gateway=gateway, limit=batch, rng=rng)
        if retried.planned + retried.charged + retried.looked_up + retried.stopped < batch:
            break
    while True:
        report = decide_due_cases(now=now, limit=batch)
        written += report.messages
        if report.cases < batch:
            break
    while True:
        reminded = remind_expiring_cards(now=now, limit=batch)
        written += reminded
        if reminded < batch:
            break
    while True:
        delivery = deliver_due(now=now, transport=transport, rng=rng, limit=batch)
        sent += delivery.sent
        if delivery.sent + delivery.retrying + delivery.failed < batch:
            break
    return written, sent


def play(
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    transport: EmailTransport,
    rng: random.Random,
    progress: Callable[[datetime], None] | None = None,
    facts: Callable[[datetime], None] | None = None,
) -> PlaybackReport:
    """A pass at every `step` from `start` to `end`; before each, `facts(now)` may
    write what happened by then (the demo's ledger), so no pass sees its future."""
    passes = written = sent = 0
    now = start
    while now <= end:
        if facts:
            facts(now)
        w, s = engine_pass(now=now, transport=transport, rng=rng)
        passes, written, sent = passes + 1, written + w, sent + s
        if progress:
            progress(now)
        now += step
    return PlaybackReport(passes=passes, messages=written, sent=sent)
