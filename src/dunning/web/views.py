"""The pages a customer opens from a message: the pay page, the card page and the unsubscribe page.

The pay page and the card page also let the customer save a new card on the
gateway's own page (`dunning.engine.card_setup`) and come back to a page that
says it is saved and will be charged.

Both are reached by a signed token in the URL (`dunning.engine.links`), with no
login.  The unsubscribe URL follows RFC 8058: a POST (the mail client's
`List-Unsubscribe=One-Click`, or the page's button) opts out at once and answers
200, never a redirect, with no cookie or CSRF token asked for; a GET only shows
the page with the button, because link scanners fetch every URL in a message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from babel.core import UnknownLocaleError
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from dunning.core.cases import CaseState
from dunning.core.contacts import Channel
from dunning.core.declines import WORDING_TEXT, Brand, classify_decline
from dunning.core.fields import UTC_ZONE, known_zone
from dunning.core.formatting import card_brand_name, format_day, format_money, format_month
from dunning.core.rendering import formatting_locale
from dunning.engine import card_setup, links, pay_now
from dunning.engine.models import Case, ContactOptOut, OptOutSource
from dunning.engine.retries import card_to_charge
from dunning.engine.writer import template_customer
from dunning.gateways.base import NOT_THIS_CUSTOMERS, GatewayError, OnSessionGateway
from dunning.gateways.registry import get_gateway
from dunning.ledger.models import AttemptOutcome, Customer, PaymentAttempt, PaymentMethod

SETTLED = (CaseState.RECOVERED.value, CaseState.CLOSED.value)
PAYMENT_REFERENCE = re.compile(r"[A-Za-z0-9_]{1,255}")
logger = logging.getLogger(__name__)

CHANNEL_NAMES = {
    "en": {
        Channel.EMAIL: "email",
        Channel.SMS: "text message (SMS)",
        Channel.LINE: "LINE",
        Channel.LETTER: "letter",
        Channel.CALL: "phone call",
    },
    "th": {
        Channel.EMAIL: "อีเมล",
        Channel.SMS: "ข้อความ SMS",
        Channel.LINE: "LINE",
        Channel.LETTER: "จดหมาย",
        Channel.CALL: "โทรศัพท์",
    },
}


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    number: str
    due: str
    remaining: str


def language_of(locale: str) -> str:
    """'th' for a Thai locale (th, th-TH), else 'en': the languages the pages are written in."""
    return "th" if locale.lower().startswith("th") else "en"


def _case_of(token: str) -> Case | None:
    try:
        target = links.read_pay_token(token)
    except links.BadLink:
        return None
    return (
        Case.objects.select_related("customer")
        .filter(pk=target.case_id, customer_id=target.customer_id)
        .first()
    )


@require_safe
def pay_page(request: HttpRequest, token: str) -> HttpResponse:
    case = _case_of(token)
    if case is None:
        return not_found(request)
    customer = case.customer
    language = language_of(customer.locale)
    locale = _usable_locale(customer.locale, language)
    zone = known_zone(customer.time_zone) or UTC_ZONE  # unknown: see `fields.known_zone`
    invoices = [
        InvoiceLine(
            number=link.invoice.number,
            # The day it falls due where the customer is, written as the emails
            # write it (the `date` filter's default style): "15 มีนาคม พ.ศ. 2569".
            due=format_day(link.invoice.due_at.astimezone(zone), locale=locale),
            remaining=format_money(link.invoice.amount_remaining, case.currency, locale=locale),
        )
        for link in case.caseinvoice_set.select_related("invoice").order_by("invoice__due_at", "id")
    ]
    gateway = get_gateway()
    offer, refused = pay_now.page_offer(case, gateway)
    context = {
        "addressee": template_customer(customer).addressee,
        "invoices": invoices,
        "new_card": card_setup.offered(gateway),
        # With a card on file the card page replaces it; without, it is how to pay by card.
        "has_card": offer is not None or card_to_charge(customer.pk) is not None,
        # The saved card was declined for good for this invoice: only another card.
        "card_refused": refused is pay_now.Refusal.DECLINED,
        # Its last decline asks for new details: the card's current ones, or another.
        "card_outdated": refused is pay_now.Refusal.NEEDS_DETAILS,
        "total": format_money(case.amount_due, case.currency, locale=locale),
        "settled": case.state in SETTLED or case.amount_due == 0,
        "pay_now": _offer_text(offer, locale=locale) if offer else None,
        "token": token,
    }
    return _page(request, f"web/pay_{language}.html", context, language=language)


@dataclass(frozen=True, slots=True)
class OfferText:
    invoice: str
    amount: str
    card: str
    last4: str
    invoice_id: str  # the form's own fields: what the customer agrees to pay
    minor_units: int


def _offer_text(offer: pay_now.Offer, *, locale: str) -> OfferText:
    return OfferText(
        invoice_id=offer.invoice.external_id,
        minor_units=offer.invoice.amount_remaining,
        invoice=offer.invoice.number,
        amount=format_money(offer.amount, offer.invoice.currency, locale=locale),
        card=card_brand_name(offer.method.brand),
        last4=offer.method.last4,
    )


@require_POST
def pay_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """Pay the offered invoice now with the saved card: done, declined, or off to the bank."""
    case = _case_of(token)
    if case is None:
        return not_found(request)
    gateway = get_gateway()
    offer = pay_now.offer_for(case, gateway)
    if (
        offer is None
        or not isinstance(gateway, OnSessionGateway)
        # What the customer saw and agreed to pay: a resubmitted form (the
        # result page reloaded) must not pay the next invoice unseen.
        or request.POST.get("invoice") != offer.invoice.external_id
        or request.POST.get("amount") != str(offer.invoice.amount_remaining)
    ):
        return redirect("web:pay", token=token)
    attempt = pay_now.start(offer, gateway=gateway, now=timezone.now())
    if attempt.outcome is pay_now.Outcome.AUTHENTICATE:
        return HttpResponseRedirect(attempt.redirect_to, status=303)
    return _paid_page(request, case, offer, attempt, token=token)


@require_safe
def pay_return(request: HttpRequest, token: str) -> HttpResponse:
    """The customer is back from the bank's page (Stripe adds `payment_intent`)."""
    case = _case_of(token)
    reference = request.GET.get("payment_intent", "")
    # A gateway's id, nothing else: it goes into the gateway's URL.
    if case is None or not PAYMENT_REFERENCE.fullmatch(reference):
        return not_found(request)
    gateway = get_gateway()
    offer = _paid_offer(case, reference) or pay_now.offer_for_return(case, reference, gateway)
    if offer is None or not isinstance(gateway, OnSessionGateway):
        return redirect("web:pay", token=token)
    attempt = pay_now.finish(offer, reference, gateway=gateway, now=timezone.now())
    if attempt.outcome is pay_now.Outcome.AUTHENTICATE:
        return HttpResponseRedirect(attempt.redirect_to, status=303)
    return _paid_page(request, case, offer, attempt, token=token)


