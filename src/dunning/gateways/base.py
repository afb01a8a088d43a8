"""The gateway contract: charge what remains on an invoice, once per idempotency key.

A gateway adapter takes a `ChargeRequest` and either

- returns a `ChargeResult` whose outcome is known: the money moved (`SUCCEEDED`),
  the issuer or the gateway said no (`DECLINED`, with the codes the retry rules
  need), the gateway accepted the payment but settles it later (`PENDING`, the
  webhook tells the end), or nothing was tried at all (`NOT_ATTEMPTED`, the
  manual gateway); or
- raises `GatewayError` when it cannot say what happened.  `permanent=False`
  (timeout, dropped connection, 5xx, 429, a concurrent request holding the key):
  the charge may or may not have gone through, so the caller must try again
  later with the SAME idempotency key, which lets the gateway replay the first
  outcome instead of charging twice; never with a new key.  `permanent=True`
  (unknown customer or payment method, a key reused with other parameters):
  nothing was charged and trying again will not help; an operator has to look.
  `account_refused=True` (a bad or revoked API key, a missing permission): the
  gateway refused dunning itself, not this charge, and will refuse every other
  one until someone fixes the configuration; nothing was charged.  None is a
  decline: the card was not refused.

`GatewayError` is a `TransportError`, so a delivery stage that already retries
channel messages treats a gateway the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from dunning.channels import TransportError

# Stripe refuses longer keys; other gateways take at least as many.
MAX_IDEMPOTENCY_KEY_LENGTH = 255


class ChargeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    PENDING = "pending"
    NOT_ATTEMPTED = "not_attempted"
    # Found by a lookup: a payment made on-session that waits for the customer to
    # confirm it at the bank (3-D Secure); it may still take the money.
    WAITING = "waiting"


class GatewayError(TransportError):
    """The gateway could not give an outcome; `permanent` says whether retrying can help."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: str = "",
        http_status: int | None = None,
        account_refused: bool = False,
    ) -> None:
        super().__init__(safe_message(message), permanent=permanent or account_refused)
        self.code = code
        self.http_status = http_status
        # The gateway refuses dunning's own requests (credentials, permissions): no
        # charge can be made until the configuration is fixed, whichever it is.
        self.account_refused = account_refused

    @property
    def outcome_unknown(self) -> bool:
        """True when money may have moved: retry with the same idempotency key only."""
        return not self.permanent


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """Charge `amount` minor units of `currency` on a saved payment method, off-session.

    The ids are the gateway's own (`external_id` in the ledger).  The
    idempotency key identifies this collection attempt: the same key sent
    twice is one charge at most.
    """

    amount: int
    currency: str
    customer_external_id: str
    payment_method_external_id: str
    invoice_external_id: str
    idempotency_key: str
    description: str = ""
    # Not hashed: a read-only mapping is not hashable; the key identifies the request.
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)
    # The gateway issued the invoice itself (a Stripe Billing invoice): collect
    # it through that invoice, so the gateway's own record is paid too and its
    # own retries stop, instead of taking the money beside it.
    gateway_invoice: bool = False

    def __post_init__(self) -> None:
        if type(self.amount) is not int or self.amount <= 0:
            raise ValueError("amount must be a positive integer of minor units")
        if not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise ValueError("currency must be an upper-case ISO 4217 code, like USD")
        for name in ("customer_external_id", "payment_method_external_id", "invoice_external_id"):
            if not getattr(self, name):
                raise ValueError(f"{name} is required")
        if not self.idempotency_key or len(self.idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            raise ValueError(
                f"idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
            )
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.metadata.items()):
            raise ValueError("metadata keys and values must be strings")
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """What the gateway answered, as plain data the engine can record.

    `reference` is the gateway's id for the payment (a Stripe PaymentIntent),
    stable across retries with the same key; `charge_reference` is the single
    try on the card (a Stripe Charge), when there was one.  `network` is the
    card brand (visa, mastercard, ...), which the network retry caps need.
    `message` is safe to log: no secret, no card number.
    """

    status: ChargeStatus
    gateway: str
    amount: int
    currency: str
    reference: str = ""
    charge_reference: str = ""
    error_code: str = ""
    decline_code: str = ""
    advice_code: str = ""
    network_decline_code: str = ""
    network_advice_code: str = ""
    network: str = ""
    message: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", safe_message(self.message))
        if self.status is ChargeStatus.DECLINED and not self.decline_code:
            raise ValueError("a declined charge needs a decline_code")
        if self.status is not ChargeStatus.DECLINED and self.decline_code:
            raise ValueError(f"a {self.status} charge has no decline_code")

    @property
    def succeeded(self) -> bool:
        return self.status is ChargeStatus.SUCCEEDED

    @property
    def declined(self) -> bool:
        return self.status is ChargeStatus.DECLINED

    def attempt_fields(self) -> dict[str, Any]:
        """The keyword arguments `ledger.services.record_payment_attempt` takes from a result.

        Only a succeeded or declined charge is an attempt: a pending one waits
        for its webhook and a manual "not attempted" is no attempt at all.
        """
        if self.status not in (ChargeStatus.SUCCEEDED, ChargeStatus.DECLINED):
            raise ValueError(f"a {self.status} charge is not a payment attempt")
        return {
            "outcome": "succeeded" if self.succeeded else "failed",
            "amount": self.amount,
            "decline_code": self.decline_code,
            "advice_code": self.advice_code,
            "network_code": self.network_decline_code,
            "network_advice_code": self.network_advice_code,
            "gateway": self.gateway,
            "reference": self.reference,
        }


