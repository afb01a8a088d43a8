from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client, override_settings

from dunning.core.formatting import format_day, format_money
from dunning.core.rendering import MessageContext, default_template, formatting_locale, render
from dunning.engine import links
from dunning.engine.models import Case
from dunning.engine.writer import company, summaries, template_customer
from tests.case_factories import make_case


def page_of(client: Client, url: str) -> tuple[int, str]:
    response = client.get(url.removeprefix("https://pay.example.com"))
    return response.status_code, response.content.decode()


@pytest.fixture
def thai_case(make_customer: Callable[..., Any], make_invoice: Callable[..., Any]) -> Case:
    make_customer("cus_th", name="สมชาย ใจดี", locale="th-TH")
    return make_case(
        make_invoice("in_1", customer="cus_th", number="INV-001", amount_due=123450),
        make_invoice(
            "in_2",
            customer="cus_th",
            number="INV-002",
            amount_due=50000,
            due_at=datetime(2026, 3, 10, tzinfo=UTC),
        ),
    )


@pytest.fixture
def english_case(make_customer: Callable[..., Any], make_invoice: Callable[..., Any]) -> Case:
    make_customer("cus_en", name="Jane Doe", locale="en-US", country="US")
    return make_case(
        make_invoice("in_3", customer="cus_en", number="A-17", currency="USD", amount_due=4999)
    )


def test_the_pay_link_is_a_signed_url_under_the_public_address(english_case: Case) -> None:
    url = links.pay_link(english_case.customer, english_case)

    assert url.startswith("https://pay.example.com/pay/")
    target = links.read_pay_token(url.rsplit("/", 1)[1])
    assert (target.customer_id, target.case_id) == (english_case.customer_id, english_case.pk)


def test_a_pay_link_is_only_made_for_the_case_s_own_customer(
    english_case: Case, thai_case: Case
) -> None:
    with pytest.raises(ValueError, match="is not customer"):
        links.pay_link(thai_case.customer, english_case)


def test_the_page_shows_the_customer_their_invoices_and_total_in_english(
    client: Client, english_case: Case
) -> None:
    status, html = page_of(client, links.pay_link(english_case.customer, english_case))

    assert status == 200
    assert '<html lang="en">' in html
    assert "Dear Jane Doe," in html
    assert "A-17" in html
    assert format_money(4999, "USD", locale="en-US") in html  # $49.99
    assert "$49.99" in html
    assert "March 15, 2026" in html  # as the emails write it
    # The default (manual) gateway charges nothing online: the page says how to pay.
    assert "To pay, please contact us and we will help you." in html
    assert "<form" not in html
    assert "help@example.com" in html and "+66 2 123 4567" in html
    assert 'href="tel:+6621234567"' in html


def test_a_thai_customer_reads_the_page_in_thai(client: Client, thai_case: Case) -> None:
    status, html = page_of(client, links.pay_link(thai_case.customer, thai_case))

    assert status == 200
    assert '<html lang="th">' in html
    assert "เรียน คุณสมชาย ใจดี" in html
    assert "หากต้องการชำระเงิน โปรดติดต่อเรา แล้วเราจะช่วยท่าน" in html
    assert "฿1,234.50" in html and "฿500.00" in html
    assert format_money(173450, "THB", locale="th-TH") in html  # the total
    assert "ยอดรวมที่ต้องชำระ" in html
    assert "15 มีนาคม พ.ศ. 2569" in html  # in the Buddhist era, as the emails write it
    # Earliest due first.
    assert html.index("INV-002") < html.index("INV-001")
    assert "help@example.com" in html


def test_a_thai_business_is_greeted_by_its_name_not_as_a_person(
    client: Client, make_customer: Callable[..., Any], make_invoice: Callable[..., Any]
) -> None:
    make_customer("cus_firm", name="บริษัท อันดามัน จำกัด", locale="th-TH", is_business=True)
    case = make_case(make_invoice("in_9", customer="cus_firm", number="INV-009"))

    status, html = page_of(client, links.pay_link(case.customer, case))

    assert status == 200
    assert "เรียน บริษัท อันดามัน จำกัด" in html and "คุณบริษัท" not in html


def test_a_settled_case_says_nothing_is_owed(
    client: Client, make_invoice: Callable[..., Any], make_customer: Callable[..., Any]
) -> None:
    make_customer("cus_en", name="Jane Doe", locale="en")
    case = make_case(make_invoice("in_9", customer="cus_en"), state="recovered")

    status, html = page_of(client, links.pay_link(case.customer, case))

    assert status == 200
    assert "Nothing is owed on this invoice any more" in html
    assert "To pay, please contact us" not in html


def test_the_customer_s_name_is_escaped(
    client: Client, make_customer: Callable[..., Any], make_invoice: Callable[..., Any]
) -> None:
    make_customer("cus_x", name="<script>alert(1)</script>", locale="en")
    case = make_case(make_invoice("in_x", customer="cus_x"))

    _, html = page_of(client, links.pay_link(case.customer, case))

    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_the_page_is_kept_out_of_caches_and_referrers(client: Client, english_case: Case) -> None:
    url = links.pay_link(english_case.customer, english_case)
    response = client.get(url.removeprefix("https://pay.example.com"))

    assert response["Cache-Control"] == "no-store"
    # No Referer to other sites; the page's own forms still carry their Origin.
    assert response["Referrer-Policy"] == "same-origin"
    assert '<meta name="referrer" content="same-origin">' in response.content.decode()
    assert "noindex" in response["X-Robots-Tag"]


