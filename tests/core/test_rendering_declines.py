"""The charge.* templates with `payment_problem`: what a declined card message explains."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from dunning.core.declines import DECLINE_CODES, DeclineClass, classify_decline, customer_text
from dunning.core.rendering import default_template, render
from tests.core.test_rendering import DECLINE_KEYS, context_for

NEVER_SAID = re.compile(r"stolen|lost|fraud|theft|ขโมย|สูญหาย|ทุจริต|ฉ้อโกง", re.IGNORECASE)
SECURITY = {"en": "never ask for your card number", "th": "จะไม่ขอหมายเลขบัตรของท่านทางอีเมล"}
TOLD = [
    code for code, row in DECLINE_CODES.items() if row.kind is not DeclineClass.NOT_A_RETRY_CASE
]


def test_a_context_has_no_payment_problem_unless_given() -> None:
    assert context_for("charge.failed").variables()["payment_problem"] is None


@pytest.mark.parametrize("locale", ["en", "th"])
@pytest.mark.parametrize("key", DECLINE_KEYS)
@pytest.mark.parametrize("code", TOLD)
def test_every_told_decline_is_explained_in_every_charge_message_and_never_names_the_reason(
    code: str, key: str, locale: str
) -> None:
    problem = customer_text(classify_decline(code), locale)
    context = replace(context_for(key, locale=locale), payment_problem=problem)

    message = render(default_template(key, locale), context)

    assert problem in message.text and problem in message.html
    for part in (message.subject, message.text, message.html):
        assert not NEVER_SAID.search(part), part


@pytest.mark.parametrize("locale", ["en", "th"])
@pytest.mark.parametrize("key", DECLINE_KEYS)
def test_a_message_with_a_payment_problem_still_carries_what_every_message_must(
    key: str, locale: str
) -> None:
    problem = customer_text(classify_decline("expired_card"), locale)
    context = replace(context_for(key, locale=locale), payment_problem=problem)

    message = render(default_template(key, locale), context)

    for part in (message.text, message.html):
        assert "12345" in part and "https://pay.example.co.th/c/7Hq2" in part
        assert SECURITY[locale] in part and "billing@example.co.th" in part


@pytest.mark.parametrize("locale", ["en", "th"])
def test_a_card_that_needs_new_details_is_not_promised_an_automatic_retry(locale: str) -> None:
    problem = customer_text(classify_decline("expired_card"), locale)
    context = replace(context_for("charge.failed", locale=locale), payment_problem=problem)

    message = render(default_template("charge.failed", locale), context)

    assert "try again automatically" not in message.text
    assert "ลองตัดชำระใหม่โดยอัตโนมัติ" not in message.text


def test_the_payment_problem_is_escaped_in_the_html_part() -> None:
    context = replace(context_for("charge.reminder"), payment_problem="Call <b>us</b> & co.")

    message = render(default_template("charge.reminder", "en"), context)

    assert "Call &lt;b&gt;us&lt;/b&gt; &amp; co." in message.html
    assert "Call <b>us</b> & co." in message.text