class Gateway(Protocol):
    """Charges saved payment methods.  `name` is what PaymentAttempt.gateway records."""

    name: str

    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge once per idempotency key.  Raises GatewayError when the outcome is unknown."""
        ...


@runtime_checkable
class ChargeLookupGateway(Protocol):
    """A gateway that can say, after the fact, what became of a charge whose answer was lost.

    An idempotency key settles a lost answer only while the gateway keeps it
    (Stripe: 24 hours); past that, asking again could charge twice.  A charge
    also carries its key where the gateway can search for it (Stripe: the
    PaymentIntent's metadata), so it can still be found.
    """

    def find_charge(self, request: ChargeRequest, *, since: datetime) -> ChargeResult | None:
        """The charge made for `request` (by its idempotency key) at or after `since`, or
        None when the gateway holds none that took money.  A decline may read as
        None where the gateway keeps none under the key (a Stripe Billing
        invoice still open); its webhook records it.  A payment made on-session
        that still waits for the customer at the bank is `WAITING`.  Raises
        GatewayError when it cannot tell: temporary (ask again later) or
        permanent (an operator looks)."""
        ...


@dataclass(frozen=True, slots=True)
class Authentication:
    """The bank wants the customer to confirm the payment (3-D Secure) at `url`.

    `reference` is the gateway's payment (a Stripe PaymentIntent).  The
    customer comes back to the return URL given with the charge, and
    `OnSessionGateway.outcome` says what became of the payment.
    """

    url: str
    reference: str


@runtime_checkable
class OnSessionGateway(Gateway, Protocol):
    """A gateway that can also charge with the customer present, on the pay page.

    That is how a decline asking for authentication is settled: no retry can
    answer the bank's question, the customer can.  The same idempotency key
    rules hold: a second click sends the same key and gets the same payment.
    """

    def charge_on_session(
        self, request: ChargeRequest, *, return_url: str
    ) -> ChargeResult | Authentication:
        """Charge now; an `Authentication` when the customer must confirm it first."""
        ...

    def outcome(self, reference: str, request: ChargeRequest) -> ChargeResult | Authentication:
        """What became of payment `reference`, made for `request`, after the customer's return.

        Raises GatewayError (permanent) when `reference` is not a payment of
        that invoice and customer: a return URL can be edited.
        """
        ...


@runtime_checkable
class AbandonGateway(Protocol):
    """An on-session gateway that can call off a payment still waiting for the customer.

    A customer sent to the bank's page who never comes back leaves the payment
    open there (Stripe: a PaymentIntent in `requires_action`), and they could
    still confirm it hours later.  Before anything else charges the invoice,
    the payment is canceled, so that it can no longer take the money.
    """

    def abandon(self, reference: str, request: ChargeRequest) -> ChargeResult | None:
        """Cancel payment `reference`, made for `request`, if it still waits for the customer:
        None once it can take no money.  A payment that no longer waits (it succeeded,
        was declined, or is processing) is not canceled: its result is returned.
        Raises GatewayError when it cannot tell."""
        ...


@dataclass(frozen=True, slots=True)
class CardSetupRequest:
    """Ask the gateway for a page where the customer saves a new card.

    The gateway's page sends the customer to `return_url` with its reference
    added (a Stripe Checkout Session id), or to `cancel_url` if they give up.
    `locale` is the page's language ("th", "en").
    """

    customer_external_id: str
    return_url: str
    cancel_url: str
    locale: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class NewCard:
    """A card the customer saved: what the ledger keeps of it, never more."""

    external_id: str
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None


# GatewayError.code when a reference from a return URL is someone else's.
NOT_THIS_CUSTOMERS = "not_this_customers"


@runtime_checkable
class CardSetupGateway(Protocol):
    """A gateway that hosts a page where the customer saves a new card.

    The card number never touches dunning: the customer types it on the
    gateway's page, and dunning learns the new card's id, brand, last four and
    expiry, then charges it like any saved card (a new card is retried at once).
    """

    def start_card_setup(self, request: CardSetupRequest) -> str:
        """The URL of the gateway's page.  Raises GatewayError when it cannot be made."""
        ...

    def card_setup_result(self, reference: str, *, customer_external_id: str) -> NewCard | None:
        """The card saved in setup `reference`, made it the customer's default; None while
        the customer has not finished.  Raises GatewayError (permanent, code
        NOT_THIS_CUSTOMERS) when `reference` is not a setup of that customer's: a
        return URL can be edited."""
        ...


# Secret and publishable API keys, webhook secrets, and runs of 12 to 19 digits
# (card numbers, with or without spaces or dashes between the groups).
_SECRET = re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z*]+|\bwhsec_[0-9A-Za-z+/=]+")
_CARD_NUMBER = re.compile(r"\b\d(?:[ -]?\d){11,18}\b")
MAX_MESSAGE_LENGTH = 300


def safe_message(text: str) -> str:
    """`text` with API keys and card-number-like digit runs blanked, cut to a log line."""
    text = _SECRET.sub("[redacted key]", text)
    text = _CARD_NUMBER.sub("[redacted number]", text)
    text = " ".join(text.split())
    if len(text) > MAX_MESSAGE_LENGTH:
        text = text[: MAX_MESSAGE_LENGTH - 1] + "…"
    return text
