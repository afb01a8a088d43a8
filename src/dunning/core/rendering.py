"""Message templates rendered in a sandbox, with money and dates in the customer's locale.

Operators write templates, so templates run in Jinja2's immutable sandbox: they
can read the context below and nothing else (no Python internals, no mutation,
no I/O).  Undefined names fail loudly (`StrictUndefined`), so a typo such as
``{{ customer.nmae }}`` is a `RenderError`, never a blank in a sent message.
The HTML part is autoescaped; the subject and the text part are not (they are
not HTML).  The subject is folded onto one line.

A template is three sources, one per part: ``subject``, ``text`` and ``html``.
The defaults ship in ``dunning/templates/messages/<locale>/<key>.subject.txt``,
``<key>.txt`` and ``<key>.html``; `default_template` loads them.  Operators'
edits are stored as versions in the database (`dunning.engine.templates`).

An HTML part may ``{% extends "<locale>/_layout.html" %}``: the packaged layout
of that language (head, greeting, contact details, security notice, sign-off,
opt-out link), whose blocks ``content``, ``contact`` and ``security`` a
template fills or replaces.  The sandbox's loader serves only the packaged
layouts (files named ``_*.html`` under ``templates/messages/``), never a
message, a file elsewhere or anything an operator saved.

Placeholders (every message gets all of them; see also docs/templates.md)
--------------------------------------------------------------------------
``customer.name``            the customer's name, as on the account
``customer.addressee``       the name as a greeting puts it: in Thai, คุณ before a
                             person's name without a title of its own ("คุณสมชาย
                             ใจดี"), a business's name alone (marked a business,
                             or named with a legal form: Co., Ltd., จำกัด ...);
                             elsewhere the name
``customer.is_business``     True for a business, False for a person
``customer.locale``          the customer's BCP 47 locale, e.g. ``th-TH``
``company.name``             the sender: the business the money is owed to
``company.support_email``    where the customer can write
``company.support_phone``    a phone number, or None
``invoices``                 the invoices this message is about, a sequence of:
  ``invoice.number``         the invoice number as the customer knows it
  ``invoice.issued_on``      the issue date (a date: use ``|date``)
  ``invoice.due_on``         the due date (a date: use ``|date``)
  ``invoice.amount``         the invoice total, in minor units (use ``|money``)
  ``invoice.remaining``      what is still unpaid, in minor units
  ``invoice.currency``       its ISO 4217 code
  ``invoice.description``    what it was for ("Pro plan, March 2026"), or ""
``totals``                   what is still unpaid, one entry per currency:
  ``total.amount``           in minor units
  ``total.currency``         its ISO 4217 code
``currency``                 the currency of the case (of the first invoice)
``days_overdue``             days since the earliest due date (0 or less: not yet due)
``pay_link``                 the pay page (or update-card page) for this case
``deadline``                 the date to pay by (a date), or None
``late_fee``                 a late fee in minor units of ``currency``, or None
``consequences``             what happens if nothing is done, in the customer's
                             language ("your subscription will be suspended"), or None
``payment_problem``          for a declined card: what happened and what to do, in the
                             customer's language ("The card we have on file has
                             expired. Please update your card details."), or None.
                             Neutral by construction (`dunning.core.declines.customer_text`):
                             never the issuer's reason.  None: say it generically.
``tone``                     "friendly", "firm" or "final"
``is_final``                 True on final notices
``unsubscribe_link``         where to opt out of emails, or None (shown when given)
``card``                     the saved card a card message is about (``card.*`` keys,
                             e.g. ``card.expiring``), or None.  Such a message lists no
                             invoices (``invoices`` and ``totals`` are empty):
  ``card.brand``             "Visa", "Mastercard" ...
  ``card.last4``             the last four digits
  ``card.expires``           the first day of its expiry month (a date: use ``|month``)
  ``card.update_link``       the page where the customer updates the card
``locale``                   the locale the filters format in (see below)

Filters
-------
``{{ invoice.amount|money(invoice.currency) }}``  ->  ``฿1,234.50`` in Thai
``{{ total|money }}``  (an entry of ``totals`` carries its own currency)
``{{ deadline|date }}``  ->  ``15 March 2026`` / ``15 มีนาคม พ.ศ. 2569``
``{{ deadline|date("full") }}``  (styles: "medium", "long" (default), "full")
``{{ card.expires|month }}``  ->  ``July 2026`` / ``กรกฎาคม พ.ศ. 2569``

Filters format in the customer's locale when the template is in the customer's
language (an ``en`` template for an ``en-GB`` customer formats in ``en-GB``), and
in the template's locale otherwise, so an English fallback never shows a date
in another language.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from datetime import date
from functools import cache, lru_cache
from importlib import resources
from typing import Any, Literal

from jinja2 import (
    BaseLoader,
    Environment,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    pass_context,
)
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from dunning.core.formatting import DateStyle, format_day, format_money, format_month

# The steps of the two default policies, and the receipt: what a policy step may name.
DEFAULT_TEMPLATE_KEYS: tuple[str, ...] = (
    "send_invoice.courtesy",  # before the due date
    "send_invoice.overdue_1",
    "send_invoice.overdue_2",
    "send_invoice.final",
    "charge.failed",  # a card payment was declined; update the card
    "charge.reminder",  # while the retries continue
    "charge.final",
    "payment.received",
)
# Messages about the customer's saved card, not a debt: no invoices, no amount.
CARD_TEMPLATE_KEYS: tuple[str, ...] = (
    "card.expiring",  # pre-dunning: the card stops working before the next renewal
)
# Every packaged default (what `dunning templates check` lints).
PACKAGED_TEMPLATE_KEYS = DEFAULT_TEMPLATE_KEYS + CARD_TEMPLATE_KEYS
FINAL_TEMPLATE_KEYS = frozenset({"send_invoice.final", "charge.final"})
FALLBACK_LOCALE = "en"
_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
# What the sandbox may extend: a packaged layout, "<locale>/_<name>.html" (or
# ".txt" for the plain parts, none of which ships yet).
_LAYOUT_NAME = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*/_[a-z0-9_]+\.(?:html|txt)$")

Tone = Literal["friendly", "firm", "final"]
Part = Literal["subject", "text", "html"]
PARTS: tuple[Part, ...] = ("subject", "text", "html")

# Longest string or sequence a template may build with `*`, and the largest
# exponent it may use with `**`: enough for any message, too small to exhaust
# the worker's memory or CPU from an operator-edited template.
_MAX_PRODUCT_LENGTH = 100_000
_MAX_EXPONENT = 100


@dataclass(frozen=True, slots=True)
class Customer:
    name: str
    locale: str  # BCP 47, e.g. "th-TH"
    is_business: bool = False

    @property
    def addressee(self) -> str:
        """The name as a letter's greeting puts it (`addressee`)."""
        return addressee(self.name, locale=self.locale, is_business=self.is_business)