def _paid_offer(case: Case, reference: str) -> pay_now.Offer | None:
    """The offer a payment already recorded (a reload, or its webhook came first) was for."""
    attempt = (
        PaymentAttempt.objects.filter(
            invoice__cases=case,
            reference=reference,
            outcome=AttemptOutcome.SUCCEEDED,
            payment_method__isnull=False,
        )
        .select_related("invoice", "payment_method")
        .first()
    )
    if attempt is None or attempt.payment_method is None:
        return None
    return pay_now.Offer(
        case=case, invoice=attempt.invoice, method=attempt.payment_method, paid=attempt.amount
    )


def _paid_page(
    request: HttpRequest,
    case: Case,
    offer: pay_now.Offer,
    attempt: pay_now.Attempt,
    *,
    token: str,
) -> HttpResponse:
    customer = case.customer
    language = language_of(customer.locale)
    locale = _usable_locale(customer.locale, language)
    problem = ""
    if attempt.outcome is pay_now.Outcome.DECLINED and attempt.result is not None:
        decline = classify_decline(
            attempt.result.decline_code,
            advice_code=attempt.result.advice_code,
            network_decline_code=attempt.result.network_decline_code,
            network_advice_code=attempt.result.network_advice_code,
            brand=Brand.parse(offer.method.brand),
        )
        if decline.wording is not None:  # why, in neutral words; never "stolen" or "fraud"
            problem = WORDING_TEXT[decline.wording]["th" if language == "th" else "en"]
    context = {
        "addressee": template_customer(customer).addressee,
        "outcome": str(attempt.outcome),
        "offer": _offer_text(offer, locale=locale),
        "problem": problem,
        "token": token,
    }
    return _page(request, f"web/paid_{language}.html", context, language=language)


