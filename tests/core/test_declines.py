from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dunning.core.declines import (
    CUSTOMER_TEXT,
    DECLINE_CODES,
    UNKNOWN_DECLINE,
    WORDING_TEXT,
    Brand,
    Classification,
    CustomerRequest,
    DeclineClass,
    MerchantCheck,
    Wording,
    classify_decline,
    customer_text,
    may_be_card_wide,
    visa_category,
)

# The rules.md 1.2 table as written there: decline code -> engine class.
RULES_TABLE = {
    "authentication_required": "CUSTOMER",
    "approve_with_id": "SOFT",
    "call_issuer": "SOFT-ISSUER",
    "card_not_supported": "CUSTOMER",
    "card_velocity_exceeded": "SOFT",
    "currency_not_supported": "CUSTOMER",
    "do_not_honor": "SOFT-ISSUER",
    "do_not_try_again": "HARD",
    "duplicate_transaction": "N/A",
    "expired_card": "CUSTOMER",
    "fraudulent": "HARD",
    "generic_decline": "SOFT-ISSUER",
    "incorrect_number": "CUSTOMER",
    "incorrect_cvc": "CUSTOMER",
    "incorrect_pin": "N/A",
    "incorrect_zip": "CUSTOMER",
    "insufficient_funds": "SOFT",
    "invalid_account": "CUSTOMER",
    "invalid_amount": "CUSTOMER",
    "invalid_cvc": "CUSTOMER",
    "invalid_expiry_month": "CUSTOMER",
    "invalid_expiry_year": "CUSTOMER",
    "invalid_number": "CUSTOMER",
    "invalid_pin": "N/A",
    "issuer_not_available": "SOFT",
    "lost_card": "HARD",
    "merchant_blacklist": "HARD",
    "new_account_information_available": "CUSTOMER",
    "no_action_taken": "SOFT-ISSUER",
    "not_permitted": "HARD",
    "offline_pin_required": "N/A",
    "online_or_offline_pin_required": "N/A",
    "pickup_card": "HARD",
    "pin_try_exceeded": "CUSTOMER",
    "processing_error": "SOFT",
    "reenter_transaction": "SOFT",
    "restricted_card": "HARD",
    "revocation_of_all_authorizations": "HARD",
    "revocation_of_authorization": "HARD",
    "security_violation": "HARD",
    "service_not_allowed": "HARD",
    "stolen_card": "HARD",
    "stop_payment_order": "HARD",
    "testmode_decline": "N/A",
    "transaction_not_allowed": "HARD",
    "try_again_later": "SOFT",
    "withdrawal_count_limit_exceeded": "SOFT",
}

# The words a customer must never read about their card (C01), in both languages.
FORBIDDEN = {
    "en": ("stolen", "lost", "fraud", "theft", "blacklist", "blocked"),
    "th": ("ถูกขโมย", "ขโมย", "สูญหาย", "ทุจริต", "ฉ้อโกง"),
}


def engine_class(classification: Classification) -> str:
    """The rules.md 1.2 label of a classification."""
    if classification.kind is DeclineClass.RETRY_LATER:
        return "SOFT-ISSUER" if classification.contact_issuer else "SOFT"
    return {
        DeclineClass.CUSTOMER_ACTION: "CUSTOMER",
        DeclineClass.NEVER_RETRY: "HARD",
        DeclineClass.NOT_A_RETRY_CASE: "N/A",
    }[classification.kind]


def result(classification: Classification) -> str:
    """The acceptance-cases.md vocabulary for a classification."""
    return {
        DeclineClass.RETRY_LATER: "RETRY_ALLOWED",
        DeclineClass.CUSTOMER_ACTION: "CUSTOMER_ACTION",
        DeclineClass.NEVER_RETRY: "NO_RETRY",
        DeclineClass.NOT_A_RETRY_CASE: "NOT_A_RETRY_CASE",
    }[classification.kind]


# ---------------------------------------------------------------- the table


