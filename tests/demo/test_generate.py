"""The demo generator is pure: a seed and `now` in, plain data out, no database."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta

import pytest

from dunning.core import fields
from dunning.demo.data import DemoData, overdue_days
from dunning.demo.generate import MAX_AGE_DAYS, generate
from tests.conftest import NOW

# Every decline_code in Stripe's list (shared/reference/rules.md 1.2), kept
# here apart from the generator so the test checks it against the source.
STRIPE_DECLINE_CODES = frozenset(
    {
        "authentication_required",
        "approve_with_id",
        "call_issuer",
        "card_not_supported",
        "card_velocity_exceeded",
        "currency_not_supported",
        "do_not_honor",
        "do_not_try_again",
        "duplicate_transaction",
        "expired_card",
        "fraudulent",
        "generic_decline",
        "incorrect_number",
        "incorrect_cvc",
        "incorrect_pin",
        "incorrect_zip",
        "insufficient_funds",
        "invalid_account",
        "invalid_amount",
        "invalid_cvc",
        "invalid_expiry_month",
        "invalid_expiry_year",
        "invalid_number",
        "invalid_pin",
        "issuer_not_available",
        "lost_card",
        "merchant_blacklist",
        "new_account_information_available",
        "no_action_taken",
        "not_permitted",
        "offline_pin_required",
        "online_or_offline_pin_required",
        "pickup_card",
        "pin_try_exceeded",
        "processing_error",
        "reenter_transaction",
        "restricted_card",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "security_violation",
        "service_not_allowed",
        "stolen_card",
        "stop_payment_order",
        "testmode_decline",
        "transaction_not_allowed",
        "try_again_later",
        "withdrawal_count_limit_exceeded",
    }
)
STRIPE_ADVICE_CODES = frozenset({"try_again_later", "do_not_try_again", "confirm_card_data"})
# Declines after which the same card is not charged again (rules.md 1.2: CUSTOMER and HARD).
NEVER_RETRIED = frozenset(
    {
        "expired_card",
        "authentication_required",
        "incorrect_cvc",
        "lost_card",
        "stolen_card",
        "transaction_not_allowed",
    }
)
THAI = re.compile(r"[\u0E00-\u0E7F]")


@pytest.fixture(scope="module")
def data() -> DemoData:
    return generate(seed=7, now=NOW)


def test_the_same_seed_and_now_give_the_same_data(data: DemoData) -> None:
    assert generate(seed=7, now=NOW) == data


def test_another_seed_or_another_now_gives_other_data(data: DemoData) -> None:
    assert generate(seed=8, now=NOW) != data
    later = generate(seed=7, now=NOW + timedelta(days=1))
    assert later != data
    # The mix is the same; only the moments move with `now`.
    assert [c.name for c in later.customers] == [c.name for c in data.customers]


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        generate(seed=1, now=datetime(2026, 3, 16))  # noqa: DTZ001 - the point of the test


def test_there_are_about_three_hundred_customers_in_thai_english_japanese_and_german(
    data: DemoData,
) -> None:
    locales = Counter(c.locale for c in data.customers)
    assert len(data.customers) == 300
    assert set(locales) == {"th-TH", "en", "en-US", "ja-JP", "de-DE"}
    assert locales["th-TH"] > 150
    zones = {c.locale: c.time_zone for c in data.customers if c.locale != "en-US"}
    assert zones == {
        "th-TH": "Asia/Bangkok",
        "en": "Asia/Bangkok",
        "ja-JP": "Asia/Tokyo",
        "de-DE": "Europe/Berlin",
    }
    assert {c.time_zone for c in data.customers if c.locale == "en-US"} <= {
        "America/New_York",
        "America/Chicago",
        "America/Los_Angeles",
        "America/Denver",
    }


def test_thai_customers_are_named_in_thai_script_people_and_companies_alike(
    data: DemoData,
) -> None:
    thai = [c for c in data.customers if c.locale == "th-TH"]
    assert all(THAI.search(c.name) for c in thai)
    firms = [c.name for c in thai if c.is_business]
    assert any(name.startswith("บริษัท ") and name.endswith(" จำกัด") for name in firms)
    assert any(not c.is_business for c in thai)
    assert len(set(firms)) == len(firms)


def test_contacts_are_valid_and_mail_only_reserved_example_domains(data: DemoData) -> None:
    for customer in data.customers:
        assert fields.normalize_email(customer.email) == customer.email
        assert re.search(r"@(example\.(com|net|org)|[a-z0-9-]+\.example)$", customer.email)
        if customer.phone:
            assert fields.normalize_phone(customer.phone) == customer.phone
    thai_mobiles = [c.phone for c in data.customers if c.phone.startswith("+668")]
    assert len(thai_mobiles) > 100


def test_open_invoices_are_overdue_by_every_age_up_to_120_days_for_any_seed() -> None:
    for seed in (1, 2, 3):
        data = generate(seed=seed, now=NOW)
        ages = {overdue_days(i, NOW) for i in data.invoices} - {None}
        assert ages == set(range(MAX_AGE_DAYS + 1))
        assert any(i.status == "open" and i.due_at > NOW for i in data.invoices)


def test_every_fact_happens_at_or_before_now_and_after_what_it_depends_on(data: DemoData) -> None:
    joined = {c.external_id: c.created_at for c in data.customers}
    cards = {card.external_id: card for card in data.cards}
    for card in data.cards:
        assert joined[card.customer] <= card.added_at <= NOW
    for invoice in data.invoices:
        assert joined[invoice.customer] <= invoice.issued_at <= invoice.due_at
        assert invoice.issued_at <= NOW
        moments = [a.attempted_at for a in invoice.attempts] + [
            p.received_at for p in invoice.payments
        ]
        assert all(invoice.issued_at < moment <= NOW for moment in moments)
        for attempt in invoice.attempts:
            card = cards[attempt.payment_method]
            assert card.customer == invoice.customer and card.added_at < attempt.attempted_at
        if invoice.status_change:
            assert max(moments, default=invoice.issued_at) < invoice.status_change.at <= NOW


def test_amounts_respect_each_currency_and_lines_add_up(data: DemoData) -> None:
    assert {i.currency for i in data.invoices} == {"THB", "USD", "JPY", "EUR"}
    for invoice in data.invoices:
        assert sum(line.amount for line in invoice.lines) == invoice.amount_due > 0
        assert 0 <= invoice.amount_paid <= invoice.amount_due
    monthly = {
        (i.currency, i.context.get("plan")): i.amount_due
        for i in data.invoices
        if i.context.get("interval") == "month" and len(i.lines) == 1
    }
    # JPY has no minor unit: the 4,980 yen plan is 4980; THB has two decimals.
    assert monthly[("JPY", "Standard")] == 4980
    assert monthly[("THB", "Pro")] == 99000
    assert monthly[("EUR", "Basic")] == 990


def test_both_collection_methods_with_cards_for_the_automatic_ones(data: DemoData) -> None:
    methods = Counter(i.collection_method for i in data.invoices)
    assert methods["charge_automatically"] > 100 and methods["send_invoice"] > 100
    with_cards = {card.customer for card in data.cards}
    for invoice in data.invoices:
        if invoice.collection_method == "charge_automatically":
            assert invoice.customer in with_cards and invoice.attempts and not invoice.payments
        else:
            assert not invoice.attempts
    assert {card.brand for card in data.cards} == {"visa", "mastercard", "jcb"}


def test_some_cards_expire_soon_and_some_have_expired(data: DemoData) -> None:
    this_month = NOW.year * 12 + NOW.month
    months = [card.exp_year * 12 + card.exp_month for card in data.cards]
    assert any(this_month <= m <= this_month + 1 for m in months)
    assert any(m < this_month for m in months)
    assert all(1 <= card.exp_month <= 12 and len(card.last4) == 4 for card in data.cards)


def test_declines_use_real_stripe_codes_and_a_hard_decline_is_never_retried(
    data: DemoData,
) -> None:
    failed = [a for i in data.invoices for a in i.attempts if a.outcome == "failed"]
    codes = Counter(a.decline_code for a in failed)
    assert set(codes) <= STRIPE_DECLINE_CODES
    assert {"insufficient_funds", "do_not_honor", "generic_decline", "expired_card"} <= set(codes)
    assert codes.most_common(1)[0][0] == "insufficient_funds"
    assert {a.advice_code for a in failed} - {""} <= STRIPE_ADVICE_CODES
    for invoice in data.invoices:
        for before, after in zip(invoice.attempts, invoice.attempts[1:], strict=False):
            hard = before.decline_code in NEVER_RETRIED or before.advice_code == "do_not_try_again"
            if hard and after.payment_method == before.payment_method:
                # Only the customer, authenticating on the pay page, charges it again.
                assert before.decline_code == "authentication_required"
                assert after.outcome == "succeeded"


def test_there_are_paid_part_paid_void_uncollectible_and_recovered_invoices(
    data: DemoData,
) -> None:
    statuses = Counter(i.status for i in data.invoices)
    assert {"paid", "open", "void", "uncollectible"} <= set(statuses)
    assert any(i.status == "open" and 0 < i.amount_paid < i.amount_due for i in data.invoices)
    recovered = [
        i
        for i in data.invoices
        if i.attempts and i.attempts[0].outcome == "failed" and i.status == "paid"
    ]
    assert len(recovered) > 10
    assert any(len({a.payment_method for a in i.attempts}) == 2 for i in recovered)


def test_invoice_numbers_follow_the_order_of_issue(data: DemoData) -> None:
    ordered = sorted(data.invoices, key=lambda i: i.issued_at)
    assert [i.external_id for i in ordered] == sorted(i.external_id for i in data.invoices)
    assert len({i.number for i in data.invoices}) == len(data.invoices)
    assert all(re.fullmatch(r"INV-\d{4}-\d{5}", i.number) for i in data.invoices)
