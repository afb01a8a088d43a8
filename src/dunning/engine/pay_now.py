"""Paying on the pay page with the saved card, the customer present (on-session).

This is how a decline that asks for the customer is settled when the card is
fine: a bank that wants 3-D Secure ("authentication_required") declines every
charge made without the customer, so no retry can succeed; on the pay page the
customer can answer the bank.  It works for any open invoice of the case, the
oldest first, on the customer's default card, through a gateway that can
charge on-session (`OnSessionGateway`: Stripe, the simulated one); with the
manual gateway the page offers no button.  Nor does it offer a card declined
for good for that invoice (a lost card, Visa category 1, MAC 03: the network
rules' never-retry part, `retries.never_to_charge`): even with the customer
present that charge is a forbidden reattempt, so the page asks for another card.

`start` charges: the answer is a result, or the bank's page to send the
customer to (noted on the case's timeline with the payment's reference, the
invoice and the card).  The customer comes back to the return URL;
`offer_for_return` finds what that payment was for by its reference, even if
the page would offer something else by now, and `finish` asks the gateway
what became of it.  A result is recorded through the ledger
like any other attempt (a success recovers the case and thanks the customer),
once: a reloaded return page, or the webhook about the same PaymentIntent,
finds it recorded under the gateway's reference.

The idempotency key names the invoice, the card, the amount and the number of
attempts on the invoice so far, like the retry stage's keys, under its own
prefix: a second click, or a click after the bank's page was left half way,
is the same payment, never a second one.  From before it is sent until its
answer is recorded, the payment is the case's charge in doubt, as a retry
would be: the retry stage charges nothing meanwhile, and asks the gateway
what became of a payment nobody answered (the customer never came back from
the bank, the gateway did not answer, it is still processing).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db import transaction

from dunning.core.cases import CaseState
from dunning.engine import links
from dunning.engine.models import Case, CaseEvent
from dunning.engine.retries import (
    AUTHENTICATION_WINDOW,
    IN_DOUBT_LIMIT,
    LEASE,
    LOOKING_UP,
    ON_SESSION,
    ask_about_charge,
    card_to_charge,
    charge_key,
    charge_request,
    forget_charge,
    hold_for_refund,
    needs_new_details,
    never_to_charge,
    on_session,
    take_charge,
)
from dunning.gateways.base import (
    Authentication,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    Gateway,
    GatewayError,
    OnSessionGateway,
)
from dunning.ledger.errors import LedgerError
from dunning.ledger.models import (
    AttemptOutcome,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAttempt,
    PaymentMethod,
)
from dunning.ledger.services import AttemptFacts, record_payment_attempts

log = logging.getLogger(__name__)

SOURCE = "pay_page"
# On the case's timeline: the page sent a payment to the gateway (its key, numbered
# per invoice), and the customer was sent to the bank to confirm one.
PAYMENT_SENT = "pay_page.payment"
SENT_TO_BANK = "pay_page.authentication"
OPEN_STATES = (CaseState.ACTIVE, CaseState.PAUSED, CaseState.EXHAUSTED)


class Outcome(StrEnum):
    PAID = "paid"
    DECLINED = "declined"
    PROCESSING = "processing"
    AUTHENTICATE = "authenticate"
    UNAVAILABLE = "unavailable"  # the gateway refused the request: nothing was charged
    UNKNOWN = "unknown"  # no answer: the payment may or may not have gone through
    BUSY = "busy"  # a retry of the same invoice may be under way: try again shortly
    CHECKING = "checking"  # an earlier charge's outcome is unknown until it is checked


@dataclass(frozen=True, slots=True)
class Offer:
    """What the pay page offers to pay now: the oldest open invoice, on the default card."""

    case: Case
    invoice: Invoice
    method: PaymentMethod
    paid: int | None = None  # what a recorded payment took (the invoice owes nothing now)
    asked: int | None = None  # what a payment under way was for, if the invoice changed since
    key: str = ""  # that payment's idempotency key: it names the payment to the gateway

    @property
    def amount(self) -> int:
        """The amount in question: taken, asked for, or else what the invoice owes."""
        for amount in (self.paid, self.asked):
            if amount is not None:
                return amount
        return self.invoice.amount_remaining

    def request(self, *, key: str) -> ChargeRequest:
        return charge_request(
            self.case,
            self.invoice,
            self.method,
            key=key,
            amount=self.asked if self.asked is not None else self.invoice.amount_remaining,
        )


@dataclass(frozen=True, slots=True)
class Attempt:
    outcome: Outcome
    result: ChargeResult | None = None  # for PAID and DECLINED
    redirect_to: str = ""  # for AUTHENTICATE


class Refusal(StrEnum):
    """Why the page does not offer the saved card it would otherwise offer."""

    # A never-retry decline of it for that invoice (Visa category 1, MAC 03, a lost
    # card...): even with the customer present that charge is a forbidden
    # reattempt (rules.md 2.1, 2.2).  Only another card will do.
    DECLINED = "declined"
    # Its latest decline for that invoice asks for new details (expired, wrong
    # data, MAC 01...), and its details have not changed since: the same details
    # would be declined the same way, and Mastercard forbids sending them again
    # (rules.md 1.2, 2.2).  The card's current details, or another card, will do.
    NEEDS_DETAILS = "needs_details"


def offer_for(case: Case, gateway: Gateway) -> Offer | None:
    """What can be paid now on the page, or None (nothing owed, no card, no online gateway,
    or a card the page may not charge for that invoice: `page_offer`)."""
    offer, _ = page_offer(case, gateway)
    return offer


def page_offer(case: Case, gateway: Gateway) -> tuple[Offer | None, Refusal | None]:
    """What can be paid now on the page, and why the saved card is refused when it
    would be offered but may not be charged (`Refusal`).

    A decline that asks the customer to confirm the payment with their bank
    (authentication_required) does not refuse the card: paying here, present,
    is how the customer answers the bank.
    """
    offer = _offer(case, gateway)
    if offer is None:
        return None, None
    if never_to_charge(offer.method, offer.invoice):
        return None, Refusal.DECLINED
    if needs_new_details(offer.method, offer.invoice):
        return None, Refusal.NEEDS_DETAILS
    return offer, None


def _offer(case: Case, gateway: Gateway) -> Offer | None:
    if not isinstance(gateway, OnSessionGateway) or case.state not in OPEN_STATES:
        return None
    # An invoice the gateway issued itself (Stripe Billing) is paid through that
    # invoice, on the gateway's own page: a PaymentIntent beside it would leave
    # it open there.
    invoice = next(
        (
            invoice
            for invoice in Invoice.objects.filter(
                cases=case,
                status=InvoiceStatus.OPEN,
                amount_remaining__gt=0,
                gateway_retry_at=None,
            ).order_by("due_at", "id")
            if (invoice.context or {}).get("gateway") != gateway.name
        ),
        None,
    )
    method = card_to_charge(case.customer_id)
    if invoice is None or method is None:
        return None
    return Offer(case=case, invoice=invoice, method=method)


def return_url(case: Case) -> str:
    """Where the bank's page sends the customer back to: the same for every payment of
    the case's, whichever reminder's link it was started from (`links.pay_token`)."""
    return f"{links.pay_link(case.customer, case)}/return"


def start(offer: Offer, *, gateway: OnSessionGateway, now: datetime) -> Attempt:
    """Charge the offer's invoice now; the bank's page when it wants the customer first.

    The payment becomes the case's charge in doubt (`retries.take_charge`) from
    before it is sent until its answer is recorded: the retry stage makes no
    charge of its own meanwhile, and asks the gateway what became of it if
    nobody records an answer (the customer left the bank's page, the gateway
    did not answer, the payment is processing).  It is never sent again without
    the customer.  Pressed again while it is in doubt, the same payment is the
    same request under the same key, which the gateway answers once; another
    charge under way (a retry being sent, or one in doubt) is waited for.
    """
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=offer.case.pk)
        key = _key(case, offer)
        waiting = _charge_under_way(case, key, now=now)
        if waiting is not None:
            return Attempt(waiting)
        request = offer.request(key=key)
        pressed_again = case.retry_key == key
        take_charge(
            case, request, invoice=offer.invoice, method=offer.method, now=now, ask_at=now + LEASE
        )
        if not pressed_again:
            CaseEvent.objects.create(
                case=case,
                type=PAYMENT_SENT,
                # Written before the gateway answers: it says what was asked, not
                # that it was paid (a decline follows it as often as a payment).
                reason=f"the customer asked to pay invoice {offer.invoice.number} on the "
                "pay page: the payment was sent to the gateway",
                data={"invoice": offer.invoice.external_id, "key": key, "amount": request.amount},
                occurred_at=now,
            )
    try:
        answer: ChargeResult | Authentication | None = gateway.charge_on_session(
            request, return_url=return_url(offer.case)
        )
    except GatewayError as error:
        log.warning("case %s: paying on the page failed: %s", offer.case.pk, error)
        if not error.outcome_unknown:
            if pressed_again:
                # Refused this time, but the first press's payment may be at the
                # bank still: it stays in doubt and is asked about.
                ask_about_charge(offer.case.pk, key, at=now + LEASE, now=now)
            else:
                forget_charge(offer.case.pk, key, now=now)  # refused, so not made
            return Attempt(Outcome.UNAVAILABLE)
        answer = None
    if answer is None:
        # It may have gone through: the retry stage looks it up after the lease.
        return Attempt(Outcome.UNKNOWN)
    if isinstance(answer, Authentication):
        # The customer is at the bank: their return records the answer; if they
        # do not come back, the retry stage asks the gateway after the window.
        ask_about_charge(offer.case.pk, key, at=now + AUTHENTICATION_WINDOW, now=now)
        CaseEvent.objects.create(
            case=offer.case,
            type=SENT_TO_BANK,
            reason=f"the customer was sent to the bank to confirm paying invoice "
            f"{offer.invoice.number} on the pay page",
            data={
                "reference": answer.reference,
                "invoice": offer.invoice.external_id,
                "payment_method": offer.method.external_id,
                "amount": request.amount,
                "key": key,
            },
            occurred_at=now,
        )
    return _settle(offer, answer, key=key, now=now)


def _key(case: Case, offer: Offer) -> str:
    """The idempotency key of paying `offer` now, `case` as it is under its lock.

    The payment the customer was sent to the bank with (its return names its
    key), or the payment of the same invoice, card and amount that is the
    case's charge in doubt (pressed again): the same request under the same
    key.  Otherwise a new key, numbered by the invoice's attempts and the
    payments the page sent for it, so that a payment canceled, refused or
    released never lends its key to the next one.
    """
    if offer.key:
        return offer.key
    invoice, method = offer.invoice, offer.method
    if (
        on_session(case.retry_key)
        and case.charge_in_doubt_since is not None
        and (case.retry_invoice_id, case.retry_payment_method_id) == (invoice.pk, method.pk)
        and case.retry_amount == offer.amount
    ):
        return case.retry_key
    attempts = PaymentAttempt.objects.filter(invoice=invoice).count()
    sent = CaseEvent.objects.filter(
        case=case, type=PAYMENT_SENT, data__invoice=invoice.external_id
    ).count()
    return charge_key(f"{ON_SESSION}{case.pk}", invoice, method, tries=attempts + sent)


def _charge_under_way(case: Case, key: str, *, now: datetime) -> Outcome | None:
    """What the page must wait for before charging under `key`, if anything."""
    leased = case.next_retry_at is not None and now < case.next_retry_at <= now + LEASE
    if case.retry_key == key and case.charge_in_doubt_since is not None:
        # This very payment, pressed again or after leaving the bank's page: the
        # same request, answered once by the gateway while it keeps the key;
        # not while a worker asks the gateway about it.
        asking = case.retry_reason == LOOKING_UP  # a worker's clock may run ahead
        if asking and case.next_retry_at is not None and case.next_retry_at > now:
            return Outcome.BUSY
        return Outcome.CHECKING if now - case.charge_in_doubt_since >= IN_DOUBT_LIMIT else None
    if case.retry_key and leased:
        # A worker is sending a retry (or asks about one again) within minutes.
        return Outcome.BUSY
    if case.charge_in_doubt_since is not None:
        # Another charge's outcome is unknown: until the gateway answers it (or an
        # operator checks), another charge could take the money twice.
        return Outcome.CHECKING
    return None


def offer_for_return(case: Case, reference: str, gateway: Gateway) -> Offer | None:
    """What payment `reference`, made on the page, was for: the invoice and card it was
    started with, whatever the page offers by now (that invoice may have been paid
    another way meanwhile); else what the page offers now."""
    sent = _sent_to_bank(case, reference)
    if sent is None or not isinstance(gateway, OnSessionGateway):
        return offer_for(case, gateway)
    invoice = Invoice.objects.filter(cases=case, external_id=sent.get("invoice")).first()
    method = PaymentMethod.objects.filter(
        customer_id=case.customer_id, external_id=sent.get("payment_method")
    ).first()
    asked = sent.get("amount")
    if invoice is None or method is None or not isinstance(asked, int):
        return offer_for(case, gateway)
    return Offer(
        case=case, invoice=invoice, method=method, asked=asked, key=str(sent.get("key") or "")
    )


def _sent_to_bank(case: Case, reference: str) -> dict[str, Any] | None:
    """What the timeline noted when payment `reference` sent the customer to the bank."""
    data = (
        CaseEvent.objects.filter(case=case, type=SENT_TO_BANK, data__reference=reference)
        .values_list("data", flat=True)
        .first()
    )
    return data if isinstance(data, dict) else None


def _sent_key(case: Case, reference: str) -> str:
    return str((_sent_to_bank(case, reference) or {}).get("key") or "")


def finish(offer: Offer, reference: str, *, gateway: OnSessionGateway, now: datetime) -> Attempt:
    """What became of payment `reference` after the customer came back from the bank's page.

    A payment already on the ledger (the page reloaded, or its webhook came
    first) is told as recorded, without asking the gateway again.
    """
    recorded = _recorded_outcome(offer.invoice, reference)
    if recorded is not None:
        forget_charge(offer.case.pk, offer.key or _sent_key(offer.case, reference), now=now)
        return Attempt(recorded)
    request = offer.request(key=_key(Case.objects.get(pk=offer.case.pk), offer))
    try:
        answer = gateway.outcome(reference, request)
    except GatewayError as error:
        log.warning("case %s: payment %s could not be read: %s", offer.case.pk, reference, error)
        return Attempt(Outcome.UNKNOWN if error.outcome_unknown else Outcome.UNAVAILABLE)
    return _settle(offer, answer, key=request.idempotency_key, now=now)


def _settle(
    offer: Offer, answer: ChargeResult | Authentication, *, key: str, now: datetime
) -> Attempt:
    """Record a settled answer of the payment under `key`, which then is no longer in
    doubt; one still settling stays in doubt for the retry stage to ask about."""
    if isinstance(answer, Authentication):
        return Attempt(Outcome.AUTHENTICATE, redirect_to=answer.url)
    if answer.status is ChargeStatus.PENDING:
        return Attempt(Outcome.PROCESSING)
    if answer.status is ChargeStatus.NOT_ATTEMPTED:
        forget_charge(offer.case.pk, key, now=now)
        return Attempt(Outcome.UNAVAILABLE)
    with transaction.atomic():
        # Under the invoice's lock, as the webhooks record: the same payment's
        # webhook and the customer's return cannot both record it.
        list(Invoice.objects.select_for_update().filter(pk=offer.invoice.pk).values_list("pk"))
        if _recorded(
            offer.invoice, answer.reference, answer.charge_reference, succeeded=answer.succeeded
        ):
            forget_charge(offer.case.pk, key, now=now)
            return Attempt(Outcome.PAID if answer.succeeded else Outcome.DECLINED, result=answer)
        if not answer.succeeded:
            # No longer in doubt before the decline is recorded, so that it plans
            # the next retry (`retries.on_attempts_recorded`).
            forget_charge(offer.case.pk, key, now=now)
        (recorded,) = record_payment_attempts(
            [
                AttemptFacts(
                    invoice=offer.invoice.external_id,
                    attempted_at=now,
                    payment_method=offer.method.external_id,
                    **answer.attempt_fields(),
                )
            ],
            now=now,
            source=SOURCE,
        )
        if isinstance(recorded, LedgerError) and answer.succeeded:
            # Paid meanwhile by another route (a webhook, a transfer): this payment
            # took money nothing is owed for.  As with a retry's, the retries stop
            # until an operator has refunded or applied it.
            hold_for_refund(offer.case.pk, key, now=now)
            CaseEvent.objects.create(
                case=offer.case,
                type="pay_page.not_recorded",
                reason=f"payment {answer.reference} on the pay page took "
                f"{answer.amount} {answer.currency} but was not recorded ({recorded}): "
                "check for a refund",
                data={"reference": answer.reference, "key": key},
                occurred_at=now,
            )
            log.error(
                "case %s: payment %s on the pay page took money but was not recorded (%s); "
                "a refund may be owed",
                offer.case.pk,
                answer.reference,
                recorded,
            )
        elif answer.succeeded:
            forget_charge(offer.case.pk, key, now=now)
    return Attempt(Outcome.PAID if answer.succeeded else Outcome.DECLINED, result=answer)


def _recorded_outcome(invoice: Invoice, reference: str) -> Outcome | None:
    """PAID when payment `reference` is on the ledger as paid; else the gateway is asked
    (a decline recorded under it does not hide a later success)."""
    return Outcome.PAID if _recorded(invoice, reference, succeeded=True) else None


def _recorded(invoice: Invoice, *references: str, succeeded: bool) -> bool:
    """Whether the payment's outcome is on the ledger already, under its own id or its
    charge's (a webhook names the charge, the engine the PaymentIntent)."""
    named = [reference for reference in references if reference]
    if not named:
        return False
    outcome = AttemptOutcome.SUCCEEDED if succeeded else AttemptOutcome.FAILED
    attempts = PaymentAttempt.objects.filter(invoice=invoice, reference__in=named, outcome=outcome)
    return attempts.exists() or (
        succeeded and Payment.objects.filter(invoice=invoice, reference__in=named).exists()
    )
