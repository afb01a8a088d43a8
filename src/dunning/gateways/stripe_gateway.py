"""Stripe: charge a saved payment method with an off-session PaymentIntent.

One call is `POST /v1/payment_intents` with `confirm=true, off_session=true`
and our idempotency key as Stripe's `Idempotency-Key`; for an invoice Stripe
Billing issued (`ChargeRequest.gateway_invoice`) it is
`POST /v1/invoices/{id}/pay` with the card and `off_session=true`, so Stripe's
own invoice is paid and its own retries stop.  Stripe answers 200 with
the PaymentIntent (succeeded, processing, or requires_action) or 402 with a
card_error that carries the decline codes and the PaymentIntent.  Anything
else is a `GatewayError`: transport failures, an answer that cannot be read,
5xx, 429 and lock conflicts may have charged or not (retry with the same
key), the other 4xx will not go better by retrying.

On the pay page the same PaymentIntent is made on-session, with a
`return_url`: when the bank wants 3-D Secure, Stripe answers `requires_action`
with a `redirect_to_url`; the customer confirms on the bank's page, comes back,
and `outcome` reads the PaymentIntent (checked to be that invoice's).

Each PaymentIntent carries our idempotency key in its metadata: a charge whose
answer was lost and whose key Stripe has since forgotten (after 24 hours) is
found by listing the customer's PaymentIntents (`find_charge`).

A new card is saved on Stripe's own page, a Checkout Session in setup mode
(`start_card_setup`); back on the return URL, `card_setup_result` reads the
session, checks it is that customer's, and makes the card their default for
invoices, so Stripe Billing charges it too.  The card number never reaches
dunning.

The API key lives only in the `StripeClient`; nothing here logs it, and the
card is only ever named by its brand.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from stripe.params import PaymentIntentCreateParams
from stripe.params.checkout import SessionCreateParams

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
from dunning.gateways.stripe_amounts import StripeAmountError, from_stripe, to_stripe
from dunning.gateways.stripe_events import refused_by_the_card

logger = logging.getLogger(__name__)

# Connecting is quick or broken; a confirmation waits for the issuer's answer,
# which Stripe returns within seconds, so a minute is generous without letting a
# dead connection hold a worker for the library's default 80 s.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
# The library retries connection errors, 409 and 5xx itself, reusing our
# Idempotency-Key, with 0.5 s to 5 s backoff and jitter.  Two keeps a worker
# from sleeping long; the engine retries later with the same key anyway.
MAX_NETWORK_RETRIES = 2
# Stripe error codes that clear on their own: another request with the same key
# still running, a lock on the customer, the rate limiter.
TEMPORARY_CODES = frozenset({"idempotency_key_in_use", "lock_timeout", "rate_limit"})
# Our invoice id on the PaymentIntent, so its webhooks can find the invoice.
INVOICE_METADATA_KEY = "dunning_invoice"
# Our idempotency key on the PaymentIntent, so a charge whose answer was lost can
# be found after Stripe has forgotten the key (`find_charge`).
KEY_METADATA_KEY = "dunning_key"
# On a PaymentIntent made on the pay page, the customer present (`charge_request`).
ON_SESSION_METADATA_KEY = "dunning_on_session"
# PaymentIntents that took no money and carry no decline: never confirmed, or dropped.
NOT_CHARGED = frozenset({"requires_confirmation", "canceled"})
# Stripe's clock and ours may differ a little: look a little before `since`.
CLOCK_SKEW = 300  # seconds
# Stripe puts the Checkout Session's id where the return URL says this.
SESSION_ID_TEMPLATE = "{CHECKOUT_SESSION_ID}"
# On the SetupIntent of a card page's session: its webhook makes the card the
# default even if the customer never comes back to the return page.
CARD_SETUP_METADATA_KEY = "dunning_card_setup"
# A GatewayError's code: an amount Stripe's units cannot express (`stripe_amounts`).
AMOUNT_NOT_REPRESENTABLE = "amount_not_representable"
# Subscriptions that still charge: a new card replaces the one they name.
LIVE_SUBSCRIPTIONS = frozenset({"active", "trialing", "past_due", "unpaid", "incomplete"})


class StripeGateway:
    name = "stripe"

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str = "https://api.stripe.com",
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        max_network_retries: int = MAX_NETWORK_RETRIES,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        if not api_key:
            raise ImproperlyConfigured(
                "DUNNING_STRIPE_API_KEY is empty: set it to a secret or restricted key "
                "to charge through Stripe"
            )
        self.api_base = api_base.rstrip("/")
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": self.api_base},
            max_network_retries=max_network_retries,
            http_client=http_client
            or stripe.RequestsClient(timeout=(connect_timeout, read_timeout)),
        )

    @classmethod
    def from_settings(cls) -> StripeGateway:
        return cls(
            api_key=settings.DUNNING_STRIPE_API_KEY,
            api_base=settings.DUNNING_STRIPE_API_BASE,
        )

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return f"StripeGateway(api_base={self.api_base!r})"

    def charge(self, request: ChargeRequest) -> ChargeResult:
        try:
            if request.gateway_invoice:
                # A Stripe Billing invoice: pay it (POST /v1/invoices/{id}/pay), so
                # Stripe marks it paid and stops its own retries.  Since API
                # 2025-03-31.basil an invoice names its PaymentIntents only in its
                # expanded `payments`: without them the answer's reference would be
                # the invoice, which its own webhooks never name.
                invoice = self._client.v1.invoices.pay(
                    request.invoice_external_id,
                    params={
                        "payment_method": request.payment_method_external_id,
                        "off_session": True,
                        "expand": ["payments"],
                    },
                    options={"idempotency_key": request.idempotency_key},
                )
                result = result_from_invoice(invoice.to_dict(), request)
            else:
                intent = self._client.v1.payment_intents.create(
                    params=payment_intent_params(request),
                    options={"idempotency_key": request.idempotency_key},
                )
                result = result_from_payment_intent(intent.to_dict(), request)
        except stripe.CardError as error:
            body = error.json_body if isinstance(error.json_body, Mapping) else {}
            result = result_from_card_error(body, request)
        except stripe.StripeError as error:
            raise _failed("charge", error, request) from None
        logger.info(
            "stripe charge for invoice %s (key %s): %s %s %s",
            request.invoice_external_id,
            request.idempotency_key,
            result.status,
            result.reference,
            result.decline_code,
        )
        return result

    def find_charge(self, request: ChargeRequest, *, since: datetime) -> ChargeResult | None:
        """The customer's PaymentIntents made since `since` (a list, which Stripe keeps
        consistent, unlike its search), the one carrying the request's key; for a
        Stripe Billing invoice, the invoice itself: paid, a payment of it under way
        (`_payment_under_way`), or none."""
        try:
            if request.gateway_invoice:
                invoice = self._client.v1.invoices.retrieve(
                    request.invoice_external_id, params={"expand": ["payments"]}
                ).to_dict()
                if invoice.get("status") == "paid":
                    return result_from_invoice(invoice, request)
                return self._payment_under_way(invoice, request)
            intents = self._client.v1.payment_intents.list(
                params={
                    "customer": request.customer_external_id,
                    "created": {"gte": int(since.timestamp()) - CLOCK_SKEW},
                    "limit": 100,
                }
            )
            for found in intents.auto_paging_iter():
                intent = found.to_dict()
                metadata = intent.get("metadata") or {}
                if KEY_METADATA_KEY not in metadata and (
                    metadata.get(INVOICE_METADATA_KEY) == request.invoice_external_id
                ):
                    # Made for this invoice before charges carried their key: it
                    # may be the very charge, and nothing here can tell.
                    raise GatewayError(
                        f"Stripe PaymentIntent {intent.get('id')} of invoice "
                        f"{request.invoice_external_id} carries no key to compare",
                        permanent=True,
                        code="unkeyed_payment_intent",
                    )
                if metadata.get(KEY_METADATA_KEY) != request.idempotency_key:
                    continue
                _same_charge(intent, request)
                if _took_no_money(intent):
                    continue  # another with the key may have
                if _waits_for_the_customer(intent):
                    # Made on the pay page: the customer may still confirm it.
                    return _result(ChargeStatus.WAITING, request, reference=intent["id"], charge="")
                return result_from_payment_intent(intent, request)
        except stripe.StripeError as error:
            raise _failed("lookup", error, request) from None
        return None

    def abandon(self, reference: str, request: ChargeRequest) -> ChargeResult | None:
        """Cancel a pay-page PaymentIntent the customer left at the bank's page
        (`cancellation_reason=abandoned`), so it can take no money; one Stripe will not
        cancel any more (it succeeded, failed or is processing) is read and returned."""
        try:
            try:
                # No key of ours: canceling twice is harmless, and a key would have
                # Stripe replay a first failure for a day.
                intent = self._client.v1.payment_intents.cancel(
                    reference, params={"cancellation_reason": "abandoned"}
                ).to_dict()
            except stripe.InvalidRequestError:
                intent = self._client.v1.payment_intents.retrieve(reference).to_dict()
        except stripe.StripeError as error:
            raise _failed("cancel", error, request) from None
        _same_charge(intent, request)
        if _took_no_money(intent):
            return None
        if _waits_for_the_customer(intent):
            raise GatewayError(
                f"Stripe PaymentIntent {reference} still waits for the customer after "
                "being canceled",
                permanent=False,
            )
        return result_from_payment_intent(intent, request)

    def _payment_under_way(
        self, invoice: Mapping[str, Any], request: ChargeRequest
    ) -> ChargeResult | None:
        """An unpaid Stripe Billing invoice: what its payment under way came to (still
        processing, or declined), or None when none of its payments took or may take
        money.  Its payments are listed only when expanded: an invoice that does not
        list them cannot say the charge never happened."""
        listed = invoice.get("payments") or {}
        payments = listed.get("data")
        if invoice.get("status") == "open" and (payments is None or listed.get("has_more")):
            raise GatewayError(
                f"Stripe invoice {invoice.get('id')} does not list all its payments",
                permanent=True,
                code="invoice_payments_unlisted",
            )
        for payment in payments or []:
            inner = payment.get("payment") or {}
            intent_id = stripe_id(inner.get("payment_intent"))
            if payment.get("status") != "open" or not intent_id:
                continue
            intent = self._client.v1.payment_intents.retrieve(intent_id).to_dict()
            if not _took_no_money(intent):
                return result_from_payment_intent(intent, request)
        return None

    def charge_on_session(
        self, request: ChargeRequest, *, return_url: str
    ) -> ChargeResult | Authentication:
        """Charge with the customer on the pay page: 3-D Secure sends them to the bank."""
        try:
            intent = self._client.v1.payment_intents.create(
                params=payment_intent_params(request, return_url=return_url),
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.CardError as error:
            body = error.json_body if isinstance(error.json_body, Mapping) else {}
            return result_from_card_error(body, request)
        except stripe.StripeError as error:
            raise gateway_error(error) from None
        return on_session_result(intent.to_dict(), request)

    def outcome(self, reference: str, request: ChargeRequest) -> ChargeResult | Authentication:
        try:
            intent = self._client.v1.payment_intents.retrieve(reference).to_dict()
        except stripe.StripeError as error:
            raise gateway_error(error) from None
        metadata = intent.get("metadata") or {}
        if (
            metadata.get(INVOICE_METADATA_KEY) != request.invoice_external_id
            or stripe_id(intent.get("customer")) != request.customer_external_id
        ):
            raise GatewayError(
                f"Stripe PaymentIntent {reference} is not a payment of invoice "
                f"{request.invoice_external_id}",
                permanent=True,
            )
        if str(intent.get("currency") or "").upper() != request.currency:
            raise GatewayError(
                f"Stripe PaymentIntent {reference} is in {intent.get('currency')}, "
                f"not {request.currency}",
                permanent=True,
            )
        # What it took, even if the invoice's balance changed while the customer
        # was at the bank.
        amount = _ledger_amount(intent)
        if amount is None:
            raise GatewayError(
                f"Stripe PaymentIntent {reference} is for {intent.get('amount')} "
                f"{intent.get('currency')}, which the ledger cannot hold",
                permanent=True,
                code=AMOUNT_NOT_REPRESENTABLE,
            )
        if amount > 0:
            request = dataclasses.replace(request, amount=amount)
        return on_session_result(intent, request)

    def start_card_setup(self, request: CardSetupRequest) -> str:
        """A Checkout Session in setup mode: Stripe's page, where the customer saves a card."""
        separator = "&" if "?" in request.return_url else "?"
        params: SessionCreateParams = {
            "mode": "setup",
            "customer": request.customer_external_id,
            "allowed_payment_method_types": ["card"],  # the engine retries cards
            "locale": request.locale,
            "success_url": f"{request.return_url}{separator}session_id={SESSION_ID_TEMPLATE}",
            "cancel_url": request.cancel_url,
            "setup_intent_data": {"metadata": {CARD_SETUP_METADATA_KEY: "true"}},
        }
        try:
            session = self._client.v1.checkout.sessions.create(
                params=params, options={"idempotency_key": request.idempotency_key}
            )
        except stripe.StripeError as error:
            raise gateway_error(error) from None
        if not session.url:
            raise GatewayError(f"Stripe Checkout Session {session.id} has no URL", permanent=True)
        return str(session.url)

    def card_setup_result(self, reference: str, *, customer_external_id: str) -> NewCard | None:
        try:
            session = self._client.v1.checkout.sessions.retrieve(
                reference, params={"expand": ["setup_intent.payment_method"]}
            ).to_dict()
        except stripe.StripeError as error:
            raise gateway_error(error) from None
        if session.get("mode") != "setup" or stripe_id(session.get("customer")) != (
            customer_external_id
        ):
            raise GatewayError(
                f"Stripe Checkout Session {reference} is not a card setup of this customer",
                permanent=True,
                code=NOT_THIS_CUSTOMERS,
            )
        intent = session.get("setup_intent") or {}
        method = intent.get("payment_method") if isinstance(intent, Mapping) else None
        if (
            session.get("status") != "complete"
            or intent.get("status") != "succeeded"
            or not isinstance(method, Mapping)
        ):
            return None
        card = method.get("card") or {}
        try:
            self._make_default(customer_external_id, str(method["id"]), reference=reference)
        except stripe.StripeError as error:
            raise gateway_error(error) from None
        return NewCard(
            external_id=str(method["id"]),
            brand=str(card.get("brand") or ""),
            last4=str(card.get("last4") or ""),
            exp_month=card.get("exp_month"),
            exp_year=card.get("exp_year"),
        )

    def _make_default(self, customer: str, method: str, *, reference: str) -> None:
        """The customer's default for invoices, and for each live subscription that names
        a card of its own (Stripe charges that one first): Stripe Billing's own retries
        then use the new card too."""
        self._client.v1.customers.update(
            customer,
            params={"invoice_settings": {"default_payment_method": method}},
            options={"idempotency_key": f"default:{reference}"},
        )
        subscriptions = self._client.v1.subscriptions.list(
            params={"customer": customer, "status": "all", "limit": 100}
        )
        for found in subscriptions.auto_paging_iter():
            subscription = found.to_dict()
            own = stripe_id(subscription.get("default_payment_method"))
            if subscription.get("status") in LIVE_SUBSCRIPTIONS and own and own != method:
                self._client.v1.subscriptions.update(
                    str(subscription["id"]),
                    params={"default_payment_method": method},
                    options={"idempotency_key": f"default:{reference}:{subscription['id']}"},
                )


