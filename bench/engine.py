"""Decide-stage benchmark: `decide_due_cases` against a bare SKIP LOCKED claim loop.

    .venv/bin/python bench/engine.py [--cases 100000] [--batch 100] [--closed 1000000]

What it does, in one run:

1. Creates the database `dunning_bench_engine` on 127.0.0.1:5432 if missing,
   migrates it, empties the ledger and engine tables and stores the default
   policies (`ensure_default_policies`).
2. Set-up in bulk SQL (`INSERT ... SELECT generate_series`, not the services):
   N customers in TH (th-TH, Asia/Bangkok, an email address), one open
   send_invoice THB invoice each, due two days before `now`, and one active
   case per customer on the default send_invoice policy, linked to its invoice
   and due at `now`.  `now` is Tuesday 2026-03-17 10:00 in Bangkok, no Thai
   holiday, so the contact rules allow email: exactly one step (overdue_1) is
   due per case; the courtesy reminder before it is superseded.
3. Figure: one worker process (`python bench/engine.py --worker`, Django set
   up, DEBUG off) calls `decide_due_cases(now=now, limit=batch)` in a loop
   until a call finds nothing due.  Timed: the loop only.  The worker reports
   its peak RSS (getrusage ru_maxrss) before the first batch, after it and at the end.
4. Checks: exactly one message per case (overdue_1, scheduled), no duplicates,
   no case still due.
5. Baseline, in the same run: the same number of due rows in a copy of
   engine_case (`LIKE ... INCLUDING ALL`, so the same partial index), claimed
   by psycopg in batches of the same size with `FOR UPDATE SKIP LOCKED`, each
   batch one data-modifying CTE that moves the rows' next_action_at and
   inserts one row per case into a copy of engine_message (one transaction
   per batch, as in shared/reference/stack.md 5c).  The inserted rows carry
   the subject and bodies of a message the figure rendered, so both sides
   store the same bytes.  A CHECKPOINT precedes
   each timed step.
6. With --closed M > 0 (default 1,000,000; 0 skips it): empties the tables,
   writes M closed (recovered) cases with their customer, paid invoice, link,
   sent message and timeline entry, then the same N due cases, and times the
   worker again.  Goal: >= 0.9 of the first figure.

Prints cases/s, the baseline's rows/s, their ratio (goal >= 0.33), the
closed-history figure and its share of the first, and the worker's memory.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres; another server
with --database-url).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

BENCH_DIR = Path(__file__).resolve().parent
OUT = BENCH_DIR / "out"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/dunning_bench_engine"
GOAL_RATIO = 0.33
GOAL_CLOSED_SHARE = 0.9
# Tuesday 10:00 in Bangkok (03:00 UTC): a working day, no Thai public holiday.
NOW = datetime(2026, 3, 17, 3, 0, tzinfo=UTC)
# Two days overdue: overdue_1 (due + 1 day) is due, overdue_2 (due + 8 days) is not.
DUE_AT = NOW - timedelta(days=2)
BASE_CASE = "bench_base_case"  # BASELINE_CLAIM names them too
BASE_MESSAGE = "bench_base_message"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="due cases")
    parser.add_argument("--batch", type=int, default=100, help="limit per decide_due_cases call")
    parser.add_argument(
        "--closed", type=int, default=1_000_000, help="closed cases for the second run (0: skip)"
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def django_env(url: str) -> dict[str, str]:
    """The environment of a process that runs the product against `url`, debug off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUNNING_", "TEST_DATABASE"))}
    return env | {
        "DATABASE_URL": url,
        "DUNNING_DATA_DIR": str(OUT),
        "DUNNING_DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "dunning.settings",
    }


def ensure_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def migrate(url: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "dunning", "migrate", "--no-input", "--verbosity", "0"],
        env=django_env(url),
        check=True,
    )


