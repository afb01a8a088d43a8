"""Real `dunning worker` processes on one PostgreSQL, against a real SMTP server.

Each test starts `python -m dunning worker` as separate operating-system
processes pointed at pytest-django's test database, so the claims, leases and
signals are exercised exactly as in production: several workers side by side,
one killed with SIGKILL half-way through a batch, one stopped with SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from dunning.engine import policies
from dunning.engine.cases import sync_cases
from dunning.engine.decisions import decide_due_cases
from dunning.engine.delivery import LEASE
from dunning.engine.models import Case, Message, MessageStatus
from dunning.ledger.models import Customer
from tests.smtp_server import Mailbox, SmtpServer, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DUE = datetime(2026, 3, 15, tzinfo=UTC)
# Wednesday 18 March 2026, 10:00 in Bangkok: inside the Thai contact window.
WHEN = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)
CASES = 60
BATCH = 5


@dataclass
class SlowMailbox(Mailbox):
    """Records each message on DATA, then waits `delay` seconds before answering 250.

    A worker killed during the wait has handed the message over but never
    heard the answer: the one case where delivery must send it again.
    """

    delay: float = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        if self.delay:
            await asyncio.sleep(self.delay)
        return answer


@pytest.fixture
def slow_smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer("127.0.0.1", free_port(), SlowMailbox())
    server.start()
    yield server
    server.stop()


def database_url() -> str:
    """The URL of pytest-django's test database, for processes outside pytest."""
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    output: Path

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout=timeout)

    def log(self) -> str:
        return self.output.read_text(errors="replace")