def on_session_result(
    intent: Mapping[str, Any], request: ChargeRequest
) -> ChargeResult | Authentication:
    """An on-session PaymentIntent: the bank's redirect while it waits for the customer;
    NOT_ATTEMPTED when it took no money and the card was not declined (the customer
    failed or left 3-D Secure), so the customer may simply try again."""
    if _took_no_money(intent):
        error = intent.get("last_payment_error") or {}
        return _result(
            ChargeStatus.NOT_ATTEMPTED,
            request,
            reference=str(intent.get("id") or ""),
            charge="",
            error_code=str(error.get("code") or ""),
            message=str(error.get("message") or ""),
        )
    if intent.get("status") == "requires_action":
        action = intent.get("next_action") or {}
        url = str((action.get("redirect_to_url") or {}).get("url") or "")
        if url:
            return Authentication(url=url, reference=str(intent.get("id") or ""))
        raise GatewayError(
            f"Stripe PaymentIntent {intent.get('id')} waits for {action.get('type')}, "
            "which the pay page cannot offer",
            permanent=True,
            code="requires_action",
        )
    return result_from_payment_intent(intent, request)


def payment_intent_params(
    request: ChargeRequest, *, return_url: str = ""
) -> PaymentIntentCreateParams:
    """The form Stripe receives, its amount in Stripe's units (`stripe_amounts`).

    Off-session (no `return_url`) by default; with a `return_url`, on-session:
    the customer is on the pay page and can follow the bank's redirect.
    """
    params: PaymentIntentCreateParams = {
        "amount": stripe_amount(request),
        "currency": request.currency.lower(),
        "customer": request.customer_external_id,
        "payment_method": request.payment_method_external_id,
        "confirm": True,
        "metadata": {
            **request.metadata,
            INVOICE_METADATA_KEY: request.invoice_external_id,
            KEY_METADATA_KEY: request.idempotency_key,
        },
    }
    if return_url:
        # 3-D Secure comes back as next_action.redirect_to_url: a page of the
        # bank's, then back to `return_url`.  No Stripe.js on our pages.
        params["return_url"] = return_url
        params["automatic_payment_methods"] = {"enabled": True}
    else:
        params["off_session"] = True
        # Off-session nobody can follow a redirect; without this Stripe asks
        # for a return_url whenever automatic payment methods are on.
        params["automatic_payment_methods"] = {"enabled": True, "allow_redirects": "never"}
    if request.description:
        params["description"] = request.description
    return params


