"""`dunning templates check`: lint every packaged default and every template in use from the store.

Each failure is one line, ``key/locale/version: field: problem``
(``send_invoice.final/th/db:v3: html: a final notice needs {{ deadline|date }}``),
and the command exits 1 when any template fails.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError

from dunning.core.rendering import PACKAGED_TEMPLATE_KEYS, default_template
from dunning.engine.templates import active_versions, lint_template, template_of

LOCALES = ("en", "th")


class Command(BaseCommand):
    help = (
        "Lint every message template, packaged and stored: required elements (pay link, "
        "amount, invoice number, deadline on final notices, contact, security notice) "
        "and forbidden wording."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("check", help="lint every template; exit 1 if any fails")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        templates = [
            default_template(key, locale) for key in PACKAGED_TEMPLATE_KEYS for locale in LOCALES
        ]
        try:
            templates += [template_of(row) for row in active_versions()]
        except DatabaseError as error:
            # A fresh install before `migrate` has no store: only the packaged ones exist.
            self.stderr.write(f"the template store cannot be read ({error}); defaults only")
        failures = 0
        for template in templates:
            name = f"{template.key}/{template.locale}/{template.version}"
            problems = lint_template(template)
            if not problems:
                self.stdout.write(f"ok    {name}")
                continue
            failures += 1
            for problem in problems:
                self.stdout.write(f"FAIL  {name}: {problem.part}: {problem.message}")
        self.stdout.write(f"{len(templates)} templates checked, {failures} failed.")
        if failures:
            sys.exit(1)
