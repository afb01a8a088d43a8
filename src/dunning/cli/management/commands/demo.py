from __future__ import annotations

import contextlib
import random
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from dunning.api.keys import create_key, hash_key
from dunning.api.models import ApiKey
from dunning.core import fields
from dunning.core.money import to_decimal
from dunning.demo.generate import DEFAULT_SEED, generate
from dunning.demo.load import DatabaseNotEmpty, Summary, load, summarize
from dunning.engine.delivery import email_transport
from dunning.engine.playback import PlaybackReport, play
from dunning.files import write_private
from dunning.ledger.models import Customer


class Command(BaseCommand):
    help = (
        "Fill an empty database with repeatable demo data: about 300 customers in Thailand, "
        "the US, Japan and Germany, with invoices, cards, payments and failed charges."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--load", action="store_true", help="load the demo data")
        parser.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            help=f"the same seed and --now give the same data (default {DEFAULT_SEED})",
        )
        parser.add_argument(
            "--now",
            metavar="ISO-8601",
            help="the moment ages are counted from, e.g. 2026-03-16T10:00:00+07:00 "
            "(default: the current time)",
        )
        parser.add_argument(
            "--operator",
            action="store_true",
            help="make sure the demo login and a demo API key exist, and print how to use them",
        )
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000",
            help="where the demo will be served, for --operator's directions",
        )
        parser.add_argument(
            "--play-days",
            type=int,
            default=28,
            metavar="N",
            help="after loading, run the engine over the last N days on a virtual clock, so "
            "the message log has history (default 28; 0 to skip)",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="when the database already has customers, say so and succeed "
            "instead of failing (for `make demo`, which may run twice)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["operator"]:
            self.stdout.write(operator_directions(url=options["url"].rstrip("/")))
            if not options["load"]:
                return
        if not options["load"]:
            raise CommandError("nothing to do: run `dunning demo --load` to fill an empty database")
        now = self._now(options["now"])
        if Customer._meta.db_table not in connection.introspection.table_names():
            raise CommandError("the database has no tables yet: run `dunning migrate` first")
        started = time.monotonic()
        days = options["play_days"]
        # With a playback, the facts after its start are written as its clock reaches them.
        start = now - timedelta(days=days) if days else None
        try:
            later = load(generate(seed=options["seed"], now=now), until=start)
        except DatabaseNotEmpty as error:
            if options["if_empty"]:
                self.stdout.write(f"Demo not loaded: {error}.")
                return
            raise CommandError(f"{error}. To start over, {_how_to_start_over()}.") from None
        report = None
        try:
            if start is not None:
                report = _play(start, now, seed=options["seed"], facts=later.write_until)
        finally:
            # Stopped half-way (an error, Ctrl-C), the ledger still gets the whole demo.
            later.write_until(now)
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"Loaded the demo (seed {options['seed']}, now {now:%Y-%m-%d %H:%M} UTC) "
            f"in {elapsed:.1f} s."
        )
        self.stdout.write(render(summarize(now=now)))
        if report is not None:
            self.stdout.write(
                f"The engine ran through the last {days} days as they were written "
                f"({report.passes} passes): {report.messages} messages written, "
                f"{report.sent} sent."
            )
        if later.left_out:
            self.stdout.write(
                f"Left out {later.left_out} of the demo's later facts about invoices "
                "the engine had collected by then."
            )

    def _now(self, text: str | None) -> datetime:
        if text is None:
            # The clock is read here, at the edge; everything below takes `now`.
            return timezone.now()
        try:
            return fields.parse_instant(text)
        except fields.FieldError as error:
            raise CommandError(f"--now: {error}") from None


def _play(
    start: datetime, end: datetime, *, seed: int, facts: Callable[[datetime], None]
) -> PlaybackReport:
    """The engine every six hours from `start` to `end`, `facts` written as it goes."""
    transport = email_transport()
    try:
        return play(
            start=start,
            end=end,
            step=timedelta(hours=6),
            transport=transport,
            rng=random.Random(seed),
            facts=facts,
        )
    finally:
        transport.close()


def _kept_secret(name: str, make: Callable[[], str]) -> tuple[str, bool]:
    """A demo secret kept beside the data (mode 0600), made on first use."""
    path = Path(settings.DATA_DIR) / name
    if path.exists():
        with contextlib.suppress(PermissionError):  # another user's file: theirs to mend
            path.chmod(0o600)  # kept by an older version, perhaps readable by all
        return path.read_text().strip(), False
    value = make()
    write_private(path, value)
    return value, True


def operator_directions(*, url: str) -> str:
    """Ensure the demo's admin login and API key exist; say where to look and how to log in.

    Both are generated on the first run and kept in the data directory, so
    every `make demo` prints the same directions.  This is for the demo only:
    production operators are made with `dunning createsuperuser`.
    """
    user_model = get_user_model()
    password, _ = _kept_secret(".dunning-demo-password", lambda: secrets.token_urlsafe(12))
    user = user_model.objects.filter(username="admin").first()
    if user is None:
        user_model.objects.create_superuser("admin", "admin@example.com", password)
    elif not user.check_password(password):
        password = "(changed since the demo set it up; use yours)"  # noqa: S105 - a hint, not a secret
    key, new = _kept_secret(
        ".dunning-demo-api-key", lambda: create_key(name="demo", now=timezone.now()).key
    )
    if not new and not ApiKey.objects.filter(key_hash=hash_key(key), revoked_at=None).exists():
        key = create_key(name="demo", now=timezone.now()).key
        write_private(Path(settings.DATA_DIR) / ".dunning-demo-api-key", key)
    return "\n".join(
        [
            "",
            "dunning demo is starting. Look here:",
            f"  Admin (ledger)  {url}/admin/   log in as admin / {password}",
            f"  API docs        {url}/api/v1/docs",
            f"  API key         {key}",
            f"  Try it          curl -H 'Authorization: Bearer {key}' "
            f"'{url}/api/v1/invoices?overdue=true'",
            "Stop with Ctrl-C.",
            "",
        ]
    )


def _how_to_start_over() -> str:
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        return (
            f"delete the SQLite file {database['NAME']} (with its -wal and -shm files), "
            "then run `dunning migrate` and `dunning demo --load`"
        )
    return (
        "point DATABASE_URL at a new, empty database, then run `dunning migrate` and "
        "`dunning demo --load`"
    )


def render(summary: Summary) -> str:
    """The summary as a few lines for a terminal."""
    locales = ", ".join(f"{locale} {count}" for locale, count in summary.locales.items())
    lines = [
        f"Customers  {summary.customers}: {locales} ({summary.businesses} businesses)",
        f"Cards      {summary.cards}: {summary.cards_expiring} expire this month or next, "
        f"{summary.cards_expired} have expired",
        f"{'Currency':<10}{'invoices':>9}{'open':>7}{'overdue':>9}{'overdue amount':>17}",
    ]
    for row in summary.currencies:
        owed = f"{to_decimal(row.overdue_amount, row.currency):,}"
        lines.append(f"{row.currency:<10}{row.invoices:>9}{row.open:>7}{row.overdue:>9}{owed:>17}")
    lines.append(
        f"Charges    {summary.attempts} ({summary.failed_attempts} declined), "
        f"payments {summary.payments}"
    )
    return "\n".join(lines)