def result_from_payment_intent(intent: Mapping[str, Any], request: ChargeRequest) -> ChargeResult:
    status = intent.get("status")
    reference = str(intent.get("id") or "")
    charge = stripe_id(intent.get("latest_charge"))
    if status == "succeeded":
        return _result(ChargeStatus.SUCCEEDED, request, reference=reference, charge=charge)
    if status == "processing":
        return _result(ChargeStatus.PENDING, request, reference=reference, charge=charge)
    error = intent.get("last_payment_error") or {}
    if status == "requires_action":
        # The issuer wants 3-D Secure and nobody is there to do it: the customer
        # has to pay on-session (rules.md 1.2, authentication_required).
        return _declined(
            {
                "code": "authentication_required",
                "decline_code": "authentication_required",
                "message": "The payment needs the customer to authenticate it.",
                **{key: value for key, value in error.items() if value},
            },
            intent,
            request,
        )
    if status == "requires_payment_method" and error and refused_by_the_card(error):
        return _declined(error, intent, request)
    raise GatewayError(
        f"Stripe PaymentIntent {reference} is {status} after confirmation",
        permanent=True,
        code=str(status or ""),
    )


def _took_no_money(intent: Mapping[str, Any]) -> bool:
    """A PaymentIntent never confirmed, canceled, or waiting for another card after a try
    that never reached the card's issuer (`refused_by_the_card`)."""
    status = intent.get("status")
    error = intent.get("last_payment_error") or {}
    return status in NOT_CHARGED or (
        status == "requires_payment_method" and not refused_by_the_card(error)
    )


