"""CSV import benchmark: `dunning import invoices` against a bare COPY of the same rows.

    .venv/bin/python bench/import.py [--rows 1000000] [--customers 10000]

What it does, in one run:

1. Creates the database `dunning_bench_import` on 127.0.0.1:5432 if missing,
   migrates it and empties the ledger tables.
2. Writes a customers CSV and an invoices CSV (THB, USD, JPY and KWD amounts
   in major units, dates with and without offsets) under bench/out/, and
   imports the customers with `dunning import customers` (set-up, timed for
   information only).
3. Runs `dunning import invoices` in its own process and measures its wall
   time (process start and Django set-up included) and its peak resident
   memory (ru_maxrss from wait4, so only that process counts).  The import
   writes an `invoice.created` event per invoice as well as the invoice.
4. Checks that the ledger holds every invoice with the right total per currency.
5. Baseline, in the same run: a psycopg COPY of the same rows, already in
   PostgreSQL's text format (customer ids resolved, amounts in minor units),
   into a table shaped like ledger_invoice (`LIKE ... INCLUDING ALL`: the same
   columns, identity, checks and indexes, plus the same foreign key), in
   1 MiB chunks.  It is the floor for writing these rows: no parsing, no
   validation, no events.  A CHECKPOINT precedes each timed step, so that
   neither pays for the other's writes.
6. Prints the figure (rows/s), the baseline (rows/s), their ratio (goal
   >= 0.2) and the importer's peak memory (goal <= 300 MB).

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres; another
server with --database-url).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

BENCH_DIR = Path(__file__).resolve().parent
OUT = BENCH_DIR / "out"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/dunning_bench_import"
BASELINE_TABLE = "bench_baseline_invoice"
GOAL_RATIO = 0.2
GOAL_PEAK_MB = 300
# Currency, exponent, share of the invoices, and the plan prices (major units)
# that repeat across a subscription business's invoices; the rest are one-off
# amounts.  Minor units are computed here with integers, never floats.
CURRENCIES = [("THB", 2, 70), ("USD", 2, 15), ("JPY", 0, 10), ("KWD", 3, 5)]
NOW = datetime(2026, 3, 16, 3, 0, tzinfo=UTC)
NULL = "\\N"  # COPY's text format for NULL


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="invoice rows")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--seed", type=int, default=20260316)
    return parser.parse_args()


def ensure_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def dunning(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dunning", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )


def empty_ledger(url: str) -> None:
    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND (tablename LIKE 'ledger\\_%%' OR tablename = %s)",
                [BASELINE_TABLE],
            )
        ]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        conn.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")


def write_customers(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("external_id,name,email,phone,locale,time_zone,country,is_business\n")
        for i in range(count):
            business = "true" if i % 7 == 0 else "false"
            out.write(
                f"cus_{i:06d},ลูกค้า {i},customer{i}@example.co.th,"
                f"08{i % 10}1234{i % 1000:03d},th-TH,,TH,{business}\n"
            )


def amount(rng: random.Random, places: int, prices: list[int]) -> int:
    """An amount in minor units: usually a plan price, sometimes a one-off amount."""
    if rng.random() < 0.6:
        return rng.choice(prices)
    return rng.randrange(100, 5_000_000) * (10**places) // 100


def major(minor: int, places: int) -> str:
    return str(Decimal(minor).scaleb(-places)) if places else str(minor)


def write_invoices(
    csv_path: Path,
    copy_path: Path,
    *,
    count: int,
    customer_ids: dict[str, int],
    customers: int,
    seed: int,
) -> dict[str, int]:
    """The invoices CSV for the importer, the same rows as COPY text for the baseline."""
    rng = random.Random(seed)
    kinds = [code for code, _, share in CURRENCIES for _ in range(share)]
    places = {code: p for code, p, _ in CURRENCIES}
    prices = {
        code: [rng.randrange(9, 2_000) * 10**p for _ in range(40)] for code, p, _ in CURRENCIES
    }
    start = date(2025, 1, 1)
    stamp = NOW.isoformat()
    totals: dict[str, int] = {}
    with csv_path.open("w", encoding="utf-8", newline="") as out, copy_path.open("w") as copy:
        out.write(
            "external_id,customer,number,currency,amount_due,issued_at,due_at,collection_method\n"
        )
        for i in range(count):
            currency = rng.choice(kinds)
            minor = amount(rng, places[currency], prices[currency])
            totals[currency] = totals.get(currency, 0) + minor
            issued = start + timedelta(days=rng.randrange(440))
            due = issued + timedelta(days=rng.choice((0, 7, 14, 30)))
            customer = f"cus_{rng.randrange(customers):06d}"
            method = "charge_automatically" if i % 3 else "send_invoice"
            if i % 10 == 0:  # some billing systems export instants with an offset
                issued_text, issued_at = f"{issued}T09:30:00+07:00", f"{issued} 02:30:00+00"
            else:
                issued_text, issued_at = issued.isoformat(), f"{issued} 00:00:00+00"
            out.write(
                f"inv_{i:08d},{customer},INV-{i:08d},{currency},"
                f"{major(minor, places[currency])},{issued_text},{due},{method}\n"
            )
            # An invoice of nothing is paid on issue, as the importer writes it.
            status, paid_at = ("paid", issued_at) if minor == 0 else ("open", NULL)
            copy.write(
                f"inv_{i:08d}\tINV-{i:08d}\t{customer_ids[customer]}\t{currency}\t"
                f"{minor}\t0\t{minor}\t{issued_at}\t{due} 00:00:00+00\t{status}\t"
                f"{method}\t[]\t{{}}\t{paid_at}\t{stamp}\t{stamp}\n"
            )
    return totals


def checkpoint(url: str) -> None:
    """Flush the previous step's writes, so that each timed step starts from the same state.

    Without it the second step pays for the first one's checkpoint.  Needs a
    superuser (or pg_checkpoint); skipped, with a note, without one.
    """
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        print("  (no CHECKPOINT between steps: not allowed for this user)", flush=True)


def run_import(path: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Run `dunning import invoices` alone; return (seconds, peak RSS in MB, its output)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "dunning", "import", "invoices", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"dunning import invoices failed ({process.returncode}):\n{output}")
    return seconds, usage.ru_maxrss / 1024, output.strip()  # ru_maxrss is in KiB on Linux


def verify(url: str, *, count: int, totals: dict[str, int]) -> None:
    with psycopg.connect(url) as conn:
        found = dict(
            conn.execute(
                "SELECT currency, SUM(amount_due) FROM ledger_invoice GROUP BY currency"
            ).fetchall()
        )
        rows = conn.execute("SELECT COUNT(*) FROM ledger_invoice").fetchone()
        events = conn.execute(
            "SELECT COUNT(*) FROM ledger_event WHERE type = 'invoice.created'"
        ).fetchone()
    if rows != (count,) or events != (count,) or found != totals:
        raise SystemExit(f"import check failed: {rows} rows, {events} events, {found} != {totals}")


def run_baseline(url: str, path: Path) -> float:
    """COPY the pre-formatted rows into a copy of ledger_invoice; return seconds."""
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE {BASELINE_TABLE} (LIKE ledger_invoice INCLUDING ALL)")
        conn.execute(
            f"ALTER TABLE {BASELINE_TABLE} ADD FOREIGN KEY (customer_id) "
            "REFERENCES ledger_customer (id) DEFERRABLE INITIALLY DEFERRED"
        )
        conn.commit()
        columns = (
            "external_id, number, customer_id, currency, amount_due, amount_paid, "
            "amount_remaining, issued_at, due_at, status, collection_method, lines, "
            "context, paid_at, created_at, updated_at"
        )
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            path.open("rb") as data,
            cursor.copy(f"COPY {BASELINE_TABLE} ({columns}) FROM STDIN") as copy,
        ):
            while chunk := data.read(1 << 20):
                copy.write(chunk)
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute(f"DROP TABLE {BASELINE_TABLE}")
    return seconds


def main() -> int:
    args = parse_args()
    OUT.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUNNING_", "TEST_DATABASE"))}
    env |= {"DATABASE_URL": args.database_url, "DUNNING_DATA_DIR": str(OUT), "DUNNING_DEBUG": "0"}

    print(f"database {args.database_url}: creating if missing, migrating, emptying ...", flush=True)
    ensure_database(args.database_url)
    dunning(["migrate", "--no-input", "--verbosity", "0"], env)
    empty_ledger(args.database_url)

    customers_csv = OUT / "customers.csv"
    write_customers(customers_csv, args.customers)
    started = time.perf_counter()
    done = dunning(["import", "customers", str(customers_csv)], env)
    print(
        f"set-up: {done.stdout.strip()} ({args.customers / (time.perf_counter() - started):,.0f} "
        "rows/s)",
        flush=True,
    )

    with psycopg.connect(args.database_url) as conn:
        ids = dict(conn.execute("SELECT external_id, id FROM ledger_customer").fetchall())
    invoices_csv, copy_text = OUT / "invoices.csv", OUT / "invoices.copy"
    print(f"writing {args.rows:,} invoice rows to {invoices_csv} ...", flush=True)
    totals = write_invoices(
        invoices_csv,
        copy_text,
        count=args.rows,
        customer_ids=ids,
        customers=args.customers,
        seed=args.seed,
    )
    size_mb = invoices_csv.stat().st_size / 2**20

    print("importing ...", flush=True)
    checkpoint(args.database_url)
    seconds, peak_mb, output = run_import(invoices_csv, env)
    print(f"  {output}", flush=True)
    verify(args.database_url, count=args.rows, totals=totals)
    print("baseline: COPY of the same rows ...", flush=True)
    checkpoint(args.database_url)
    baseline_seconds = run_baseline(args.database_url, copy_text)
    copy_text.unlink()

    figure, baseline = args.rows / seconds, args.rows / baseline_seconds
    ratio = figure / baseline
    print()
    print(f"rows                  {args.rows:>12,}   ({size_mb:,.0f} MiB of CSV)")
    print(f"figure   (import)     {figure:>12,.0f} rows/s   {seconds:6.1f} s")
    print(f"baseline (bare COPY)  {baseline:>12,.0f} rows/s   {baseline_seconds:6.1f} s")
    print(
        f"ratio                 {ratio:>12.2f}          goal >= {GOAL_RATIO}: "
        f"{'met' if ratio >= GOAL_RATIO else 'NOT MET'}"
    )
    print(
        f"peak memory (import)  {peak_mb:>12,.0f} MB       goal <= {GOAL_PEAK_MB} MB: "
        f"{'met' if peak_mb <= GOAL_PEAK_MB else 'NOT MET'}"
    )
    return 0 if ratio >= GOAL_RATIO and peak_mb <= GOAL_PEAK_MB else 1


if __name__ == "__main__":
    sys.exit(main())