@require_safe
def card_page(request: HttpRequest, token: str) -> HttpResponse:
    """Where a customer updates a saved card (a pre-dunning request links here).

    It names the card (brand, last four, expiry; never more) and, when the
    gateway hosts a card page, offers to save a new one there; else it says
    how to reach us.
    """
    named = _card_of(token)
    if named is None:
        return not_found(request)
    customer = named.customer
    # The card we charge now: the one the link names, unless another took its place.
    method = card_to_charge(customer.pk) or named
    language = language_of(customer.locale)
    locale = _usable_locale(customer.locale, language)
    expires = ""
    if method.exp_month and method.exp_year:
        expires = format_month(date(method.exp_year, method.exp_month, 1), locale=locale)
    context = {
        "addressee": template_customer(customer).addressee,
        "brand": card_brand_name(method.brand),
        "last4": method.last4,
        "expires": expires,
        "new_card": card_setup.offered(get_gateway()),
        "token": token,
    }
    return _page(request, f"web/card_{language}.html", context, language=language)


def _card_of(token: str) -> PaymentMethod | None:
    try:
        target = links.read_card_token(token)
    except links.BadLink:
        return None
    return (
        PaymentMethod.objects.select_related("customer")
        .filter(pk=target.payment_method_id, customer_id=target.customer_id)
        .first()
    )


def _card_owner(token: str) -> Customer | None:
    method = _card_of(token)
    return method.customer if method is not None else None


# ---------------------------------------------------------------- a new card


@require_POST
def pay_new_card(request: HttpRequest, token: str) -> HttpResponse:
    """Off to the gateway's page for a new card, from the pay page."""
    case = _case_of(token)
    if case is None:
        return not_found(request)
    return _new_card(request, case.customer, route="web:pay", token=token)


@require_safe
def pay_new_card_return(request: HttpRequest, token: str) -> HttpResponse:
    case = _case_of(token)
    if case is None:
        return not_found(request)
    return _new_card_saved(request, case.customer, route="web:pay", token=token)


@require_POST
def card_new(request: HttpRequest, token: str) -> HttpResponse:
    """Off to the gateway's page for a new card, from the card page."""
    customer = _card_owner(token)
    if customer is None:
        return not_found(request)
    return _new_card(request, customer, route="web:card", token=token)


@require_safe
def card_new_return(request: HttpRequest, token: str) -> HttpResponse:
    customer = _card_owner(token)
    if customer is None:
        return not_found(request)
    return _new_card_saved(request, customer, route="web:card", token=token)


def _new_card(request: HttpRequest, customer: Customer, *, route: str, token: str) -> HttpResponse:
    public = settings.DUNNING_PUBLIC_URL
    try:
        url = card_setup.start(
            customer,
            gateway=get_gateway(),
            return_url=f"{public}{reverse(f'{route}_new_card_return', args=[token])}",
            cancel_url=f"{public}{reverse(route, args=[token])}",
            language=language_of(customer.locale),
            now=timezone.now(),
        )
    except GatewayError as error:
        logger.warning("card setup for customer %s: %s", customer.external_id, error)
        return _card_saved_page(request, customer, None, route=route, token=token, failed=True)
    if url is None:
        return redirect(route, token=token)
    return HttpResponseRedirect(url, status=303)