def _waits_for_the_customer(intent: Mapping[str, Any]) -> bool:
    """A PaymentIntent made on the pay page that waits for 3-D Secure at the bank."""
    metadata = intent.get("metadata") or {}
    return (
        intent.get("status") == "requires_action"
        and metadata.get(ON_SESSION_METADATA_KEY) == "true"
    )


def _same_charge(intent: Mapping[str, Any], request: ChargeRequest) -> None:
    """A PaymentIntent found under the request's key is that charge only if it charged
    the same invoice the same amount; one that does not (a key made before charges were
    stored with their keys, then charged for another amount) is for an operator."""
    same = (
        _ledger_amount(intent) == request.amount
        and str(intent.get("currency") or "").upper() == request.currency.upper()
        and (intent.get("metadata") or {}).get(INVOICE_METADATA_KEY) == request.invoice_external_id
    )
    if not same:
        raise GatewayError(
            f"Stripe PaymentIntent {intent.get('id')} under key {request.idempotency_key} "
            "charged another invoice or amount than the one asked about",
            permanent=True,
            code="key_parameters_differ",
        )


def stripe_amount(request: ChargeRequest) -> int:
    """The request's amount in Stripe's units; one Stripe cannot charge exactly (KWD 5.125,
    a fraction of a króna) is refused here rather than rounded into another charge."""
    try:
        return to_stripe(request.amount, request.currency)
    except StripeAmountError as error:
        raise GatewayError(
            f"invoice {request.invoice_external_id}: {error}",
            permanent=True,
            code=AMOUNT_NOT_REPRESENTABLE,
        ) from None


