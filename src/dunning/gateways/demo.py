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

It cannot look a charge up or cancel one: the engine treats it as it treats any
gateway without those abilities.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from dunning.gateways.base import (
    Authentication,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    GatewayError,
)

DECLINING_CARDS_PER_100 = 20
SUCCEEDING_RETRIES_PER_100 = 40
DECLINE_CODE = "insufficient_funds"


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
        if declines_every_charge(request.payment_method_external_id):
            return _declined(request)
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
        """What became of a payment from the pay page: what `charge_on_session` answered.

        The demo bank never sends the customer to its own page, so this is only
        asked if a customer's return is replayed; a reference that is not this
        request's is refused, as a real gateway refuses another's payment."""
        if reference != _reference(request):
            raise GatewayError(f"no demo payment {reference} for this request", permanent=True)
        return self.charge_on_session(request, return_url="")


def declines_every_charge(payment_method_external_id: str) -> bool:
    """Whether the demo bank declines every charge on this card."""
    return _per_100("card", payment_method_external_id) < DECLINING_CARDS_PER_100


def _per_100(kind: str, value: str) -> int:
    digest = hashlib.sha256(f"{kind}:{value}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100


def _reference(request: ChargeRequest) -> str:
    return "demo_pi_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]


def _succeeded(request: ChargeRequest) -> ChargeResult:
    reference = _reference(request)
    return ChargeResult(
        status=ChargeStatus.SUCCEEDED,
        gateway=DemoGateway.name,
        amount=request.amount,
        currency=request.currency,
        reference=reference,
        charge_reference=reference.replace("demo_pi_", "demo_ch_"),
    )


def _declined(request: ChargeRequest) -> ChargeResult:
    reference = _reference(request)
    return ChargeResult(
        status=ChargeStatus.DECLINED,
        gateway=DemoGateway.name,
        amount=request.amount,
        currency=request.currency,
        reference=reference,
        charge_reference=reference.replace("demo_pi_", "demo_ch_"),
        error_code="card_declined",
        decline_code=DECLINE_CODE,
        message="The demo bank declined the payment: insufficient funds.",
    )