def test_every_code_of_the_rules_table_is_classified_and_nothing_else() -> None:
    assert set(DECLINE_CODES) == set(RULES_TABLE)


@pytest.mark.parametrize(("code", "expected"), sorted(RULES_TABLE.items()))
def test_each_code_gets_the_class_of_the_rules_table(code: str, expected: str) -> None:
    assert engine_class(classify_decline(code)) == expected


@pytest.mark.parametrize("code", sorted(RULES_TABLE))
def test_the_customer_is_asked_something_exactly_when_the_failure_is_theirs(code: str) -> None:
    classification = classify_decline(code)
    told = classification.kind is not DeclineClass.NOT_A_RETRY_CASE

    assert (classification.request is not None) == told
    assert (classification.wording is not None) == told
    assert classification.reasons  # every answer says why


# ---------------------------------------------------------------- acceptance cases


@pytest.mark.parametrize(
    "code", ["lost_card", "stolen_card", "pickup_card", "fraudulent", "merchant_blacklist"]
)
def test_C01_hard_codes_are_never_retried_and_read_as_a_generic_decline(code: str) -> None:
    classification = classify_decline(code)
    generic = classify_decline("generic_decline")

    assert result(classification) == "NO_RETRY"
    assert classification.request is CustomerRequest.USE_ANOTHER_METHOD
    assert classification.wording is generic.wording is Wording.BANK_DECLINED
    for locale, words in FORBIDDEN.items():
        text = customer_text(classification, locale).lower()
        assert text.startswith(WORDING_TEXT[Wording.BANK_DECLINED][locale].lower())
        assert not any(word in text for word in words)
    assert customer_text(classification, "en").startswith("Your bank declined the payment.")


def test_C02_insufficient_funds_may_be_retried() -> None:
    classification = classify_decline("insufficient_funds")

    assert result(classification) == "RETRY_ALLOWED"
    assert not classification.contact_issuer
    assert classification.request is CustomerRequest.PAY_OR_WAIT


def test_C03_an_expired_card_asks_for_a_card_update() -> None:
    classification = classify_decline("expired_card")

    assert result(classification) == "CUSTOMER_ACTION"
    assert classification.request is CustomerRequest.UPDATE_CARD
    assert classification.wording is Wording.CARD_EXPIRED


def test_C04_authentication_required_asks_for_on_session_authentication() -> None:
    classification = classify_decline("authentication_required")

    assert result(classification) == "CUSTOMER_ACTION"
    assert classification.request is CustomerRequest.AUTHENTICATE


@pytest.mark.parametrize(
    "code",
    ["incorrect_number", "invalid_number", "incorrect_cvc", "invalid_expiry_year", "incorrect_zip"],
)
def test_C05_wrong_card_data_asks_the_customer_to_confirm_it(code: str) -> None:
    classification = classify_decline(code)

    assert result(classification) == "CUSTOMER_ACTION"
    assert classification.request is CustomerRequest.CONFIRM_CARD_DATA


@pytest.mark.parametrize(
    ("code", "advice", "expected"),
    [
        ("generic_decline", "do_not_try_again", "NO_RETRY"),
        ("do_not_honor", "try_again_later", "RETRY_ALLOWED"),
        ("insufficient_funds", "confirm_card_data", "CUSTOMER_ACTION"),
    ],
    ids=["a", "b", "c"],
)
def test_C06_the_advice_code_wins_over_the_decline_code(
    code: str, advice: str, expected: str
) -> None:
    assert result(classify_decline(code, advice_code=advice)) == expected


def test_C06_the_advice_code_says_so_in_the_reasons() -> None:
    classification = classify_decline("do_not_honor", advice_code="try_again_later")

    assert classification.contact_issuer  # still SOFT-ISSUER: the issuer said why not
    assert any("try_again_later overrides" in reason for reason in classification.reasons)


