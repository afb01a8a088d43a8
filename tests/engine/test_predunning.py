"""Pre-dunning: a friendly request to update a card that stops working before the renewal."""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command

from dunning.channels.email.transport import SmtpConfig, SmtpTransport
from dunning.core.rendering import default_template
from dunning.engine import links, policies
from dunning.engine.delivery import deliver_due
from dunning.engine.models import Case, ContactOptOut, Message
from dunning.engine.predunning import expiring_cards, remind_expiring_cards
from dunning.engine.templates import lint_rules, lint_template
from dunning.engine.writer import contact_verdict
from dunning.ledger import services
from dunning.ledger.models import Customer, PaymentMethod
from tests.conftest import ApiClient
from tests.gateways.stripe_webhooks import (
    SECRET,
    StripePoster,
    at,
    envelope,
    story,
    story_event,
)
from tests.smtp_server import SmtpServer

# Monday 20 July 2026, 22:00 in Bangkok: after the Thai contact window.
NIGHT = datetime(2026, 7, 20, 15, 0, tzinfo=UTC)
NEXT_MORNING = datetime(2026, 7, 21, 1, 0, tzinfo=UTC)  # 08:00 Tuesday in Bangkok
# The latest renewal: the next one is 5 August, after a card expiring in July stops.
LAST_RENEWAL = datetime(2026, 7, 5, 3, 0, tzinfo=UTC)


@pytest.fixture
def customer(make_customer: Callable[..., Customer]) -> Customer:
    return make_customer("cus_th", time_zone="Asia/Bangkok")


def card(
    customer: Customer,
    *,
    exp_month: int = 7,
    exp_year: int = 2026,
    external_id: str = "pm_1",
    added: datetime = NIGHT - timedelta(days=60),
    default: bool = True,
) -> PaymentMethod:
    method, _ = services.upsert_payment_method(
        external_id=external_id,
        customer=customer.external_id,
        now=added,
        source="test",
        type="card",
        brand="visa",
        last4="4242",
        exp_month=exp_month,
        exp_year=exp_year,
        is_default=default,
    )
    return method


def renewal(
    customer: Customer,
    *,
    due_at: datetime = LAST_RENEWAL,
    method: str = "charge_automatically",
    external_id: str = "in_renewal",
) -> None:
    """A renewal invoice, paid: nothing is overdue."""
    facts = services.InvoiceFacts(
        external_id=external_id,
        customer=customer.external_id,
        number=f"INV-{external_id}",
        currency="THB",
        amount_due=59900,
        issued_at=due_at,
        due_at=due_at,
        collection_method=method,
    )
    services.upsert_invoice(facts=facts, now=due_at, source="test")
    services.record_payment(
        invoice=external_id,
        amount=59900,
        currency="THB",
        received_at=due_at,
        method="card",
        now=due_at,
        source="test",
    )


def overdue(
    customer: Customer,
    *,
    external_id: str = "in_overdue",
    amount: int = 59900,
    issued_days_ago: int = 20,
    due_days_ago: int = 10,
) -> None:
    """An invoice sent for payment, unpaid and overdue as of NIGHT."""
    issued = NIGHT - timedelta(days=issued_days_ago)
    facts = services.InvoiceFacts(
        external_id=external_id,
        customer=customer.external_id,
        number=f"INV-{external_id}",
        currency="THB",
        amount_due=amount,
        issued_at=issued,
        due_at=NIGHT - timedelta(days=due_days_ago),
        collection_method="send_invoice",
    )
    services.upsert_invoice(facts=facts, now=issued, source="test")


