"""Message templates stored as data: saved as checked versions, resolved for each message.

Operators edit templates; an edit never changes a stored version, it adds
version N + 1 of the template's key, channel and locale (`save_template`),
after the same lint `dunning templates check` runs.  A template that fails is
refused with the part at fault named (``html: no pay link: add {{ pay_link }}``)
and nothing is written.

`resolve` picks the wording of one message: for each locale the customer could
read, closest first (``th-TH``, then ``th``, then ``en``), the store's active
version of the key, else the packaged default in that locale.  So editing the
English wording never switches a Thai customer to English, and marking the
latest version inactive falls back to the packaged default.  What `resolve`
returns carries ``version`` ("db:v3" or "default") for the message's record.

A/B variants: a policy step's variant with key X is worded by the template
with key X (`resolve(..., variant=X)`).  Name variants after the step's
template, ``<template key>.<arm>`` (``send_invoice.final.short``), so the lint
holds them to the same rules as the template they stand in for (see
`lint_rules`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from babel import UnknownLocaleError
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, OuterRef, QuerySet, Subquery

from dunning.core import fields, formatting
from dunning.core.contacts import Channel
from dunning.core.policy import PAYMENT_RECEIVED_TEMPLATE
from dunning.core.rendering import (
    FINAL_TEMPLATE_KEYS,
    PARTS,
    CardSummary,
    Company,
    Customer,
    InvoiceSummary,
    MessageContext,
    MessageTemplate,
    RenderedMessage,
    UnknownTemplate,
    is_template_key,
    locale_candidates,
    packaged_template,
    render,
)
from dunning.core.template_lint import LintProblem, lint
from dunning.db import Prepared
from dunning.engine.models import MessageTemplate as TemplateVersion

logger = logging.getLogger(__name__)

# (field, message): the field is key, locale, channel, subject, html or text.
Problem = tuple[str, str]

# Channels that have templates in the store; SMS and LINE come with their channels.
TEMPLATE_CHANNELS = (Channel.EMAIL.value,)
# Generous for any message, small enough that a pasted file is refused, not stored.
_MAX_LENGTH = {"subject": 500, "text": 100_000, "html": 200_000}
_LOCALE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
# Two saves of one key at the same moment both choose N + 1; the loser retries.
_SAVE_ATTEMPTS = 10


class TemplateRejected(ValueError):
    """The template cannot be used; `problems` names each field at fault, as (field, message)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))


# ---------------------------------------------------------------- checking


@dataclass(frozen=True, slots=True)
class LintRules:
    """Which of the lint's rules a key is held to."""

    final: bool  # a deadline and the consequences
    asks_for_payment: bool  # a pay link
    declined_payment: bool  # no "stolen, lost or fraud"
    about_card: bool = False  # a saved card, no invoices: the card and its update link


def lint_rules(key: str) -> LintRules:
    """The rules for `key`, read from its name, so a variant follows the template it replaces.

    Final notice: a default final key, or any key with a part named ``final``
    (``send_invoice.final.short``).  Receipt, no pay link asked for:
    ``payment.received`` and its variants.  A declined card, so never "stolen,
    lost or fraud" (rules.md 1.2): ``charge.*``.  About the saved card, not a
    debt, so no invoice, amount or pay link but the card and where to update it:
    ``card.*`` (``card.expiring``, the pre-dunning request).
    """
    parts = key.split(".")
    receipt = key == PAYMENT_RECEIVED_TEMPLATE or key.startswith(PAYMENT_RECEIVED_TEMPLATE + ".")
    about_card = parts[0] == "card"
    return LintRules(
        final=not about_card
        and (
            key in FINAL_TEMPLATE_KEYS or any(p == "final" or p.startswith("final_") for p in parts)
        ),
        asks_for_payment=not receipt and not about_card,
        declined_payment=parts[0] == "charge",
        about_card=about_card,
    )


def lint_template(template: MessageTemplate) -> list[LintProblem]:
    """Every lint problem of `template`, under the rules its key calls for."""
    rules = lint_rules(template.key)
    return lint(
        template,
        locale=template.locale,
        final=rules.final,
        asks_for_payment=rules.asks_for_payment,
        declined_payment=rules.declined_payment,
        about_card=rules.about_card,
    )


def normal_locale(locale: str) -> str:
    """``th_th`` -> ``th-TH``: the spelling the store and the customer records share."""
    tags = locale.strip().replace("_", "-").split("-")
    normal = [tags[0].lower()]
    for tag in tags[1:]:
        if len(tag) == 2 or (len(tag) == 3 and tag.isdigit()):
            normal.append(tag.upper())  # region: TH, 419
        elif len(tag) == 4:
            normal.append(tag.title())  # script: Latn
        else:
            normal.append(tag)
    return "-".join(normal)


def is_known_locale(locale: str) -> bool:
    """A language tag the formatting (Babel/CLDR) knows: ``en``, ``th-TH``; not ``key``."""
    tag = normal_locale(locale)
    if len(tag) > 35 or not _LOCALE.match(tag):
        return False
    try:
        formatting.locale_for(tag)
    except (ValueError, UnknownLocaleError):
        return False
    return True


