from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import pytest

from dunning.core.rendering import (
    DEFAULT_TEMPLATE_KEYS,
    FINAL_TEMPLATE_KEYS,
    Company,
    Customer,
    InvoiceSummary,
    MessageContext,
    MessageTemplate,
    RenderError,
    UnknownTemplate,
    addressee,
    default_template,
    render,
)

DECLINE_KEYS = [key for key in DEFAULT_TEMPLATE_KEYS if key.startswith("charge.")]


def context_for(
    key: str = "send_invoice.overdue_1", *, locale: str = "en", name: str = "Jane Doe"
) -> MessageContext:
    """A realistic case: one overdue Pro-plan invoice of ฿1,234.50, due 15 March 2026."""
    final = key in FINAL_TEMPLATE_KEYS
    thai = locale.startswith("th")
    return MessageContext(
        customer=Customer(name=name, locale=locale),
        company=Company(
            name="บริษัท ตัวอย่าง จำกัด" if thai else "Example Ltd",
            support_email="billing@example.co.th",
            support_phone="+66 2 123 4567",
        ),
        invoices=(
            InvoiceSummary(
                number="12345",
                issued_on=date(2026, 2, 13),
                due_on=date(2026, 3, 15),
                amount=123450,
                remaining=123450,
                currency="THB",
                description="แพ็กเกจ Pro" if thai else "Pro plan, March 2026",
            ),
        ),
        days_overdue=16,
        pay_link="https://pay.example.co.th/c/7Hq2",
        tone="final" if final else "firm",
        is_final=final,
        deadline=date(2026, 3, 31) if final else None,
        late_fee=10000 if final else None,
        consequences=(
            ("บริการของท่านจะถูกระงับชั่วคราว" if thai else "your Pro plan will be paused.")
            if final
            else None
        ),
    )


def template(text: str, *, locale: str = "en") -> MessageTemplate:
    return MessageTemplate(key="test", locale=locale, subject="Subject", text=text, html=text)


@pytest.mark.parametrize("locale", ["en", "th"])
@pytest.mark.parametrize("key", DEFAULT_TEMPLATE_KEYS)
def test_every_default_template_renders_with_a_realistic_context(key: str, locale: str) -> None:
    message = render(default_template(key, locale), context_for(key, locale=locale))

    for part in (message.subject, message.text, message.html):
        assert "12345" in part
    assert "https://pay.example.co.th/c/7Hq2" in message.text
    assert "{{" not in message.text and "{%" not in message.html


@pytest.mark.parametrize("key", DEFAULT_TEMPLATE_KEYS)
def test_every_default_template_also_renders_for_several_invoices_in_two_currencies(
    key: str,
) -> None:
    base = context_for(key, locale="th-TH")
    second = InvoiceSummary("12346", date(2026, 2, 20), date(2026, 3, 20), 4980, 4980, "USD")
    context = replace(base, invoices=(*base.invoices, second), late_fee=None)

    message = render(default_template(key, "th-TH"), context)

    assert "12346" in message.text and "US$49.80" in message.text


@pytest.mark.parametrize(
    ("name", "locale", "is_business", "greeted"),
    [
        ("สมชาย ใจดี", "th-TH", False, "คุณสมชาย ใจดี"),
        ("  สมชาย ใจดี ", "th", False, "คุณสมชาย ใจดี"),
        ("นายสมชาย ใจดี", "th-TH", False, "นายสมชาย ใจดี"),  # never คุณนาย ("madam")
        ("นางสาวสุดา รักดี", "th-TH", False, "นางสาวสุดา รักดี"),
        ("ดร.สมศรี มีสุข", "th-TH", False, "ดร.สมศรี มีสุข"),
        ("คุณวิชัย", "th-TH", False, "คุณวิชัย"),
        ("John Smith", "th-TH", False, "คุณ John Smith"),
        ("คุณากร ศรีสุข", "th-TH", False, "คุณคุณากร ศรีสุข"),  # a name, not คุณ + ากร
        ("พ.อ. สมชาย ใจดี", "th-TH", False, "พ.อ. สมชาย ใจดี"),  # ranks are abbreviated
        ("ร.ต.ท.สมศักดิ์ ดีใจ", "th-TH", False, "ร.ต.ท.สมศักดิ์ ดีใจ"),
        ("ศาสตราจารย์สมศรี มีสุข", "th-TH", False, "ศาสตราจารย์สมศรี มีสุข"),
        ("Dr. Anna Weber", "th-TH", False, "Dr. Anna Weber"),
        ("Drake Bell", "th-TH", False, "คุณ Drake Bell"),
        ('"สมชาย" ใจดี', "th-TH", False, 'คุณ"สมชาย" ใจดี'),
        ("บริษัท อันดามัน จำกัด", "th-TH", False, "บริษัท อันดามัน จำกัด"),  # not marked
        ("หจก. ทดสอบ", "th-TH", False, "หจก. ทดสอบ"),
        ("บริษัท อันดามัน จำกัด", "th-TH", True, "บริษัท อันดามัน จำกัด"),
        ("Northwind Co., Ltd.", "th-TH", True, "Northwind Co., Ltd."),
        ("สมชาย ใจดี", "en", False, "สมชาย ใจดี"),
        ("Jane Doe", "en-US", False, "Jane Doe"),
    ],
)
def test_a_greeting_names_a_thai_person_with_khun_and_a_business_by_its_name(
    name: str, locale: str, is_business: bool, greeted: str
) -> None:
    assert addressee(name, locale=locale, is_business=is_business) == greeted
    assert Customer(name, locale, is_business).addressee == greeted


