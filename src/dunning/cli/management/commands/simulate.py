"""`dunning simulate`: replay a scenario through the real engine, or write a synthetic one.

    dunning simulate --scenario FILE --strategy smart|fixed [--json]
    dunning simulate --generate N --seed S > FILE

A run never touches the configured database: the command starts itself again
with DATABASE_URL pointing at a SQLite file in a temporary folder, migrates
it, replays the scenario there and deletes the folder.  With --json, exactly
one JSON object goes to standard output; progress goes to standard error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from dunning.core.policy import RetryBudget
from dunning.core.policy_json import parse_duration
from dunning.core.retry_timing import Strategy

INSIDE = "DUNNING_SIMULATION_DATABASE"


class Command(BaseCommand):
    help = "Replay a scenario on a virtual clock through the engine, or generate one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scenario", metavar="FILE", help="a scenario JSON file")
        parser.add_argument(
            "--strategy", choices=[s.value for s in Strategy], default=Strategy.SMART.value
        )
        parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
        parser.add_argument(
            "--retries",
            type=int,
            metavar="N",
            help="the policies' retry budget: N tries (default: the policies' own, 8)",
        )
        parser.add_argument(
            "--within",
            metavar="DURATION",
            help="the retry budget's window: P7D, P14D, P21D, P30D or P60D (default P14D)",
        )
        parser.add_argument(
            "--generate", type=int, metavar="N", help="write a scenario of N customers"
        )
        parser.add_argument("--seed", type=int, default=1, help="with --generate: the random seed")
        parser.add_argument("--days", type=int, default=90, help="with --generate: its length")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["generate"] is not None:
            self._generate(options["generate"], seed=options["seed"], days=options["days"])
            return
        if not options["scenario"]:
            raise CommandError("give --scenario FILE (or --generate N to write one)")
        path = Path(options["scenario"])
        if not path.is_file():
            raise CommandError(f"--scenario: no file {path}")
        budget = _budget(options["retries"], options["within"])
        if os.environ.get(INSIDE) != "1":
            self._run_in_scratch_database(path, options)
            return
        self._run(
            path, strategy=Strategy(options["strategy"]), as_json=options["json"], budget=budget
        )

    def _generate(self, n: int, *, seed: int, days: int) -> None:
        from dunning.simulator.generate import generate

        if n < 1:
            raise CommandError("--generate: at least 1 customer")
        if days < 1:
            raise CommandError("--days: at least 1 day")
        # One write: Django's OutputWrapper ends every write with a newline, so json.dump
        # (which writes token by token) would put each token on a line of its own.
        self.stdout.write(json.dumps(generate(n, seed, days=days), ensure_ascii=False))

    def _run_in_scratch_database(self, path: Path, options: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory(prefix="dunning-simulation-") as folder:
            env = {
                **os.environ,
                INSIDE: "1",
                "DATABASE_URL": f"sqlite:///{Path(folder) / 'simulation.sqlite3'}",
                "DUNNING_DATA_DIR": folder,
                "DUNNING_SMTP_URL": "",
                "DUNNING_GATEWAY": "simulated",
                # Debug mode keeps every query's SQL (on SQLite quoting each
                # parameter with one more query): 5% of a run, for nobody.
                "DUNNING_DEBUG": "0",
            }
            command = [
                sys.executable,
                "-m",
                "dunning",
                "simulate",
                "--scenario",
                str(path.resolve()),
                "--strategy",
                options["strategy"],
                *(["--json"] if options["json"] else []),
                *(["--retries", str(options["retries"])] if options["retries"] is not None else []),
                *(["--within", options["within"]] if options["within"] else []),
            ]
            finished = subprocess.run(command, env=env, check=False)  # noqa: S603 - our own CLI
        if finished.returncode:
            sys.exit(finished.returncode)

    def _run(
        self, path: Path, *, strategy: Strategy, as_json: bool, budget: RetryBudget | None
    ) -> None:
        from dunning.simulator.runner import simulate
        from dunning.simulator.scenario import ScenarioError, load_scenario

        def progress(line: str) -> None:
            sys.stderr.write(f"{line}\n")
            sys.stderr.flush()

        started = time.perf_counter()
        try:
            scenario = load_scenario(path)
        except ScenarioError as error:
            raise CommandError(f"{path}: {error}") from None
        progress(f"{path.name}: {len(scenario.customers):,} customers, strategy {strategy}")
        call_command("migrate", verbosity=0, interactive=False)
        _scratch_settings()
        result = simulate(scenario, strategy, retry_budget=budget, progress=progress)
        seconds = time.perf_counter() - started
        progress(f"simulated in {seconds:.1f} s")
        if as_json:
            self.stdout.write(json.dumps({**result.as_json(), "seconds": round(seconds, 1)}))
            return
        self.stdout.write(_table(result.as_json()))


def _scratch_settings() -> None:
    """The run's database is deleted when it ends, so nothing in it must survive a crash:
    SQLite need not wait for the disk, and a page cache of 200 MB holds a 10,000-customer
    run's working set (about a tenth off the run's time)."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA cache_size=-200000")  # in KiB
        cursor.execute("PRAGMA temp_store=MEMORY")


def _budget(retries: int | None, within: str | None) -> RetryBudget | None:
    """The retry budget the flags ask for; None leaves the policies' own."""
    if retries is None and within is None:
        return None
    default = RetryBudget()
    tries = default.max_attempts if retries is None else retries
    try:
        window = parse_duration(within) if within else default.within
    except ValueError as error:
        raise CommandError(f"--within: {error}") from None
    problems = RetryBudget.problems_with(max_attempts=tries, within=window)
    if problems:
        flags = {"max_attempts": "--retries", "within": "--within"}
        raise CommandError("; ".join(f"{flags[name]}: {message}" for name, message in problems))
    return RetryBudget(max_attempts=tries, within=window)


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def _table(result: dict[str, Any]) -> str:
    rows = [
        ("strategy", result["strategy"]),
        ("retry budget", result["retry_budget"]),
        ("customers", f"{result['customers']:,}"),
        ("invoices", f"{result['invoices']:,}"),
        ("failed at first charge", f"{result['failed_invoices']:,}"),
        ("recovered invoices", f"{result['recovered_invoices']:,}"),
        *(
            (f"amount due {currency}", f"{amount:,}")
            for currency, amount in result["amount_due"].items()
        ),
        *(
            (f"recovered {currency}", f"{amount:,}")
            for currency, amount in result["recovered"].items()
        ),
        *(
            (f"recoverable {currency} (ceiling)", f"{amount:,}")
            for currency, amount in result["recoverable"].items()
        ),
        ("retry attempts", f"{result['attempts']:,}"),
        ("messages", f"{result['messages']:,}"),
        ("median hours to recovery", _or_dash(result["median_hours_to_recovery"])),
        ("network rule violations", str(result["network_rule_violations"])),
        ("contact rule violations", str(result["contact_rule_violations"])),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