# Titles a Thai name may already carry, written out; คุณ goes before a name
# without one.  (นาง covers นางสาว, คุณ covers คุณหญิง; ว่าที่ is an acting rank.)
# Abbreviated titles and ranks (น.ส., ดร., พ.อ., ร.ต.ท., ม.ร.ว. ...) are told by
# their full stops instead (_ABBREVIATED).
THAI_TITLES = (
    "คุณ",
    "นาย",
    "นาง",
    "เด็กชาย",
    "เด็กหญิง",
    "ศาสตราจารย์",
    "รองศาสตราจารย์",
    "ผู้ช่วยศาสตราจารย์",
    "หม่อม",
    "พระ",
    "ว่าที่",
    "ท่านผู้หญิง",
)
# How the name of a business or other body begins, should it not be marked a business.
THAI_BODIES = (
    "บริษัท",
    "ห้างหุ้นส่วน",
    "ห้าง",
    "ร้าน",
    "มูลนิธิ",
    "สมาคม",
    "สหกรณ์",
    "โรงเรียน",
    "โรงพยาบาล",
    "มหาวิทยาลัย",
    "สำนักงาน",
)
# A legal form anywhere in the name: a business nobody marked as one (a Stripe
# customer, an import without is_business) is still not greeted with คุณ.
# จำกัด is "limited", มหาชน "public"; "Co." only with its full stop, so that
# Co Nguyen stays a person.
_LEGAL_FORM = re.compile(
    r"จำกัด|มหาชน|\bco\.|\b(?:corp|corporation|inc|incorporated|ltd|limited|company|llc|llp"
    r"|plc|pte|pty|gmbh)\b",
    re.IGNORECASE,
)
_ABBREVIATED = re.compile(r"(?:[\u0e01-\u0e2e]{1,4}\.)+")
_LATIN_TITLE = re.compile(r"(?:mr|mrs|ms|miss|dr|prof|khun)\b\.?", re.IGNORECASE)
# A Thai vowel or mark that only follows a consonant: no name starts with one,
# so "คุณากร" is a name of its own, not คุณ before "ากร".
_FOLLOWING = re.compile(r"[\u0e30-\u0e3a\u0e45-\u0e4e]")


