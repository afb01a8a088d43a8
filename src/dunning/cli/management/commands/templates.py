from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from dunning.core.policy import PAYMENT_RECEIVED_TEMPLATE
from dunning.core.rendering import (
    DEFAULT_TEMPLATE_KEYS,
    FINAL_TEMPLATE_KEYS,
    MessageTemplate,
    default_template,
)
from dunning.core.template_lint import LintProblem, lint

LOCALES = ("en", "th")


def lint_template(template: MessageTemplate) -> list[LintProblem]:
    """The lint rules that apply to this template, chosen by its key."""
    return lint(
        template,
        locale=template.locale,
        final=template.key in FINAL_TEMPLATE_KEYS,
        asks_for_payment=template.key != PAYMENT_RECEIVED_TEMPLATE,
        # Failed-payment messages must not say stolen, lost or fraud (rules.md 1.2).
        declined_payment=template.key.startswith("charge."),
    )


class Command(BaseCommand):
    help = (
        "Lint every message template: required elements (pay link, amount, invoice number, "
        "deadline on final notices, contact, security notice) and forbidden wording."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("check", help="lint every template; exit 1 if any fails")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        failures = checked = 0
        for key in DEFAULT_TEMPLATE_KEYS:
            for locale in LOCALES:
                template = default_template(key, locale)
                checked += 1
                problems = lint_template(template)
                if not problems:
                    self.stdout.write(f"ok    {locale:<3} {key}")
                    continue
                failures += 1
                for problem in problems:
                    where = f"{locale:<3} {key} [{problem.part}]"
                    self.stdout.write(f"FAIL  {where} {problem.code}: {problem.message}")
        self.stdout.write(f"{checked} templates checked, {failures} failed.")
        if failures:
            sys.exit(1)