@pytest.mark.parametrize(
    "code",
    ["revocation_of_authorization", "revocation_of_all_authorizations", "stop_payment_order"],
)
def test_C07_a_revoked_authorisation_stops_recurring_billing(code: str) -> None:
    classification = classify_decline(code)

    assert result(classification) == "NO_RETRY"
    assert classification.stop_recurring


@pytest.mark.parametrize(
    "network_code", ["04", "07", "12", "15", "41", "43", "46", "57", "R0", "R1", "R3"]
)
def test_N01_visa_category_1_is_never_retried_whatever_stripe_says(network_code: str) -> None:
    classification = classify_decline(
        "insufficient_funds",
        advice_code="try_again_later",
        network_decline_code=network_code,
        brand=Brand.VISA,
    )

    assert visa_category(network_code) == 1
    assert result(classification) == "NO_RETRY"
    assert any("category 1" in reason for reason in classification.reasons)


def test_N03a_mastercard_advice_03_is_never_retried() -> None:
    classification = classify_decline(
        "do_not_honor", network_advice_code="03", brand=Brand.MASTERCARD
    )

    assert result(classification) == "NO_RETRY"
    assert not classification.stop_recurring


def test_N03b_mastercard_advice_21_also_cancels_the_recurring_agreement() -> None:
    classification = classify_decline(
        "generic_decline",
        advice_code="try_again_later",
        network_advice_code="21",
        brand=Brand.MASTERCARD,
    )

    assert result(classification) == "NO_RETRY"
    assert classification.stop_recurring


# Mastercard's timing advice codes and the waits they ask for (rules.md 2.2, case N04).
MAC_WAITS = [
    ("24", timedelta(hours=1)),
    ("25", timedelta(hours=24)),
    ("26", timedelta(days=2)),
    ("27", timedelta(days=4)),
    ("28", timedelta(days=6)),
    ("29", timedelta(days=8)),
    ("30", timedelta(days=10)),
]


@pytest.mark.parametrize(
    ("mac", "wait"),
    MAC_WAITS,
)
def test_N04_mastercard_timing_advice_sets_the_wait(mac: str, wait: timedelta) -> None:
    classification = classify_decline(
        "insufficient_funds", network_decline_code="51", network_advice_code=mac
    )

    assert result(classification) == "RETRY_ALLOWED"
    assert classification.retry_after == wait


# ---------------------------------------------------------------- precedence and defaults


def test_a_soft_advice_never_loosens_a_hard_decline() -> None:
    classification = classify_decline("lost_card", advice_code="try_again_later")

    assert result(classification) == "NO_RETRY"


def test_confirm_card_data_keeps_the_more_precise_customer_request() -> None:
    # Stripe sends expired_card with confirm_card_data; "update your card" is the better ask.
    classification = classify_decline("expired_card", advice_code="confirm_card_data")

    assert classification.request is CustomerRequest.UPDATE_CARD


def test_try_again_later_lets_a_customer_decline_be_retried() -> None:
    assert result(classify_decline("expired_card", advice_code="try_again_later")) == (
        "RETRY_ALLOWED"
    )


def test_new_account_information_from_mastercard_asks_for_the_new_card() -> None:
    classification = classify_decline(
        "insufficient_funds",
        advice_code="try_again_later",
        network_advice_code="01",
        brand=Brand.MASTERCARD,
    )

    assert result(classification) == "CUSTOMER_ACTION"
    assert classification.request is CustomerRequest.UPDATE_CARD


def test_mastercard_advice_04_is_an_integration_problem() -> None:
    classification = classify_decline("generic_decline", network_advice_code="04")

    assert result(classification) == "NOT_A_RETRY_CASE"
    assert classification.merchant_check is MerchantCheck.FIX_INTEGRATION


def test_a_duplicate_asks_the_business_to_look_for_the_existing_charge() -> None:
    classification = classify_decline("duplicate_transaction")

    assert classification.merchant_check is MerchantCheck.FIND_EXISTING_CHARGE
    assert customer_text(classification, "en") == ""