def empty_tables(url: str, *, extra: tuple[str, ...] = ()) -> None:
    """Empty the ledger and engine tables (policies too); drop the bench tables in `extra`."""
    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND (tablename LIKE 'ledger\\_%%' OR tablename LIKE 'engine\\_%%' "
                "OR tablename LIKE 'web\\_%%')"
            )
        ]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        for table in extra:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def default_policy_id(url: str) -> int:
    """Store the default policies through the product (`ensure_default_policies`), in a
    short process of its own; the id of the send_invoice one."""
    code = (
        "import django, datetime as d; django.setup()\n"
        "from dunning.engine.policies import ensure_default_policies, latest_version\n"
        "from dunning.core.policy import SEND_INVOICE_DEFAULT\n"
        f"ensure_default_policies(now=d.datetime.fromisoformat({NOW.isoformat()!r}))\n"
        "print(latest_version(SEND_INVOICE_DEFAULT.id).pk)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=django_env(url),
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout.split()[-1])


def checkpoint(url: str) -> None:
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        print("  (no CHECKPOINT between steps: not allowed for this user)", flush=True)


def add_customers(conn: psycopg.Connection, *, prefix: str, count: int) -> None:
    conn.execute(
        "INSERT INTO ledger_customer (external_id, name, email, phone, locale, time_zone, "
        "country, is_business, metadata, created_at, updated_at) "
        "SELECT %(p)s || i, 'ลูกค้า ' || %(p)s || i, %(p)s || i || '@example.co.th', "
        "'+6681' || lpad(i::text, 7, '0'), 'th-TH', 'Asia/Bangkok', 'TH', i %% 7 = 0, '{}', "
        "%(at)s, %(at)s FROM generate_series(1, %(n)s) AS i",
        {"p": prefix, "n": count, "at": NOW - timedelta(days=400)},
    )


def add_open_cases(conn: psycopg.Connection, *, prefix: str, count: int, policy: int) -> None:
    """`count` customers, each with one open invoice and one active case due at NOW."""
    add_customers(conn, prefix=prefix, count=count)
    params = {"p": prefix, "now": NOW, "due": DUE_AT, "issued": DUE_AT - timedelta(days=14)}
    conn.execute(
        "INSERT INTO ledger_invoice (external_id, number, customer_id, currency, amount_due, "
        "amount_paid, amount_remaining, issued_at, due_at, status, collection_method, lines, "
        "context, created_at, updated_at) "
        "SELECT 'inv_' || c.external_id, 'INV-' || c.external_id, c.id, 'THB', "
        "100000 + c.id %% 500000, 0, 100000 + c.id %% 500000, %(issued)s, %(due)s, 'open', "
        "'send_invoice', '[]', '{\"plan\": \"Pro\"}', %(issued)s, %(issued)s "
        "FROM ledger_customer c WHERE c.external_id LIKE %(p)s || '%%' ORDER BY c.id",
        params,
    )
    conn.execute(
        "INSERT INTO engine_case (customer_id, currency, state, collection_method, policy_id, "
        "amount_due, due_at, opened_at, next_action_at, retry_reason, retry_key, created_at, "
        "updated_at) "
        "SELECT i.customer_id, 'THB', 'active', 'send_invoice', %(policy)s, i.amount_remaining, "
        "i.due_at, %(opened)s, %(now)s, '', '', %(opened)s, %(opened)s "
        "FROM ledger_invoice i WHERE i.external_id LIKE 'inv_' || %(p)s || '%%' ORDER BY i.id",
        params | {"policy": policy, "opened": DUE_AT - timedelta(days=3)},
    )
    conn.execute(
        "INSERT INTO engine_caseinvoice (case_id, invoice_id, added_at) "
        "SELECT k.id, i.id, k.opened_at FROM engine_case k "
        "JOIN ledger_invoice i ON i.customer_id = k.customer_id "
        "WHERE k.state = 'active' AND i.external_id LIKE 'inv_' || %(p)s || '%%'",
        params,
    )


