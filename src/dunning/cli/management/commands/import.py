"""`dunning import customers FILE` and `dunning import invoices FILE`: a thin shell.

The work is `dunning.ledger.imports`; this reads the clock once, draws a
progress bar on a terminal and prints the outcome.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, BinaryIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from dunning.core.money import exponent, to_decimal
from dunning.ledger import imports


class Command(BaseCommand):
    help = (
        "Import customers or invoices from a CSV file (UTF-8, with the API's column names). "
        "All or nothing: if any row is wrong, nothing is written and every error is listed "
        "as 'line N, column C: reason'."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=["customers", "invoices"])
        parser.add_argument("file", help="the CSV file, or - to read standard input")

    def handle(self, *args: Any, kind: str, file: str, **options: Any) -> None:
        importer = imports.import_customers if kind == "customers" else imports.import_invoices
        source: BinaryIO | Path = sys.stdin.buffer if file == "-" else Path(file)
        if isinstance(source, Path) and not source.is_file():
            raise CommandError(f"no such file: {file}")
        size = source.stat().st_size if isinstance(source, Path) else None
        # The bar goes to stderr and only on a terminal, so piped output and
        # logs carry just the outcome.
        with tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=kind,
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
            leave=False,
        ) as bar:

            def advance(done: int) -> None:
                bar.update(done - bar.n)
                if done == size:
                    # Read to the end; the checks and the writes follow, and
                    # take a while for a large file.
                    bar.set_description(f"{kind}: checking and writing")

            result = importer(source, now=timezone.now(), on_progress=advance)

        if not result.ok:
            for error in result.errors:
                self.stderr.write(str(error))
            if result.error_count > len(result.errors):
                self.stderr.write(f"... and {result.error_count - len(result.errors):,} more")
            self.stderr.write(
                f"Nothing was imported: {result.error_count:,} "
                f"error{'s' if result.error_count != 1 else ''} in {file}."
            )
            sys.exit(1)
        self.stdout.write(summary(result))


def summary(result: imports.ImportResult) -> str:
    """One sentence a person can check against the file."""
    if result.kind == "customers":
        return (
            f"Imported {result.rows:,} customers: {result.created:,} created, "
            f"{result.updated:,} updated, {result.unchanged:,} unchanged."
        )
    if not result.totals:
        return f"Imported {result.created:,} invoices."
    amounts = ", ".join(
        f"{currency} {to_decimal(minor, currency):,.{exponent(currency)}f}"
        for currency, minor in result.totals.items()
    )
    return f"Imported {result.created:,} invoices ({amounts})."