@pytest.mark.parametrize("code", ["", "brand_new_code_2031", "card_declined"])
def test_an_unknown_code_is_read_as_a_generic_decline(code: str) -> None:
    classification = classify_decline(code)

    assert classification.kind is UNKNOWN_DECLINE.kind is DeclineClass.RETRY_LATER
    assert classification.contact_issuer
    assert classification.wording is Wording.BANK_DECLINED
    assert "unknown" in classification.reasons[0]


def test_an_unknown_code_with_a_category_1_response_is_never_retried() -> None:
    assert result(classify_decline("brand_new_code", network_decline_code="43")) == "NO_RETRY"


@pytest.mark.parametrize(
    ("network_code", "expected"), [("51", "SOFT"), ("N7", "CUSTOMER"), ("05", "SOFT-ISSUER")]
)
def test_an_unknown_code_follows_the_visa_category_of_its_response(
    network_code: str, expected: str
) -> None:
    classification = classify_decline("brand_new_code", network_decline_code=network_code)

    assert engine_class(classification) == expected


def test_visa_categories_do_not_apply_to_mastercard() -> None:
    # MAC, not the Visa table, is Mastercard's never-retry signal (rules.md 2.2).
    classification = classify_decline(
        "insufficient_funds", network_decline_code="62", brand=Brand.MASTERCARD
    )

    assert result(classification) == "RETRY_ALLOWED"


@pytest.mark.parametrize("network_code", ["04", "07", "41", "43"])
def test_a_mastercard_pick_up_lost_or_stolen_response_is_never_retried(network_code: str) -> None:
    """rules.md 2.2 (historical Mastercard rule): card-not-present declines with pick-up,
    lost or stolen card are never re-authorised with the same data.  Stripe's own
    decline_code may be the generic one; the issuer's response code still says it."""
    decision = classify_decline(
        "generic_decline",
        advice_code="try_again_later",
        network_decline_code=network_code,
        brand=Brand.MASTERCARD,
    )

    assert decision.kind is DeclineClass.NEVER_RETRY
    assert decision.wording is Wording.BANK_DECLINED  # never "lost" or "stolen"
    assert any("Mastercard response code" in reason for reason in decision.reasons)


@pytest.mark.parametrize(
    ("network_code", "request_"),
    [
        ("54", CustomerRequest.UPDATE_CARD),
        ("14", CustomerRequest.CONTACT_BANK),
        ("15", CustomerRequest.CONTACT_BANK),
    ],
)
def test_a_mastercard_expired_or_invalid_account_response_waits_for_new_data(
    network_code: str, request_: CustomerRequest
) -> None:
    # The same rule (rules.md 2.2): expired card, invalid account, no such issuer are
    # not re-authorised with the same data; updated data may be sent.
    decision = classify_decline(
        "do_not_honor", network_decline_code=network_code, brand=Brand.MASTERCARD
    )

    assert decision.kind is DeclineClass.CUSTOMER_ACTION
    assert decision.request is request_


def test_a_mastercard_response_code_does_not_override_a_stricter_decline_code() -> None:
    decision = classify_decline(
        "testmode_decline", network_decline_code="54", brand=Brand.MASTERCARD
    )

    assert decision.kind is DeclineClass.NOT_A_RETRY_CASE


@pytest.mark.parametrize("brand", [Brand.AMEX, Brand.DISCOVER, Brand.OTHER])
def test_other_brands_follow_the_visa_categories(brand: Brand) -> None:
    # rules.md 2.3 (I): Visa's rules until the brand's own are found.
    classification = classify_decline("do_not_honor", network_decline_code="41", brand=brand)

    assert result(classification) == "NO_RETRY"


@pytest.mark.parametrize(
    ("code", "category"),
    [("03", 1), ("14", 1), ("62", 1), ("78", 1), ("93", 1), ("51", 2), ("1A", 3), ("05", 4)],
)
def test_visa_categories_take_the_conservative_side_of_the_conflict(
    code: str, category: int
) -> None:
    # rules.md 2.1 and 9.1: codes that moved between tables are never retried.
    assert visa_category(code) == category