def test_a_forged_or_foreign_token_is_a_not_found_page(
    client: Client, english_case: Case, thai_case: Case
) -> None:
    token = links.pay_token(english_case.customer_id, english_case.pk)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    someone_elses = links.pay_token(thai_case.customer_id, english_case.pk)
    unsubscribe = links.unsubscribe_token(english_case.customer_id, "email")

    for bad in (forged, someone_elses, unsubscribe, "nonsense", "x" * 600):
        status, html = page_of(client, f"/pay/{bad}")
        assert status == 404, bad
        assert "This link is not valid" in html and "ลิงก์นี้ไม่ถูกต้อง" in html
        assert "Jane Doe" not in html


def test_a_link_to_a_case_that_no_longer_exists_is_not_found(
    client: Client, english_case: Case
) -> None:
    status, _ = page_of(client, f"/pay/{links.pay_token(english_case.customer_id, 10**9)}")

    assert status == 404


def test_the_pay_page_only_answers_get(client: Client, english_case: Case) -> None:
    url = links.pay_link(english_case.customer, english_case).removeprefix(
        "https://pay.example.com"
    )

    assert Client().post(url).status_code == 405  # without the CSRF check in the way
    assert client.head(url).status_code == 200


def test_a_due_date_is_the_customer_s_own_day_as_in_the_emails(
    client: Client, make_customer: Callable[..., Any], make_invoice: Callable[..., Any]
) -> None:
    # Due at midnight in Bangkok: 17:00 the day before in UTC.
    make_customer("cus_th", name="สมชาย ใจดี", locale="th-TH", time_zone="Asia/Bangkok")
    due = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)
    case = make_case(make_invoice("in_1", customer="cus_th", number="INV-391", due_at=due))

    status, html = page_of(client, links.pay_link(case.customer, case))

    assert status == 200
    assert "27 พฤศจิกายน พ.ศ. 2569" in html and "26 พฤศจิกายน" not in html


def test_an_english_page_writes_money_and_dates_as_the_english_emails_do(
    client: Client, make_customer: Callable[..., Any], make_invoice: Callable[..., Any]
) -> None:
    # A customer in Germany reads English pages and emails: both in English style.
    make_customer("cus_de", name="Anna Weber", locale="de-DE", time_zone="Europe/Berlin")
    due = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
    case = make_case(
        make_invoice("in_de", customer="cus_de", currency="EUR", amount_due=2900, due_at=due)
    )

    status, html = page_of(client, links.pay_link(case.customer, case))

    assert status == 200
    assert "€29.00" in html and "29,00" not in html
    assert "November 16, 2026" in html and "16.11.2026" not in html


def test_one_invoice_is_spoken_of_as_one_and_without_a_card_the_page_offers_to_add_one(
    client: Client, make_customer: Callable[..., Any], make_invoice: Callable[..., Any]
) -> None:
    make_customer("cus_en", name="Jane Doe", locale="en")
    case = make_case(make_invoice("in_9", customer="cus_en", number="INV-9"))

    with override_settings(DUNNING_GATEWAY="demo"):  # a gateway with a card page
        status, html = page_of(client, links.pay_link(case.customer, case))

    assert status == 200
    assert "This invoice is waiting for payment" in html
    assert "To pay by card, add your card" in html and "Add a card</button>" in html
    assert "Has your card changed?" not in html


def test_a_customer_with_a_card_but_nothing_to_pay_by_it_here_is_not_asked_to_add_one(
    client: Client,
    make_customer: Callable[..., Any],
    make_card: Callable[..., Any],
    make_invoice: Callable[..., Any],
) -> None:
    # The invoice was issued by the gateway itself: it is paid on the gateway's page.
    make_customer("cus_en", name="Jane Doe", locale="en")
    make_card("pm_en", customer="cus_en")
    invoice = make_invoice("in_9", customer="cus_en", context={"gateway": "demo"})
    case = make_case(invoice)

    with override_settings(DUNNING_GATEWAY="demo"):
        status, html = page_of(client, links.pay_link(case.customer, case))

    assert status == 200 and "now</button>" not in html  # no payment on this page
    assert "Has your card changed?" in html and "Add a card" not in html


@pytest.mark.parametrize(
    ("locale", "currency"), [("th-TH", "THB"), ("th-TH", "USD"), ("en-US", "USD"), ("en-GB", "USD")]
)
def test_the_page_writes_the_due_date_and_amount_exactly_as_the_emails_do(
    client: Client,
    make_customer: Callable[..., Any],
    make_invoice: Callable[..., Any],
    locale: str,
    currency: str,
) -> None:
    make_customer("cus_1", name="Somchai", locale=locale, time_zone="Asia/Bangkok")
    invoice = make_invoice("in_1", customer="cus_1", currency=currency, amount_due=123450)
    case = make_case(invoice)
    email = render(
        default_template("charge.failed", locale),
        MessageContext(
            customer=template_customer(case.customer),
            company=company(),
            invoices=summaries([invoice], zone=ZoneInfo("Asia/Bangkok")),
            days_overdue=3,
            pay_link="https://pay.example.com/p/x",
            tone="friendly",
        ),
    )
    due = summaries([invoice], zone=ZoneInfo("Asia/Bangkok"))[0].due_on
    email_locale = formatting_locale(default_template("charge.failed", locale).locale, locale)
    due_in_email = format_day(due, locale=email_locale)
    amount_in_email = format_money(123450, currency, locale=email_locale)
    assert due_in_email in email.text and amount_in_email in email.text

    _, html = page_of(client, links.pay_link(case.customer, case))

    assert due_in_email in html and amount_in_email in html
