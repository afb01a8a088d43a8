from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from dunning.cli.management.commands import templates as command
from dunning.core.rendering import MessageTemplate, default_template
from dunning.engine.models import MessageTemplate as TemplateVersion
from dunning.engine.templates import save_template
from tests.conftest import NOW


def check() -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("templates", "check", stdout=out)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_every_default_template_passes_the_check(db: None) -> None:
    code, out = check()

    assert code == 0
    assert out.strip().endswith("18 templates checked, 0 failed.")
    assert "ok    send_invoice.overdue_1/th/default" in out
    assert "ok    card.expiring/th/default" in out


def test_a_template_without_a_pay_link_fails_the_check(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
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

    code, out = check()

    assert code == 1
    assert "FAIL  send_invoice.overdue_1/en/default: html: no pay link" in out
    assert "1 failed" in out


def test_the_check_lints_the_stored_templates_in_use(db: None) -> None:
    template = default_template("send_invoice.final", "th")
    save_template(
        "send_invoice.final", "th", template.subject, template.html, template.text, now=NOW
    )
    # A version written around save_template (a bad import, a hand-made row) is caught too.
    TemplateVersion.objects.create(
        key="send_invoice.final",
        locale="th",
        version=2,
        subject=template.subject,
        html=template.html.replace("{{ deadline|date }}", "เร็ว ๆ นี้"),
        text=template.text,
        digest="x",
        created_at=NOW,
    )

    code, out = check()

    assert code == 1
    assert (
        "FAIL  send_invoice.final/th/db:v2: html: a final notice needs {{ deadline|date }}" in out
    )
    assert "/db:v1" not in out  # an older version is not in use
    assert "19 templates checked, 1 failed." in out


def test_an_inactive_stored_version_is_not_checked(db: None) -> None:
    TemplateVersion.objects.create(
        key="charge.failed",
        locale="en",
        version=1,
        subject="",
        html="",
        text="",
        digest="x",
        created_at=NOW,
        is_active=False,
    )

    code, out = check()

    assert code == 0 and "18 templates checked, 0 failed." in out
