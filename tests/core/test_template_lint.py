from __future__ import annotations

import pytest

from dunning.core.rendering import (
    DEFAULT_TEMPLATE_KEYS,
    FINAL_TEMPLATE_KEYS,
    MessageTemplate,
    default_template,
)
from dunning.core.template_lint import LintProblem, lint

# The smallest template that carries everything a final notice must carry.
ENGLISH = """Dear {{ customer.name }},
{% for invoice in invoices %}
Invoice {{ invoice.number }}, due {{ invoice.due_on|date }}: {{ invoice.remaining|money(invoice.currency) }}
{% endfor %}
{% if deadline %}Please pay by {{ deadline|date }}.{% endif %} Pay here: {{ pay_link }}
{% if consequences %}If you do not pay: {{ consequences }}{% endif %}
Questions: {{ company.support_email }}.
We will never ask for your card number by email.
{{ company.name }}
{% if unsubscribe_link %}Stop these emails: {{ unsubscribe_link }}{% endif %}
"""  # noqa: E501 - a template line is as long as its sentence

THAI = """เรียน {{ customer.addressee }}
{% for invoice in invoices %}
ใบแจ้งหนี้เลขที่ {{ invoice.number }} ครบกำหนด {{ invoice.due_on|date }} จำนวน {{ invoice.remaining|money(invoice.currency) }}
{% endfor %}
{% if deadline %}โปรดชำระภายในวันที่ {{ deadline|date }}{% endif %} ชำระเงินที่ {{ pay_link }}
{% if consequences %}หากไม่ได้รับชำระ: {{ consequences }}{% endif %}
ติดต่อ {{ company.support_email }}
เราจะไม่ขอหมายเลขบัตรของท่านทางอีเมลโดยเด็ดขาด
ขอแสดงความนับถือ {{ company.name }}
{% if unsubscribe_link %}ยกเลิกการรับอีเมล: {{ unsubscribe_link }}{% endif %}
"""  # noqa: E501 - a template line is as long as its sentence


def template(
    text: str = ENGLISH, *, html: str | None = None, locale: str = "en"
) -> MessageTemplate:
    return MessageTemplate(
        key="test",
        locale=locale,
        subject="Reminder: invoice {{ invoices[0].number }} is overdue",
        text=text,
        html=f"<p>{text}</p>" if html is None else html,
    )


def codes(problems: list[LintProblem]) -> set[tuple[str, str]]:
    return {(problem.code, problem.part) for problem in problems}


@pytest.mark.parametrize("locale", ["en", "th", "th-TH", "en-US"])
@pytest.mark.parametrize("key", DEFAULT_TEMPLATE_KEYS)
def test_every_default_template_passes_lint(key: str, locale: str) -> None:
    problems = lint(
        default_template(key, locale),
        locale=locale,
        final=key in FINAL_TEMPLATE_KEYS,
        asks_for_payment=key != "payment.received",
        declined_payment=key.startswith("charge."),
    )

    assert problems == []


@pytest.mark.parametrize("source", [ENGLISH, THAI])
def test_the_minimal_templates_of_these_tests_pass_lint(source: str) -> None:
    locale = "th" if source is THAI else "en"

    assert lint(template(source, locale=locale), locale=locale, final=True) == []


def test_a_template_without_the_pay_link_fails_with_a_clear_message() -> None:
    problems = lint(
        template(ENGLISH.replace("{{ pay_link }}", "our website")), locale="en", final=False
    )

    assert codes(problems) == {("missing_pay_link", "text"), ("missing_pay_link", "html")}
    assert str(problems[0]) == "text: no pay link: add {{ pay_link }}"


def test_a_receipt_needs_no_pay_link() -> None:
    receipt = template(ENGLISH.replace("{{ pay_link }}", "our website"))

    assert lint(receipt, locale="en", final=False, asks_for_payment=False) == []


def test_a_template_without_an_amount_fails() -> None:
    source = ENGLISH.replace(": {{ invoice.remaining|money(invoice.currency) }}", "")

    problems = lint(template(source), locale="en", final=False)

    assert ("missing_amount", "text") in codes(problems)
    assert "invoice.amount|money(invoice.currency)" in problems[0].message


def test_a_template_showing_only_the_first_invoice_fails() -> None:
    source = ENGLISH.replace("{% for invoice in invoices %}", "{% for invoice in invoices[:1] %}")

    problems = lint(template(source), locale="en", final=False)

    assert ("missing_invoice_number", "text") in codes(problems)
    assert any("LINT-INV-0002 is not listed" in problem.message for problem in problems)


def test_a_final_notice_without_a_deadline_fails_but_a_reminder_may_omit_it() -> None:
    source = ENGLISH.replace("{% if deadline %}Please pay by {{ deadline|date }}.{% endif %}", "")

    final = lint(template(source), locale="en", final=True)
    reminder = lint(template(source), locale="en", final=False)

    assert codes(final) == {("missing_deadline", "text"), ("missing_deadline", "html")}
    assert "a final notice needs {{ deadline|date }}" in final[0].message
    assert reminder == []


def test_a_final_notice_must_say_what_happens_if_nothing_is_done() -> None:
    source = ENGLISH.replace("If you do not pay: {{ consequences }}", "")

    problems = lint(template(source), locale="en", final=True)

    assert ("missing_consequences", "text") in codes(problems)