def add_closed_cases(conn: psycopg.Connection, *, count: int, policy: int) -> None:
    """`count` recovered cases of earlier months, each with its own customer, paid invoice,
    link, sent message and timeline entry: history the decide stage must not pay for."""
    prefix = "old_"
    add_customers(conn, prefix=prefix, count=count)
    due = NOW - timedelta(days=120)
    params = {"p": prefix, "due": due, "issued": due - timedelta(days=14)}
    conn.execute(
        "INSERT INTO ledger_invoice (external_id, number, customer_id, currency, amount_due, "
        "amount_paid, amount_remaining, issued_at, due_at, status, collection_method, lines, "
        "context, paid_at, created_at, updated_at) "
        "SELECT 'inv_' || c.external_id, 'INV-' || c.external_id, c.id, 'THB', "
        "100000 + c.id %% 500000, 100000 + c.id %% 500000, 0, "
        "%(issued)s - (c.id %% 200) * interval '1 day', %(due)s - (c.id %% 200) * interval '1 day',"
        " 'paid', 'send_invoice', '[]', '{}', %(due)s, %(issued)s, %(issued)s "
        "FROM ledger_customer c WHERE c.external_id LIKE %(p)s || '%%' ORDER BY c.id",
        params,
    )
    conn.execute(
        "INSERT INTO engine_case (customer_id, currency, state, collection_method, policy_id, "
        "amount_due, due_at, opened_at, closed_at, next_action_at, retry_reason, retry_key, "
        "created_at, updated_at) "
        "SELECT i.customer_id, 'THB', 'recovered', 'send_invoice', %(policy)s, 0, i.due_at, "
        "i.due_at - interval '3 days', i.paid_at, i.paid_at, 'paid', '', i.due_at, i.paid_at "
        "FROM ledger_invoice i WHERE i.external_id LIKE 'inv_' || %(p)s || '%%' ORDER BY i.id",
        params | {"policy": policy},
    )
    conn.execute(
        "INSERT INTO engine_caseinvoice (case_id, invoice_id, added_at) "
        "SELECT k.id, i.id, k.opened_at FROM engine_case k "
        "JOIN ledger_invoice i ON i.customer_id = k.customer_id WHERE k.state = 'recovered'"
    )
    conn.execute(
        'INSERT INTO engine_message (case_id, customer_id, channel, "to", locale, subject, '
        "body_text, body_html, headers, step, template, template_version, variant, status, "
        "send_after, attempts, last_error, idempotency_key, provider_id, sent_at, created_at, "
        "updated_at) "
        "SELECT k.id, k.customer_id, 'email', c.email, 'th', 'ใบแจ้งหนี้เกินกำหนดชำระ', "
        "'เรียน ลูกค้า ...', '<p>เรียน ลูกค้า ...</p>', '{}', 'overdue_1', "
        "'send_invoice.overdue_1', 'default', '', 'sent', k.due_at + interval '1 day', 1, '', "
        "'case' || k.id || ':overdue_1:email', '', k.due_at + interval '1 day', "
        "k.due_at + interval '1 day', k.due_at + interval '1 day' "
        "FROM engine_case k JOIN ledger_customer c ON c.id = k.customer_id "
        "WHERE k.state = 'recovered'"
    )
    conn.execute(
        "INSERT INTO engine_caseevent (case_id, type, reason, from_state, to_state, data, "
        "occurred_at) SELECT k.id, 'recovered', 'paid in full', 'active', 'recovered', '{}', "
        "k.closed_at FROM engine_case k WHERE k.state = 'recovered'"
    )


