"""Amounts as Stripe's API counts them, which is not always as ISO 4217 and the ledger do.

Stripe takes and sends every amount as an integer of the currency's minor unit
*as Stripe defines it* (docs.stripe.com/currencies, "Minor units in API
amounts"): two decimals unless the currency is one of its zero-decimal or
three-decimal currencies.  The ledger counts minor units by ISO 4217
(`dunning.core.money.exponent`).  Where the two differ the same integer means
different money, so every amount crossing the boundary goes through `to_stripe`
(out) or `from_stripe` (in), and nowhere else:

- ISK: ISO 4217 has no minor unit; Stripe's API keeps two decimals, and since
  14 April 2023 takes only whole krónur ("an ISK amount of 100 will continue to
  represent 1 króna"; amounts must be divisible by 100).
- MGA: ISO 4217 has two decimals; Stripe counts it zero-decimal.
- Three-decimal currencies (BHD, JOD, KWD, OMR, TND): Stripe wants the last
  digit 0, KWD 5.125 cannot be charged.
- HUF and TWD: two decimals on both sides; Stripe's whole-unit rule for them
  applies to payouts, which dunning does not make.  UGX: zero-decimal on both
  sides; its rule too concerns payouts.

An amount one side cannot hold is a `StripeAmountError`, never a rounded one.
"""

from __future__ import annotations

from decimal import Decimal

from dunning.core.money import MoneyError, exponent

# docs.stripe.com/currencies#zero-decimal
ZERO_DECIMAL = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
# docs.stripe.com/currencies#three-decimal
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
# What a charge's amount must be a multiple of, in Stripe's units: three-decimal
# currencies end in 0 (Stripe's payment partners), ISK in whole krónur
# (docs.stripe.com/currencies#special-cases).
CHARGE_STEP = {**dict.fromkeys(THREE_DECIMAL, 10), "ISK": 100}


class StripeAmountError(ValueError):
    """An amount Stripe or the ledger cannot hold exactly; the message says which and why."""


def stripe_exponent(currency: str) -> int:
    """The decimal places of `currency`'s amounts in Stripe's API."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def to_stripe(amount: int, currency: str) -> int:
    """The ledger's `amount` of `currency` (ISO 4217 minor units) in Stripe's units."""
    code = currency.upper()
    shift = stripe_exponent(code) - _ledger_exponent(code)
    if shift < 0 and amount % 10**-shift:
        raise StripeAmountError(
            f"{code} {amount} (minor units) has a fraction Stripe cannot charge: "
            f"Stripe counts {code} with {stripe_exponent(code)} decimals"
        )
    converted = amount * 10**shift if shift >= 0 else amount // 10**-shift
    step = CHARGE_STEP.get(code, 1)
    if converted % step:
        raise StripeAmountError(
            f"{code} {amount} (minor units) cannot be charged at Stripe: Stripe takes "
            f"{code} only in multiples of {Decimal(step).scaleb(-stripe_exponent(code))}"
        )
    return converted


def from_stripe(amount: int, currency: str) -> int:
    """Stripe's `amount` of `currency` in the ledger's units (ISO 4217 minor units)."""
    code = currency.upper()
    shift = _ledger_exponent(code) - stripe_exponent(code)
    if shift < 0 and amount % 10**-shift:
        raise StripeAmountError(
            f"Stripe's {code} {amount} has a fraction the ledger cannot hold: "
            f"ISO 4217 gives {code} {_ledger_exponent(code)} decimals"
        )
    return amount * 10**shift if shift >= 0 else amount // 10**-shift


def _ledger_exponent(currency: str) -> int:
    try:
        return exponent(currency)
    except MoneyError as error:
        raise StripeAmountError(f"{currency}: {error}") from None