def _ledger_amount(intent: Mapping[str, Any]) -> int | None:
    """A PaymentIntent's amount in the ledger's units; None when the ledger cannot hold it."""
    amount = intent.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int):
        return None
    try:
        return from_stripe(amount, str(intent.get("currency") or ""))
    except StripeAmountError:
        return None


def result_from_invoice(invoice: Mapping[str, Any], request: ChargeRequest) -> ChargeResult:
    """What paying a Stripe invoice came to: paid, or still open (processing)."""
    # The PaymentIntent that paid it, as a charge made directly would be
    # recorded, so its webhooks find the same attempt; else the invoice's id.
    intent = stripe_id(invoice.get("payment_intent"))  # API versions before basil
    charge = stripe_id(invoice.get("charge"))
    paying = _paying_payment(invoice)
    if paying:
        intent = stripe_id(paying.get("payment_intent")) or intent
        charge = stripe_id(paying.get("charge")) or charge
    reference = intent or str(invoice.get("id") or "")
    status = invoice.get("status")
    if status == "paid":
        return _result(ChargeStatus.SUCCEEDED, request, reference=reference, charge=charge)
    if status == "open":
        # Accepted but not settled (a bank debit, say): the webhook settles it.
        return _result(ChargeStatus.PENDING, request, reference=reference, charge=charge)
    raise GatewayError(
        f"Stripe invoice {reference} is {status} after paying it",
        permanent=True,
        code=str(status or ""),
    )