def test_a_template_without_the_security_notice_fails() -> None:
    source = ENGLISH.replace("We will never ask for your card number by email.", "")

    problems = lint(template(source), locale="en", final=False)

    assert codes(problems) == {
        ("missing_security_notice", "text"),
        ("missing_security_notice", "html"),
    }
    assert "never ask for the card number" in problems[0].message


def test_the_security_notice_must_be_in_the_html_part_too() -> None:
    html = "<p>" + ENGLISH.replace("We will never ask for your card number by email.", "") + "</p>"

    problems = lint(template(ENGLISH, html=html), locale="en", final=False)

    assert codes(problems) == {("missing_security_notice", "html")}


def test_a_thai_template_needs_the_security_notice_in_thai() -> None:
    source = THAI.replace(
        "เราจะไม่ขอหมายเลขบัตรของท่านทางอีเมลโดยเด็ดขาด",
        "We will never ask for your card number by email.",
    )

    problems = lint(template(source, locale="th"), locale="th-TH", final=False)

    assert ("missing_security_notice", "text") in codes(problems)


def test_a_template_without_contact_details_fails() -> None:
    source = ENGLISH.replace("Questions: {{ company.support_email }}.", "")

    problems = lint(template(source), locale="en", final=False)

    assert ("missing_contact", "text") in codes(problems)


def test_a_template_that_hides_the_opt_out_link_fails() -> None:
    source = ENGLISH.replace("Stop these emails: {{ unsubscribe_link }}", "")

    problems = lint(template(source), locale="en", final=False)

    assert ("missing_unsubscribe_link", "text") in codes(problems)


@pytest.mark.parametrize(
    "wording",
    [
        "If you do not pay, you will be arrested.",
        "You could go to jail for this.",
        "We will pass your file to the police.",
        "We will press criminal charges.",
        "We will tell your employer and your neighbours.",
        "Legal action has been taken against you.",
        "A lawsuit has been filed.",
        "We will seize your property.",
    ],
)
def test_threatening_english_wording_is_refused(wording: str) -> None:
    problems = lint(template(ENGLISH + wording), locale="en", final=False)

    assert ("threatening_wording", "text") in codes(problems)


@pytest.mark.parametrize(
    "wording",
    [
        "หากไม่ชำระ ท่านจะถูกจับกุม",
        "ท่านอาจติดคุก",
        "มีโทษจำคุก",
        "เราจะแจ้งตำรวจ",
        "เราจะดำเนินคดีอาญากับท่าน",
        "เราจะประจานท่านในโซเชียล",
        "เราจะแจ้งนายจ้างของท่าน",
        "เราจะติดต่อครอบครัวของท่าน",
        "บริษัทได้ฟ้องร้องท่านแล้ว",
        "ท่านจะถูกขึ้นบัญชีดำ",
    ],
)
def test_threatening_thai_wording_is_refused(wording: str) -> None:
    problems = lint(template(THAI + wording, locale="th"), locale="th", final=False)

    assert ("threatening_wording", "text") in codes(problems)


def test_threatening_wording_in_a_branch_the_sample_does_not_take_is_still_refused() -> None:
    source = ENGLISH + "{% if days_overdue > 1000 %}You will be arrested.{% endif %}"

    problems = lint(template(source), locale="en", final=False)

    assert ("threatening_wording", "text") in codes(problems)


def test_wording_assembled_by_the_template_is_caught_in_the_rendered_text() -> None:
    source = ENGLISH + '\nThe {{ "pol" ~ "ice" }} will visit.'

    problems = lint(template(source), locale="en", final=False)

    assert ("threatening_wording", "text") in codes(problems)


def test_a_declined_payment_message_must_not_say_the_card_was_stolen() -> None:
    english = template(ENGLISH + "Your card was reported stolen.")
    thai = template(THAI + "บัตรของท่านถูกขโมย", locale="th")

    assert ("decline_wording", "text") in codes(
        lint(english, locale="en", final=False, declined_payment=True)
    )
    assert ("decline_wording", "text") in codes(
        lint(thai, locale="th", final=False, declined_payment=True)
    )


def test_a_template_that_does_not_compile_is_refused() -> None:
    problems = lint(template(ENGLISH + "{% if %}"), locale="en", final=False)

    assert codes(problems) == {("syntax", "text")}
    assert "does not compile, line 11" in problems[0].message


def test_an_unknown_placeholder_is_refused() -> None:
    problems = lint(template(ENGLISH + "{{ customer.nmae }}"), locale="en", final=False)

    assert codes(problems) == {("undefined", "text")}
    assert "nmae" in problems[0].message


def test_an_unknown_placeholder_in_the_branch_for_absent_values_is_refused() -> None:
    source = ENGLISH + "{% if late_fee %}fee{% else %}{{ no_fee_text }}{% endif %}"

    problems = lint(template(source), locale="en", final=False)

    assert codes(problems) == {("undefined", "text")}


def test_a_template_reaching_for_python_internals_is_refused() -> None:
    problems = lint(template(ENGLISH + "{{ ''.__class__.__mro__ }}"), locale="en", final=False)

    assert codes(problems) == {("security", "text")}
    assert "sandbox refused" in problems[0].message


def test_a_forbidden_phrase_is_reported_once_per_part() -> None:
    problems = lint(template(ENGLISH + "You will be arrested."), locale="en", final=False)

    assert [str(problem) for problem in problems] == [
        "text: threatens arrest: 'arrested' must not be used",
        "html: threatens arrest: 'arrested' must not be used",
    ]