def addressee(name: str, *, locale: str, is_business: bool) -> str:
    """`name` as the greeting of a letter in the customer's language names them.

    In Thai a person is greeted with คุณ before the name ("เรียน คุณสมชาย ใจดี"),
    unless the name carries a title of its own (นาย, ดร., พ.อ. ...); a business by
    its name alone ("เรียน บริษัท ตัวอย่าง จำกัด"), never คุณ.  A name in Latin
    letters takes a space after คุณ.  In other languages the name is as it is.
    """
    name = name.strip()
    if _language(locale) != "th" or is_business or not name or _titled(name):
        return name
    first = next((c for c in name if c.isalpha()), name[0])
    return f"คุณ{name}" if "\u0e00" <= first <= "\u0e7f" else f"คุณ {name}"


def _titled(name: str) -> bool:
    """Whether `name` begins with a title, or is a business's or other body's (by
    how it begins, or by a legal form anywhere in it)."""
    for title in (*THAI_TITLES, *THAI_BODIES):
        if name.startswith(title) and not _FOLLOWING.match(name, len(title)):
            return True
    return bool(_ABBREVIATED.match(name) or _LATIN_TITLE.match(name) or _LEGAL_FORM.search(name))


@dataclass(frozen=True, slots=True)
class Company:
    """The sender, as the customer knows it."""

    name: str
    support_email: str
    support_phone: str | None = None


@dataclass(frozen=True, slots=True)
class InvoiceSummary:
    """One invoice as a message shows it.  Amounts in minor units of `currency`."""

    number: str
    issued_on: date
    due_on: date
    amount: int
    remaining: int
    currency: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class CardSummary:
    """A saved card as a message shows it: never more than brand, last four and expiry."""

    brand: str  # as the customer knows it: "Visa"
    last4: str
    expires: date  # the first day of the expiry month; the card works to its end
    update_link: str


