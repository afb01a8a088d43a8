"""Card declines as Stripe reports them, in roughly the proportions a subscription business sees.

Codes, advice codes and network codes follow shared/reference/rules.md section 1
and the Stripe payloads in shared/fixtures/external/stripe (insufficient_funds
comes with try_again_later and network code 51; expired_card with
confirm_card_data and 54).  Network codes are the ISO 8583 response codes of
the rules.md "network analogue" column.  The weights are an illustration:
insufficient funds is by far the most common reason a renewal fails.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decline:
    code: str  # Stripe's decline_code
    network_code: str  # the issuer's response code; Stripe sends none for some codes
    advice: tuple[tuple[str, int], ...]  # (advice_code, weight); "" when Stripe sends none
    weight: int
    # The SOFT and SOFT-ISSUER classes of rules.md 1.2: the same card may be charged again.
    retry_same_card: bool


DECLINES = (
    Decline("insufficient_funds", "51", (("try_again_later", 3), ("", 1)), 32, True),
    Decline("do_not_honor", "05", (("", 2), ("try_again_later", 1)), 14, True),
    # Stripe's error code card_declined with decline_code generic_decline.
    Decline("generic_decline", "05", (("", 3), ("do_not_try_again", 1)), 13, True),
    Decline("expired_card", "54", (("confirm_card_data", 1),), 9, False),
    Decline("authentication_required", "1A", (("", 1),), 7, False),
    Decline("processing_error", "96", (("try_again_later", 1),), 5, True),
    Decline("try_again_later", "", (("try_again_later", 1),), 4, True),
    Decline("card_velocity_exceeded", "61", (("try_again_later", 1),), 4, True),
    Decline("issuer_not_available", "91", (("try_again_later", 1),), 3, True),
    Decline("incorrect_cvc", "N7", (("confirm_card_data", 1),), 3, False),
    # Lost and stolen cards are rare; Visa category 1, never retried (rules.md 2.1).
    Decline("lost_card", "41", (("do_not_try_again", 1),), 1, False),
    Decline("stolen_card", "43", (("do_not_try_again", 1),), 1, False),
    Decline("transaction_not_allowed", "57", (("do_not_try_again", 1),), 1, False),
)
_BY_CODE = {decline.code: decline for decline in DECLINES}
# What a retry of a soft decline runs into when it is not the same reason again.
_TRANSIENT = ("processing_error", "try_again_later", "issuer_not_available")


@dataclass(frozen=True, slots=True)
class Outcome:
    decline_code: str
    advice_code: str
    network_code: str

    @property
    def retry_same_card(self) -> bool:
        # The advice code overrides the decline code (rules.md 1.1).
        if self.advice_code == "do_not_try_again":
            return False
        return _BY_CODE[self.decline_code].retry_same_card


def _outcome(rng: random.Random, decline: Decline) -> Outcome:
    codes, weights = zip(*decline.advice, strict=True)
    advice = rng.choices(codes, weights=weights)[0]
    return Outcome(decline.code, advice, decline.network_code)


def first_decline(rng: random.Random) -> Outcome:
    """Why a renewal charge failed the first time."""
    decline = rng.choices(DECLINES, weights=[d.weight for d in DECLINES])[0]
    return _outcome(rng, decline)


def retry_decline(rng: random.Random, previous: Outcome) -> Outcome:
    """Why a retry failed: mostly the same reason, now and then a passing fault."""
    if rng.random() < 0.8:
        return _outcome(rng, _BY_CODE[previous.decline_code])
    return _outcome(rng, _BY_CODE[rng.choice(_TRANSIENT)])


def decline_named(rng: random.Random, code: str) -> Outcome:
    return _outcome(rng, _BY_CODE[code])