@pytest.mark.parametrize(
    "name",
    [
        "Northwind Co., Ltd.",
        "Siam Widgets Public Company Limited",
        "Contoso Inc.",
        "Fabrikam Trading LLC",
        "Tailspin Pte. Ltd.",
        "Adatum GmbH",
        "สยามวิดเจ็ต จำกัด (มหาชน)",
        "อันดามันเทรดดิ้ง จำกัด",
    ],
)
def test_a_business_not_marked_as_one_is_still_greeted_without_khun(name: str) -> None:
    # A business's legal form gives it away when is_business was never set (a
    # Stripe customer, an import without the column): คุณ before it is wrong.
    assert addressee(name, locale="th-TH", is_business=False) == name


@pytest.mark.parametrize("name", ["Coco Lee", "Inca Brown", "Agnes Corpuz", "Limitless Jane"])
def test_a_person_whose_name_looks_like_a_legal_form_is_still_greeted_with_khun(
    name: str,
) -> None:
    assert addressee(name, locale="th-TH", is_business=False) == f"คุณ {name}"


@pytest.mark.parametrize("key", DEFAULT_TEMPLATE_KEYS)
def test_every_thai_default_greets_a_business_without_khun(key: str) -> None:
    context = context_for(key, locale="th-TH", name="บริษัท อันดามัน จำกัด")
    context = replace(context, customer=replace(context.customer, is_business=True))

    message = render(default_template(key, "th-TH"), context)

    for part in (message.text, message.html):
        assert "คุณบริษัท" not in part
    assert "เรียน บริษัท อันดามัน จำกัด" in message.text
    assert "เรียน บริษัท อันดามัน จำกัด" in message.html


def test_a_thai_message_shows_baht_and_the_buddhist_era() -> None:
    context = context_for("send_invoice.final", locale="th-TH", name="สมชาย ใจดี")

    message = render(default_template("send_invoice.final", "th-TH"), context)

    assert message.text.startswith("เรียน คุณสมชาย ใจดี")
    assert "฿1,234.50" in message.text and "฿1,234.50" in message.html
    assert "15 มีนาคม พ.ศ. 2569" in message.text
    assert "31 มีนาคม พ.ศ. 2569" in message.subject
    assert "ขอแสดงความนับถือ" in message.text


def test_thai_th_falls_back_to_th_and_unknown_locales_to_english() -> None:
    assert default_template("charge.failed", "th-TH").locale == "th"
    assert default_template("charge.failed", "th_TH").locale == "th"
    assert default_template("charge.failed", "ja-JP").locale == "en"
    assert default_template("charge.failed", "en-GB").locale == "en"


def test_an_english_template_formats_in_the_customers_own_english_locale() -> None:
    british = render(
        default_template("send_invoice.overdue_1", "en-GB"), context_for(locale="en-GB")
    )
    american = render(
        default_template("send_invoice.overdue_1", "en-US"), context_for(locale="en-US")
    )

    assert "15 March 2026" in british.text
    assert "March 15, 2026" in american.text


def test_an_english_fallback_never_shows_a_date_in_another_language() -> None:
    message = render(
        default_template("send_invoice.overdue_1", "ja-JP"), context_for(locale="ja-JP")
    )

    assert "March 15, 2026" in message.text
    assert "年" not in message.text


