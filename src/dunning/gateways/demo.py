"""The demo bank: charges the demo's cards with no real gateway behind it.

`make demo` runs with `DUNNING_GATEWAY=demo`, so the demo shows what dunning is
for: retries that bring money back, cases that recover, and a pay page whose
button pays.  It is refused in production (`from_settings`).

Every answer is a function of the request alone.  The web process (the pay
page) and the worker process (retries) share no memory, and need none: the
same idempotency key gets the same answer in either, as at a real gateway.

- About one card in five (DECLINING_CARDS_PER_100) always declines with
  `insufficient_funds`: those customers' cases run through every reminder.
- On the other cards a charge without the customer (a retry) succeeds for about
  two keys in five (SUCCEEDING_RETRIES_PER_100) and otherwise declines with
  `insufficient_funds`, a decline the engine retries later.
- On the pay page the customer is there to pay: the charge succeeds.
- A customer who saves a new card (the pay page's or the card page's "new
  card") is back at once with one saved: the demo bank's page asks nothing,
  where a real gateway's page would ask the number, which dunning never sees.
  A new card pays every charge.

It cannot look a charge up or cancel one: the engine treats it as it treats any
gateway without those abilities.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from dunning.gateways.base import (
    NOT_THIS_CUSTOMERS,
    Authentication,
    CardSetupRequest,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    GatewayError,
    NewCard,
)

DECLINING_CARDS_PER_100 = 20
SUCCEEDING_RETRIES_PER_100 = 40
DECLINE_CODE = "insufficient_funds"
NEW_CARD_PREFIX = "pm_demonew_"
SETUP_PREFIX = "demo_seti_"
NEW_CARD_YEARS = 3  # a new card expires this many years on


class DemoGateway:
    name = "demo"

    @classmethod
    def from_settings(cls) -> DemoGateway:
        if getattr(settings, "PRODUCTION", False):
            raise ImproperlyConfigured(
                "DUNNING_GATEWAY is 'demo', which charges nobody and approves payments "
                "it never made; in production use 'stripe' or 'manual'"
            )
        return cls()

    def __repr__(self) -> str:
        return "DemoGateway()"

    def charge(self, request: ChargeRequest) -> ChargeResult:
        method = request.payment_method_external_id
        if declines_every_charge(method):
            return _declined(request)
        if method.startswith(NEW_CARD_PREFIX):
            return _succeeded(request)
        if _per_100("charge", request.idempotency_key) < SUCCEEDING_RETRIES_PER_100:
            return _succeeded(request)
        return _declined(request)

    def charge_on_session(
        self, request: ChargeRequest, *, return_url: str
    ) -> ChargeResult | Authentication:
        if declines_every_charge(request.payment_method_external_id):
            return _declined(request)
        return _succeeded(request)

    def outcome(self, reference: str, request: ChargeRequest) -> ChargeResult | Authentication:
        """Refused: the demo bank never sends a customer to a page of its own, so no
        return from one can be real.  A return URL can be edited, and a payment
        made up from a guessed reference must record nothing."""
        raise GatewayError(f"no demo payment {reference} awaits the customer", permanent=True)

    def start_card_setup(self, request: CardSetupRequest) -> str:
        """Straight back to the return URL with the setup's reference, as Stripe adds it."""
        reference = f"{SETUP_PREFIX}{_owner(request.customer_external_id)}_"
        reference += _digest(request.idempotency_key)[:16]
        separator = "&" if "?" in request.return_url else "?"
        return f"{request.return_url}{separator}{urlencode({'session_id': reference})}"

    def card_setup_result(self, reference: str, *, customer_external_id: str) -> NewCard | None:
        """The card saved in setup `reference`: made from the reference, so the same each time."""
        owner, _, setup = reference.removeprefix(SETUP_PREFIX).partition("_")
        if (
            not reference.startswith(SETUP_PREFIX)
            or owner != _owner(customer_external_id)
            or not setup
        ):
            raise GatewayError(
                f"{reference} is not a demo card setup of this customer",
                permanent=True,
                code=NOT_THIS_CUSTOMERS,
            )
        return NewCard(
            external_id=f"{NEW_CARD_PREFIX}{setup}",
            brand="visa",
            last4=f"{int(setup[:8], 16) % 10000:04d}",
            exp_month=12,
            exp_year=timezone.now().year + NEW_CARD_YEARS,
        )


def declines_every_charge(payment_method_external_id: str) -> bool:
    """Whether the demo bank declines every charge on this card (never on a new one)."""
    if payment_method_external_id.startswith(NEW_CARD_PREFIX):
        return False
    return _per_100("card", payment_method_external_id) < DECLINING_CARDS_PER_100


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _owner(customer_external_id: str) -> str:
    return _digest(f"customer:{customer_external_id}")[:12]


def _per_100(kind: str, value: str) -> int:
    digest = hashlib.sha256(f"{kind}:{value}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100


def reference_for(request: ChargeRequest) -> str:
    """The demo bank's id for the payment this key makes (anyone can work it out)."""
    return "demo_pi_" + _digest(request.idempotency_key)[:24]


def _succeeded(request: ChargeRequest) -> ChargeResult:
    return _answer(request, ChargeStatus.SUCCEEDED)


def _declined(request: ChargeRequest) -> ChargeResult:
    return _answer(
        request,
        ChargeStatus.DECLINED,
        error_code="card_declined",
        decline_code=DECLINE_CODE,
        message="The demo bank declined the payment: insufficient funds.",
    )


def _answer(request: ChargeRequest, status: ChargeStatus, **codes: str) -> ChargeResult:
    reference = reference_for(request)
    return ChargeResult(
        status=status,
        gateway=DemoGateway.name,
        amount=request.amount,
        currency=request.currency,
        reference=reference,
        charge_reference=reference.replace("demo_pi_", "demo_ch_"),
        **codes,
    )
