from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from dunning.cli.management.commands import templates as command
from dunning.core.rendering import MessageTemplate, default_template


def test_every_default_template_passes_the_check() -> None:
    out = StringIO()

    call_command("templates", "check", stdout=out)

    assert out.getvalue().strip().endswith("16 templates checked, 0 failed.")


def test_a_template_without_a_pay_link_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def without_pay_link(key: str, locale: str) -> MessageTemplate:
        template = default_template(key, locale)
        if key != "send_invoice.overdue_1" or locale != "en":
            return template
        return MessageTemplate(
            key=template.key,
            locale=template.locale,
            subject=template.subject,
            text=template.text.replace("{{ pay_link }}", "our website"),
            html=template.html.replace("{{ pay_link }}", "#"),
        )

    monkeypatch.setattr(command, "default_template", without_pay_link)
    out = StringIO()

    with pytest.raises(SystemExit) as exit_:
        call_command("templates", "check", stdout=out)

    assert exit_.value.code == 1
    assert "FAIL  en  send_invoice.overdue_1" in out.getvalue()
    assert "1 failed" in out.getvalue()