def check_template(
    key: str, locale: str, subject: str, html: str, text: str, *, channel: str = "email"
) -> list[Problem]:
    """Every reason these sources cannot be saved, as (field, message); empty when they can."""
    problems: list[Problem] = []
    if not is_template_key(key):
        problems.append(
            (
                "key",
                "must be lower-case words joined by dots, at most 100 characters, "
                "e.g. send_invoice.overdue_1 or send_invoice.overdue_1.short",
            )
        )
    if not is_known_locale(locale):
        problems.append(("locale", "must be a known language tag such as en, th or th-TH"))
    if channel not in TEMPLATE_CHANNELS:
        problems.append(("channel", f"templates are for {', '.join(TEMPLATE_CHANNELS)} only"))
    sources = {"subject": subject, "html": html, "text": text}
    for part in PARTS:
        try:
            fields.check_text(sources[part], max_length=_MAX_LENGTH[part])
        except ValueError as error:
            problems.append((part, str(error)))
        if not sources[part].strip():
            problems.append((part, "must not be empty"))
    if problems:
        return problems  # the lint would only repeat them, less clearly
    template = MessageTemplate(
        key=key, locale=normal_locale(locale), subject=subject, text=text, html=html
    )
    return [(problem.part, problem.message) for problem in lint_template(template)]


# ---------------------------------------------------------------- writing


def save_template(
    key: str,
    locale: str,
    subject: str,
    html: str,
    text: str,
    *,
    now: datetime,
    channel: str = "email",
    created_by: str = "",
    notes: str = "",
) -> TemplateVersion:
    """Store the sources as the next version of `key` in `locale` (1 for a new one), active.

    Raises TemplateRejected, writing nothing, when `check_template` finds a problem.
    """
    problems = check_template(key, locale, subject, html, text, channel=channel)
    try:
        fields.check_text(notes, max_length=10_000)
    except ValueError as error:
        problems.append(("notes", str(error)))
    if problems:
        raise TemplateRejected(problems)
    locale = normal_locale(locale)
    versions = TemplateVersion.objects.filter(key=key, channel=channel, locale=locale)
    for attempt in range(_SAVE_ATTEMPTS):
        latest = versions.aggregate(n=Max("version"))["n"]
        try:
            with transaction.atomic():
                return TemplateVersion.objects.create(
                    key=key,
                    channel=channel,
                    locale=locale,
                    version=(latest or 0) + 1,
                    subject=subject,
                    html=html,
                    text=text,
                    digest=_digest(subject, html, text),
                    is_active=True,
                    created_at=now,
                    created_by=created_by[:150],
                    notes=notes,
                )
        except IntegrityError:
            if attempt == _SAVE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def set_active(row: TemplateVersion, *, active: bool) -> None:
    """Put a version back in use, or stop using it (its key then falls back a step)."""
    row.is_active = active
    row.save(update_fields=["is_active"])


def _digest(subject: str, html: str, text: str) -> str:
    joined = "\x1f".join((subject, html, text))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- reading


def resolve(key: str, locale: str, *, channel: str = "email", variant: str = "") -> MessageTemplate:
    """The template a message with `key` to a customer in `locale` is written with.

    With `variant` (a policy step's A/B arm), the template named by the
    variant's key, when there is one; else `key`, and a warning is logged.
    The result's ``version`` is "db:v<N>" or "default".  Raises UnknownTemplate
    when neither the store nor the packaged defaults hold the key.  Reads the
    store on every call (one or two indexed queries), so a save is seen at
    once; `TemplateResolver` reads it once for a batch.
    """
    return _pick(key, locale, channel=channel, variant=variant, latest=_latest_in_store)


# The latest stored version of a key, channel and locale: (id, version, digest, is_active).
Latest = tuple[int, int, str, bool]
_LATEST_COLUMNS = ("id", "version", "digest", "is_active")


class TemplateResolver:
    """The store's latest versions read once (one query), to resolve a batch of messages.

    A snapshot: a version saved after `load` is seen by the next one.
    """

    def __init__(self, latest: dict[tuple[str, str, str], Latest]):
        self._latest = latest

    @classmethod
    def load(cls) -> TemplateResolver:
        rows = _LATEST_VERSIONS().rows()
        return cls({(k, c, loc): (i, v, d, a) for k, c, loc, i, v, d, a in rows})

    def resolve(
        self, key: str, locale: str, *, channel: str = "email", variant: str = ""
    ) -> MessageTemplate:
        """Like `resolve`, from the snapshot."""

        def latest(key: str, channel: str, locale: str) -> Latest | None:
            return self._latest.get((key, channel, locale))

        return _pick(key, locale, channel=channel, variant=variant, latest=latest)


def _latest_versions() -> QuerySet[TemplateVersion, Any]:
    newest = TemplateVersion.objects.filter(
        key=OuterRef("key"), channel=OuterRef("channel"), locale=OuterRef("locale")
    ).order_by("-version")
    return TemplateVersion.objects.filter(
        version=Subquery(newest.values("version")[:1])
    ).values_list("key", "channel", "locale", *_LATEST_COLUMNS)


