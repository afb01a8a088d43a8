"""What a card decline means: retry later, ask the customer, never retry, or not ours.

`classify_decline` reads what Stripe and the card network say about a failed
charge (Stripe's ``decline_code`` and ``advice_code``; the network's response
code, Stripe's ``network_decline_code``; and Mastercard's merchant advice code,
Stripe's ``network_advice_code``) and answers with a `Classification`: may the
same card be charged again for this charge, what to ask of the customer, and how
to word the failure to them.  `dunning.core.network_rules` then decides *when*.

The classes are those of reference/rules.md 1.2 (an interpretation there, since
Stripe does not label codes hard or soft):

- RETRY_LATER: SOFT and SOFT-ISSUER.  `contact_issuer` keeps the difference.
- CUSTOMER_ACTION: CUSTOMER; never the same credentials again, ask the customer.
- NEVER_RETRY: HARD; never this card for this charge.
- NOT_A_RETRY_CASE: N/A; card-present, test-mode or integration errors.

Precedence, strongest first (rules.md 1.1 says the advice code overrides the
decline code; we apply that in every direction but one, see step 3):

1. A never-retry signal from any source: Stripe's ``do_not_try_again`` advice,
   a Visa category 1 response code (2.1), Mastercard MAC 03, 21 or 22, and a
   Mastercard pick-up, lost or stolen response code (2.2).
2. A HARD or N/A decline code, and MAC 04 (fix the integration).
3. MAC 01 (new account information), or a Mastercard response code for an
   invalid account, no such issuer or an expired card (2.2): the old
   credentials are dead, whatever else is said.  Stripe's ``try_again_later``
   does not loosen 1-3: a Visa category 1 reattempt costs a fee and cannot
   succeed (2.1).
4. Stripe's advice code: ``confirm_card_data`` -> CUSTOMER_ACTION,
   ``try_again_later`` -> RETRY_LATER.
5. The decline code's row of the rules.md 1.2 table.
6. An unknown or missing decline code: see `UNKNOWN_DECLINE`.

Customer-facing text is neutral by construction: every never-retry decline uses
the wording of ``generic_decline`` ("Your bank declined the payment"), as
Stripe asks for lost, stolen and fraud codes (1.1), and no text names a reason
the issuer gave.  `reasons` is for staff and the case's timeline, never for the
customer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType


class DeclineClass(StrEnum):
    RETRY_LATER = "retry_later"  # SOFT, SOFT-ISSUER
    CUSTOMER_ACTION = "customer_action"  # CUSTOMER
    NEVER_RETRY = "never_retry"  # HARD
    NOT_A_RETRY_CASE = "not_a_retry_case"  # N/A

    @property
    def allows_retry(self) -> bool:
        """Whether the same card may be charged again for the same charge."""
        return self is DeclineClass.RETRY_LATER


class CustomerRequest(StrEnum):
    """The one thing a message asks of the customer after this decline."""

    PAY_OR_WAIT = "pay_or_wait"  # nothing is required: we retry; paying now is welcome
    PAY_NOW = "pay_now"  # a retryable decline, but no retry is coming (charges off, budget spent)
    CONTACT_BANK = "contact_bank"
    UPDATE_CARD = "update_card"
    CONFIRM_CARD_DATA = "confirm_card_data"
    AUTHENTICATE = "authenticate"  # an on-session link (3-D Secure)
    USE_ANOTHER_METHOD = "use_another_method"


class Wording(StrEnum):
    """How a message explains the failure; never more than the customer needs."""

    BANK_DECLINED = "bank_declined"
    PAYMENT_NOT_COMPLETED = "payment_not_completed"
    CARD_EXPIRED = "card_expired"
    CARD_DETAILS_INCORRECT = "card_details_incorrect"
    CARD_DETAILS_CHANGED = "card_details_changed"
    AUTHENTICATION_NEEDED = "authentication_needed"
    CARD_NOT_ACCEPTED = "card_not_accepted"


class MerchantCheck(StrEnum):
    """Something the business (not the customer) must look at before going on."""

    FIND_EXISTING_CHARGE = "find_existing_charge"  # duplicate_transaction
    CHECK_AMOUNT = "check_amount"  # invalid_amount
    FIX_INTEGRATION = "fix_integration"  # test cards, card-present codes, MAC 04


class Brand(StrEnum):
    """Card brands as Stripe names them; everything else is OTHER."""

    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    DISCOVER = "discover"
    OTHER = "other"

    @classmethod
    def parse(cls, text: str) -> Brand:
        try:
            return cls(text.strip().lower())
        except ValueError:
            return cls.OTHER

    @property
    def follows_visa_rules(self) -> bool:
        """Visa's categories and caps apply to every brand but Mastercard.

        rules.md 2.3 (I) applies them to Amex and Discover until their own rules
        are found; we extend that to the brands rules.md does not cover (JCB,
        UnionPay, unknown), the conservative choice.
        """
        return self is not Brand.MASTERCARD


@dataclass(frozen=True, slots=True)
class Classification:
    """What one decline means for the next attempt and for the customer.

    `request` and `wording` are None only for NOT_A_RETRY_CASE: the customer
    is not told of a failure that is not theirs.  `retry_after` is the wait a
    Mastercard advice code asks for (MAC 24-30, rules.md 2.2).
    """

    kind: DeclineClass
    request: CustomerRequest | None
    wording: Wording | None
    contact_issuer: bool = False  # SOFT-ISSUER: also suggest the customer calls their bank
    stop_recurring: bool = False  # the cardholder withdrew consent: stop billing this card
    # The card itself will never be approved (reported lost or stolen, picked up,
    # closed, never existed, or refused as fraud): no charge on it, for any invoice.
    card_blocked: bool = False
    merchant_check: MerchantCheck | None = None
    retry_after: timedelta | None = None
    reasons: tuple[str, ...] = ()

    @property
    def allows_retry(self) -> bool:
        return self.kind.allows_retry


# ---------------------------------------------------------------- the rules.md 1.2 table

_RETRY, _CUSTOMER = DeclineClass.RETRY_LATER, DeclineClass.CUSTOMER_ACTION
_SOFT = Classification(_RETRY, CustomerRequest.PAY_OR_WAIT, Wording.PAYMENT_NOT_COMPLETED)
_SOFT_ISSUER = Classification(
    _RETRY, CustomerRequest.CONTACT_BANK, Wording.BANK_DECLINED, contact_issuer=True
)
# The one face of every hard decline: generic_decline's wording, another payment method.
_HARD = Classification(
    DeclineClass.NEVER_RETRY, CustomerRequest.USE_ANOTHER_METHOD, Wording.BANK_DECLINED
)
_HARD_STOP = replace(_HARD, stop_recurring=True)
_NOT_OURS = Classification(
    DeclineClass.NOT_A_RETRY_CASE, None, None, merchant_check=MerchantCheck.FIX_INTEGRATION
)


def _customer(
    request: CustomerRequest, wording: Wording, check: MerchantCheck | None = None
) -> Classification:
    return Classification(_CUSTOMER, request, wording, merchant_check=check)


_WRONG_DATA = _customer(CustomerRequest.CONFIRM_CARD_DATA, Wording.CARD_DETAILS_INCORRECT)
_ASK_THE_BANK = _customer(CustomerRequest.CONTACT_BANK, Wording.CARD_NOT_ACCEPTED)

# Every row of reference/rules.md 1.2, by Stripe decline code.
DECLINE_CODES: Mapping[str, Classification] = MappingProxyType(
    {
        "authentication_required": _customer(
            CustomerRequest.AUTHENTICATE, Wording.AUTHENTICATION_NEEDED
        ),
        "approve_with_id": _SOFT,
        "call_issuer": _SOFT_ISSUER,
        "card_not_supported": _ASK_THE_BANK,
        "card_velocity_exceeded": _SOFT,
        "currency_not_supported": _ASK_THE_BANK,
        "do_not_honor": _SOFT_ISSUER,
        "do_not_try_again": _HARD,
        "duplicate_transaction": replace(
            _NOT_OURS, merchant_check=MerchantCheck.FIND_EXISTING_CHARGE
        ),
        "expired_card": _customer(CustomerRequest.UPDATE_CARD, Wording.CARD_EXPIRED),
        "fraudulent": _HARD,
        "generic_decline": _SOFT_ISSUER,
        "incorrect_number": _WRONG_DATA,
        "incorrect_cvc": _WRONG_DATA,
        "incorrect_pin": _NOT_OURS,  # card reader only
        "incorrect_zip": _WRONG_DATA,
        "insufficient_funds": _SOFT,
        "invalid_account": _customer(CustomerRequest.CONTACT_BANK, Wording.BANK_DECLINED),
        "invalid_amount": _customer(
            CustomerRequest.CONTACT_BANK, Wording.CARD_NOT_ACCEPTED, MerchantCheck.CHECK_AMOUNT
        ),
        "invalid_cvc": _WRONG_DATA,
        "invalid_expiry_month": _WRONG_DATA,
        "invalid_expiry_year": _WRONG_DATA,
        "invalid_number": _WRONG_DATA,
        "invalid_pin": _NOT_OURS,
        "issuer_not_available": _SOFT,
        "lost_card": _HARD,
        "merchant_blacklist": _HARD,
        "new_account_information_available": _customer(
            CustomerRequest.UPDATE_CARD, Wording.CARD_DETAILS_CHANGED
        ),
        "no_action_taken": _SOFT_ISSUER,
        "not_permitted": _HARD,
        "offline_pin_required": _NOT_OURS,
        "online_or_offline_pin_required": _NOT_OURS,
        "pickup_card": _HARD,
        "pin_try_exceeded": _customer(CustomerRequest.USE_ANOTHER_METHOD, Wording.BANK_DECLINED),
        "processing_error": _SOFT,
        "reenter_transaction": _SOFT,
        "restricted_card": _HARD,  # conservative: Visa 62 was category 1 in the older table
        "revocation_of_all_authorizations": _HARD_STOP,
        "revocation_of_authorization": _HARD_STOP,
        "security_violation": _HARD,
        "service_not_allowed": _HARD,
        "stolen_card": _HARD,
        "stop_payment_order": _HARD_STOP,
        "testmode_decline": _NOT_OURS,
        "transaction_not_allowed": _HARD,
        "try_again_later": _SOFT,
        "withdrawal_count_limit_exceeded": _SOFT,
    }
)

# A code missing from the table (Stripe adds codes; a card error may carry none)
# is read as generic_decline: Stripe's own advice for an unexplained decline, and
# Visa category 4, which may be retried within the caps (rules.md 1.2, 2.1).  It
# is safe because the network's own never-retry signals (Visa category 1, MAC 03
# and 21) are read whatever the Stripe code, the caps and the policy's budget
# still bound the retries, and the customer is told only that the bank declined.
UNKNOWN_DECLINE = _SOFT_ISSUER


# ---------------------------------------------------------------- network codes

# Visa decline categories, rules.md 2.1.  03, 62, 78 and 93 were category 1 in
# the older table and category 2 in the newer; like rules.md 9.1 we never retry
# them with the same credentials.
_VISA_CATEGORY_1 = frozenset(
    {"04", "07", "12", "14", "15", "41", "43", "46", "57", "R0", "R1", "R3"}
)
_VISA_FORMERLY_CATEGORY_1 = frozenset({"03", "62", "78", "93"})
_VISA_CATEGORY_2 = frozenset({"19", "51", "59", "61", "65", "75", "86", "91", "96", "N3", "N4"})
_VISA_CATEGORY_3 = frozenset({"54", "55", "N7", "82", "1A"})
# The cardholder revoked the recurring authorisation or stopped payments.
_VISA_STOP_RECURRING = frozenset({"R0", "R1", "R3"})

# Declines that say the card itself is dead, not this charge: acceptance case C01's
# "no retry for this card", Visa category 1's "blocked or never existed" (rules.md
# 2.1: pick up 04/07, no such card 14, no such issuer 15, lost 41, stolen 43, closed
# 46).  The rest of the never-retry declines (not permitted, do not try again, MAC
# 03 ...) bar the one transaction.
_CARD_BLOCKED = frozenset(
    {"lost_card", "stolen_card", "pickup_card", "fraudulent", "merchant_blacklist"}
)
_VISA_CARD_BLOCKED = frozenset({"04", "07", "14", "15", "41", "43", "46"})

# Mastercard merchant advice codes, rules.md 2.2.
_MAC_NEVER = {
    "03": "Mastercard advice code 03: do not try again",
    "21": "Mastercard advice code 21: the cardholder cancelled the recurring payments",
    "22": "Mastercard advice code 22: the merchant does not qualify for the product code",
}
_MAC_NEW_CREDENTIALS = "01"
_MAC_FIX_INTEGRATION = "04"
_MAC_STOP_RECURRING = "21"
_MAC_WAIT = {
    "24": timedelta(hours=1),
    "25": timedelta(hours=24),
    "26": timedelta(days=2),
    "27": timedelta(days=4),
    "28": timedelta(days=6),
    "29": timedelta(days=8),
    "30": timedelta(days=10),
}
_MAC_NO_EFFECT = frozenset({"02", "40", "41", "43"})  # try later; informational

# Mastercard response codes, rules.md 2.2 (the 2014 card-not-present rule): never
# re-authorise a pick-up, lost or stolen card with the same data.  07 is ISO 8583's
# "pick up, special condition", read as 04 should an issuer send it.
_MASTERCARD_NEVER = {
    "04": "pick up the card",
    "07": "pick up the card",
    "41": "lost card",
    "43": "stolen card",
}
# The same rule's invalid account (14), no such issuer (15) and expired card (54):
# only updated data may be sent, which is what asking the customer means here.
_MASTERCARD_NEW_DATA = {
    "14": ("invalid account", "invalid_account"),
    "15": ("no such issuer", "invalid_account"),
    "54": ("expired card", "expired_card"),
}


def visa_category(response_code: str) -> int | None:
    """The Visa decline category (1-4) of an issuer response code; None for no code.

    Codes Visa has moved between tables count as category 1 (rules.md 2.1, 9.1).
    """
    code = _network_code(response_code)
    if not code:
        return None
    if code in _VISA_CATEGORY_1 or code in _VISA_FORMERLY_CATEGORY_1:
        return 1
    if code in _VISA_CATEGORY_2:
        return 2
    if code in _VISA_CATEGORY_3:
        return 3
    return 4


def _network_code(text: str) -> str:
    code = text.strip().upper()
    return code.zfill(2) if code.isdigit() else code


# ---------------------------------------------------------------- classifying


def classify_decline(
    decline_code: str,
    *,
    advice_code: str = "",
    network_decline_code: str = "",
    network_advice_code: str = "",
    brand: Brand = Brand.OTHER,
) -> Classification:
    """Classify one failed card charge; see the module docstring for the precedence.

    `decline_code` is Stripe's ``decline_code`` (or, for card errors that carry
    none, the error ``code`` such as ``expired_card``); `advice_code` Stripe's
    ``advice_code``; `network_decline_code` the issuer's response code (``"51"``);
    `network_advice_code` the Mastercard merchant advice code (``"03"``).
    Missing values are "".  The Visa categories are read for every brand but
    Mastercard (`Brand.follows_visa_rules`); a merchant advice code for any brand.
    """
    return _classify(decline_code, advice_code, network_decline_code, network_advice_code, brand)


# What can make a decline card-wide (`Classification.card_blocked` or
# `stop_recurring`: never that card again, for any invoice), so that old declines
# can be searched for them without classifying each: decline codes as
# `classify_decline` reads them (trimmed, lower case), network response and
# advice codes trimmed and upper case, in both the two-digit form and without
# its leading zero ("04" and "4"), as `_network_code` reads them.  A superset:
# what is found is classified as usual.
CARD_WIDE_DECLINE_CODES = frozenset(
    _CARD_BLOCKED | {code for code, row in DECLINE_CODES.items() if row.stop_recurring}
)
CARD_WIDE_NETWORK_CODES = frozenset(
    variant
    for code in _VISA_CARD_BLOCKED | _VISA_STOP_RECURRING | _MASTERCARD_NEVER.keys()
    for variant in (code, code.lstrip("0"))
)
CARD_WIDE_ADVICE_CODES = frozenset({_MAC_STOP_RECURRING, _MAC_STOP_RECURRING.lstrip("0")})


def may_be_card_wide(
    decline_code: str, network_decline_code: str, network_advice_code: str
) -> bool:
    """Whether a decline with these codes may be card-wide (the sets above, as SQL reads them)."""
    return (
        decline_code.strip().lower() in CARD_WIDE_DECLINE_CODES
        or network_decline_code.strip().upper() in CARD_WIDE_NETWORK_CODES
        or network_advice_code.strip().upper() in CARD_WIDE_ADVICE_CODES
    )


# Pure, and asked about the same few codes for every attempt a planner weighs: kept.
@lru_cache(maxsize=4096)
def _classify(
    decline_code: str,
    advice_code: str,
    network_decline_code: str,
    network_advice_code: str,
    brand: Brand,
) -> Classification:
    code = decline_code.strip().lower()
    advice = advice_code.strip().lower()
    network = _network_code(network_decline_code)
    mac = _network_code(network_advice_code)
    row = DECLINE_CODES.get(code)
    known = f"decline code {code or '(none)'}"
    basis = f"{known} (rules.md 1.2)" if row else f"{known} is unknown: read as generic_decline"

    never = _never_reasons(code, advice, network, mac, brand)
    if never:
        stop = mac == _MAC_STOP_RECURRING or (
            brand.follows_visa_rules and network in _VISA_STOP_RECURRING
        )
        stop = stop or (row is not None and row.stop_recurring)
        blocked = (
            code in _CARD_BLOCKED
            or (brand.follows_visa_rules and network in _VISA_CARD_BLOCKED)
            or (brand is Brand.MASTERCARD and network in _MASTERCARD_NEVER)
        )
        return replace(_HARD, stop_recurring=stop, card_blocked=blocked, reasons=tuple(never))
    if row is not None and row.kind is DeclineClass.NOT_A_RETRY_CASE:
        return replace(row, reasons=(f"{known}: not a retry case (rules.md 1.2)",))
    if mac == _MAC_FIX_INTEGRATION:
        return replace(
            _NOT_OURS,
            reasons=("Mastercard advice code 04: token requirements not met (rules.md 2.2)",),
        )
    if mac == _MAC_NEW_CREDENTIALS:
        return replace(
            DECLINE_CODES["new_account_information_available"],
            reasons=(
                "Mastercard advice code 01: new account information; "
                "never the old credentials again (rules.md 2.2)",
            ),
        )
    if brand is Brand.MASTERCARD and network in _MASTERCARD_NEW_DATA:
        # A decline code that already asks the customer keeps its own request.
        meaning, like = _MASTERCARD_NEW_DATA[network]
        return replace(
            row if row is not None and row.kind is _CUSTOMER else DECLINE_CODES[like],
            reasons=(
                basis,
                f"Mastercard response code {network} ({meaning}): never the same data "
                "again, only updated data (rules.md 2.2)",
            ),
        )
    base = row or _from_visa_category(network, brand) or UNKNOWN_DECLINE
    reasons = [basis]
    if advice == "confirm_card_data":
        reasons.append("advice code confirm_card_data overrides it (rules.md 1.1)")
        base = base if base.kind is _CUSTOMER else _WRONG_DATA
    elif advice == "try_again_later":
        reasons.append("advice code try_again_later overrides it (rules.md 1.1)")
        base = base if base.kind is _RETRY else _SOFT
    elif advice:
        reasons.append(f"advice code {advice} is unknown: ignored")
    wait = _MAC_WAIT.get(mac)
    if wait is not None and base.kind is _RETRY:
        reasons.append(
            f"Mastercard advice code {mac}: retry after {_describe(wait)} (rules.md 2.2)"
        )
        base = replace(base, retry_after=wait)
    elif mac and mac not in _MAC_NO_EFFECT and wait is None:
        reasons.append(f"Mastercard advice code {mac} is unknown: ignored")
    return replace(base, reasons=tuple(reasons))


def _never_reasons(code: str, advice: str, network: str, mac: str, brand: Brand) -> list[str]:
    """Every never-retry signal present, in a fixed order; empty when there is none."""
    reasons = []
    if advice == "do_not_try_again":
        reasons.append("advice code do_not_try_again (rules.md 1.1)")
    row = DECLINE_CODES.get(code)
    if row is not None and row.kind is DeclineClass.NEVER_RETRY:
        reasons.append(f"decline code {code}: never retry (rules.md 1.2)")
    if brand.follows_visa_rules and visa_category(network) == 1:
        reasons.append(
            f"response code {network} is Visa decline category 1: "
            "the issuer will never approve it (rules.md 2.1)"
        )
    if brand is Brand.MASTERCARD and network in _MASTERCARD_NEVER:
        reasons.append(
            f"Mastercard response code {network} ({_MASTERCARD_NEVER[network]}): "
            "never re-authorise with the same data (rules.md 2.2)"
        )
    if mac in _MAC_NEVER:
        reasons.append(f"{_MAC_NEVER[mac]} (rules.md 2.2)")
    return reasons


def _from_visa_category(network: str, brand: Brand) -> Classification | None:
    """For an unknown Stripe code: what the Visa category says (rules.md 2.1)."""
    if not brand.follows_visa_rules:
        return None
    category = visa_category(network)
    if category == 2:  # cannot approve at this time: wait and retry
        return _SOFT
    if category == 3:  # cannot approve with these details: correct them, then retry
        return _WRONG_DATA
    return None  # category 4 or no code: generic, as UNKNOWN_DECLINE


def _describe(wait: timedelta) -> str:
    hours = int(wait.total_seconds()) // 3600
    if hours < 48:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{wait.days} days"


# ---------------------------------------------------------------- customer text

Locale = str  # "en" or "th"; more locales are data

# What a message asks of the customer.  Polite and short; the templates wrap them.
CUSTOMER_TEXT: Mapping[CustomerRequest, Mapping[Locale, str]] = MappingProxyType(
    {
        CustomerRequest.PAY_OR_WAIT: {
            "en": "We will try the payment again automatically. To pay now instead, "
            "use the payment page or add another card.",
            "th": "ระบบจะตัดชำระเงินอีกครั้งโดยอัตโนมัติ หากท่านต้องการชำระทันที "
            "สามารถชำระผ่านหน้าชำระเงินหรือเพิ่มบัตรใบอื่นได้",
        },
        CustomerRequest.CONTACT_BANK: {
            "en": "Please contact your bank about this payment, or use another card.",
            "th": "โปรดติดต่อธนาคารผู้ออกบัตร หรือชำระด้วยบัตรใบอื่น",
        },
        CustomerRequest.UPDATE_CARD: {
            "en": "Please update your card details.",
            "th": "โปรดอัปเดตข้อมูลบัตรของท่าน",
        },
        CustomerRequest.CONFIRM_CARD_DATA: {
            "en": "Please check the card number, expiry date, security code and postal code, "
            "then enter them again.",
            # The same four details as the English; no "CVV, 3 digits on the
            # back": American Express prints four on the front.
            "th": "โปรดตรวจสอบหมายเลขบัตร วันหมดอายุ รหัสความปลอดภัยของบัตร และรหัสไปรษณีย์ "
            "แล้วกรอกข้อมูลอีกครั้ง",
        },
        CustomerRequest.AUTHENTICATE: {
            "en": "Please open the payment link in this message and approve the payment "
            "when your bank asks.",
            "th": "โปรดเปิดลิงก์ชำระเงินในข้อความนี้ แล้วยืนยันการชำระเงินตามขั้นตอนของธนาคาร",
        },
        CustomerRequest.USE_ANOTHER_METHOD: {
            "en": "Please pay with another card or payment method.",
            "th": "โปรดชำระเงินด้วยบัตรใบอื่นหรือช่องทางการชำระเงินอื่น",
        },
        CustomerRequest.PAY_NOW: {
            "en": "Please pay on the payment page, or add another card.",
            "th": "โปรดชำระเงินผ่านหน้าชำระเงิน หรือเพิ่มบัตรใบอื่น",
        },
    }
)

# How a message explains the failure.  Never the issuer's reason: a lost, stolen
# or fraud decline reads exactly as generic_decline (rules.md 1.1).
WORDING_TEXT: Mapping[Wording, Mapping[Locale, str]] = MappingProxyType(
    {
        Wording.BANK_DECLINED: {
            "en": "Your bank declined the payment.",
            "th": "ธนาคารผู้ออกบัตรไม่อนุมัติการชำระเงินรายการนี้",
        },
        Wording.PAYMENT_NOT_COMPLETED: {
            "en": "Your payment could not be completed.",
            "th": "การชำระเงินของท่านยังไม่สำเร็จ",
        },
        Wording.CARD_EXPIRED: {
            "en": "The card we have on file has expired.",
            "th": "บัตรที่ท่านใช้ชำระเงินหมดอายุแล้ว",
        },
        Wording.CARD_DETAILS_INCORRECT: {
            "en": "Some of the card details do not match those your bank holds.",
            "th": "ข้อมูลบัตรบางรายการไม่ตรงกับข้อมูลของธนาคาร",
        },
        Wording.CARD_DETAILS_CHANGED: {
            "en": "Your bank has issued new details for this card.",
            "th": "ธนาคารได้ออกข้อมูลบัตรใหม่ให้ท่านแล้ว",
        },
        Wording.AUTHENTICATION_NEEDED: {
            "en": "Your bank asks you to confirm this payment.",
            "th": "ธนาคารผู้ออกบัตรขอให้ท่านยืนยันการชำระเงินรายการนี้",
        },
        Wording.CARD_NOT_ACCEPTED: {
            "en": "This card cannot be used for this payment.",
            "th": "บัตรนี้ไม่สามารถใช้ชำระเงินรายการนี้ได้",
        },
    }
)


def customer_text(
    classification: Classification, locale: Locale, *, retry_planned: bool = True
) -> str:
    """The explanation and the request, in `locale`; "" when the customer is not told.

    With no retry planned (charges are off, the budget is spent) a retryable
    decline asks the customer to pay instead of promising a retry.
    """
    if classification.wording is None or classification.request is None:
        return ""
    request = classification.request
    if request is CustomerRequest.PAY_OR_WAIT and not retry_planned:
        request = CustomerRequest.PAY_NOW
    return " ".join((WORDING_TEXT[classification.wording][locale], CUSTOMER_TEXT[request][locale]))