def test_a_subject_says_what_the_message_is() -> None:
    english = render(default_template("send_invoice.overdue_1", "en"), context_for())
    thai = render(default_template("send_invoice.overdue_1", "th"), context_for(locale="th"))

    assert english.subject == "Reminder: invoice 12345 is overdue"
    assert thai.subject == "แจ้งเตือน: ใบแจ้งหนี้เลขที่ 12345 เลยกำหนดชำระแล้ว"


def test_a_subject_is_always_one_line() -> None:
    multi = MessageTemplate("test", "en", "Line one\n{{ customer.name }}\r\n  end", "x", "x")

    assert render(multi, context_for()).subject == "Line one Jane Doe end"


def test_the_html_part_escapes_a_customer_name_with_a_script_tag() -> None:
    hostile = "<script>alert(1)</script> Mallory"
    context = context_for(name=hostile)

    message = render(default_template("send_invoice.overdue_1", "en"), context)

    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Mallory" in message.html
    assert f"Dear {hostile}," in message.text  # plain text is not HTML: shown as written


@pytest.mark.parametrize("locale", ["en", "th"])
@pytest.mark.parametrize("key", DECLINE_KEYS)
def test_failed_payment_messages_never_say_stolen_lost_or_fraud(key: str, locale: str) -> None:
    message = render(default_template(key, locale), context_for(key, locale=locale))

    for part in (message.subject, message.text, message.html):
        assert not re.search(r"stolen|lost|fraud|theft", part, re.IGNORECASE)
        assert not re.search("ขโมย|สูญหาย|ทุจริต|ฉ้อโกง", part)


@pytest.mark.parametrize("locale", ["en", "th"])
@pytest.mark.parametrize("key", DECLINE_KEYS)
def test_failed_payment_messages_say_the_bank_declined_the_payment(key: str, locale: str) -> None:
    message = render(default_template(key, locale), context_for(key, locale=locale))

    assert re.search("bank (?:has )?declined|ธนาคารผู้ออกบัตร.*ปฏิเสธรายการ", message.text)


def test_a_misspelt_placeholder_fails_loudly_instead_of_rendering_blank() -> None:
    with pytest.raises(RenderError, match="nmae") as raised:
        render(template("Dear {{ customer.nmae }},"), context_for())

    assert raised.value.kind == "undefined"


def test_a_misspelt_name_in_a_condition_fails_too() -> None:
    with pytest.raises(RenderError) as raised:
        render(template("{% if dedline %}soon{% endif %}"), context_for())

    assert raised.value.kind == "undefined"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ customer.__class__.__init__.__globals__ }}",
        "{{ lipsum.__globals__ }}",
        "{{ invoices.__class__.__subclasses__() }}",
    ],
)
def test_the_sandbox_refuses_python_internals(source: str) -> None:
    with pytest.raises(RenderError) as raised:
        render(template(source), context_for())

    assert raised.value.kind == "security"


def test_the_sandbox_refuses_a_repetition_that_would_exhaust_memory() -> None:
    with pytest.raises(RenderError) as raised:
        render(template("{{ 'x' * 1000000000 }}"), context_for())

    assert raised.value.kind == "security"


def test_a_syntax_error_names_the_part_and_the_line() -> None:
    with pytest.raises(RenderError, match="text part, line 2") as raised:
        render(MessageTemplate("test", "en", "ok", "fine\n{% if %}", "<p>ok</p>"), context_for())

    assert raised.value.kind == "syntax"


def test_the_money_filter_needs_a_currency_for_a_bare_amount() -> None:
    with pytest.raises(RenderError, match="currency"):
        render(template("{{ invoices[0].amount|money }}"), context_for())


def test_totals_carry_their_currency_into_the_money_filter() -> None:
    message = render(template('{{ totals|map("money")|join(", ") }}', locale="th"), context_for())

    # A Thai template formats as Thai, even for a customer whose locale is 'en'.
    assert message.text == "฿1,234.50\n"


def test_the_opt_out_link_is_shown_only_when_the_case_has_one() -> None:
    without = render(default_template("send_invoice.overdue_1", "en"), context_for())
    with_link = render(
        default_template("send_invoice.overdue_1", "en"),
        replace(context_for(), unsubscribe_link="https://pay.example.co.th/u/x1"),
    )

    assert "unsubscribe" not in without.html.lower()
    assert "https://pay.example.co.th/u/x1" in with_link.text
    assert 'href="https://pay.example.co.th/u/x1"' in with_link.html


def test_a_final_notice_shows_the_deadline_the_consequences_and_the_late_fee() -> None:
    context = context_for("charge.final")

    message = render(default_template("charge.final", "en"), context)

    assert "March 31, 2026" in message.subject
    assert "your Pro plan will be paused." in message.text
    assert "THB\u00a0100.00" in message.text