_LATEST_VERSIONS = Prepared(_latest_versions)  # read by every decide batch


def _latest_in_store(key: str, channel: str, locale: str) -> Latest | None:
    versions = TemplateVersion.objects.filter(key=key, channel=channel, locale=locale)
    return versions.order_by("-version").values_list(*_LATEST_COLUMNS).first()


def _pick(
    key: str,
    locale: str,
    *,
    channel: str,
    variant: str,
    latest: Callable[[str, str, str], Latest | None],
) -> MessageTemplate:
    if variant and variant != key:
        try:
            return _pick_one(variant, locale, channel=channel, latest=latest)
        except UnknownTemplate:
            logger.warning("variant %r has no template; %r is used instead", variant, key)
    return _pick_one(key, locale, channel=channel, latest=latest)


def _pick_one(
    key: str, locale: str, *, channel: str, latest: Callable[[str, str, str], Latest | None]
) -> MessageTemplate:
    if not is_template_key(key):
        raise UnknownTemplate(f"not a template key: {key!r}")
    # Language first: a Thai customer gets the Thai default before an English edit.
    for candidate in locale_candidates(normal_locale(locale)):
        if not _LOCALE.match(candidate):
            continue  # not a language tag: never a path to read, nor a row to look for
        found = latest(key, channel, candidate)
        if found is not None and found[3]:
            return _stored(found[0], found[1], found[2])
        packaged = packaged_template(key, candidate) if channel == Channel.EMAIL else None
        if packaged is not None:
            return packaged
    raise UnknownTemplate(f"no template {key!r} for {channel} in {locale} or English")


@lru_cache(maxsize=512)
def _stored(row_id: int, version: int, digest: str) -> MessageTemplate:
    # Versions are immutable, so (id, version, digest) names one wording for
    # good: the cache never needs clearing, and a new version is a new entry.
    # The parts compile once each too (rendering caches compiled sources).
    row = TemplateVersion.objects.get(pk=row_id)
    return template_of(row)


def template_of(row: TemplateVersion) -> MessageTemplate:
    """A stored version as the renderer takes it."""
    return MessageTemplate(
        key=row.key,
        locale=row.locale,
        subject=row.subject,
        text=row.text,
        html=row.html,
        version=f"db:v{row.version}",
    )


def active_versions() -> list[TemplateVersion]:
    """The latest version of each key, channel and locale, when it is active."""
    newest = TemplateVersion.objects.filter(
        key=OuterRef("key"), channel=OuterRef("channel"), locale=OuterRef("locale")
    ).order_by("-version")
    return list(
        TemplateVersion.objects.filter(
            version=Subquery(newest.values("version")[:1]), is_active=True
        ).order_by("key", "channel", "locale")
    )


# ---------------------------------------------------------------- preview


def preview(
    template: MessageTemplate, *, today: date, customer_locale: str = ""
) -> RenderedMessage:
    """`template` rendered for a made-up customer, to show an operator before it goes out.

    Raises RenderError like `render` does (a saved version always renders).
    """
    return render(template, sample_context(template.key, customer_locale or template.locale, today))


def sample_context(key: str, locale: str, today: date) -> MessageContext:
    """A realistic case for previews: two invoices, one partly paid, in the customer's language.

    For a message about the saved card (``card.*``): a Visa expiring this month, no invoices.
    """
    thai = locale.lower().startswith("th")
    final = lint_rules(key).final
    context = MessageContext(
        customer=Customer(name="สมชาย ใจดี" if thai else "Jane Smith", locale=locale),
        company=Company(
            name=settings.DUNNING_COMPANY_NAME,
            support_email=settings.DUNNING_SUPPORT_EMAIL,
            support_phone=settings.DUNNING_SUPPORT_PHONE or None,
        ),
        invoices=(
            InvoiceSummary(
                number="INV-2026-0042",
                issued_on=today - timedelta(days=40),
                due_on=today - timedelta(days=10),
                amount=123_450,
                remaining=123_450,
                currency="THB",
                description="แพ็กเกจ Pro" if thai else "Pro plan",
            ),
            InvoiceSummary(
                number="INV-2026-0057",
                issued_on=today - timedelta(days=20),
                due_on=today + timedelta(days=10),
                amount=50_000,
                remaining=20_000,
                currency="THB",
            ),
        ),
        days_overdue=10,
        pay_link="https://pay.example.com/p/preview",
        tone="final" if final else "firm",
        is_final=final,
        deadline=today + timedelta(days=14) if final else None,
        late_fee=10_000 if final else None,
        consequences=(
            ("บริการของท่านจะถูกระงับชั่วคราว" if thai else "your subscription will be paused.")
            if final
            else None
        ),
        unsubscribe_link="https://pay.example.com/u/preview",
    )
    if lint_rules(key).about_card:
        # About the saved card, not a debt: no invoices, and the card page to act on.
        link = "https://pay.example.com/card/preview"
        card = CardSummary(
            brand="Visa", last4="4242", expires=today.replace(day=1), update_link=link
        )
        return replace(
            context, invoices=(), days_overdue=0, pay_link=link, tone="friendly", card=card
        )
    return context