Spawn = Callable[..., Worker]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start `dunning worker <args>` as its own process; all are reaped at teardown."""
    workers: list[Worker] = []

    def start(smtp: SmtpServer, *args: str) -> Worker:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DUNNING_SMTP_URL": smtp.url,
            "DUNNING_DATA_DIR": str(tmp_path),
        }
        output = tmp_path / f"worker-{len(workers)}.log"
        with output.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "dunning", "worker", *args],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(process, output)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.kill()
        worker.process.wait(timeout=10)


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def due_invoices(make_customer: Any, make_invoice: Any) -> None:
    """CASES customers, each with one invoice three days overdue at WHEN."""
    for i in range(CASES):
        make_customer(f"cus_{i}", name=f"Customer {i}", email=f"c{i}@example.co.th")
        make_invoice(f"in_{i}", customer=f"cus_{i}", number=f"INV-{1000 + i}", due_at=DUE)
    policies.ensure_default_policies(now=WHEN)


@pytest.fixture
def due_cases(due_invoices: None) -> None:
    """The invoices in their cases, due for a decision at WHEN."""
    assert sync_cases(now=WHEN) == CASES
    assert Case.objects.filter(next_action_at__lte=WHEN).count() == CASES


@pytest.fixture
def due_messages(due_cases: None) -> None:
    """One reminder per case in the outbox, due; no case wants a decision again."""
    while decide_due_cases(now=WHEN, limit=100).cases:
        pass
    # Workers that read the real clock must find nothing to decide, only to send,
    # and send now: delivery judges the customers' hours by that clock, so the
    # customers live where it is midday.
    Case.objects.update(next_action_at=None)
    Customer.objects.update(time_zone=zone_at_midday(datetime.now(UTC)))
    assert Message.objects.filter(status=MessageStatus.SCHEDULED, attempts=0).count() == CASES


def zone_at_midday(now: datetime) -> str:
    """A fixed-offset zone in which `now` falls between 11:00 and 12:59."""
    hours = 12 - now.hour  # UTC-11 to UTC+12
    return "Etc/GMT" if hours == 0 else f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"


def message_ids(mailbox: Mailbox) -> Counter[str]:
    return Counter(str(message["Message-ID"]) for message in mailbox.received)


def test_four_worker_processes_started_together_send_each_case_its_reminder_exactly_once(
    due_cases: None, smtp_server: SmtpServer, spawn: Spawn
) -> None:
    workers = [
        spawn(smtp_server, "--once", "--now", WHEN.isoformat(), "--batch", str(BATCH))
        for _ in range(4)
    ]

    codes = [worker.wait(timeout=45) for worker in workers]

    assert codes == [0, 0, 0, 0], "\n".join(worker.log() for worker in workers)
    rows = list(Message.objects.all())
    assert len(rows) == CASES
    assert {(row.status, row.attempts) for row in rows} == {(MessageStatus.SENT, 1)}
    received = message_ids(smtp_server.mailbox)
    assert len(received) == CASES and set(received.values()) == {1}
    assert set(received) == {row.provider_id for row in rows}
    subjects = Counter(str(message["Subject"]) for message in smtp_server.mailbox.received)
    assert len(subjects) == CASES and set(subjects.values()) == {1}
    assert set(subjects) == {row.subject for row in rows}


def test_four_worker_processes_that_open_the_cases_themselves_all_finish_cleanly(
    due_invoices: None, smtp_server: SmtpServer, spawn: Spawn
) -> None:
    workers = [
        spawn(smtp_server, "--once", "--now", WHEN.isoformat(), "--batch", str(BATCH))
        for _ in range(4)
    ]

    codes = [worker.wait(timeout=45) for worker in workers]

    assert Case.objects.count() == CASES
    rows = list(Message.objects.all())
    assert len(rows) == CASES
    assert {(row.status, row.attempts) for row in rows} == {(MessageStatus.SENT, 1)}
    received = message_ids(smtp_server.mailbox)
    assert len(received) == CASES and set(received.values()) == {1}
    # Everything above holds today; this is what fails: the workers that lose the race to
    # open a customer's case die with IntegrityError instead of moving on.
    crashes = [worker.log()[-600:] for worker in workers if worker.process.returncode]
    assert codes == [0, 0, 0, 0], "\n".join(crashes)


def test_a_worker_killed_mid_delivery_loses_nothing_and_resends_at_most_its_batch(
    due_cases: None, slow_smtp_server: SmtpServer, spawn: Spawn
) -> None:
    mailbox = slow_smtp_server.mailbox
    assert isinstance(mailbox, SlowMailbox)
    mailbox.delay = 0.2
    first = spawn(slow_smtp_server, "--once", "--now", WHEN.isoformat(), "--batch", str(BATCH))
    wait_until(lambda: len(mailbox.received) >= 2 * BATCH - 3, timeout=30, what="some mail")

    first.process.send_signal(signal.SIGKILL)

    assert first.wait(timeout=10) == -signal.SIGKILL
    # What the dead worker had claimed but not recorded as sent: its lease runs on.
    in_flight = set(
        Message.objects.filter(status=MessageStatus.SCHEDULED, attempts=1).values_list(
            "id", flat=True
        )
    )
    assert 0 < len(in_flight) <= BATCH
    assert Message.objects.filter(id__in=in_flight, send_after=WHEN + LEASE).count() == len(
        in_flight
    )
    assert Message.objects.filter(attempts=0).exists(), "the worker was killed too late"
    handed_over = message_ids(mailbox)

    mailbox.delay = 0
    later = WHEN + LEASE + timedelta(minutes=1)
    second = spawn(slow_smtp_server, "--once", "--now", later.isoformat(), "--batch", str(BATCH))

    assert second.wait(timeout=30) == 0, second.log()
    rows = list(Message.objects.all())
    assert len(rows) == CASES
    assert {row.status for row in rows} == {MessageStatus.SENT}
    assert {row.id for row in rows if row.attempts == 2} == in_flight
    assert {row.attempts for row in rows if row.id not in in_flight} == {1}
    received = message_ids(mailbox)
    assert set(received) == {row.provider_id for row in rows}
    duplicated = {message_id: n for message_id, n in received.items() if n > 1}
    assert set(duplicated.values()) <= {2}
    assert len(duplicated) <= BATCH
    # Only mail handed over before the kill can arrive twice, and only if it was in flight.
    in_flight_ids = {row.provider_id for row in rows if row.id in in_flight}
    assert set(duplicated) <= in_flight_ids & set(handed_over)
    assert sum(received.values()) == CASES + len(duplicated)
    # A duplicate is the same email again: one Message-ID per subject, per recipient.
    ids_by_subject: dict[tuple[str, str], set[str]] = defaultdict(set)
    for message in mailbox.received:
        ids_by_subject[(str(message["Subject"]), str(message["To"]))].add(
            str(message["Message-ID"])
        )
    assert len(ids_by_subject) == CASES
    assert all(len(ids) == 1 for ids in ids_by_subject.values())


def test_sigterm_lets_a_running_worker_finish_its_batch_and_exit_cleanly(
    due_messages: None, slow_smtp_server: SmtpServer, spawn: Spawn
) -> None:
    mailbox = slow_smtp_server.mailbox
    assert isinstance(mailbox, SlowMailbox)
    mailbox.delay = 0.1
    worker = spawn(slow_smtp_server, "--sleep", "0.2", "--batch", str(BATCH))
    wait_until(lambda: len(mailbox.received) >= BATCH + 2, timeout=30, what="some mail")

    stopped_at = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)

    assert worker.wait(timeout=10) == 0, worker.log()
    assert time.monotonic() - stopped_at < 3
    rows = list(Message.objects.all())
    claimed = [row for row in rows if row.attempts > 0]
    # Every claimed message went out or waits for a retry with its reason; none is
    # left leased to a worker that is gone.
    assert [
        row.id
        for row in claimed
        if row.status != MessageStatus.SENT
        and not (row.status == MessageStatus.SCHEDULED and row.last_error)
    ] == []
    assert len(claimed) % BATCH == 0
    assert any(row.attempts == 0 for row in rows), "SIGTERM came after the outbox was empty"
    received = message_ids(mailbox)
    assert set(received.values()) == {1}
    assert set(received) == {row.provider_id for row in rows if row.status == MessageStatus.SENT}
