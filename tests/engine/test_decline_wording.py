"""A declined card's messages say what happened and ask for the right thing, never more.

The decide stage reads each card case's latest declined charge (one query per
batch), classifies it (`dunning.core.declines`) and hands the neutral wording to
the charge.* templates as `payment_problem`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dunning.core.declines import CUSTOMER_TEXT, WORDING_TEXT, CustomerRequest, Wording
from dunning.engine import policies
from dunning.engine.cases import sync_cases
from dunning.engine.decisions import decide_due_cases
from dunning.engine.models import Case, Message
from dunning.engine.retries import retry_due
from dunning.gateways.base import Gateway
from dunning.gateways.manual import ManualGateway
from dunning.gateways.simulated import SimulatedGateway, succeeded
from dunning.ledger import services
from dunning.ledger.models import PaymentAttempt

DUE = datetime(2026, 3, 15, tzinfo=UTC)
DECLINED_AT = datetime(2026, 3, 17, 2, 0, tzinfo=UTC)  # Tuesday 09:00 in Bangkok
# Wednesday 18 March 2026, 10:00 in Bangkok: inside the Thai weekday window.
WEDNESDAY = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)
NEVER_SAID = re.compile(r"stolen|lost|fraud|theft|ถูกขโมย|ขโมย|สูญหาย|ทุจริต|ฉ้อโกง", re.IGNORECASE)
LOCALES = {"en": "en", "th": "th-TH"}


def run(now: datetime, *, gateway: Gateway | None = None) -> None:
    """A worker pass as of `now`; with a gateway, the retry stage plans first."""
    policies.ensure_default_policies(now=now)
    sync_cases(now=now)
    if gateway is not None:
        retry_due(now=now, gateway=gateway)
    decide_due_cases(now=now)


def charging_gateway() -> SimulatedGateway:
    """A gateway that charges (the pass only plans, so it is never called)."""
    return SimulatedGateway(oracle=lambda request, at: succeeded(request), clock=lambda: DUE)


@pytest.fixture
def declined(make_customer: Any, make_invoice: Any) -> Any:
    """Record a card invoice of `customer` and the declines given, oldest first."""

    def make(
        *declines: str,
        customer: str = "cus_1",
        language: str = "th",
        invoice: str | None = None,
        collection_method: str = "charge_automatically",
        advice_code: str = "",
    ) -> Any:
        make_customer(customer, locale=LOCALES[language], email=f"{customer}@example.co.th")
        external_id = invoice or f"in_{customer}"
        made = make_invoice(
            external_id,
            customer=customer,
            due_at=DUE,
            number=f"INV-{customer}",
            collection_method=collection_method,
        )
        for n, code in enumerate(declines):
            services.record_payment_attempt(
                invoice=external_id,
                attempted_at=DECLINED_AT + timedelta(hours=n),
                outcome="failed",
                decline_code=code,
                now=DECLINED_AT + timedelta(hours=n),
                source="test",
                advice_code=advice_code,
            )
        return made

    return make


def only_message() -> Message:
    [message] = Message.objects.all()
    return message


def parts(message: Message) -> tuple[str, str, str]:
    return message.subject, message.body_text, message.body_html


def said(text: str, html: str, words: str) -> bool:
    """`words` in the text part and in the HTML part (where quotes are escaped)."""
    return words in text and words in html


@pytest.mark.parametrize("language", ["en", "th"])
def test_an_expired_card_asks_the_customer_for_new_card_details(
    declined: Any, language: str
) -> None:
    declined("expired_card", language=language)

    run(WEDNESDAY)

    message = only_message()
    assert message.template == "charge.failed" and message.locale == language
    _, text, html = parts(message)
    expired = {"en": "The card we have on file has expired.", "th": "บัตรที่ท่านใช้ชำระเงินหมดอายุแล้ว"}
    update = {"en": "Please update your card details.", "th": "โปรดอัปเดตข้อมูลบัตรของท่าน"}
    assert said(text, html, expired[language]) and said(text, html, update[language])
    # No retry on the same card: the message does not promise one.
    assert "try again automatically" not in text and "ลองตัดชำระใหม่โดยอัตโนมัติ" not in text


@pytest.mark.parametrize("language", ["en", "th"])
def test_insufficient_funds_says_we_will_try_again_and_the_customer_may_pay_now(
    declined: Any, language: str, make_card: Any
) -> None:
    declined("insufficient_funds", language=language)
    make_card("pm_1", customer="cus_1", now=DUE)

    run(WEDNESDAY, gateway=charging_gateway())

    _, text, html = parts(only_message())
    wait = {
        "en": "We will try the payment again automatically. To pay now instead",
        "th": "ระบบจะตัดชำระเงินอีกครั้งโดยอัตโนมัติ หากท่านต้องการชำระทันที",
    }
    assert said(text, html, wait[language])
    assert "expired" not in text and "หมดอายุ" not in text


@pytest.mark.parametrize("gateway", [None, ManualGateway()], ids=["no retry stage", "manual"])
@pytest.mark.parametrize("language", ["en", "th"])
def test_with_no_retry_planned_the_message_promises_none(
    declined: Any, language: str, gateway: Gateway | None
) -> None:
    declined("insufficient_funds", language=language)

    run(WEDNESDAY, gateway=gateway)

    _, text, html = parts(only_message())
    pay_now = {
        "en": "Please pay on the payment page, or add another card.",
        "th": "โปรดชำระเงินผ่านหน้าชำระเงิน หรือเพิ่มบัตรใบอื่น",
    }
    assert said(text, html, pay_now[language])
    assert "automatically" not in text and "โดยอัตโนมัติ" not in text


@pytest.mark.parametrize("language", ["en", "th"])
@pytest.mark.parametrize("code", ["lost_card", "stolen_card", "fraudulent", "pickup_card"])
def test_a_never_retry_decline_reads_only_that_the_bank_declined_it(
    declined: Any, code: str, language: str
) -> None:
    declined(code, language=language)

    run(WEDNESDAY)

    _, text, html = parts(only_message())
    bank = {"en": "Your bank declined the payment.", "th": "ธนาคารผู้ออกบัตรไม่อนุมัติการชำระเงิน"}
    other = {"en": "Please pay with another card or payment method.", "th": "บัตรใบอื่น"}
    assert said(text, html, bank[language]) and said(text, html, other[language])
    for part in parts(only_message()):
        assert not NEVER_SAID.search(part)


@pytest.mark.parametrize("language", ["en", "th"])
@pytest.mark.parametrize("code", ["lost_card", "stolen_card", "fraudulent", "pickup_card"])
def test_every_step_of_a_never_retry_case_stays_neutral_up_to_the_final_notice(
    declined: Any, code: str, language: str
) -> None:
    declined(code, language=language)
    now = WEDNESDAY
    for _ in range(40):
        run(now)
        case = Case.objects.get()
        if case.next_action_at is None:
            break
        now = max(case.next_action_at, now + timedelta(hours=1))

    templates = set(Message.objects.values_list("template", flat=True))
    assert {"charge.failed", "charge.reminder", "charge.final"} <= templates
    bank = WORDING_TEXT[Wording.BANK_DECLINED]["en" if language == "en" else "th"]
    for message in Message.objects.all():
        _, text, html = parts(message)
        assert said(text, html, bank), message.template
        for part in parts(message):
            assert not NEVER_SAID.search(part), (message.template, part)


def button(html: str) -> str:
    """The text of the message's call-to-action button."""
    found = re.search(r'<a href="[^"]*" style="display:inline-block[^>]*>([^<]+)</a>', html)
    assert found, html
    return found.group(1)