def test_a_thai_card_expiring_before_the_renewal_gets_one_request_in_thai_at_eight(
    customer: Customer,
) -> None:
    method = card(customer)
    renewal(customer)

    assert remind_expiring_cards(now=NIGHT) == 1

    message = Message.objects.get()
    assert message.case is None and message.customer == customer
    assert (message.step, message.template, message.template_version) == (
        "card.expiring",
        "card.expiring",
        "default",
    )
    assert (message.to, message.locale, message.status) == (
        "somchai@example.co.th",
        "th",
        "scheduled",
    )
    assert message.send_after == NEXT_MORNING
    assert message.idempotency_key == f"card{method.pk}:exp2026-07:email"
    assert message.subject == "โปรดอัปเดตข้อมูลบัตร Visa ที่ลงท้ายด้วย 4242 ก่อนบัตรหมดอายุ"
    assert "สิ้นเดือนกรกฎาคม พ.ศ. 2569" in message.body_text
    [token] = set(re.findall(r"/card/([\w:-]+)", message.body_text + message.body_html))
    assert links.read_card_token(token) == links.CardTarget(customer.pk, method.pk)
    assert "จะไม่ขอหมายเลขบัตร" in message.body_text
    for amount in ("599", "฿", "INV-"):  # no amount, no invoice: nothing is owed
        assert amount not in message.body_text and amount not in message.subject
    unsubscribe = message.headers["unsubscribe_url"].rsplit("/u/", 1)[1]
    assert links.read_unsubscribe_token(unsubscribe).customer_id == customer.pk

    assert remind_expiring_cards(now=NIGHT) == 0
    assert remind_expiring_cards(now=NEXT_MORNING + timedelta(days=3)) == 0
    assert Message.objects.count() == 1


def test_a_card_that_still_works_at_the_renewal_gets_nothing(customer: Customer) -> None:
    card(customer, exp_month=8)  # good through August; the renewal is 5 August
    renewal(customer)

    assert remind_expiring_cards(now=NIGHT) == 0
    assert not Message.objects.exists()


def test_a_renewal_three_months_away_is_too_early_to_ask(customer: Customer) -> None:
    card(customer)
    renewal(customer, due_at=LAST_RENEWAL + timedelta(days=61))  # next renewal in October

    assert remind_expiring_cards(now=NIGHT) == 0


def test_a_card_that_has_already_stopped_is_the_dunning_s_business(customer: Customer) -> None:
    card(customer, exp_month=6)
    renewal(customer)

    assert remind_expiring_cards(now=NIGHT) == 0


def test_a_customer_who_opted_out_of_email_gets_nothing(customer: Customer) -> None:
    card(customer)
    renewal(customer)
    ContactOptOut.objects.create(
        customer=customer, channel="email", created_at=NIGHT, source="page"
    )

    assert remind_expiring_cards(now=NIGHT) == 0


def test_a_customer_already_in_dunning_gets_no_card_request(customer: Customer) -> None:
    # The case's own messages ask for what is needed; a "nothing is owed"
    # request would also use up the day's one contact.
    from dunning.engine.cases import sync_cases

    card(customer)
    renewal(customer)
    overdue(customer)
    policies.ensure_default_policies(now=NIGHT)
    sync_cases(now=NIGHT)
    assert Case.objects.filter(customer=customer, state="active").exists()

    assert remind_expiring_cards(now=NIGHT) == 0


def test_a_customer_whose_dunning_ran_to_its_final_action_is_not_told_nothing_is_owed(
    customer: Customer,
) -> None:
    # The request says "there is nothing to pay today"; this customer still owes
    # the invoice whose final notice went out, and the case (exhausted) says so.
    from dunning.engine.cases import sync_cases
    from dunning.engine.decisions import decide_due_cases

    overdue(customer, external_id="in_unpaid", amount=120000, issued_days_ago=100, due_days_ago=90)
    now = NIGHT - timedelta(days=89)
    policies.ensure_default_policies(now=now)
    for _ in range(40):
        sync_cases(now=now)
        decide_due_cases(now=now)
        case = Case.objects.get(customer=customer)
        if case.next_action_at is None:
            break
        now = max(case.next_action_at, now + timedelta(hours=1))
    assert case.state == "exhausted" and now < NIGHT - timedelta(days=7)
    card(customer)
    renewal(customer)

    assert remind_expiring_cards(now=NIGHT) == 0


