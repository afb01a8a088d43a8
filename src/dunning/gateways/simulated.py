"""A deterministic gateway for the simulator and the tests.

What a charge does is decided by an oracle the caller supplies,
`(request, at) -> ChargeResult`, at the time the caller's clock gives: no
randomness and no clock of its own, so a run on a virtual clock repeats
exactly.  Like a real gateway it keeps one outcome per idempotency key: the
same key again replays the first result and charges nothing; the same key with
other parameters is refused.

The oracle can also fail the way a network does:
- raise `GatewayError` (say `permanent=False`): the gateway never got the
  request; nothing is charged or remembered, and the same key tries afresh;
- raise `LostAnswer(result)`: the charge happened but its answer was lost; the
  caller gets a temporary `GatewayError`, and its retry with the same key
  replays `result`, as Stripe does after a timeout.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from dunning.gateways.base import (
    Authentication,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    GatewayError,
)

Oracle = Callable[[ChargeRequest, datetime], ChargeResult]
Clock = Callable[[], datetime]


class LostAnswer(Exception):
    """Raised by an oracle: `result` happened, but the caller never hears it."""

    def __init__(self, result: ChargeResult) -> None:
        super().__init__("the gateway charged, but its answer was lost")
        self.result = result


@dataclass(frozen=True, slots=True)
class ReceivedCharge:
    """One call to `charge`, as the gateway saw it."""

    request: ChargeRequest
    at: datetime
    replayed: bool


@dataclass(frozen=True, slots=True)
class Charge:
    """One charge the gateway made (at most one per idempotency key)."""

    request: ChargeRequest
    at: datetime
    result: ChargeResult


class SimulatedGateway:
    name = "simulated"

    def __init__(self, *, oracle: Oracle, clock: Clock) -> None:
        self._oracle = oracle
        self._clock = clock
        self._lock = threading.Lock()
        self._by_key: dict[str, Charge] = {}
        self.received: list[ReceivedCharge] = []
        self.charges: list[Charge] = []
        self.at_the_bank: set[str] = set()  # keys of on-session payments awaiting the customer
        self.canceled: set[str] = set()  # keys of payments called off (`abandon`)

    def __repr__(self) -> str:
        return f"SimulatedGateway(charges={len(self.charges)})"

    def charge(self, request: ChargeRequest) -> ChargeResult:
        at = self._clock()
        with self._lock:
            earlier = self._by_key.get(request.idempotency_key)
            self.received.append(ReceivedCharge(request, at, replayed=earlier is not None))
            if earlier is not None:
                if earlier.request != request:
                    raise GatewayError(
                        f"idempotency key {request.idempotency_key} was first used "
                        "with other parameters",
                        permanent=True,
                        code="idempotency_error",
                    )
                return earlier.result
            try:
                result = self._oracle(request, at)
            except LostAnswer as lost:
                self._remember(Charge(request, at, lost.result))
                raise GatewayError(
                    "simulated timeout; the outcome is unknown", permanent=False
                ) from None
            self._remember(Charge(request, at, result))
            return result

    def charge_on_session(
        self, request: ChargeRequest, *, return_url: str
    ) -> ChargeResult | Authentication:
        """As `charge`; a decline asking for authentication becomes the bank's question.

        The simulated bank asks nothing on its page: its URL is the return URL,
        and the customer's confirmation turns the payment into a success.
        """
        result = self.charge(request)
        if request.idempotency_key in self.canceled:
            raise GatewayError(f"simulated payment {result.reference} was canceled", permanent=True)
        if result.declined and result.decline_code == "authentication_required":
            self.at_the_bank.add(request.idempotency_key)
            query = urlencode({"payment_intent": result.reference})
            return Authentication(url=f"{return_url}?{query}", reference=result.reference)
        return result

    def outcome(self, reference: str, request: ChargeRequest) -> ChargeResult | Authentication:
        with self._lock:
            earlier = self._by_key.get(request.idempotency_key)
            if (
                earlier is None
                or earlier.request != request
                or earlier.result.reference != reference
            ):
                raise GatewayError(
                    f"no simulated payment {reference} for this request", permanent=True
                )
            if request.idempotency_key in self.canceled:
                raise GatewayError(f"simulated payment {reference} was canceled", permanent=True)
            if request.idempotency_key in self.at_the_bank:
                # The customer confirmed on the bank's page.
                self.at_the_bank.discard(request.idempotency_key)
                self._remember(Charge(request, self._clock(), succeeded(request)))
            return self._by_key[request.idempotency_key].result

    def find_charge(self, request: ChargeRequest, *, since: datetime) -> ChargeResult | None:
        """The charge made under the request's key (a lost answer's too), if any."""
        with self._lock:
            earlier = self._by_key.get(request.idempotency_key)
            key = request.idempotency_key
            if earlier is None or earlier.at < since or earlier.request != request:
                return None
            if key in self.canceled:
                return None
            if key in self.at_the_bank:
                return waiting(request)
            return earlier.result

    def abandon(self, reference: str, request: ChargeRequest) -> ChargeResult | None:
        """Cancel the on-session payment under the request's key if it still waits."""
        with self._lock:
            key = request.idempotency_key
            earlier = self._by_key.get(key)
            if earlier is None or earlier.result.reference != reference:
                raise GatewayError(f"no simulated payment {reference} to cancel", permanent=True)
            if key in self.at_the_bank or key in self.canceled:
                self.at_the_bank.discard(key)
                self.canceled.add(key)
                return None
            return earlier.result

    def _remember(self, charge: Charge) -> None:
        self._by_key[charge.request.idempotency_key] = charge
        self.charges.append(charge)

    def charges_for(self, invoice_external_id: str) -> list[Charge]:
        return [c for c in self.charges if c.request.invoice_external_id == invoice_external_id]


