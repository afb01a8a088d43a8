"""Delivery-stage benchmark: `deliver_due` over SMTP against smtplib sending pre-built messages.

    .venv/bin/python bench/delivery.py [--messages 20000] [--batch 100]

What it does, in one run:

1. Creates the database `dunning_bench_delivery` on 127.0.0.1:5432 if missing,
   migrates it and empties the ledger and engine tables (the set-up helpers of
   bench/engine.py: bulk SQL, not the services).
2. Set-up: N customers in TH, each with an open invoice and an active case;
   the real decide stage (`decide_due_cases`) writes the first case's
   overdue_1 email (Thai subject, text and HTML bodies), and SQL copies it
   into one outbox row per case (own case, customer, address and idempotency
   key; status scheduled, send_after = now).  So every row carries a
   real rendered message.
3. Starts an aiosmtpd server in another process (multiprocessing, spawn) with
   a handler that counts the messages and bytes it accepts.
4. Figure: `deliver_due(now=now, transport=SmtpTransport(...), rng=...,
   limit=batch)` in a loop until a call finds nothing due: claim, load,
   `build_email`, SMTP send over the transport's one connection, mark sent.
   Checks: every row sent, the server counted exactly N more messages.
5. Baseline, in the same run: the same N rows turned into bytes before the
   clock starts (`to_wire(build_email(...))`, the delivery stage's own
   builder), then sent with smtplib `sendmail` over one connection to the
   same server: the floor for SMTP to this server from Python.
6. Prints msgs/s for both, their ratio (goal >= 0.4), the CPU time of this
   process per message for both, and the server's count.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres; another server
with --database-url).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import smtplib
import socket
import sys
import time
from typing import Any

import psycopg

from engine import (
    NOW,
    OUT,
    add_open_cases,
    checkpoint,
    default_policy_id,
    django_env,
    empty_tables,
    ensure_database,
    migrate,
)

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/dunning_bench_delivery"
GOAL_RATIO = 0.4


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000, help="outbox rows to deliver")
    parser.add_argument("--batch", type=int, default=100, help="limit per deliver_due call")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--seed", type=int, default=20260317)
    return parser.parse_args()


# The SMTP server, in its own process ------------------------------------------------------


class CountingHandler:
    def __init__(self, count: Any, size: Any) -> None:
        self.count, self.size = count, size

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.count.get_lock():
            self.count.value += 1
            self.size.value += len(envelope.original_content or b"")
        return "250 OK"


def smtp_server(port: int, count: Any, size: Any, ready: Any, stop: Any) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(CountingHandler(count, size), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Set-up -----------------------------------------------------------------------------------


def fill_outbox(url: str, *, messages: int) -> int:
    """One real rendered message (the decide stage), copied to one scheduled row per case."""
    from dunning.engine.decisions import decide_due_cases

    report = decide_due_cases(now=NOW, limit=1)
    if report.messages != 1:
        raise SystemExit(f"set-up: the decide stage wrote {report.messages} messages, not 1")
    with psycopg.connect(url) as conn:
        conn.execute(
            'INSERT INTO engine_message (case_id, customer_id, channel, "to", locale, subject, '
            "body_text, body_html, headers, step, template, template_version, variant, status, "
            "send_after, attempts, last_error, idempotency_key, provider_id, created_at, "
            "updated_at) "
            "SELECT k.id, k.customer_id, m.channel, c.email, m.locale, m.subject, m.body_text, "
            "m.body_html, m.headers, m.step, m.template, m.template_version, m.variant, "
            "'scheduled', %(now)s, 0, '', "
            "'case' || k.id || ':' || m.step || ':email', '', %(now)s, %(now)s "
            "FROM engine_case k JOIN ledger_customer c ON c.id = k.customer_id "
            "CROSS JOIN (SELECT * FROM engine_message ORDER BY id LIMIT 1) m "
            "WHERE k.id <> m.case_id",
            {"now": NOW},
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE engine_message")
        row = conn.execute(
            "SELECT COUNT(*), AVG(octet_length(body_text) + octet_length(body_html)) "
            "FROM engine_message WHERE status = 'scheduled' AND send_after <= %s",
            [NOW],
        ).fetchone()
    if row is None or row[0] != messages:
        raise SystemExit(f"set-up: {row} due rows, expected {messages}")
    return int(row[1])


# The two timed runs -----------------------------------------------------------------------


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_figure(*, port: int, batch: int, seed: int) -> tuple[int, float, float]:
    """deliver_due until nothing is due; (sent, seconds, CPU seconds of this process)."""
    from dunning.channels.email.transport import SmtpConfig, SmtpTransport
    from dunning.engine.delivery import deliver_due

    transport = SmtpTransport(SmtpConfig(scheme="smtp", host="127.0.0.1", port=port))
    rng = random.Random(seed)
    sent = 0
    cpu, started = cpu_seconds(), time.perf_counter()
    while True:
        report = deliver_due(now=NOW, transport=transport, rng=rng, limit=batch)
        if report.sent + report.retrying + report.failed == 0:
            break
        if report.retrying or report.failed:
            raise SystemExit(f"delivery failed: {report}")
        sent += report.sent
    transport.close()
    return sent, time.perf_counter() - started, cpu_seconds() - cpu


def prebuilt_messages() -> list[tuple[str, str, bytes]]:
    """Every outbox row as (from, to, bytes), built by the delivery stage's own builder."""
    from dunning.channels.email.message import build_email, to_wire
    from dunning.engine.delivery import _outgoing
    from dunning.engine.models import Message

    built = []
    for message in Message.objects.select_related("customer").order_by("id").iterator(2000):
        outgoing = _outgoing(message, now=NOW)
        email = build_email(outgoing)
        built.append((outgoing.sender_address, message.to, to_wire(email)))
    return built