def test_a_customer_who_pays_by_invoice_only_gets_nothing(customer: Customer) -> None:
    card(customer)
    renewal(customer, method="send_invoice")

    assert remind_expiring_cards(now=NIGHT) == 0


def test_a_card_that_is_not_the_default_gets_nothing(customer: Customer) -> None:
    card(customer)
    card(customer, exp_year=2030, external_id="pm_2")  # the new default
    renewal(customer)

    assert remind_expiring_cards(now=NIGHT) == 0


def test_an_english_customer_is_asked_in_english(make_customer: Callable[..., Customer]) -> None:
    customer = make_customer(
        "cus_en",
        name="Jane Smith",
        email="jane@example.com",
        locale="en-US",
        country="US",
        time_zone="America/New_York",
    )
    card(customer)
    renewal(customer)

    assert remind_expiring_cards(now=NIGHT) == 1

    message = Message.objects.get()
    assert message.locale == "en"
    assert message.subject == "Please update your Visa card ending in 4242 before it expires"
    assert "expires at the end of July 2026" in message.body_text
    assert "will never ask for your card number by email" in message.body_text


@pytest.mark.parametrize(
    ("locale", "subject", "body"),
    [
        ("th-TH", "โปรดอัปเดตข้อมูลบัตรที่ลงท้ายด้วย 4242 ก่อนบัตรหมดอายุ", "บัตรหมายเลขลงท้าย 4242"),
        (
            "en-GB",
            "Please update your card ending in 4242 before it expires",
            "the card ending in 4242",
        ),
    ],
)
def test_a_card_of_a_brand_stripe_does_not_know_is_not_called_unknown(
    make_customer: Callable[..., Customer], locale: str, subject: str, body: str
) -> None:
    # Stripe's card.brand is "unknown" (a legacy Card's "Unknown") when it cannot tell.
    customer = make_customer("cus_x", locale=locale, time_zone="Asia/Bangkok")
    method = card(customer)
    services.upsert_payment_method(
        external_id=method.external_id,
        customer=customer.external_id,
        now=NIGHT - timedelta(days=59),
        source="stripe",
        brand="unknown",
    )
    renewal(customer)

    assert remind_expiring_cards(now=NIGHT) == 1

    message = Message.objects.get()
    assert message.subject == subject
    assert body in message.body_text and body in message.body_html
    for text in (message.subject, message.body_text, message.body_html):
        assert "unknown" not in text.lower()


def test_a_request_counts_against_the_daily_cap_of_a_dunning_reminder(
    customer: Customer,
) -> None:
    # Thailand: one contact a day, whatever it is about.
    card(customer)
    renewal(customer)
    remind_expiring_cards(now=NIGHT)
    other = Message.objects.get()

    verdict = contact_verdict(customer, debt="42", now=NEXT_MORNING)
    assert verdict.allowed_at is not None and verdict.allowed_at > other.send_after


def test_the_request_is_delivered_and_listed_without_a_case(
    customer: Customer, smtp_server: SmtpServer, api: ApiClient
) -> None:
    card(customer)
    renewal(customer)
    remind_expiring_cards(now=NIGHT)
    transport = SmtpTransport(SmtpConfig.from_url(smtp_server.url))

    assert deliver_due(now=NIGHT, transport=transport, rng=random.Random(1)).sent == 0
    report = deliver_due(now=NEXT_MORNING, transport=transport, rng=random.Random(1))

    assert report.sent == 1
    [received] = smtp_server.mailbox.received
    assert received["To"].addresses[0].addr_spec == "somchai@example.co.th"
    assert "4242" in str(received["Subject"])
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    message = Message.objects.get()
    listed = api.get("/messages").json()["results"]
    assert [(m["id"], m["case"], m["status"], m["step"]) for m in listed] == [
        (message.pk, None, "sent", "card.expiring")
    ]
    assert api.get("/messages", case=1).json()["results"] == []
    assert api.get(f"/messages/{message.pk}").json()["case"] is None