def _paying_payment(invoice: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `payment` of the invoice's expanded InvoicePayment that pays it: the paid one,
    else the one under way.  Earlier declined tries (canceled) are listed too, newest
    first, and must not lend their PaymentIntent to this answer."""
    payments = (invoice.get("payments") or {}).get("data") or []
    for status in ("paid", "open"):
        for payment in payments:
            if payment.get("status") == status:
                inner: Mapping[str, Any] = payment.get("payment") or {}
                return inner
    return {}


def result_from_card_error(body: Mapping[str, Any], request: ChargeRequest) -> ChargeResult:
    error = body.get("error") or {}
    return _declined(error, error.get("payment_intent") or {}, request)


def _failed(doing: str, error: stripe.StripeError, request: ChargeRequest) -> GatewayError:
    failure = gateway_error(error)
    logger.warning(
        "stripe %s for invoice %s (key %s) failed: %s",
        doing,
        request.invoice_external_id,
        request.idempotency_key,
        failure,
    )
    return failure


def gateway_error(error: stripe.StripeError) -> GatewayError:
    code = str(error.code or "")
    status = error.http_status
    kind = type(error).__name__
    if isinstance(error, stripe.APIConnectionError):
        # Timed out or cut off: Stripe may have charged the card.
        return GatewayError(
            f"Stripe unreachable ({kind}); the outcome is unknown",
            permanent=False,
            code=code,
        )
    if status is not None and status < 400:
        # A success whose body could not be read (cut short, a proxy's page): Stripe
        # may have charged the card.  The library's message quotes the body,
        # client_secret included: it is not repeated.
        return GatewayError(
            f"Stripe answered {status} with a body that could not be read; the outcome is unknown",
            permanent=False,
            code=code,
            http_status=status,
        )
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        # Our API key is wrong, revoked or lacks a permission: Stripe processed
        # nothing, and will refuse every charge alike until the key is fixed.
        return GatewayError(
            f"Stripe answered {status} {kind}: dunning's API key was refused "
            "(DUNNING_STRIPE_API_KEY: wrong, revoked, or missing a permission)",
            permanent=True,
            code=code,
            http_status=status,
            account_refused=True,
        )
    temporary = (
        isinstance(error, stripe.RateLimitError)
        or status is None
        or status >= 500
        or status == 409
        or code in TEMPORARY_CODES
    )
    return GatewayError(
        f"Stripe answered {status} {kind}{f' ({code})' if code else ''}: {error.user_message}",
        permanent=not temporary,
        code=code,
        http_status=status,
    )


def _declined(
    error: Mapping[str, Any], intent: Mapping[str, Any], request: ChargeRequest
) -> ChargeResult:
    code = str(error.get("code") or "")
    decline = str(error.get("decline_code") or "")
    if not decline:
        # expired_card, incorrect_cvc, authentication_required ... come as the
        # error code alone; a bare card_declined is Stripe's generic decline.
        decline = code if code and code != "card_declined" else "generic_decline"
    method = error.get("payment_method") or {}
    card = (method.get("card") or {}) if isinstance(method, Mapping) else {}
    return _result(
        ChargeStatus.DECLINED,
        request,
        reference=str(intent.get("id") or ""),
        charge=stripe_id(error.get("charge")) or stripe_id(intent.get("latest_charge")),
        error_code=code,
        decline_code=decline,
        advice_code=str(error.get("advice_code") or ""),
        network_decline_code=str(error.get("network_decline_code") or ""),
        network_advice_code=str(error.get("network_advice_code") or ""),
        network=str(card.get("brand") or ""),
        message=str(error.get("message") or ""),
    )


def _result(
    status: ChargeStatus, request: ChargeRequest, *, reference: str, charge: str, **codes: str
) -> ChargeResult:
    return ChargeResult(
        status=status,
        gateway=StripeGateway.name,
        amount=request.amount,
        currency=request.currency,
        reference=reference,
        charge_reference=charge,
        **codes,
    )


def stripe_id(value: Any) -> str:
    """An id, whether Stripe sent it bare or as an expanded object."""
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return str(value or "")