def test_a_final_notice_cannot_be_built_without_a_deadline_or_consequences() -> None:
    with pytest.raises(ValueError, match="deadline"):
        replace(context_for("send_invoice.final"), deadline=None)
    with pytest.raises(ValueError, match="consequences"):
        replace(context_for("send_invoice.final"), consequences=None)


def test_a_receipt_says_nothing_more_is_due_once_everything_is_paid() -> None:
    base = context_for("payment.received")
    paid = replace(base, invoices=(replace(base.invoices[0], remaining=0),))

    message = render(default_template("payment.received", "en"), paid)

    assert message.subject == "Payment received for invoice 12345, thank you"
    assert "Nothing more is due" in message.text
    assert "still open" not in message.text


def test_an_unknown_template_key_is_refused() -> None:
    with pytest.raises(UnknownTemplate):
        default_template("send_invoice.overdue_9", "en")
    with pytest.raises(UnknownTemplate):
        default_template("../../settings", "en")


def test_a_late_fee_needs_a_single_currency() -> None:
    base = context_for("send_invoice.final")
    second = InvoiceSummary("2", date(2026, 1, 1), date(2026, 2, 1), 100, 100, "USD")

    with pytest.raises(ValueError, match="one currency"):
        replace(base, invoices=(*base.invoices, second))


@pytest.mark.parametrize("key", FINAL_TEMPLATE_KEYS)
@pytest.mark.parametrize(("locale", "offer"), [("en", "pay in full"), ("th-TH", "เต็มจำนวน")])
def test_a_final_notice_offers_help_with_paying_in_full_once(
    key: str, locale: str, offer: str
) -> None:
    message = render(default_template(key, locale), context_for(key, locale=locale))

    assert message.text.count(offer) == 1
    assert message.html.count(offer) == 1


@pytest.mark.parametrize(
    ("locale", "friendly", "firm"),
    [("en", "Reminder: ", "Action needed: "), ("th-TH", "แจ้งเตือน: ", "โปรดดำเนินการ: ")],
)
def test_a_firm_reminder_s_subject_differs_from_a_friendly_one(
    locale: str, friendly: str, firm: str
) -> None:
    # The default policy sends charge.reminder twice: friendly, then firm.
    template = default_template("charge.reminder", locale)
    context = context_for("charge.reminder", locale=locale)

    first = render(template, replace(context, tone="friendly")).subject
    second = render(template, replace(context, tone="firm")).subject

    assert first.startswith(friendly) and second.startswith(firm)
    assert first.removeprefix(friendly) == second.removeprefix(firm)


@pytest.mark.parametrize(
    "key", [k for k in DEFAULT_TEMPLATE_KEYS if "days_overdue" in default_template(k, "en").text]
)
def test_one_day_overdue_is_one_day_not_one_days(key: str) -> None:
    context = replace(context_for(key, locale="en"), days_overdue=1)

    message = render(default_template(key, "en"), context)

    for part in (message.subject, message.text, message.html):
        assert "1 days" not in part
    assert "1 day " in message.text or "1 day." in message.text or "1 day," in message.text


@pytest.mark.parametrize("key", FINAL_TEMPLATE_KEYS)
@pytest.mark.parametrize(("locale", "oldest"), [("en", "the oldest"), ("th-TH", "ค้างนานที่สุด")])
def test_a_final_notice_over_several_invoices_counts_the_days_of_the_oldest(
    key: str, locale: str, oldest: str
) -> None:
    one = context_for(key, locale=locale)
    second = InvoiceSummary("12346", date(2026, 3, 1), date(2026, 3, 25), 5000, 5000, "THB")
    two = replace(one, invoices=(*one.invoices, second))
    template = default_template(key, locale)

    assert oldest not in render(template, one).text
    for part in (render(template, two).text, render(template, two).html):
        assert oldest in part


@pytest.mark.parametrize("key", DEFAULT_TEMPLATE_KEYS)
@pytest.mark.parametrize(
    ("locale", "plan", "again"),
    [("en", "payment plan", "unable to pay in full"), ("th-TH", "ผ่อนชำระ", "ไม่สะดวกชำระเต็มจำนวน")],
)
def test_a_message_that_offers_a_payment_plan_does_not_offer_help_again_below(
    key: str, locale: str, plan: str, again: str
) -> None:
    message = render(default_template(key, locale), context_for(key, locale=locale))

    for part in (message.text, message.html):
        assert not (plan in part and again in part)