@dataclass(frozen=True, slots=True)
class Total:
    """What is still unpaid in one currency, in minor units."""

    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class MessageContext:
    """Everything a message template can show; see the module docstring for placeholders.

    A case holds one currency, so `late_fee` is in the currency of the invoices.
    A message about a saved card (`card`) lists no invoices.
    """

    customer: Customer
    company: Company
    invoices: tuple[InvoiceSummary, ...]
    days_overdue: int
    pay_link: str
    tone: Tone
    is_final: bool = False
    deadline: date | None = None
    late_fee: int | None = None
    consequences: str | None = None
    unsubscribe_link: str | None = None
    payment_problem: str | None = None  # a declined card's explanation and request
    card: CardSummary | None = None  # the saved card a card message is about
    totals: tuple[Total, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not self.invoices and self.card is None:
            raise ValueError("a message is about at least one invoice, or a saved card")
        if self.is_final and (self.deadline is None or not self.consequences):
            raise ValueError("a final notice needs a deadline and the consequences")
        sums: dict[str, int] = {}
        for invoice in self.invoices:
            sums[invoice.currency] = sums.get(invoice.currency, 0) + invoice.remaining
        if self.late_fee is not None and len(sums) > 1:
            raise ValueError("a late fee needs the invoices to share one currency")
        totals = tuple(Total(amount, currency) for currency, amount in sums.items())
        object.__setattr__(self, "totals", totals)

    @property
    def currency(self) -> str:
        return self.invoices[0].currency if self.invoices else ""

    def variables(self) -> dict[str, Any]:
        """The names a template sees (without `locale`, which `render` adds)."""
        return {
            "customer": self.customer,
            "company": self.company,
            "invoices": self.invoices,
            "totals": self.totals,
            "currency": self.currency,
            "days_overdue": self.days_overdue,
            "pay_link": self.pay_link,
            "deadline": self.deadline,
            "late_fee": self.late_fee,
            "consequences": self.consequences,
            "tone": self.tone,
            "is_final": self.is_final,
            "unsubscribe_link": self.unsubscribe_link,
            "payment_problem": self.payment_problem,
            "card": self.card,
        }


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """The three sources of one message (Jinja2 syntax), for one key and locale."""

    key: str  # e.g. "send_invoice.overdue_1"
    locale: str  # the language the template is written in: "en", "th"
    subject: str
    text: str
    html: str
    # Where the sources came from, for the message's record: "default" (the
    # packaged files) or "db:v3" (version 3 in the template store).
    version: str = "default"

    def source(self, part: Part) -> str:
        return {"subject": self.subject, "text": self.text, "html": self.html}[part]


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


class RenderError(ValueError):
    """A template that cannot render: bad syntax, an unknown name, or a sandbox refusal.

    `kind` is "syntax", "undefined" or "security"; `part` names the part and
    `line` the line in it, when Jinja knows it.
    """

    def __init__(self, *, part: Part, kind: str, detail: str, line: int | None = None) -> None:
        where = f"{part} part" + (f", line {line}" if line else "")
        super().__init__(f"{where}: {detail}")
        self.part = part
        self.kind = kind
        self.detail = detail
        self.line = line


def render(template: MessageTemplate, context: MessageContext) -> RenderedMessage:
    """Render the three parts of `template` for `context`, or raise RenderError."""
    variables = context.variables()
    variables["locale"] = formatting_locale(template.locale, context.customer.locale)
    parts = {part: _render_part(template.source(part), part, variables) for part in PARTS}
    return RenderedMessage(
        subject=fold_subject(parts["subject"]),
        text=parts["text"].strip() + "\n",
        html=parts["html"].strip() + "\n",
    )


def formatting_locale(template_locale: str, customer_locale: str) -> str:
    """The customer's locale if the template speaks their language, else the template's."""
    if _language(template_locale) == _language(customer_locale):
        return customer_locale
    return template_locale


def _language(tag: str) -> str:
    return tag.replace("_", "-").split("-")[0].lower()


def _render_part(source: str, part: Part, variables: dict[str, Any]) -> str:
    try:
        compiled = _compile(source, html=part == "html")
        return compiled.render(variables)
    except TemplateSyntaxError as error:
        detail = error.message or "invalid syntax"
        raise RenderError(part=part, kind="syntax", detail=detail, line=error.lineno) from None
    except TemplateNotFound as error:  # before LookupError, which it also is
        detail = f"no layout named {error.name!r}; {_LAYOUT_ADVICE}"
        raise RenderError(part=part, kind="syntax", detail=detail) from None
    except SecurityError as error:  # before UndefinedError: the sandbox's refusals
        raise RenderError(part=part, kind="security", detail=str(error)) from None
    except UndefinedError as error:
        raise RenderError(part=part, kind="undefined", detail=str(error)) from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as error:
        # A filter given the wrong kind of value, e.g. `{{ customer.name|money }}`.
        raise RenderError(part=part, kind="runtime", detail=str(error)) from None


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, also refusing `*` and `**` results large enough to hurt."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
                raise SecurityError(f"exponent above {_MAX_EXPONENT} refused")
            return operator.pow(left, right)
        if operator_name == "*":
            for sized, count in ((left, right), (right, left)):
                if (
                    isinstance(sized, str | list | tuple)
                    and isinstance(count, int)
                    and len(sized) * count > _MAX_PRODUCT_LENGTH
                ):
                    raise SecurityError("repetition too long refused")
            return operator.mul(left, right)
        return super().call_binop(context, operator_name, left, right)


_LAYOUT_ADVICE = 'a template may extend only a packaged layout, e.g. "en/_layout.html"'


class _LayoutLoader(BaseLoader):
    """Serves the packaged layouts of one kind (".html" or ".txt") and nothing else."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Any]:
        if not _LAYOUT_NAME.match(template) or not template.endswith(self.suffix):
            raise TemplateNotFound(template)
        resource = resources.files("dunning").joinpath("templates", "messages", template)
        if not resource.is_file():
            raise TemplateNotFound(template)
        source = resource.read_text(encoding="utf-8")
        # Packaged files do not change while the process runs: never reload.
        return source, template, lambda: True


def _environment(*, autoescape: bool) -> _Sandbox:
    environment = _Sandbox(
        loader=_LayoutLoader(".html" if autoescape else ".txt"),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    environment.filters["money"] = _money_filter
    environment.filters["date"] = _date_filter
    environment.filters["month"] = _month_filter
    return environment


@pass_context
def _money_filter(context: Context, value: int | Total, currency: str | None = None) -> str:
    if isinstance(value, Total):
        currency = currency or value.currency
        value = value.amount
    if currency is None:
        raise TypeError("money needs a currency: write amount|money(invoice.currency)")
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"money formats an amount in minor units, not {type(value).__name__}")
    return format_money(value, currency, locale=context["locale"])


@pass_context
def _date_filter(context: Context, value: date, style: DateStyle = "long") -> str:
    if not isinstance(value, date):
        raise TypeError(f"date formats a date, not {type(value).__name__}")
    if style not in ("medium", "long", "full"):
        raise ValueError(f"date style must be medium, long or full, not {style!r}")
    return format_day(value, locale=context["locale"], style=style)


@pass_context
def _month_filter(context: Context, value: date) -> str:
    if not isinstance(value, date):
        raise TypeError(f"month formats a date, not {type(value).__name__}")
    return format_month(value, locale=context["locale"])


_ENVIRONMENTS = {True: _environment(autoescape=True), False: _environment(autoescape=False)}


@lru_cache(maxsize=1024)
def _compile(source: str, *, html: bool) -> Any:
    # Compiled templates are immutable and safe to share; the cache keeps a
    # worker from recompiling the same few sources for every message.
    return _ENVIRONMENTS[html].from_string(source)


def fold_subject(text: str) -> str:
    """One line, single spaces: a subject must never carry a newline into a header."""
    return " ".join(text.split())


class UnknownTemplate(LookupError):
    """No default template has this key."""


def is_template_key(key: str) -> bool:
    """Lower-case words joined by dots: ``send_invoice.overdue_1``, ``charge.failed.short``."""
    return len(key) <= 100 and _KEY.match(key) is not None


def packaged_template(key: str, locale: str) -> MessageTemplate | None:
    """The packaged default for `key` written in exactly `locale`, without fallback."""
    if not is_template_key(key):
        return None
    return _load_default(key, locale)


def default_template(key: str, locale: str) -> MessageTemplate:
    """The packaged default template for `key` in `locale`.

    'th-TH' falls back to 'th', and a locale with no templates to English, so
    every customer gets a message in the closest language there is.
    """
    if not _KEY.match(key):
        raise UnknownTemplate(f"not a template key: {key!r}")
    for candidate in locale_candidates(locale):
        template = _load_default(key, candidate)
        if template is not None:
            return template
    raise UnknownTemplate(
        f"no default template {key!r}; the keys are {', '.join(PACKAGED_TEMPLATE_KEYS)}"
    )


def locale_candidates(locale: str) -> list[str]:
    """The locales to look for a template in, closest first: th-TH, th, en."""
    tag = locale.replace("_", "-")
    candidates = [tag, _language(tag), FALLBACK_LOCALE]
    return list(dict.fromkeys(c for c in candidates if c))


@cache
def _load_default(key: str, locale: str) -> MessageTemplate | None:
    folder = resources.files("dunning").joinpath("templates", "messages", locale)
    sources = {}
    for part, suffix in (("subject", ".subject.txt"), ("text", ".txt"), ("html", ".html")):
        resource = folder.joinpath(key + suffix)
        if not resource.is_file():
            return None
        sources[part] = resource.read_text(encoding="utf-8")
    return MessageTemplate(key=key, locale=locale, **sources)