def test_codes_are_read_whatever_their_case_or_padding() -> None:
    assert classify_decline("  Lost_Card ").kind is DeclineClass.NEVER_RETRY
    assert visa_category(" r1 ") == 1
    assert visa_category("4") == 1
    assert classify_decline("do_not_honor", network_advice_code="3").kind is (
        DeclineClass.NEVER_RETRY
    )
    assert Brand.parse(" VISA ") is Brand.VISA
    assert Brand.parse("jcb") is Brand.OTHER


def _forms(code: str) -> list[str]:
    return sorted({code, code.upper(), code.lower(), code.lstrip("0") or code, f" {code} "})


def _padded(code: str) -> st.SearchStrategy[str]:
    """`code` as a gateway may send it: any case, with or without padding and spaces."""
    return st.sampled_from(_forms(code))


# Every code any table knows, and some nobody does.
_NETWORK_CODES = [f"{n:02d}" for n in range(100)] + ["R0", "R1", "R3", "N3", "N4", "N7", "1A"]
_DECLINE_CODES = [*DECLINE_CODES, "", "no_such_code"]


@pytest.mark.parametrize("brand", list(Brand))
def test_every_code_that_makes_a_decline_card_wide_is_searched_for(brand: Brand) -> None:
    """Each code on its own, in every form: found by `may_be_card_wide`'s sets whenever it
    makes the decline card-wide (the retry stage searches old declines by them alone)."""
    for code in _DECLINE_CODES:
        for form in _forms(code):
            found = classify_decline(form, brand=brand)
            if found.card_blocked or found.stop_recurring:
                assert may_be_card_wide(form, "", ""), form
    for network in _NETWORK_CODES:
        for form in _forms(network):
            found = classify_decline("generic_decline", network_decline_code=form, brand=brand)
            if found.card_blocked or found.stop_recurring:
                assert may_be_card_wide("generic_decline", form, ""), form
            found = classify_decline("generic_decline", network_advice_code=form, brand=brand)
            if found.card_blocked or found.stop_recurring:
                assert may_be_card_wide("generic_decline", "", form), form


@given(
    code=st.sampled_from(_DECLINE_CODES).flatmap(_padded),
    network=st.sampled_from(["", *_NETWORK_CODES]).flatmap(_padded),
    mac=st.sampled_from(["", *_NETWORK_CODES]).flatmap(_padded),
    advice=st.sampled_from(["", "confirm_card_data", "try_again_later", "do_not_try_again"]),
    brand=st.sampled_from(list(Brand)),
)
def test_every_card_wide_decline_is_found_by_its_codes(
    code: str, network: str, mac: str, advice: str, brand: Brand
) -> None:
    """The retry stage searches old declines for card-wide ones by `may_be_card_wide`'s
    sets alone: none may slip past it."""
    found = classify_decline(
        code,
        advice_code=advice,
        network_decline_code=network,
        network_advice_code=mac,
        brand=brand,
    )
    if found.card_blocked or found.stop_recurring:
        assert may_be_card_wide(code, network, mac)


# ---------------------------------------------------------------- customer text


def test_every_request_and_wording_has_english_and_thai_text() -> None:
    for table, kinds in ((CUSTOMER_TEXT, CustomerRequest), (WORDING_TEXT, Wording)):
        assert set(table) == set(kinds)
        for texts in table.values():
            assert set(texts) == {"en", "th"}
            assert all(text.strip() for text in texts.values())


def test_thai_text_is_thai() -> None:
    for table in (CUSTOMER_TEXT, WORDING_TEXT):
        for texts in table.values():
            assert any("\u0e00" <= char <= "\u0e7f" for char in texts["th"])


def test_thai_text_has_no_english_left_in_it() -> None:
    for table in (CUSTOMER_TEXT, WORDING_TEXT):
        for texts in table.values():
            assert not re.search("[A-Za-z]", texts["th"]), texts["th"]


