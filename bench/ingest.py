"""Ingest benchmark: POST /api/v1/invoices against a minimal one-INSERT baseline.

    .venv/bin/python bench/ingest.py [--duration 20] [--connections 32] [--workers N]

What it does, in one run:

1. Creates the database `dunning_bench_ingest` on 127.0.0.1:5432 if missing,
   migrates it, empties it, and creates one customer and one API key.
2. Starts the app with `dunning serve` (gunicorn, sync workers; DUNNING_DEBUG=0,
   access log off) under `benchapp.settings`: the product's settings and URLs
   plus `POST /bench/baseline-invoice`, which validates the same body with the
   same schema (`InvoiceIn`) and does one INSERT (see bench/benchapp/baseline.py).
3. Warms both endpoints up with wrk, empties the tables, then runs wrk
   (bench/ingest.lua: a unique external_id per request) against the baseline
   and the real endpoint in turn, 32 connections, 20 s each by default.
4. Checks that every 2xx response has its row (the external_ids are read back
   from the response bodies), and for the real endpoint its invoice.created
   event; prints the table (req/s, p50, p99, non-2xx, and the server's CPU time
   per request), the ratio real / baseline (goal >= 0.5) and the real
   endpoint's p99 (goal <= 50 ms).  Exit status 1 if a check or a request failed.
5. Stops the server it started, also on error or Ctrl-C.

It empties the ledger of the database it is given, so it refuses a database
whose name does not contain "bench".

Needs wrk (`apt-get install wrk`) and PostgreSQL on 127.0.0.1:5432 (trust auth,
user postgres; another server with --database-url).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BENCH_DIR = Path(__file__).resolve().parent
LUA = BENCH_DIR / "ingest.lua"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/dunning_bench_ingest"
REAL_PATH = "/api/v1/invoices"
BASELINE_PATH = "/bench/baseline-invoice"
CUSTOMER = "bench-customer"
BASELINE_TABLE = "bench_baseline_invoice"
GOAL_RATIO = 0.5
GOAL_P99_MS = 50.0


@dataclass
class Side:
    name: str
    path: str
    key: str  # bearer key ("" for none)


@dataclass
class Result:
    side: str
    round: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    ok: int
    created: int
    sent: int
    non_2xx: dict[str, int]
    socket_errors: dict[str, int]
    acked: list[str]
    server_cpu_ms: float = 0.0  # CPU of the gunicorn workers and their PG backends, per request
    other_load: float = 0.0  # CPUs kept busy by everything but the server, wrk and this script

    @property
    def non_2xx_count(self) -> int:
        return sum(self.non_2xx.values())

    @property
    def socket_error_count(self) -> int:
        return sum(v for k, v in self.socket_errors.items() if k != "status")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per side (default 20)")
    parser.add_argument(
        "--warmup", type=int, default=3, help="warm-up seconds per side (default 3)"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="gunicorn workers (default: what `dunning serve` picks, 2 x cores + 1, at most 8)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure both sides this many times, alternating; medians reported",
    )
    parser.add_argument(
        "--idempotency",
        action="store_true",
        help="send a unique Idempotency-Key with each request to the real endpoint",
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    return parser.parse_args()


# --- database -------------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(BENCH_DIR))
    import django

    django.setup()


def prepare_data() -> tuple[int, str]:
    """Migrate, empty, create the baseline table, a customer and a key; (customer pk, key)."""
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from dunning.api import keys
    from dunning.ledger import services

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        # Rebuilt every run so it follows ledger_invoice's current shape.
        cursor.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
        cursor.execute(f"CREATE TABLE {BASELINE_TABLE} (LIKE ledger_invoice INCLUDING ALL)")
        tables = [
            t for t in connection.introspection.table_names() if t.startswith(("ledger_", "api_"))
        ]
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    now = timezone.now()
    customer, _ = services.upsert_customer(
        external_id=CUSTOMER,
        now=now,
        source="bench",
        name="Bench Co., Ltd.",
        email="billing@bench.example",
        country="TH",
        locale="th-TH",
    )
    key = keys.create_key(name="bench ingest", now=now).key
    return customer.pk, key


def reset_invoices() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # CASCADE also empties ledger_event (and the other tables that refer to invoices).
        cursor.execute(f"TRUNCATE ledger_invoice, api_idempotencyrecord, {BASELINE_TABLE} CASCADE")
        cursor.execute("VACUUM ANALYZE ledger_invoice")
        cursor.execute(f"VACUUM ANALYZE {BASELINE_TABLE}")


def checkpoint() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


# --- server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dunning_command() -> list[str]:
    script = Path(sys.executable).parent / "dunning"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "dunning.cli.main"]


def start_server(
    env: dict[str, str], port: int, workers: int | None, log: Path
) -> subprocess.Popen[bytes]:
    command = [*dunning_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers:
        command += ["--workers", str(workers)]
    with log.open("wb") as out:
        # A session of its own, so that the workers can be cleaned up with the master.
        return subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)  # gunicorn: graceful stop of master and workers
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)  # the group this script created for it
        server.wait()


def post(url: str, body: dict[str, Any], key: str) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 only)
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_ready(server: subprocess.Popen[bytes], base: str, sides: list[Side], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise SystemExit(
                f"the server exited (rc {server.returncode}):\n{log.read_text()[-3000:]}"
            )
        try:
            with socket.create_connection(("127.0.0.1", urlsplit(base).port or 80), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not start:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.2)
    # One request to each endpoint, so a misconfiguration fails here, clearly.
    for side in sides:
        body = {
            "external_id": f"smoke-{side.name}",
            "customer": CUSTOMER,
            "number": "SMOKE-1",
            "currency": "THB",
            "amount_due": 150000,
            "issued_at": "2026-03-01T09:00:00+07:00",
            "due_at": "2026-03-31T09:00:00+07:00",
            "collection_method": "send_invoice",
            "lines": [{"description": "Pro plan, March 2026", "quantity": 1, "amount": 150000}],
        }
        status, text = post(base + side.path, body, side.key)
        if status != 201:
            raise SystemExit(f"{side.name}: POST {side.path} answered {status}: {text[:500]}")


# --- load -----------------------------------------------------------------------------------


def run_wrk(
    args: argparse.Namespace,
    base: str,
    side: Side,
    prefix: str,
    seconds: int,
    idempotency: bool,
    work: Path,
) -> Result:
    acked_file = work / f"acked-{prefix}.txt"
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base,
        "--",
        side.path,
        prefix,
        side.key,
        CUSTOMER,
        "1" if idempotency else "0",
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BENCH_ACKED_FILE": str(acked_file)},
    )
    if done.returncode != 0:
        raise SystemExit(f"wrk failed (rc {done.returncode}):\n{done.stdout}\n{done.stderr}")
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise SystemExit(f"no result from wrk:\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    lat = data["latency_us"]
    acked = acked_file.read_text().split()
    acked_file.unlink()
    return Result(
        side=side.name,
        round=0,
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=lat["p50"] / 1000,
        p90_ms=lat["p90"] / 1000,
        p99_ms=lat["p99"] / 1000,
        max_ms=lat["max"] / 1000,
        requests=data["requests"],
        ok=data["ok"],
        created=data["created"],
        sent=data["sent"],
        non_2xx=data["non_2xx"],
        socket_errors=data["errors"],
        acked=acked,
    )


# --- server CPU -----------------------------------------------------------------------------
# The machine is shared, so req/s moves with whatever else runs.  The CPU the
# server spends per request (gunicorn workers plus the PostgreSQL backends
# serving them, from /proc) moves much less, and is printed beside it.

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from "state" on


def server_pids(master: int) -> list[int]:
    from django.db import connection

    workers = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields and int(fields[1]) == master:  # ppid
                workers.append(int(entry.name))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        backends = [pid for (pid,) in cursor.fetchall()]
    return [master, *workers, *backends]


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy (all CPUs), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def own_seconds() -> float:
    """CPU time of this script and its finished children (wrk)."""
    import resource

    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = _proc_stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def row_ids(prefix: str, table: str) -> set[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT external_id FROM {table} WHERE external_id LIKE %s",  # noqa: S608 (constant)
            [prefix + "-%"],
        )
        return {external_id for (external_id,) in cursor.fetchall()}


def count_created_events(prefix: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM ledger_event e JOIN ledger_invoice i ON i.id = e.invoice_id "
            "WHERE e.type = 'invoice.created' AND i.external_id LIKE %s",
            [prefix + "-%"],
        )
        return int(cursor.fetchone()[0])


def verify(result: Result, prefix: str) -> tuple[bool, str, int]:
    """One row per 2xx response; rows beyond them only for requests cut off at the end.

    When wrk's time is up it drops its connections, each with up to one request
    in flight.  The server still finishes those, so the table may hold a few
    rows that no client saw a 2xx for: their ids were sent but never answered.
    """
    table = "ledger_invoice" if result.side == "real" else BASELINE_TABLE
    rows = row_ids(prefix, table)
    acked = set(result.acked)
    unanswered = max(result.sent - result.requests, 0)
    missing = acked - rows
    extra = rows - acked
    good = result.ok > 0 and len(acked) == result.ok and not missing and len(extra) <= unanswered
    text = f"{result.side}: {table} has {len(rows):,} rows for {result.ok:,} 2xx responses"
    if missing:
        text += f"; {len(missing)} acknowledged ids have NO row (e.g. {sorted(missing)[:3]})"
    elif len(acked) != result.ok:
        text += f"; only {len(acked):,} ids read back from the 2xx bodies"
    else:
        text += ": every 2xx has its row"
    if extra:
        text += (
            f"; {len(extra)} more rows are requests cut off in flight when wrk stopped"
            f" (it left {unanswered} unanswered)"
        )
    if result.side == "real":
        events = count_created_events(prefix)
        good = good and events == len(rows)
        text += f"; {events:,} invoice.created events"
    return good, text + (" -> OK" if good else " -> MISMATCH"), len(rows)


# --- report ---------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(results: list[Result], rounds: int) -> dict[str, Any]:
    by_side: dict[str, list[Result]] = {}
    for r in results:
        by_side.setdefault(r.side, []).append(r)
    label = {"baseline": f"baseline  POST {BASELINE_PATH}", "real": f"real      POST {REAL_PATH}"}
    note = f" (medians of {rounds} rounds)" if rounds > 1 else ""
    print()
    print(
        f"{'endpoint':<38} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>7} "
        f"{'sock err':>8} {'server CPU ms/req':>18}"
    )
    summary: dict[str, Any] = {}
    for name in ("baseline", "real"):
        rs = by_side[name]
        rps, p50, p99, cpu = (
            median([getattr(r, f) for r in rs])
            for f in ("rps", "p50_ms", "p99_ms", "server_cpu_ms")
        )
        non2xx = sum(r.non_2xx_count for r in rs)
        sockerr = sum(r.socket_error_count for r in rs)
        print(
            f"{label[name]:<38} {rps:>7,.0f} {p50:>7.1f} {p99:>7.1f} {non2xx:>7} "
            f"{sockerr:>8} {cpu:>18.2f}"
        )
        summary[name] = {
            "rps": rps,
            "p50_ms": p50,
            "p99_ms": p99,
            "non_2xx": non2xx,
            "socket_errors": sockerr,
            "server_cpu_ms_per_request": cpu,
            "rounds": [{k: v for k, v in r.__dict__.items() if k != "acked"} for r in rs],
        }
    ratio = summary["real"]["rps"] / summary["baseline"]["rps"]
    cpu_ratio = (
        summary["baseline"]["server_cpu_ms_per_request"]
        / summary["real"]["server_cpu_ms_per_request"]
    )
    p99 = summary["real"]["p99_ms"]
    print()
    print(
        f"ratio = {ratio:.2f} (goal >= {GOAL_RATIO}){note}: "
        f"{'met' if ratio >= GOAL_RATIO else 'MISSED'}"
    )
    print(
        f"p99 = {p99:.0f} ms (goal <= {GOAL_P99_MS:.0f} ms){note}: "
        f"{'met' if p99 <= GOAL_P99_MS else 'MISSED'}"
    )
    print(
        f"(server CPU per request, baseline / real = {cpu_ratio:.2f}: the same ratio in CPU "
        "time, which other load on the machine moves less than req/s)"
    )
    other = max(r.other_load for r in results)
    if other > 0.25:
        print(
            f"warning: other work kept up to {other:.1f} of the {os.cpu_count()} CPUs busy "
            "during the run (other processes, PostgreSQL's own, the kernel): req/s and latency "
            "are lower than on a quiet machine; rerun when it is quieter"
            + ("" if rounds > 1 else ", or with --rounds 3")
        )
    for name in ("baseline", "real"):
        for r in by_side[name]:
            if r.non_2xx:
                print(f"  {name} round {r.round}: non-2xx by status {r.non_2xx}")
            if r.socket_error_count:
                print(f"  {name} round {r.round}: socket errors {r.socket_errors}")
    summary["ratio"] = ratio
    summary["cpu_ratio"] = cpu_ratio
    return summary


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed. On Debian/Ubuntu: apt-get install wrk", file=sys.stderr)
        return 2
    if "bench" not in urlsplit(args.database_url).path:
        print(
            "refusing to run: the benchmark empties the ledger of its database, and "
            f"{args.database_url} does not look like a benchmark database",
            file=sys.stderr,
        )
        return 2
    ensure_database(args.database_url)
    work = Path(tempfile.mkdtemp(prefix="dunning-bench-ingest-"))
    (work / "static").mkdir()  # STATIC_ROOT; whitenoise warns when it is missing
    env = {
        "DATABASE_URL": args.database_url,
        "DJANGO_SETTINGS_MODULE": "benchapp.settings",
        "PYTHONPATH": os.pathsep.join(
            [str(BENCH_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "DUNNING_DEBUG": "0",
        "DUNNING_ACCESS_LOG": "/dev/null",
        "DUNNING_DATA_DIR": str(work),
        "DUNNING_SECRET_KEY": secrets.token_urlsafe(50),
        "DUNNING_LOG_LEVEL": "WARNING",
    }
    os.environ.pop("DUNNING_ENV", None)  # the default environment, with debug off
    setup_django(env)
    customer_id, key = prepare_data()
    env["BENCH_CUSTOMER_ID"] = str(customer_id)
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    sides = [Side("baseline", BASELINE_PATH, ""), Side("real", REAL_PATH, key)]
    log = work / "server.log"

    import django
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (pg_version,) = cursor.fetchone()
    workers = args.workers or min(2 * (os.cpu_count() or 1) + 1, 8)
    print(
        f"ingest benchmark: wrk -t{args.threads} -c{args.connections} -d{args.duration}s "
        f"per side, {args.rounds} round(s), warm-up {args.warmup}s; "
        f"`dunning serve` (gunicorn sync) with {workers} workers; "
        f"Django {django.get_version()}, PostgreSQL {pg_version}, {os.cpu_count()} CPUs"
        + ("; Idempotency-Key on" if args.idempotency else "")
    )

    server = start_server(env, port, args.workers, log)
    results: list[Result] = []
    checks: list[tuple[bool, str]] = []
    try:
        wait_ready(server, base, sides, log)
        for side in sides:
            run_wrk(
                args,
                base,
                side,
                f"warm-{side.name}",
                args.warmup,
                args.idempotency and side.name == "real",
                work,
            )
        time.sleep(1.0)
        reset_invoices()
        pids = server_pids(server.pid)
        for rnd in range(1, args.rounds + 1):
            # Alternate, so that neither side always goes first.
            order = sides if rnd % 2 else sides[::-1]
            for side in order:
                prefix = f"r{rnd}-{side.name}"
                checkpoint()
                cpu_before, busy_before = cpu_seconds(pids), busy_seconds()
                own_before = own_seconds()
                started = time.monotonic()
                result = run_wrk(
                    args,
                    base,
                    side,
                    prefix,
                    args.duration,
                    args.idempotency and side.name == "real",
                    work,
                )
                time.sleep(1.0)  # let the server finish the requests cut off in flight
                result.round = rnd
                good, text, rows = verify(result, prefix)
                server_cpu = cpu_seconds(pids) - cpu_before
                result.server_cpu_ms = server_cpu * 1000 / max(rows, 1)
                other = busy_seconds() - busy_before - server_cpu - (own_seconds() - own_before)
                result.other_load = max(other, 0.0) / (time.monotonic() - started)
                results.append(result)
                checks.append((good, f"round {rnd} {text}"))
                print(
                    f"  round {rnd} {side.name:<8} {result.rps:>7,.0f} req/s  "
                    f"p50 {result.p50_ms:.1f} ms  p99 {result.p99_ms:.1f} ms  "
                    f"non-2xx {result.non_2xx_count}  "
                    f"server CPU {result.server_cpu_ms:.2f} ms/req  "
                    f"other load {result.other_load:.2f} CPUs"
                )
    finally:
        stop_server(server)
        connection.close()

    summary = report(results, args.rounds)
    print()
    for _, text in checks:
        print("check " + text)
    server_log = log.read_text(errors="replace")
    server_errors = "Traceback" in server_log or " ERROR " in server_log
    if server_errors:
        print(f"\nthe server logged errors; see {log}")
    failed = sum(r.non_2xx_count + r.socket_error_count for r in results)
    if failed:
        print(f"\n{failed} requests failed (non-2xx or socket errors): the figures do not count")
    all_good = all(good for good, _ in checks) and not server_errors and not failed
    if args.json:
        summary["checks"] = [{"ok": good, "text": text} for good, text in checks]
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    if all_good:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all_good else 1


if __name__ == "__main__":
    sys.exit(main())
