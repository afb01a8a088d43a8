"""What the demo business sells, at what price in each currency, and how its invoice lines read.

Prices are written in major units and converted with the currency's ISO 4217
exponent, so 4980 yen stays 4980 (JPY has no minor unit) and 990 baht becomes
99000 satang.  Line amounts are line totals (quantity x unit price), as in
Stripe's invoice lines, and an invoice's lines add up to its amount due.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from dunning.core.money import exponent, parse_major


@dataclass(frozen=True, slots=True)
class DemoLine:
    description: str
    quantity: int
    amount: int  # minor units, the line total


def minor(major: str, currency: str) -> int:
    return parse_major(major, currency)


# Monthly list prices; a yearly plan costs ten months ("two months free").
PLANS: dict[str, tuple[tuple[str, str], ...]] = {
    "THB": (("Basic", "299"), ("Pro", "990"), ("Business", "2490")),
    "USD": (("Starter", "19"), ("Pro", "49"), ("Team", "199")),
    "JPY": (("Light", "980"), ("Standard", "4980"), ("Pro", "9800")),
    "EUR": (("Basic", "9.90"), ("Pro", "29"), ("Business", "89")),
}
SEAT = {"THB": "250", "USD": "9", "JPY": "800", "EUR": "8"}
# Value added tax on business services: Thai VAT 7%, Japanese consumption tax
# 10%, German Umsatzsteuer 19%; US services carry no sales tax in most states.
TAX_RATE = {"THB": 7, "JPY": 10, "EUR": 19, "USD": 0}
# (service, unit prices in major units, quantity range)
SERVICES: dict[str, dict[str, tuple[tuple[str, ...], tuple[int, int]]]] = {
    "consulting": {
        "THB": (("2500", "3500"), (4, 40)),
        "USD": (("150", "180"), (4, 40)),
        "JPY": (("15000", "20000"), (4, 40)),
        "EUR": (("120", "140"), (4, 40)),
    },
    "support": {
        "THB": (("15000", "25000", "45000"), (1, 1)),
        "USD": (("1200", "2500"), (1, 1)),
        "JPY": (("150000", "300000"), (1, 1)),
        "EUR": (("900", "1800"), (1, 1)),
    },
    "training": {
        "THB": (("3500",), (5, 20)),
        "USD": (("250",), (5, 20)),
        "JPY": (("30000",), (5, 20)),
        "EUR": (("200",), (5, 20)),
    },
    "report": {
        "THB": (("18000", "35000", "60000"), (1, 1)),
        "USD": (("3000", "7500"), (1, 1)),
        "JPY": (("400000", "900000"), (1, 1)),
        "EUR": (("2500", "6000"), (1, 1)),
    },
}

# Japanese text takes full-width brackets, as Japanese typesetting does (hence RUF001).
_TEXT = {
    "th": {
        "month": "แพ็กเกจ {plan} รายเดือน ({period})",
        "year": "แพ็กเกจ {plan} รายปี ({period})",
        "seats": "ผู้ใช้เพิ่มเติม",
        "tax": "ภาษีมูลค่าเพิ่ม {rate}%",
        "consulting": "ที่ปรึกษาติดตั้งระบบ (ชั่วโมง)",
        "support": "บริการดูแลระบบรายเดือน ({period})",
        "training": "อบรมการใช้งาน (ต่อท่าน)",
        "report": "พัฒนารายงานตามความต้องการ",
    },
    "en": {
        "month": "{plan} plan, monthly ({period})",
        "year": "{plan} plan, yearly ({period})",
        "seats": "Additional seats",
        "tax": "VAT {rate}%",
        "consulting": "Implementation consulting (hours)",
        "support": "Support retainer ({period})",
        "training": "Training workshop (per participant)",
        "report": "Custom report development",
    },
    "ja": {
        "month": "{plan}プラン 月額（{period}）",
        "year": "{plan}プラン 年額（{period}）",
        "seats": "追加ユーザー",
        "tax": "消費税（{rate}%）",
        "consulting": "導入コンサルティング（時間）",
        "support": "保守サポート（{period}）",
        "training": "操作研修（1名あたり）",
        "report": "カスタムレポート開発",
    },
    "de": {
        "month": "Tarif {plan}, monatlich ({period})",
        "year": "Tarif {plan}, jährlich ({period})",
        "seats": "Zusätzliche Nutzer",
        "tax": "USt. {rate} %",
        "consulting": "Einführungsberatung (Stunden)",
        "support": "Wartung und Support ({period})",
        "training": "Schulung (je Teilnehmer)",
        "report": "Entwicklung individueller Berichte",
    },
}
_MONTHS = {
    "th": (
        "มกราคม",
        "กุมภาพันธ์",
        "มีนาคม",
        "เมษายน",
        "พฤษภาคม",
        "มิถุนายน",
        "กรกฎาคม",
        "สิงหาคม",
        "กันยายน",
        "ตุลาคม",
        "พฤศจิกายน",
        "ธันวาคม",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "de": (
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ),
}


def period_label(day: date, language: str) -> str:
    """The billing month as a reader of `language` writes it: 'มีนาคม 2569', '2026年3月'."""
    if language == "ja":
        return f"{day.year}年{day.month}月"
    if language == "th":
        # Thai invoices date in the Buddhist era: 2026 CE is 2569 BE.
        return f"{_MONTHS['th'][day.month - 1]} {day.year + 543}"
    return f"{_MONTHS.get(language, _MONTHS['en'])[day.month - 1]} {day.year}"


def text(language: str, key: str, **values: object) -> str:
    return _TEXT.get(language, _TEXT["en"])[key].format(**values)


def tax_line(subtotal: int, currency: str, language: str) -> DemoLine | None:
    rate = TAX_RATE[currency]
    if not rate:
        return None
    # Integer arithmetic on minor units, rounded half up: no float touches money.
    return DemoLine(text(language, "tax", rate=rate), 1, (subtotal * rate + 50) // 100)


def plan_lines(
    *,
    currency: str,
    plan: tuple[str, str],
    yearly: bool,
    seats: int,
    start: date,
    language: str,
) -> list[DemoLine]:
    name, monthly = plan
    months = 10 if yearly else 1
    period = str(start.year) if yearly else period_label(start, language)
    lines = [
        DemoLine(
            text(language, "year" if yearly else "month", plan=name, period=period),
            1,
            minor(monthly, currency) * months,
        )
    ]
    if seats:
        seat = minor(SEAT[currency], currency)
        lines.append(DemoLine(text(language, "seats"), seats, seats * seat * months))
    return lines


def service_lines(
    rng: random.Random, *, currency: str, start: date, language: str
) -> list[DemoLine]:
    kinds = rng.sample(sorted(SERVICES), k=rng.choice((1, 1, 2, 3)))
    lines = []
    for kind in kinds:
        prices, (low, high) = SERVICES[kind][currency]
        quantity = rng.randint(low, high)
        description = text(language, kind, period=period_label(start, language))
        price = minor(rng.choice(prices), currency)
        lines.append(DemoLine(description, quantity, quantity * price))
    tax = tax_line(sum(line.amount for line in lines), currency, language)
    return [*lines, tax] if tax else lines


def round_part(amount: int, percent: int, currency: str) -> int:
    """About `percent` of `amount`, as a customer would transfer it: a round sum, never all."""
    # People transfer round sums: whole hundreds of baht, thousands of yen, tens of dollars.
    round_sum = {"THB": 100, "JPY": 1000, "USD": 10, "EUR": 10}.get(currency, 1)
    unit = round_sum * 10 ** exponent(currency)
    part = amount * percent // 100 // unit * unit
    if not 0 < part < amount:
        part = amount // 2
    return part