@pytest.mark.parametrize("language", ["en", "th"])
@pytest.mark.parametrize("code", ["authentication_required", "lost_card", "insufficient_funds"])
def test_the_button_leads_to_what_the_message_asks_not_only_to_a_card_update(
    declined: Any, code: str, language: str
) -> None:
    # After authentication_required the customer is asked to approve the payment
    # on the pay page; after a lost card, to pay another way: "Update card" is
    # the wrong request for either.
    declined(code, language=language)

    run(WEDNESDAY)

    _, _, html = parts(only_message())
    assert button(html) == {"en": "Pay or update card", "th": "ชำระเงินหรืออัปเดตบัตร"}[language]


def test_the_latest_decline_of_the_case_is_the_one_explained(
    declined: Any, make_invoice: Any
) -> None:
    # Two invoices in one case: an old expired-card decline, then a newer soft one.
    declined("expired_card", language="en", invoice="in_old")
    declined("insufficient_funds", language="en", invoice="in_new")
    PaymentAttempt.objects.filter(decline_code="insufficient_funds").update(
        attempted_at=DECLINED_AT + timedelta(hours=5)
    )

    run(WEDNESDAY)  # no retry stage: the soft decline asks to pay now

    _, text, _ = parts(only_message())
    assert CUSTOMER_TEXT[CustomerRequest.PAY_NOW]["en"] in text
    assert "expired" not in text


def test_the_advice_code_wins_over_the_decline_code(declined: Any) -> None:
    declined("insufficient_funds", language="en", advice_code="do_not_try_again")

    run(WEDNESDAY)

    _, text, _ = parts(only_message())
    assert "Your bank declined the payment. Please pay with another card" in text


def test_a_decline_that_is_not_the_customers_to_act_on_keeps_the_generic_wording(
    declined: Any,
) -> None:
    declined("testmode_decline", language="en")

    run(WEDNESDAY)

    _, text, _ = parts(only_message())
    assert "your bank declined the payment. This often has an everyday cause" in text


@pytest.mark.parametrize("language", ["en", "th"])
def test_a_send_invoice_message_says_nothing_of_a_decline(declined: Any, language: str) -> None:
    # A customer who tried to pay an emailed invoice by card, and was declined.
    declined("expired_card", language=language, collection_method="send_invoice")

    run(WEDNESDAY)

    message = only_message()
    assert message.template.startswith("send_invoice.")
    every_decline_text = [
        text
        for table in (WORDING_TEXT, CUSTOMER_TEXT)
        for row in table.values()
        for text in row.values()
    ]
    for part in parts(message):
        assert not any(text in part for text in every_decline_text)


def decide_queries(declined: Any, count: int) -> int:
    for n in range(count):
        declined("expired_card" if n % 2 else "lost_card", customer=f"cus_{count}_{n}")
    policies.ensure_default_policies(now=WEDNESDAY)
    sync_cases(now=WEDNESDAY)
    with CaptureQueriesContext(connection) as queries:
        report = decide_due_cases(now=WEDNESDAY)
    assert (report.cases, report.messages) == (count, count)
    attempts = [q for q in queries if PaymentAttempt._meta.db_table in q["sql"]]
    assert len(attempts) == 1  # one read of the declines for the whole batch
    Message.objects.all().delete()
    Case.objects.all().update(state="recovered", next_action_at=None)
    return len(queries)


def test_reading_the_declines_costs_one_query_per_batch_not_per_case(declined: Any) -> None:
    assert decide_queries(declined, 5) == decide_queries(declined, 20)