@pytest.mark.parametrize(
    ("code", "detail"),
    [
        ("incorrect_zip", {"en": "postal code", "th": "รหัสไปรษณีย์"}),
        ("incorrect_cvc", {"en": "security code", "th": "รหัสความปลอดภัย"}),
        ("invalid_expiry_year", {"en": "expiry date", "th": "วันหมดอายุ"}),
        ("incorrect_number", {"en": "card number", "th": "หมายเลขบัตร"}),
    ],
)
def test_wrong_card_data_asks_to_check_the_same_details_in_english_and_thai(
    code: str, detail: dict[str, str]
) -> None:
    for locale in ("en", "th"):
        assert detail[locale] in customer_text(classify_decline(code), locale)


def test_the_security_code_is_asked_for_whatever_the_card_prints() -> None:
    # American Express prints four digits on the front, not three on the back.
    for locale in ("en", "th"):
        text = customer_text(classify_decline("incorrect_cvc"), locale)
        assert not re.search(r"\b3\b|3 หลัก|ด้านหลัง|back of", text), text


@pytest.mark.parametrize("locale", ["en", "th"])
def test_no_customer_text_names_loss_theft_or_fraud(locale: str) -> None:
    texts = [texts[locale] for table in (CUSTOMER_TEXT, WORDING_TEXT) for texts in table.values()]
    texts += [customer_text(classify_decline(code), locale) for code in RULES_TABLE]

    for text in texts:
        assert not any(word in text.lower() for word in FORBIDDEN[locale]), text


stripe_codes = st.sampled_from(sorted(RULES_TABLE)) | st.text(max_size=12)
advice_codes = st.sampled_from(["", "do_not_try_again", "try_again_later", "confirm_card_data"])
network_codes = st.sampled_from(
    ["", "04", "05", "14", "15", "41", "43", "51", "54", "62", "N7", "R1", "96"]
)
macs = st.sampled_from(["", "01", "02", "03", "04", "21", "22", "24", "25", "30", "40", "99"])


@given(stripe_codes, advice_codes, network_codes, macs, st.sampled_from(Brand))
def test_any_decline_reads_neutrally_and_never_loosens_a_never_retry_signal(
    code: str, advice: str, network: str, mac: str, brand: Brand
) -> None:
    classification = classify_decline(
        code,
        advice_code=advice,
        network_decline_code=network,
        network_advice_code=mac,
        brand=brand,
    )

    for locale, words in FORBIDDEN.items():
        assert not any(word in customer_text(classification, locale).lower() for word in words)
    never = (
        advice == "do_not_try_again"
        or RULES_TABLE.get(code.strip().lower()) == "HARD"
        or mac in {"03", "21", "22"}
        or (brand is not Brand.MASTERCARD and visa_category(network) == 1)
        or (brand is Brand.MASTERCARD and network in {"04", "41", "43"})
    )
    assert (classification.kind is DeclineClass.NEVER_RETRY) == never
    if brand is Brand.MASTERCARD and network in {"14", "15", "54"}:
        assert not classification.allows_retry  # never the same data again (2.2)
    if classification.kind is DeclineClass.NEVER_RETRY:
        assert classification.wording is Wording.BANK_DECLINED
    assert classification.retry_after is None or classification.allows_retry


def test_with_no_retry_planned_a_soft_decline_asks_to_pay_instead_of_promising_one() -> None:
    soft = classify_decline("insufficient_funds")

    assert CUSTOMER_TEXT[CustomerRequest.PAY_OR_WAIT]["en"] in customer_text(soft, "en")
    assert CUSTOMER_TEXT[CustomerRequest.PAY_NOW]["th"] in customer_text(
        soft, "th", retry_planned=False
    )
    hard = classify_decline("lost_card")
    assert customer_text(hard, "en", retry_planned=False) == customer_text(hard, "en")