def run_baseline(*, port: int, messages: list[tuple[str, str, bytes]]) -> tuple[float, float]:
    """smtplib over one connection; (seconds, CPU seconds of this process)."""
    cpu, started = cpu_seconds(), time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        for sender, to, data in messages:
            client.sendmail(sender, [to], data)
    return time.perf_counter() - started, cpu_seconds() - cpu


def main() -> int:
    args = parse_args()
    OUT.mkdir(exist_ok=True)
    url = args.database_url
    print(f"database {url}: creating if missing, migrating, emptying ...", flush=True)
    ensure_database(url)
    migrate(url)
    empty_tables(url)
    policy = default_policy_id(url)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        add_open_cases(conn, prefix="cus_", count=args.messages, policy=policy)
    os.environ.update(django_env(url))
    import django

    django.setup()
    size = fill_outbox(url, messages=args.messages)
    print(
        f"set-up: {args.messages:,} scheduled emails ({size:,} bytes of text + HTML each) "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )

    spawn = multiprocessing.get_context("spawn")
    count, size_in = spawn.Value("q", 0), spawn.Value("q", 0)
    ready, stop = spawn.Event(), spawn.Event()
    port = free_port()
    server = spawn.Process(target=smtp_server, args=(port, count, size_in, ready, stop))
    server.start()
    try:
        if not ready.wait(30):
            raise SystemExit("the SMTP server did not start")
        print(f"SMTP server (aiosmtpd, pid {server.pid}) on 127.0.0.1:{port}", flush=True)

        print(f"figure: deliver_due(limit={args.batch}) until nothing is due ...", flush=True)
        checkpoint(url)
        sent, seconds, cpu = run_figure(port=port, batch=args.batch, seed=args.seed)
        received = count.value
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT COUNT(*) FILTER (WHERE status = 'sent'), COUNT(*) FROM engine_message"
            ).fetchone()
        if sent != args.messages or received != args.messages or row != (sent, sent):
            raise SystemExit(
                f"delivery check failed: sent {sent}, server counted {received}, "
                f"(sent rows, rows) = {row}, expected {args.messages}"
            )
        print(f"  {sent:,} sent, the server counted {received:,}: checked", flush=True)

        print("baseline: building the same emails (untimed) ...", flush=True)
        messages = prebuilt_messages()
        mean_bytes = sum(len(data) for _, _, data in messages) // len(messages)
        print(f"baseline: smtplib sendmail of {len(messages):,} pre-built emails ...", flush=True)
        base_seconds, base_cpu = run_baseline(port=port, messages=messages)
        base_received = count.value - received
        if base_received != len(messages):
            raise SystemExit(f"baseline check failed: the server counted {base_received}")
        total = count.value
    finally:
        stop.set()
        server.join(30)
        if server.is_alive():
            server.terminate()

    figure, baseline = sent / seconds, len(messages) / base_seconds
    ratio = figure / baseline
    print()
    print(f"emails                   {sent:>10,}   batch {args.batch}, {mean_bytes:,} bytes each")
    print(f"figure   (deliver_due)   {figure:>10,.0f} msgs/s  {seconds:7.1f} s")
    print(f"baseline (smtplib)       {baseline:>10,.0f} msgs/s  {base_seconds:7.1f} s")
    print(f"ratio                    {ratio:>10.3f}   goal >= {GOAL_RATIO}  ", end="")
    print("ok" if ratio >= GOAL_RATIO else "MISSED")
    print(
        f"CPU per email (this process): deliver_due {cpu / sent * 1000:.2f} ms, "
        f"smtplib {base_cpu / len(messages) * 1000:.2f} ms"
    )
    print(f"server counted {total:,} messages, {size_in.value / 2**20:,.1f} MiB")
    return 0 if ratio >= GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
