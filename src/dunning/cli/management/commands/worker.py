from __future__ import annotations

import random
import signal
import time
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from dunning.api.idempotency import purge_expired
from dunning.core import fields
from dunning.engine import policies
from dunning.engine.cases import sync_cases
from dunning.engine.decisions import decide_due_cases
from dunning.engine.delivery import deliver_due, email_transport
from dunning.engine.predunning import remind_expiring_cards
from dunning.engine.retries import resume_charges, retry_due
from dunning.gateways.registry import get_gateway

# Expiring cards are looked for this often, not on every pass: expiry is by the
# month and renewals by the day, and the search reads every default card.
CARD_CHECK_EVERY = timedelta(minutes=15)


class Command(BaseCommand):
    stopping = False
    # When the pass next looks for expiring cards; None: on the next pass.
    next_card_check: datetime | None = None
    help = (
        "Run the engine: open cases, retry declined charges, decide what is due, "
        "ask about cards about to expire, then deliver the outbox."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one pass, then exit (for cron)")
        parser.add_argument(
            "--now", metavar="ISO-8601", help="with --once: run as of this moment (tests, demos)"
        )
        parser.add_argument("--sleep", type=float, default=5.0, help="seconds between passes")
        parser.add_argument("--batch", type=int, default=100)

    def handle(
        self, *args: Any, once: bool, now: str | None, sleep: float, batch: int, **options: Any
    ) -> None:
        if now and not once:
            raise CommandError("--now goes with --once")
        fixed = self._parse(now) if now else None
        self.stopping = False
        self.next_card_check = None
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        transport = email_transport()
        gateway = get_gateway()
        resume_charges(now=fixed or timezone.now(), gateway=gateway)  # after "manual"
        rng = random.Random()  # noqa: S311 - retry jitter, not a secret
        try:
            while True:
                moment = fixed or timezone.now()
                self._pass(moment, transport=transport, gateway=gateway, rng=rng, batch=batch)
                if once or self.stopping:
                    return
                time.sleep(sleep)
                if self.stopping:
                    return
        finally:
            transport.close()

    def _pass(
        self, now: datetime, *, transport: Any, gateway: Any, rng: random.Random, batch: int
    ) -> None:
        policies.ensure_default_policies(now=now)
        opened = sync_cases(now=now)
        decided = messages = sent = failed = charged = recovered = 0
        # Charges first: a retry that succeeds spares the customer a reminder.
        while not self.stopping:
            retried = retry_due(now=now, gateway=gateway, limit=batch, rng=rng)
            charged, recovered = charged + retried.charged, recovered + retried.recovered
            if retried.planned + retried.charged + retried.looked_up + retried.stopped < batch:
                break
        # Each batch is its own transaction; SIGTERM lets the current one finish.
        while not self.stopping:
            report = decide_due_cases(now=now, limit=batch)
            decided, messages = decided + report.cases, messages + report.messages
            if report.cases < batch:
                break
        # Pre-dunning after the cases, so a reminder about a debt has the day's
        # contact first; before delivery, so a request due now goes out now.
        if not self.stopping and (self.next_card_check is None or now >= self.next_card_check):
            reminded = remind_expiring_cards(now=now, limit=batch)
            messages += reminded
            # A full batch: more may be waiting, look again on the next pass.
            self.next_card_check = now if reminded >= batch else now + CARD_CHECK_EVERY
        while not self.stopping:
            delivery = deliver_due(now=now, transport=transport, rng=rng, limit=batch)
            sent, failed = sent + delivery.sent, failed + delivery.failed
            if delivery.sent + delivery.retrying + delivery.failed < batch:
                break
        purge_expired(now=now)
        if opened or decided or messages or sent or failed or charged:
            self.stdout.write(
                f"{now:%Y-%m-%d %H:%M} UTC: {opened} invoice(s) into cases, {charged} charge(s) "
                f"retried ({recovered} recovered), {decided} case(s) decided, {messages} "
                f"message(s) written, {sent} sent, {failed} failed"
            )

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _parse(self, text: str) -> datetime:
        try:
            return fields.parse_instant(text)
        except fields.FieldError as error:
            raise CommandError(f"--now: {error}") from None