def _new_card_saved(
    request: HttpRequest, customer: Customer, *, route: str, token: str
) -> HttpResponse:
    """Back from the gateway's page (Stripe adds `session_id`): the card, saved or not."""
    reference = request.GET.get("session_id", "")
    if not PAYMENT_REFERENCE.fullmatch(reference):  # it goes into the gateway's URL
        return not_found(request)
    try:
        method = card_setup.finish(customer, reference, gateway=get_gateway(), now=timezone.now())
    except GatewayError as error:
        logger.warning("card setup %s for customer %s: %s", reference, customer.external_id, error)
        if error.code == NOT_THIS_CUSTOMERS:
            return not_found(request)
        return _card_saved_page(request, customer, None, route=route, token=token, failed=True)
    return _card_saved_page(request, customer, method, route=route, token=token)


def _card_saved_page(
    request: HttpRequest,
    customer: Customer,
    method: PaymentMethod | None,
    *,
    route: str,
    token: str,
    failed: bool = False,
) -> HttpResponse:
    language = language_of(customer.locale)
    context = {
        "addressee": template_customer(customer).addressee,
        "outcome": "failed" if failed else "saved" if method is not None else "waiting",
        "brand": card_brand_name(method.brand) if method is not None else "",
        "last4": method.last4 if method is not None else "",
        "back": reverse(route, args=[token]),
        "balance": route == "web:pay",  # back to the balance, where it can be paid now
    }
    return _page(
        request,
        f"web/card_saved_{language}.html",
        context,
        language=language,
        status=503 if failed else 200,  # the gateway could not be reached: try again later
    )


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        target = links.read_unsubscribe_token(token)
    except links.BadLink:
        return not_found(request)
    customer = Customer.objects.filter(pk=target.customer_id).first()
    if customer is None:
        return not_found(request)
    language = language_of(customer.locale)
    context: dict[str, object] = {
        "addressee": template_customer(customer).addressee,
        "channel": CHANNEL_NAMES[language][target.channel],
    }
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        record_opt_out(
            customer,
            target.channel,
            now=timezone.now(),
            source=OptOutSource.ONE_CLICK if one_click else OptOutSource.PAGE,
        )
        return _page(request, f"web/unsubscribed_{language}.html", context, language=language)
    context["already"] = ContactOptOut.objects.filter(
        customer=customer, channel=target.channel
    ).exists()
    return _page(request, f"web/unsubscribe_{language}.html", context, language=language)


def record_opt_out(
    customer: Customer, channel: Channel, *, now: datetime, source: str
) -> ContactOptOut:
    """Opt the customer out of the channel; a repeat keeps the first record."""
    try:
        with transaction.atomic():
            opt_out, _ = ContactOptOut.objects.get_or_create(
                customer=customer,
                channel=channel.value,
                defaults={"created_at": now, "source": source},
            )
    except IntegrityError:
        # Two clicks at once: the other request's row won the unique constraint.
        opt_out = ContactOptOut.objects.get(customer=customer, channel=channel.value)
    return opt_out


def not_found(request: HttpRequest) -> HttpResponse:
    """A token that is not ours, or names what no longer exists: one page, in both languages."""
    return _page(request, "web/not_found.html", {}, language="en", status=404)


def _usable_locale(locale: str, language: str) -> str:
    """How the page writes money and dates: as the emails do (`formatting_locale`), in
    the customer's locale where the page speaks its language, else in the page's."""
    locale = formatting_locale(language, locale)
    try:
        format_money(0, "USD", locale=locale)
    except (UnknownLocaleError, ValueError):
        return language
    return locale


def _page(
    request: HttpRequest,
    template: str,
    context: Mapping[str, object],
    *,
    language: str,
    status: int = 200,
) -> HttpResponse:
    context = {
        **context,
        "language": language,
        "company": settings.DUNNING_COMPANY_NAME,
        "support_email": settings.DUNNING_SUPPORT_EMAIL,
        "support_phone": settings.DUNNING_SUPPORT_PHONE,
    }
    response = render(request, template, context, status=status)
    # The token in the URL is the customer's key to the page: keep it out of
    # caches, search engines and the Referer header of any link to another site.
    # Not "no-referrer": under it a browser sends "Origin: null" with the page's
    # own forms, which Django's CSRF check rightly refuses (the pay button).
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