def test_a_failed_request_is_recorded_on_the_message_alone(
    customer: Customer, smtp_server: SmtpServer
) -> None:
    card(customer)
    renewal(customer)
    remind_expiring_cards(now=NIGHT)
    smtp_server.mailbox.answer = "550 no such user"
    transport = SmtpTransport(SmtpConfig.from_url(smtp_server.url))

    report = deliver_due(now=NEXT_MORNING, transport=transport, rng=random.Random(1))

    assert report.failed == 1
    assert Message.objects.get().status == "failed"


def test_the_card_link_opens_the_card_page_in_the_customer_s_language(
    customer: Customer, client: Any
) -> None:
    method = card(customer)

    response = client.get("/card/" + links.card_token(customer.pk, method.pk))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Visa" in page and "4242" in page and "กรกฎาคม พ.ศ. 2569" in page
    assert response["Cache-Control"] == "no-store"
    assert client.get("/card/" + links.pay_token(customer.pk, method.pk)).status_code == 404


def test_the_card_template_asks_for_the_card_and_its_link_and_no_payment() -> None:
    rules = lint_rules("card.expiring")
    assert (rules.asks_for_payment, rules.final, rules.about_card) == (False, False, True)
    for locale in ("en", "th"):
        template = default_template("card.expiring", locale)
        assert lint_template(template) == []
        broken = template.__class__(
            key=template.key,
            locale=locale,
            subject=template.subject,
            text=template.text.replace("{{ card.update_link }}", "our website"),
            html=template.html,
        )
        assert [p.code for p in lint_template(broken)] == ["missing_card_link"]


