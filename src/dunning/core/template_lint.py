"""Checks a message template before it can be used: what it must say, and what it must not.

A template passes when, rendered with a sample context full of sentinel values,
both its text part and its HTML part show: the sender, the customer's name,
every invoice (number, a date, an amount), the pay link, contact details, the
security notice ("we will never ask for your card number by email"), the
opt-out link when the case has one, and on final notices the deadline and what
happens if nothing is done (DESIGN.md, "What a dunning message must carry").

It fails when it does not compile, uses an unknown placeholder, reaches for
Python internals (the sandbox refuses), or uses threatening or misleading
wording: arrest, prison, police, criminal charges, shaming to employer, family
or neighbours, claims that legal action has been taken, seizure (Thai Debt
Collection Act s.11-12, reference/rules.md 4.1; no threats of legal action
that is not intended or allowed, rules.md 3.5).  Messages about a declined card
must not say stolen, lost or fraud: the customer hears "your bank declined the
payment", whatever the decline code was.

A message about the customer's saved card (`about_card`: a card about to
expire) is about no debt: it is checked with no invoices at all, so it cannot
show an amount, and must show the card (its last four digits) and the link to
update it instead of invoices and a pay link.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass, replace
from datetime import date

from dunning.core.formatting import format_day, format_money
from dunning.core.rendering import (
    CardSummary,
    Company,
    Customer,
    InvoiceSummary,
    MessageContext,
    MessageTemplate,
    RenderedMessage,
    RenderError,
    formatting_locale,
    render,
)


@dataclass(frozen=True, slots=True)
class LintProblem:
    """One reason a template cannot be used.  `part` is subject, text, html or template."""

    code: str
    part: str
    message: str

    def __str__(self) -> str:
        return f"{self.part}: {self.message}"


# ---------------------------------------------------------------- wording

# (pattern, what is wrong with it).  Patterns are matched case-insensitively on
# every part's source and on the rendered message; all languages' lists apply
# to every template, since a Thai template can quote English and vice versa.
_FORBIDDEN_WORDING: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (
        (r"\barrest(?:s|ed|ing)?\b", "threatens arrest"),
        (r"\b(?:jail|prison|imprison\w*|incarcerat\w*)\b", "threatens prison"),
        (r"\bpolice\b", "mentions the police"),
        (r"\bcriminal\b", "threatens criminal charges"),
        (r"\bwarrants?\b", "mentions a warrant"),
        (r"\b(?:bailiffs?|sheriffs?)\b", "implies court enforcement"),
        (
            r"\b(?:tell|inform|contact|notify|call|let)\b[^.\n]{0,40}"
            r"\b(?:employer|boss|family|relatives|neighbou?rs?|friends|colleagues|co-?workers)\b",
            "threatens to shame the customer to others",
        ),
        (r"\bshame\b|\bname\s+and\s+shame\b", "threatens to shame the customer"),
        (
            r"\blegal\s+(?:action|proceedings)\s+(?:has|have)\s+(?:already\s+)?been\s+"
            r"(?:taken|started|filed|initiated|commenced)\b",
            "claims legal action has been taken",
        ),
        (
            r"\b(?:lawsuit|claim|case)\s+(?:has|have)\s+(?:already\s+)?been\s+filed\b",
            "claims a lawsuit has been filed",
        ),
        (
            r"\bwe\s+have\s+(?:filed|started|taken)\s+(?:a\s+)?(?:lawsuit|legal)\b",
            "claims legal action",
        ),
        (r"\b(?:seiz\w*|garnish\w*|repossess\w*)\b", "threatens seizure of property or wages"),
        (r"\bblack-?list\w*\b", "threatens a blacklist"),
    ),
    "th": (
        ("จับกุม", "ขู่ว่าจะจับกุม (threatens arrest)"),
        ("หมายจับ", "อ้างหมายจับ (mentions an arrest warrant)"),
        ("ติดคุก|เข้าคุก|จำคุก|ติดตาราง", "ขู่เรื่องจำคุก (threatens prison)"),
        ("ตำรวจ", "อ้างถึงตำรวจ (mentions the police)"),
        ("คดีอาญา|ทางอาญา|โทษอาญา", "ขู่ดำเนินคดีอาญา (threatens criminal charges)"),
        ("ประจาน", "ขู่ประจาน (threatens to shame)"),
        (
            "(?:แจ้ง|บอก|ติดต่อ|โทรหา)(?:ไปยัง|ไปที่|ถึง)?"
            "(?:นายจ้าง|หัวหน้างาน|ที่ทำงาน|ครอบครัว|ญาติ|เพื่อนบ้าน|เพื่อนร่วมงาน)",
            "ขู่แจ้งบุคคลอื่น (threatens to tell employer, family or neighbours)",
        ),
        ("ยึดทรัพย์|อายัด", "ขู่ยึดหรืออายัดทรัพย์ (threatens seizure)"),
        (
            "ได้(?:ดำเนินการ)?(?:ฟ้องร้อง|ฟ้อง|ดำเนินคดี)(?:กับ)?(?:ท่าน)?(?:เรียบร้อย)?แล้ว",
            "อ้างว่าได้ฟ้องร้องแล้ว (claims legal action has been taken)",
        ),
        ("แบล็[คก]ลิสต์|บัญชีดำ", "ขู่ขึ้นบัญชีดำ (threatens a blacklist)"),
    ),
}

# A declined card is "declined by your bank", never a judgement on the customer.
_DECLINE_WORDING: dict[str, tuple[tuple[str, str], ...]] = {
    "en": ((r"\b(?:stolen|lost|fraud\w*|theft)\b", "says stolen, lost or fraud"),),
    "th": (("ถูกขโมย|สูญหาย|ทุจริต|ฉ้อโกง|โจรกรรม", "กล่าวถึงบัตรถูกขโมย สูญหาย หรือทุจริต"),),
}

# "We will never ask for your card number by email", in the template's language.
_SECURITY_NOTICE: dict[str, str] = {
    "en": (
        r"never\s+(?:ever\s+)?ask\s+(?:you\s+)?for\s+your\s+(?:full\s+)?"
        r"card\s+(?:number|details)"
    ),
    "th": r"ไม่(?:เคย|มีการ)?(?:ขอ|สอบถาม)\s*(?:หมายเลข|เลข|ข้อมูล)บัตร",
}

# ---------------------------------------------------------------- sample context

# Values that cannot occur by chance, so seeing them proves the placeholder is used.
_PAY_LINK = "https://pay.example.org/p/lint-pay-7q3"
_UNSUBSCRIBE_LINK = "https://pay.example.org/u/lint-unsub-9w2"
_CONSEQUENCES = "LINT-CONSEQUENCE-5R8"
_DEADLINE = date(2031, 7, 29)
_LATE_FEE = 4321
_CARD_LINK = "https://pay.example.org/card/lint-card-3m8"
_CARD = CardSummary(
    brand="Lintbrand", last4="7395", expires=date(2031, 8, 1), update_link=_CARD_LINK
)


def _card_sample(locale: str) -> MessageContext:
    """A message about a saved card: no invoices, no amounts; the pay link is the card page."""
    return replace(
        _sample(locale, final=False),
        invoices=(),
        days_overdue=0,
        pay_link=_CARD_LINK,
        tone="friendly",
        deadline=None,
        late_fee=None,
        consequences=None,
        card=_CARD,
    )


def _sample(locale: str, *, final: bool) -> MessageContext:
    return MessageContext(
        customer=Customer(name="Lintcustomer Q7X", locale=locale),
        company=Company(
            name="Lintcompany K4P",
            support_email="help-k4p@example.org",
            support_phone="+1 555 0100 4477",
        ),
        invoices=(
            InvoiceSummary(
                number="LINT-INV-0001",
                issued_on=date(2031, 5, 3),
                due_on=date(2031, 6, 2),
                amount=987_654,
                remaining=987_654,
                currency="THB",
                description="Lint plan",
            ),
            InvoiceSummary(
                number="LINT-INV-0002",
                issued_on=date(2031, 5, 17),
                due_on=date(2031, 6, 16),
                amount=456_789,
                remaining=123_456,
                currency="THB",
            ),
        ),
        days_overdue=57,
        pay_link=_PAY_LINK,
        tone="final" if final else "firm",
        is_final=final,
        deadline=_DEADLINE,
        late_fee=_LATE_FEE,
        consequences=_CONSEQUENCES,
        unsubscribe_link=_UNSUBSCRIBE_LINK,
    )


def _sparse(sample: MessageContext) -> MessageContext:
    """One invoice and every optional value absent: the other branches of a template."""
    return replace(
        sample,
        invoices=sample.invoices[:1],
        company=replace(sample.company, support_phone=None),
        deadline=sample.deadline if sample.is_final else None,
        late_fee=None,
        consequences=sample.consequences if sample.is_final else None,
        unsubscribe_link=None,
    )


# ---------------------------------------------------------------- lint


def lint(
    template: MessageTemplate,
    *,
    locale: str,
    final: bool,
    asks_for_payment: bool = True,
    declined_payment: bool = False,
    about_card: bool = False,
) -> list[LintProblem]:
    """Every problem that should stop `template` from being used; empty when it is fine.

    `locale` is the customer locale to render the sample in; `final` asks for a
    deadline and consequences; `asks_for_payment=False` (a receipt) drops the
    pay-link requirement; `declined_payment` adds the no-stolen/lost/fraud rule;
    `about_card` renders it about a saved card and no invoices, and asks for the
    card and its update link.
    """
    problems = _wording_problems(template, declined_payment=declined_payment)
    sample = _card_sample(locale) if about_card else _sample(locale, final=final)
    rendered: RenderedMessage | None = None
    for context in (sample, _sparse(sample)):
        try:
            message = render(template, context)
        except RenderError as error:
            return [*problems, _render_problem(error)]
        rendered = rendered or message
    assert rendered is not None
    problems += _rendered_wording_problems(rendered, declined_payment=declined_payment)
    problems += _missing_elements(
        template, rendered, sample, final=final, asks_for_payment=asks_for_payment
    )
    return list(dict.fromkeys(problems))  # a phrase in the source shows again when rendered


def _render_problem(error: RenderError) -> LintProblem:
    advice = {
        "syntax": "the template does not compile",
        "undefined": "unknown placeholder (see docs/templates.md for the names)",
        "security": "the sandbox refused it: templates may only use the documented placeholders",
        "runtime": "a placeholder or filter is used the wrong way",
    }[error.kind]
    where = f", line {error.line}" if error.line else ""
    return LintProblem(error.kind, error.part, f"{advice}{where}: {error.detail}")


def _wording_problems(template: MessageTemplate, *, declined_payment: bool) -> list[LintProblem]:
    problems: list[LintProblem] = []
    for part in ("subject", "text", "html"):
        problems += _scan(template.source(part), part, declined_payment=declined_payment)
    return problems


def _rendered_wording_problems(
    message: RenderedMessage, *, declined_payment: bool
) -> list[LintProblem]:
    # The sources were scanned already; what only the rendering shows is text the
    # template assembles, e.g. {{ "pol" ~ "ice" }}.
    problems: list[LintProblem] = []
    for part, text in (("subject", message.subject), ("text", message.text)):
        problems += _scan(text, part, declined_payment=declined_payment)
    return problems


def _scan(text: str, part: str, *, declined_payment: bool) -> list[LintProblem]:
    lists = [_FORBIDDEN_WORDING]
    if declined_payment:
        lists.append(_DECLINE_WORDING)
    problems = []
    for wording in lists:
        for patterns in wording.values():
            for pattern, why in patterns:
                match = re.search(pattern, text, re.IGNORECASE)
                if match:
                    code = (
                        "decline_wording" if wording is _DECLINE_WORDING else "threatening_wording"
                    )
                    problems.append(
                        LintProblem(code, part, f"{why}: {match.group(0)!r} must not be used")
                    )
    return problems


def _missing_elements(
    template: MessageTemplate,
    message: RenderedMessage,
    sample: MessageContext,
    *,
    final: bool,
    asks_for_payment: bool,
) -> list[LintProblem]:
    shown = formatting_locale(template.locale, sample.customer.locale)
    problems: list[LintProblem] = []
    if not message.subject:
        problems.append(LintProblem("missing_subject", "subject", "the subject is empty"))

    def day(value: date) -> list[str]:
        return [format_day(value, locale=shown, style=s) for s in ("medium", "long", "full")] + [
            value.isoformat()
        ]

    # (code, needles (any one will do), what to add)
    required: list[tuple[str, list[str], str]] = [
        ("missing_sender", [sample.company.name], "the sender: add {{ company.name }}"),
        (
            "missing_customer_name",
            [sample.customer.name],
            "add {{ customer.addressee }} or {{ customer.name }}",
        ),
        (
            "missing_contact",
            [sample.company.support_email, sample.company.support_phone or ""],
            "no contact details: add {{ company.support_email }} or {{ company.support_phone }}",
        ),
    ]
    for invoice in sample.invoices:
        required += [
            (
                "missing_invoice_number",
                [invoice.number],
                f"invoice {invoice.number} is not listed: add {{{{ invoice.number }}}} "
                "in a loop over invoices",
            ),
            (
                "missing_amount",
                [
                    format_money(invoice.amount, invoice.currency, locale=shown),
                    format_money(invoice.remaining, invoice.currency, locale=shown),
                ],
                "no amount: add {{ invoice.amount|money(invoice.currency) }} "
                "or {{ invoice.remaining|money(invoice.currency) }}",
            ),
            (
                "missing_invoice_date",
                day(invoice.issued_on) + day(invoice.due_on),
                "no invoice date: add {{ invoice.issued_on|date }} or {{ invoice.due_on|date }}",
            ),
        ]
    if asks_for_payment:
        required.append(("missing_pay_link", [_PAY_LINK], "no pay link: add {{ pay_link }}"))
    if sample.card is not None:
        required += [
            ("missing_card", [sample.card.last4], "which card: add {{ card.last4 }}"),
            (
                "missing_card_link",
                [sample.card.update_link],
                "no link to update the card: add {{ card.update_link }}",
            ),
        ]
    if final:
        required += [
            ("missing_deadline", day(_DEADLINE), "a final notice needs {{ deadline|date }}"),
            (
                "missing_consequences",
                [_CONSEQUENCES],
                "a final notice must say what happens if nothing is done: add {{ consequences }}",
            ),
        ]
    required.append(
        (
            "missing_unsubscribe_link",
            [_UNSUBSCRIBE_LINK],
            "the opt-out link is not shown when the case has one: "
            "add {% if unsubscribe_link %}{{ unsubscribe_link }}{% endif %}",
        )
    )

    parts = {
        "text": _normal(message.text),
        "html": _normal(message.html) + " " + _visible(message.html),
    }
    reported: set[tuple[str, str]] = set()
    for part, haystack in parts.items():
        for code, needles, advice in required:
            if (code, part) in reported:
                continue
            if not any(needle and _normal(needle) in haystack for needle in needles):
                reported.add((code, part))
                problems.append(LintProblem(code, part, advice))
        notice = _SECURITY_NOTICE.get(_language(template.locale), _SECURITY_NOTICE["en"])
        if not re.search(notice, haystack, re.IGNORECASE):
            problems.append(
                LintProblem(
                    "missing_security_notice",
                    part,
                    "no security notice: say that you will never ask for the card number by email",
                )
            )
    return problems


def _normal(text: str) -> str:
    return " ".join(text.split())


def _visible(markup: str) -> str:
    """The HTML part as a reader sees it: tags dropped, entities decoded."""
    return _normal(html_lib.unescape(re.sub(r"<[^>]+>", " ", markup)))


def _language(tag: str) -> str:
    return tag.replace("_", "-").split("-")[0].lower()
