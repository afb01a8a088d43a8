"""The template store: checked versions, the wording each message gets, and the admin."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from dunning.core.rendering import MessageTemplate, UnknownTemplate, default_template
from dunning.engine import templates
from dunning.engine.models import MessageTemplate as TemplateVersion
from dunning.engine.templates import TemplateRejected, resolve, save_template
from tests.conftest import NOW

LATER = NOW + timedelta(hours=1)
KEY = "send_invoice.overdue_1"


def sources(key: str = KEY, locale: str = "en", **changes: str) -> dict[str, str]:
    """The packaged wording of `key`, as the arguments of save_template, with `changes`."""
    template = default_template(key, locale)
    parts = {"subject": template.subject, "html": template.html, "text": template.text}
    parts.update(changes)
    return parts


def save(key: str = KEY, locale: str = "en", *, now: datetime = NOW, **changes: str) -> Any:
    return save_template(key, locale, **sources(key, locale, **changes), now=now)


def marked(key: str = KEY, locale: str = "en", mark: str = "Edited") -> dict[str, str]:
    """Sources whose subject starts with `mark`, so a test can tell which version it got."""
    return {"subject": f"{mark}: " + default_template(key, locale).subject}


# ---------------------------------------------------------------- saving


def test_it_saves_the_first_version_of_a_template_as_version_one(db: None) -> None:
    row = save(**marked())

    assert (row.key, row.channel, row.locale, row.version) == (KEY, "email", "en", 1)
    assert row.is_active and row.created_at == NOW
    assert row.subject.startswith("Edited: ")


def test_each_save_adds_the_next_version_and_leaves_the_older_ones_alone(db: None) -> None:
    first = save(**marked(mark="One"))
    second = save(now=LATER, **marked(mark="Two"))
    thai = save(locale="th", **marked(locale="th", mark="Thai"))

    assert (first.version, second.version, thai.version) == (1, 2, 1)
    first.refresh_from_db()
    assert first.subject.startswith("One: ")


def test_it_refuses_a_template_without_a_pay_link_naming_the_part_and_saving_nothing(
    db: None,
) -> None:
    html = default_template(KEY, "en").html.replace("{{ pay_link }}", "#")

    with pytest.raises(TemplateRejected) as refused:
        save(html=html)

    assert ("html", "no pay link: add {{ pay_link }}") in refused.value.problems
    assert "html: no pay link" in str(refused.value)
    assert not TemplateVersion.objects.exists()


def test_it_refuses_threatening_wording_in_any_part(db: None) -> None:
    subject = "Pay now or we call the police: invoice {{ invoices[0].number }}"

    with pytest.raises(TemplateRejected) as refused:
        save(subject=subject)

    [(field, message)] = refused.value.problems
    assert field == "subject" and "mentions the police" in message
    assert not TemplateVersion.objects.exists()


def test_it_refuses_thai_threats_in_a_thai_template(db: None) -> None:
    text = default_template(KEY, "th").text + "\nเราจะแจ้งไปยังนายจ้างของท่าน\n"

    with pytest.raises(TemplateRejected) as refused:
        save(locale="th", text=text)

    assert [field for field, _ in refused.value.problems] == ["text"]


def test_it_refuses_a_template_that_does_not_compile(db: None) -> None:
    with pytest.raises(TemplateRejected) as refused:
        save(text="Dear {{ customer.name }\n{% if %}")

    [(field, message)] = refused.value.problems
    assert field == "text" and "does not compile" in message


def test_it_refuses_an_unknown_placeholder(db: None) -> None:
    with pytest.raises(TemplateRejected) as refused:
        save(subject="Invoice {{ invoices[0].number }} for {{ customer.nmae }}")

    [(field, message)] = refused.value.problems
    assert field == "subject" and "unknown placeholder" in message


@pytest.mark.parametrize(
    ("field", "key", "locale", "channel"),
    [
        ("key", "Send Invoice!", "en", "email"),
        ("key", "send_invoice..overdue", "en", "email"),
        ("locale", KEY, "english please", "email"),
        ("locale", KEY, "key", "email"),  # shaped like a tag, but no language
        ("channel", KEY, "en", "sms"),
    ],
)
def test_it_refuses_a_malformed_key_locale_or_channel(
    db: None, field: str, key: str, locale: str, channel: str
) -> None:
    with pytest.raises(TemplateRejected) as refused:
        save_template(key, locale, **sources(), now=NOW, channel=channel)

    assert [f for f, _ in refused.value.problems] == [field]
    assert not TemplateVersion.objects.exists()


def test_a_final_notice_must_give_the_deadline(db: None) -> None:
    text = default_template("send_invoice.final", "en").text.replace("{{ deadline|date }}", "soon")
    html = default_template("send_invoice.final", "en").html.replace("{{ deadline|date }}", "soon")

    with pytest.raises(TemplateRejected) as refused:
        save("send_invoice.final", text=text, html=html)

    assert ("text", "a final notice needs {{ deadline|date }}") in refused.value.problems


def test_a_variant_key_is_held_to_the_rules_of_the_template_it_is_named_after(db: None) -> None:
    final = sources("send_invoice.final")
    without_deadline = {p: s.replace("{{ deadline|date }}", "soon") for p, s in final.items()}

    with pytest.raises(TemplateRejected):
        save_template("send_invoice.final.short", "en", **without_deadline, now=NOW)
    row = save_template("send_invoice.final.short", "en", **final, now=NOW)

    assert row.key == "send_invoice.final.short" and row.version == 1


def test_a_declined_card_variant_must_not_say_stolen(db: None) -> None:
    text = default_template("charge.failed", "en").text + "\nWas your card stolen?\n"

    with pytest.raises(TemplateRejected) as refused:
        save_template("charge.failed.b", "en", **sources("charge.failed", text=text), now=NOW)

    assert [field for field, _ in refused.value.problems] == ["text"]


def test_a_receipt_needs_no_pay_link(db: None) -> None:
    rules = templates.lint_rules("payment.received.short")

    assert (rules.final, rules.asks_for_payment, rules.declined_payment) == (False, False, False)
    assert templates.lint_rules("charge.final").declined_payment
    assert templates.lint_rules("send_invoice.final_notice").final


def test_a_stored_version_is_never_edited(db: None) -> None:
    row = save()
    row.subject = "Something else"

    with pytest.raises(ValueError, match="never edited"):
        row.save()
    templates.set_active(row, active=False)  # whether it is in use may change

    row.refresh_from_db()
    assert not row.is_active and row.subject != "Something else"


def test_the_locale_is_stored_in_one_spelling(db: None) -> None:
    row = save_template(KEY, "th_th", **sources(locale="th"), now=NOW)

    assert row.locale == "th-TH"


# ---------------------------------------------------------------- layouts


def test_a_stored_template_may_extend_the_packaged_layout(db: None) -> None:
    html = """{% extends "en/_layout.html" %}
{% block content %}
<p>Invoices {% for invoice in invoices %}{{ invoice.number }} ({{ invoice.due_on|date }}):
{{ invoice.remaining|money(invoice.currency) }} {% endfor %}</p>
<p><a href="{{ pay_link }}">Pay here</a> {{ pay_link }}</p>
{% endblock %}
"""
    row = save(html=html)

    rendered = templates.preview(resolve(KEY, "en"), today=NOW.date())
    assert row.version == 1
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert "will never ask for your card number" in rendered.html
    assert "INV-2026-0042" in rendered.html


@pytest.mark.parametrize(
    "name", ["en/send_invoice.overdue_1.html", "../../settings.py", "en/_missing.html"]
)
def test_a_template_may_extend_nothing_but_a_packaged_layout(db: None, name: str) -> None:
    with pytest.raises(TemplateRejected) as refused:
        save(html=f'{{% extends "{name}" %}}')

    [(field, message)] = refused.value.problems
    assert field == "html" and "only a packaged layout" in message


def test_a_layout_cannot_drop_the_security_notice_unnoticed(db: None) -> None:
    html = default_template(KEY, "en").html + "{% block security %}{% endblock %}"

    with pytest.raises(TemplateRejected) as refused:
        save(html=html)

    assert [f for f, m in refused.value.problems] == ["html"]
    assert "security notice" in refused.value.problems[0][1]


# ---------------------------------------------------------------- resolving


def test_without_a_stored_version_a_message_gets_the_packaged_default(db: None) -> None:
    template = resolve(KEY, "th-TH")

    assert template == default_template(KEY, "th")
    assert (template.locale, template.version) == ("th", "default")


def test_a_stored_version_replaces_the_default_and_says_which_version_it_is(db: None) -> None:
    save(**marked(mark="One"))
    save(now=LATER, **marked(mark="Two"))

    template = resolve(KEY, "en-GB")

    assert isinstance(template, MessageTemplate)
    assert template.subject.startswith("Two: ")
    assert (template.key, template.locale, template.version) == (KEY, "en", "db:v2")


def test_a_thai_customer_gets_the_thai_default_before_an_english_edit(db: None) -> None:
    save(**marked(mark="English edit"))

    assert resolve(KEY, "th-TH").version == "default"
    assert resolve(KEY, "th-TH").locale == "th"
    assert resolve(KEY, "fr-FR").version == "db:v1"  # no French: English, as edited


def test_resolve_falls_back_from_th_TH_to_th_to_en_to_the_default(db: None) -> None:
    save(**marked(mark="en"))
    assert resolve("charge.failed", "th-TH").version == "default"  # other keys untouched

    save_template(KEY, "th", **sources(locale="th", **marked(locale="th", mark="th")), now=NOW)
    assert resolve(KEY, "th-TH").subject.startswith("th: ")

    regional = sources(locale="th", **marked(locale="th", mark="th-TH"))
    save_template(KEY, "th-TH", **regional, now=NOW)
    assert resolve(KEY, "th-TH").subject.startswith("th-TH: ")
    assert resolve(KEY, "th").subject.startswith("th: ")
    assert resolve(KEY, "en").subject.startswith("en: ")


def test_an_inactive_latest_version_falls_back_to_the_default(db: None) -> None:
    save(**marked(mark="One"))
    two = save(now=LATER, **marked(mark="Two"))

    templates.set_active(two, active=False)

    assert resolve(KEY, "en").version == "default"


def test_a_key_nobody_has_is_unknown(db: None) -> None:
    with pytest.raises(UnknownTemplate):
        resolve("send_invoice.nothing_here", "en")
    with pytest.raises(UnknownTemplate):
        resolve("../etc/passwd", "en")


def test_the_cache_serves_the_newest_version_right_after_a_save(
    db: None, django_assert_num_queries: Any
) -> None:
    save(**marked(mark="One"))
    assert resolve(KEY, "en").subject.startswith("One: ")
    with django_assert_num_queries(1):  # which version is latest; its wording is cached
        assert resolve(KEY, "en").subject.startswith("One: ")

    save(now=LATER, **marked(mark="Two"))

    assert resolve(KEY, "en").subject.startswith("Two: ")


def test_a_resolver_reads_the_store_once_for_a_batch(
    db: None, django_assert_num_queries: Any
) -> None:
    save(**marked(mark="Edited"))
    resolve(KEY, "en")  # warm the cache of the stored wording

    with django_assert_num_queries(1):
        resolver = templates.TemplateResolver.load()
        for locale in ("en", "en-US", "th-TH", "th", "fr"):
            resolver.resolve(KEY, locale)
            resolver.resolve("charge.failed", locale)

    assert resolver.resolve(KEY, "en").version == "db:v1"
    assert resolver.resolve(KEY, "th").version == "default"


def test_a_variant_is_worded_by_the_template_named_by_its_key(db: None) -> None:
    save_template(f"{KEY}.short", "en", **sources(**marked(mark="Short")), now=NOW)

    chosen = resolve(KEY, "en", variant=f"{KEY}.short")

    assert (chosen.key, chosen.version) == (f"{KEY}.short", "db:v1")
    assert chosen.subject.startswith("Short: ")
    # A Thai customer in that arm: no Thai wording yet, so the English variant.
    assert resolve(KEY, "th", variant=f"{KEY}.short").key == f"{KEY}.short"


def test_a_variant_without_a_template_falls_back_to_the_step_template(
    db: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dunning.engine.templates"):
        chosen = resolve(KEY, "en", variant="b")

    assert (chosen.key, chosen.version) == (KEY, "default")
    assert "variant 'b' has no template" in caplog.text


# ---------------------------------------------------------------- end to end


def test_a_saved_template_is_what_the_worker_sends(make_invoice: Any) -> None:
    from dunning.engine import policies
    from dunning.engine.cases import sync_cases
    from dunning.engine.decisions import decide_due_cases
    from dunning.engine.models import Message

    due = datetime(2026, 3, 15, tzinfo=UTC)
    make_invoice("in_1", amount_due=123450, due_at=due, number="INV-1001")
    save_template(KEY, "th", **sources(locale="th", **marked(locale="th", mark="ฉบับแก้ไข")), now=NOW)
    now = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)  # 10:00 in Bangkok, a weekday

    policies.ensure_default_policies(now=now)
    sync_cases(now=now)
    decide_due_cases(now=now)

    [message] = Message.objects.all()
    assert message.subject.startswith("ฉบับแก้ไข: ")


# ---------------------------------------------------------------- admin


@pytest.fixture
def operator(db: None) -> Client:
    user = User.objects.create_superuser("ops", "ops@example.com", "a-long-password")
    client = Client()
    client.force_login(user)
    return client


def form(key: str = KEY, locale: str = "en", **changes: str) -> dict[str, str]:
    return {"key": key, "locale": locale, "channel": "email", "notes": "", **sources(**changes)}


def test_operators_add_a_template_through_the_admin(operator: Client) -> None:
    response = operator.post("/admin/engine/messagetemplate/add/", form(**marked()))

    assert response.status_code == 302, response.content.decode()[:2000]
    row = TemplateVersion.objects.get()
    assert (row.version, row.created_by) == (1, "ops")


def test_the_admin_shows_a_lint_problem_on_the_part_at_fault(operator: Client) -> None:
    html = default_template(KEY, "en").html.replace("{{ pay_link }}", "#")

    response = operator.post("/admin/engine/messagetemplate/add/", form(html=html))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "no pay link" in errors["html"][0]
    assert "text" not in errors
    assert not TemplateVersion.objects.exists()


def test_saving_a_version_in_the_admin_adds_the_next_one(operator: Client) -> None:
    first = save(**marked(mark="One"))
    url = f"/admin/engine/messagetemplate/{first.pk}/change/"
    page = operator.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "One: Reminder" in body  # the preview of this version
    assert "th customers get now" in body

    data = {**sources(**marked(mark="Two")), "notes": "shorter"}
    response = operator.post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert [(r.version, r.subject[:4]) for r in TemplateVersion.objects.order_by("version")] == [
        (1, "One:"),
        (2, "Two:"),
    ]


def test_the_admin_add_form_starts_from_the_wording_in_use(operator: Client) -> None:
    page = operator.get("/admin/engine/messagetemplate/add/", {"key": KEY, "locale": "th"})

    assert page.status_code == 200
    assert page.context["adminform"].form.initial["subject"] == default_template(KEY, "th").subject


def test_operators_can_stop_using_a_version(operator: Client) -> None:
    row = save()

    operator.post(
        "/admin/engine/messagetemplate/",
        {"action": "stop_using", "_selected_action": [row.pk]},
    )

    row.refresh_from_db()
    assert not row.is_active
    assert operator.get("/admin/engine/messagetemplate/").status_code == 200