def reference_for(request: ChargeRequest) -> str:
    """A stable, gateway-looking id for the charge this key makes."""
    digest = hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]
    return f"sim_pi_{digest}"


def succeeded(request: ChargeRequest) -> ChargeResult:
    """The result an oracle returns to approve `request`."""
    reference = reference_for(request)
    return ChargeResult(
        status=ChargeStatus.SUCCEEDED,
        gateway=SimulatedGateway.name,
        amount=request.amount,
        currency=request.currency,
        reference=reference,
        charge_reference=reference.replace("sim_pi_", "sim_ch_"),
    )


def processing(request: ChargeRequest) -> ChargeResult:
    """The result an oracle returns for a charge accepted but not settled yet."""
    return _unsettled(request, ChargeStatus.PENDING)


def waiting(request: ChargeRequest) -> ChargeResult:
    """What a lookup finds of an on-session payment whose customer is at the bank's page."""
    return _unsettled(request, ChargeStatus.WAITING)


def _unsettled(request: ChargeRequest, status: ChargeStatus) -> ChargeResult:
    return ChargeResult(
        status=status,
        gateway=SimulatedGateway.name,
        amount=request.amount,
        currency=request.currency,
        reference=reference_for(request),
    )


def declined(
    request: ChargeRequest,
    decline_code: str,
    *,
    advice_code: str = "",
    network_decline_code: str = "",
    network_advice_code: str = "",
    network: str = "",
    message: str = "",
    error_code: str = "card_declined",
) -> ChargeResult:
    """The result an oracle returns to decline `request` with Stripe's codes."""
    reference = reference_for(request)
    return ChargeResult(
        status=ChargeStatus.DECLINED,
        gateway=SimulatedGateway.name,
        amount=request.amount,
        currency=request.currency,
        reference=reference,
        charge_reference=reference.replace("sim_pi_", "sim_ch_"),
        error_code=error_code,
        decline_code=decline_code,
        advice_code=advice_code,
        network_decline_code=network_decline_code,
        network_advice_code=network_advice_code,
        network=network,
        message=message or f"The card was declined ({decline_code}).",
    )