def test_templates_check_lints_the_card_request_too(
    db: None, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("templates", "check")

    out = capsys.readouterr().out
    assert "ok    card.expiring/en/default" in out and "ok    card.expiring/th/default" in out


# ---------------------------------------------------------------- Stripe, story S4


@pytest.fixture
def stripe(db: None, settings: Any, monkeypatch: pytest.MonkeyPatch) -> StripePoster:
    settings.DUNNING_STRIPE_WEBHOOK_SECRET = [SECRET]
    return StripePoster(monkeypatch)


def play_s4(stripe: StripePoster, *, skip: tuple[int, ...] = ()) -> dict[str, Any]:
    told = story("S4")
    for step, event in zip(told["timeline"], told["events"], strict=True):
        if step["seq"] in skip:
            continue
        response = stripe.send(event)
        assert response.status_code == 200, (step, response.content)
    return told


def worker_pass(now: str, settings: Any, tmp_path: Any) -> None:
    settings.DUNNING_SMTP_URL = ""
    settings.DUNNING_OUTBOX_DIR = tmp_path
    call_command("worker", "--once", "--now", now)


def test_s4_a_card_left_to_expire_gets_the_request_before_the_next_renewal(
    stripe: StripePoster, settings: Any, tmp_path: Any
) -> None:
    # S4 as if the customer had not updated the card (seq 3): the July renewal is
    # paid with it, and the August one (12 August) would come after it expires.
    cast = play_s4(stripe, skip=(3,))["cast"]
    method = PaymentMethod.objects.get(external_id="card_19qdvuUgLm7QxR2nVbt8R3St")
    services.upsert_payment_method(
        external_id=method.external_id,
        customer=cast["customer"],
        now=at(1783846808),
        source="test",
        is_default=True,  # the customer's default_source
    )

    worker_pass("2026-07-12T10:00:00Z", settings, tmp_path)  # a month before: too early
    assert not Message.objects.exists()
    worker_pass("2026-07-20T09:00:00Z", settings, tmp_path)  # Monday, 10:00 in Dublin

    message = Message.objects.get()
    assert (message.case, message.step, message.to, message.locale) == (
        None,
        "card.expiring",
        cast["customer_email"],
        "en",
    )
    assert "Visa card ending in 3220" in message.subject
    assert "expires at the end of July 2026" in message.body_text
    assert "€" not in message.body_text and "12.00" not in message.body_text


@pytest.mark.parametrize(("canceled", "asked"), [("canceled", False), ("active", True)])
def test_s4_a_customer_whose_subscription_ended_is_not_asked_to_keep_it_running(
    stripe: StripePoster, settings: Any, tmp_path: Any, canceled: str, asked: bool
) -> None:
    # As above, but after the July renewal the customer cancels (or, for the
    # contrast, a later update leaves the subscription active): no renewal is coming.
    cast = play_s4(stripe, skip=(3,))["cast"]
    services.upsert_payment_method(
        external_id="card_19qdvuUgLm7QxR2nVbt8R3St",
        customer=cast["customer"],
        now=at(1783846808),
        source="test",
        is_default=True,
    )
    subscription = copy.deepcopy(story_event("S4", 4)["data"]["object"])
    subscription["status"] = canceled
    kind = "deleted" if canceled == "canceled" else "updated"
    created = story_event("S4", 12)["created"] + 86_400
    response = stripe.send(
        envelope(f"customer.subscription.{kind}", subscription, id="evt_cancel", created=created)
    )
    assert response.status_code == 200

    worker_pass("2026-07-20T09:00:00Z", settings, tmp_path)

    assert Message.objects.filter(step="card.expiring").exists() is asked


def test_s4_as_told_the_updated_card_needs_no_request(
    stripe: StripePoster, settings: Any, tmp_path: Any
) -> None:
    cast = play_s4(stripe)["cast"]
    PaymentMethod.objects.filter(customer__external_id=cast["customer"]).update(is_default=True)

    worker_pass("2026-07-20T09:00:00Z", settings, tmp_path)

    assert not Message.objects.filter(step="card.expiring").exists()


def test_a_card_that_stops_at_the_very_instant_of_the_renewal_is_asked_about(
    make_customer: Callable[..., Customer],
) -> None:
    # A London customer renewing on the 1st at midnight (GMT = UTC in winter).
    last_renewal = datetime(2026, 2, 1, 0, 0, tzinfo=UTC)
    now = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
    customer = make_customer(
        "cus_uk", time_zone="Europe/London", locale="en-GB", country="GB", email="j@example.co.uk"
    )
    method = card(
        customer, exp_month=2, exp_year=2026, external_id="pm_uk", added=now - timedelta(days=60)
    )  # good through 28 February: stops at 1 March 00:00 London
    renewal(customer, due_at=last_renewal, external_id="in_feb")

    # The next renewal charges at 1 March 00:00 London, the first instant the card
    # no longer works: it will be declined, so the customer must be asked.
    assert [card.method for card in expiring_cards(now=now)] == [method]


def test_s4_as_the_webhooks_tell_it_the_only_card_on_file_is_asked_about(
    stripe: StripePoster, settings: Any, tmp_path: Any
) -> None:
    # No customer.* event names the legacy card the default_source, but it is the
    # only card on file: the one the renewal and any retry are charged to.
    cast = play_s4(stripe, skip=(3,))["cast"]
    method = PaymentMethod.objects.get(external_id="card_19qdvuUgLm7QxR2nVbt8R3St")
    assert (method.is_default, method.detached_at) == (False, None)

    worker_pass("2026-07-20T09:00:00Z", settings, tmp_path)

    message = Message.objects.get(step="card.expiring")
    assert message.to == cast["customer_email"]
    assert "Visa card ending in 3220" in message.subject


def test_of_two_cards_with_no_default_the_one_charged_is_asked_about(
    customer: Customer,
) -> None:
    # Dunning charges the default, else the card saved last (retries.card_to_charge).
    card(
        customer,
        external_id="pm_old",
        exp_year=2030,
        added=NIGHT - timedelta(days=90),
        default=False,
    )
    charged = card(customer, external_id="pm_new", added=NIGHT - timedelta(days=30), default=False)
    renewal(customer)

    assert [due.method for due in expiring_cards(now=NIGHT)] == [charged]


def test_of_two_cards_with_no_default_one_not_charged_is_not_asked_about(
    customer: Customer,
) -> None:
    # pm_old expires in July, but pm_new, saved later, is the card charged.
    card(customer, external_id="pm_old", added=NIGHT - timedelta(days=90), default=False)
    card(
        customer,
        external_id="pm_new",
        exp_year=2030,
        added=NIGHT - timedelta(days=30),
        default=False,
    )
    renewal(customer)

    assert expiring_cards(now=NIGHT) == []


# ---------------------------------------------------------------- a request waiting to go out


def written_overnight(customer: Customer) -> tuple[PaymentMethod, Message]:
    """A request written at night in Bangkok, waiting for 08:00."""
    method = card(customer)
    renewal(customer)
    assert remind_expiring_cards(now=NIGHT) == 1
    message = Message.objects.get()
    assert (message.status, message.send_after) == ("scheduled", NEXT_MORNING)
    return method, message


def delivered_next_morning(smtp_server: SmtpServer) -> int:
    transport = SmtpTransport(SmtpConfig.from_url(smtp_server.url))
    return deliver_due(now=NEXT_MORNING, transport=transport, rng=random.Random(1)).sent


@pytest.mark.parametrize(
    "change",
    [
        {"exp_month": 7, "exp_year": 2030},  # the card updater renews the expiry
        {"last4": "0005", "exp_month": 9, "exp_year": 2031},  # it brings a new number
    ],
)
def test_a_card_updated_overnight_is_not_asked_about_in_the_morning(
    customer: Customer, smtp_server: SmtpServer, change: dict[str, Any]
) -> None:
    method, message = written_overnight(customer)

    services.upsert_payment_method(
        external_id=method.external_id,
        customer=customer.external_id,
        now=NIGHT + timedelta(hours=2),
        source="stripe",
        **change,
    )

    assert delivered_next_morning(smtp_server) == 0
    assert smtp_server.mailbox.received == []
    message.refresh_from_db()
    assert message.status == "canceled"
    assert remind_expiring_cards(now=NEXT_MORNING) == 0


def test_a_new_card_saved_overnight_cancels_the_request_about_the_old_one(
    customer: Customer, smtp_server: SmtpServer
) -> None:
    _, message = written_overnight(customer)

    # Saved on the card page (or in the billing system): the new default.
    card(customer, external_id="pm_new", exp_year=2030, added=NIGHT + timedelta(hours=1))

    assert delivered_next_morning(smtp_server) == 0
    message.refresh_from_db()
    assert message.status == "canceled"


def test_a_card_taken_off_file_overnight_is_not_asked_about(
    customer: Customer, smtp_server: SmtpServer
) -> None:
    method, message = written_overnight(customer)

    services.detach_payment_method(
        external_id=method.external_id, now=NIGHT + timedelta(hours=1), source="stripe"
    )

    assert delivered_next_morning(smtp_server) == 0
    message.refresh_from_db()
    assert message.status == "canceled"


def test_a_change_that_leaves_the_card_expiring_keeps_the_request(
    customer: Customer, smtp_server: SmtpServer
) -> None:
    method, message = written_overnight(customer)

    # The issuing country is filled in: the same card, still running out in July.
    services.upsert_payment_method(
        external_id=method.external_id,
        customer=customer.external_id,
        now=NIGHT + timedelta(hours=1),
        source="stripe",
        country="TH",
    )

    assert delivered_next_morning(smtp_server) == 1
    message.refresh_from_db()
    assert message.status == "sent"


def test_s4_a_card_updated_at_stripe_before_the_morning_is_not_asked_about(
    stripe: StripePoster, settings: Any, tmp_path: Any
) -> None:
    # The request is written at 03:00 in Dublin and waits for the morning; the
    # customer updates the card's expiry at Stripe (S4 seq 3) before it goes out.
    play_s4(stripe, skip=(3,))
    worker_pass("2026-07-20T02:00:00Z", settings, tmp_path)
    message = Message.objects.get(step="card.expiring")
    assert message.status == "scheduled"
    updated = story_event("S4", 3)
    updated["created"] = int(datetime(2026, 7, 20, 3, 0, tzinfo=UTC).timestamp())
    assert stripe.send(updated).status_code == 200

    worker_pass("2026-07-20T09:00:00Z", settings, tmp_path)

    message.refresh_from_db()
    assert message.status == "canceled"
    assert not Message.objects.exclude(pk=message.pk).exists()
    assert list(tmp_path.iterdir()) == []


def test_a_case_opening_overnight_withdraws_the_waiting_card_request(
    customer: Customer,
) -> None:
    # The case's own reminders ask for what is needed; the request would also take
    # the day's one contact (Thailand) ahead of the case's first reminder.
    from dunning.engine.cases import sync_cases
    from dunning.engine.decisions import decide_due_cases

    _, message = written_overnight(customer)
    overdue(customer)
    policies.ensure_default_policies(now=NIGHT)
    sync_cases(now=NIGHT + timedelta(hours=1))

    message.refresh_from_db()
    assert message.status == "canceled"
    decide_due_cases(now=NEXT_MORNING)
    first = Message.objects.exclude(pk=message.pk).get()
    assert first.case is not None and first.send_after == NEXT_MORNING


@pytest.mark.parametrize(
    ("dues", "asked"),
    [
        # Yearly: renewed each 5 August; the card stops on 1 August 2026.
        ((datetime(2024, 8, 5, 3, tzinfo=UTC), datetime(2025, 8, 5, 3, tzinfo=UTC)), True),
        # Quarterly: 5 February, 5 May; the next renewal is 5 August.
        ((datetime(2026, 2, 5, 3, tzinfo=UTC), datetime(2026, 5, 5, 3, tzinfo=UTC)), True),
        # Yearly, but renewed on 5 January: the card will be replaced long before.
        ((datetime(2025, 1, 5, 3, tzinfo=UTC), datetime(2026, 1, 5, 3, tzinfo=UTC)), False),
    ],
)
def test_the_next_renewal_follows_the_customer_s_billing_interval(
    customer: Customer, dues: tuple[datetime, ...], asked: bool
) -> None:
    card(customer, added=dues[0] - timedelta(days=30))
    for n, due in enumerate(dues):
        renewal(customer, due_at=due, external_id=f"in_renewal_{n}")

    assert remind_expiring_cards(now=NIGHT) == (1 if asked else 0)


def test_months_are_added_on_the_local_calendar_and_clamped_to_the_month_s_end() -> None:
    from zoneinfo import ZoneInfo

    from dunning.engine.predunning import add_months, billing_interval

    bangkok = ZoneInfo("Asia/Bangkok")
    jan31 = datetime(2026, 1, 31, 3, tzinfo=bangkok)
    assert add_months(jan31, bangkok).date().isoformat() == "2026-02-28"
    assert add_months(jan31, bangkok, 12).date().isoformat() == "2027-01-31"
    leap = datetime(2028, 2, 29, 3, tzinfo=bangkok)
    assert add_months(leap, bangkok, 12).date().isoformat() == "2029-02-28"
    assert add_months(datetime(2026, 11, 5, tzinfo=bangkok), bangkok, 3).month == 2
    # The interval is read from the last two renewals, to the nearest usual one.
    assert billing_interval(jan31, None) == 1
    assert billing_interval(jan31, jan31 - timedelta(days=28)) == 1
    assert billing_interval(jan31, jan31 - timedelta(days=92)) == 3
    assert billing_interval(jan31, jan31 - timedelta(days=365)) == 12