def set_up(url: str, *, cases: int, closed: int, policy: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        if closed:
            add_closed_cases(conn, count=closed, policy=policy)
        add_open_cases(conn, prefix="cus_", count=cases, policy=policy)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def run_worker(url: str, *, batch: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", "--batch", str(batch), "--database-url", url],
        env=django_env(url),
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def _rss_mb() -> tuple[float, float]:
    """(peak RSS, current RSS) of this process in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return peak, pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of another process on this machine (its PostgreSQL backend);
    NaN when it cannot be read (a server elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker(batch: int) -> None:
    """The figure: decide every due case, one batch after another, in this process."""
    import django

    django.setup()
    from django.db import connection

    from dunning.engine.decisions import decide_due_cases

    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    peak_start, rss_start = _rss_mb()
    cpu_start, db_cpu_start = _cpu_seconds(), _process_cpu_seconds(backend)
    cases = messages = batches = 0
    peak_first = peak_start
    started = time.perf_counter()
    while True:
        report = decide_due_cases(now=NOW, limit=batch)
        if report.cases == 0:
            break
        cases, messages, batches = cases + report.cases, messages + report.messages, batches + 1
        if batches == 1:  # templates, policies and holidays are loaded by now
            peak_first = _rss_mb()[0]
    seconds = time.perf_counter() - started
    cpu, db_cpu = _cpu_seconds() - cpu_start, _process_cpu_seconds(backend) - db_cpu_start
    peak_end, rss_end = _rss_mb()
    result = {
        "cases": cases,
        "messages": messages,
        "batches": batches,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "db_cpu_seconds": db_cpu,
        "peak_start_mb": peak_start,
        "peak_first_mb": peak_first,
        "peak_end_mb": peak_end,
        "rss_start_mb": rss_start,
        "rss_end_mb": rss_end,
    }
    print(json.dumps(result), flush=True)


def verify(url: str, *, cases: int) -> None:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT m.case_id), "
            "COUNT(*) FILTER (WHERE m.step = 'overdue_1' AND m.status = 'scheduled') "
            "FROM engine_message m JOIN engine_case k ON k.id = m.case_id "
            "WHERE k.state = 'active'"
        ).fetchone()
        due = conn.execute(
            "SELECT COUNT(*) FROM engine_case WHERE state = 'active' "
            "AND (next_action_at IS NULL OR next_action_at <= %s)",
            [NOW],
        ).fetchone()
        active = conn.execute("SELECT COUNT(*) FROM engine_case WHERE state = 'active'").fetchone()
    if found != (cases, cases, cases) or due != (0,) or active != (cases,):
        raise SystemExit(
            f"decide check failed: (messages, distinct cases, overdue_1) = {found}, "
            f"{due[0] if due else '?'} cases still due or without a wake-up, "
            f"{active[0] if active else '?'} active cases for {cases}"
        )


def prepare_baseline(url: str) -> int:
    """Copy the due cases into a copy of engine_case, and an empty copy of engine_message."""
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE {BASE_CASE} (LIKE engine_case INCLUDING ALL)")
        conn.execute(f"CREATE TABLE {BASE_MESSAGE} (LIKE engine_message INCLUDING ALL)")
        conn.execute(
            f"INSERT INTO {BASE_CASE} SELECT * FROM engine_case "  # noqa: S608 (constant)
            "WHERE state = 'active' AND next_action_at <= %s",
            [NOW],
        )
        conn.commit()
        conn.autocommit = True
        conn.execute(f"VACUUM ANALYZE {BASE_CASE}")
        row = conn.execute(f"SELECT COUNT(*) FROM {BASE_CASE}").fetchone()  # noqa: S608
    return row[0] if row else 0


BASELINE_CLAIM = """
WITH claimed AS (
    SELECT id, customer_id FROM bench_base_case
    WHERE state = 'active' AND next_action_at IS NOT NULL AND next_action_at <= %(now)s
    ORDER BY next_action_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
), moved AS (
    UPDATE bench_base_case t SET next_action_at = %(next)s, updated_at = %(now)s
    FROM claimed WHERE t.id = claimed.id RETURNING t.id, t.customer_id
)
INSERT INTO bench_base_message (case_id, customer_id, channel, "to", locale, subject, body_text,
    body_html, headers, step, template, template_version, variant, status, send_after, attempts,
    last_error, idempotency_key, provider_id, created_at, updated_at)
SELECT id, customer_id, 'email', 'customer@example.co.th', 'th', %(subject)s, %(text)s, %(html)s,
    %(headers)s, 'overdue_1', 'send_invoice.overdue_1', 'default', '', 'scheduled', %(now)s, 0, '',
    'case' || id || ':overdue_1:email', '', %(now)s, %(now)s
FROM moved
"""


def run_baseline(url: str, *, batch: int) -> tuple[int, float]:
    """Claim every due copy row, `batch` at a time, one transaction per batch.

    Each inserted row carries the subject, bodies and headers of a message the
    figure's worker rendered, so both sides store the same bytes: what the
    baseline leaves out is the deciding and the rendering, not the storage.
    """
    with psycopg.connect(url) as conn:
        sample = conn.execute(
            "SELECT subject, body_text, body_html, headers::text FROM engine_message"
            " ORDER BY id LIMIT 1"
        ).fetchone()
    if sample is None:
        raise SystemExit("baseline needs a message rendered by the figure's run")
    subject, text, html, headers = sample
    params = {
        "now": NOW,
        "next": NOW + timedelta(days=7),
        "limit": batch,
        "subject": subject,
        "text": text,
        "html": html,
        "headers": headers,
    }
    claimed = 0
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        while True:
            with conn.transaction():
                done = conn.execute(BASELINE_CLAIM, params).rowcount
            if done == 0:
                break
            claimed += done
        seconds = time.perf_counter() - started
        row = conn.execute(
            f"SELECT COUNT(*), COUNT(DISTINCT case_id) FROM {BASE_MESSAGE}"  # noqa: S608
        ).fetchone()
    if row != (claimed, claimed):
        raise SystemExit(f"baseline check failed: {row} for {claimed} claims")
    return claimed, seconds


def main() -> int:
    args = parse_args()
    if args.worker:
        worker(args.batch)
        return 0
    OUT.mkdir(exist_ok=True)
    url = args.database_url
    print(f"database {url}: creating if missing, migrating, emptying ...", flush=True)
    ensure_database(url)
    migrate(url)
    empty_tables(url, extra=(BASE_CASE, BASE_MESSAGE))
    policy = default_policy_id(url)

    seconds = set_up(url, cases=args.cases, closed=0, policy=policy)
    print(f"set-up: {args.cases:,} due cases in {seconds:.1f} s", flush=True)
    due = prepare_baseline(url)

    print(f"figure: decide_due_cases(limit={args.batch}) until nothing is due ...", flush=True)
    checkpoint(url)
    first = run_worker(url, batch=args.batch)
    verify(url, cases=args.cases)
    print(f"  {first['cases']:,} cases, {first['messages']:,} messages: checked", flush=True)

    print(f"baseline: SKIP LOCKED claim + message INSERT of {due:,} rows ...", flush=True)
    checkpoint(url)
    claimed, base_seconds = run_baseline(url, batch=args.batch)
    if claimed != args.cases or first["cases"] != args.cases:
        raise SystemExit(f"decided {first['cases']}, claimed {claimed}, expected {args.cases}")

    second = None
    if args.closed:
        empty_tables(url, extra=(BASE_CASE, BASE_MESSAGE))
        policy = default_policy_id(url)
        print(f"set-up: {args.closed:,} closed cases with their history ...", flush=True)
        seconds = set_up(url, cases=args.cases, closed=args.closed, policy=policy)
        print(f"  then {args.cases:,} due cases: {seconds:.1f} s in all", flush=True)
        checkpoint(url)
        second = run_worker(url, batch=args.batch)
        verify(url, cases=args.cases)
        print(f"  {second['cases']:,} cases, {second['messages']:,} messages: checked", flush=True)

    figure = first["cases"] / first["seconds"]
    baseline = claimed / base_seconds
    ratio = figure / baseline
    print()
    print(f"due cases              {args.cases:>10,}   batch {args.batch}")
    print(f"figure   (decide)      {figure:>10,.0f} cases/s  {first['seconds']:7.1f} s")
    print(f"baseline (bare claim)  {baseline:>10,.0f} rows/s   {base_seconds:7.1f} s")
    print(f"ratio                  {ratio:>10.3f}   goal >= {GOAL_RATIO}  ", end="")
    print("ok" if ratio >= GOAL_RATIO else "MISSED")
    ok = ratio >= GOAL_RATIO
    runs = [("", first)]
    if second is not None:
        closed_figure = second["cases"] / second["seconds"]
        share = closed_figure / figure
        print(
            f"with {args.closed:,} closed  {closed_figure:>10,.0f} cases/s  "
            f"{second['seconds']:7.1f} s"
        )
        print(f"share of figure        {share:>10.3f}   goal >= {GOAL_CLOSED_SHARE}  ", end="")
        print("ok" if share >= GOAL_CLOSED_SHARE else "MISSED")
        ok = ok and share >= GOAL_CLOSED_SHARE
        runs.append((" (closed)", second))
    for label, run in runs:
        per_case = 1000 / run["cases"]
        print(
            f"CPU per case{label}: worker {run['cpu_seconds'] * per_case:.2f} ms, "
            f"its PostgreSQL backend {run['db_cpu_seconds'] * per_case:.2f} ms "
            f"(wall {run['seconds'] * per_case:.2f} ms; other load on the machine inflates wall)"
        )
        print(
            f"worker peak RSS{label}: {run['peak_start_mb']:.0f} MB at start, "
            f"{run['peak_first_mb']:.0f} MB after the first batch, "
            f"{run['peak_end_mb']:.0f} MB at end (current RSS {run['rss_start_mb']:.0f} -> "
            f"{run['rss_end_mb']:.0f} MB)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
