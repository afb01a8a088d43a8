"""Who the demo customers are: names, contacts, locales and time zones per market.

Thai customers carry Thai-script names and `th-TH`; the others are written as
people in those countries write them.  Every email address is on a domain
reserved for examples (RFC 2606: example.com/.net/.org and *.example), so a
demo pointed at a real SMTP server mails nobody.  US numbers are in 555-0100..
0199, reserved for fiction; the other countries have no such range, so their
numbers are valid but random: do not run the demo with live SMS credentials.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_PERSON_DOMAINS = ("example.com", "example.net", "example.org")


@dataclass(frozen=True, slots=True)
class Profile:
    """A customer before any history: how to address them and in which currency they pay."""

    name: str
    email: str
    phone: str
    locale: str
    time_zone: str
    country: str
    is_business: bool
    currency: str


# (Thai script, romanisation for the email address)
_THAI_GIVEN = (
    ("สมชาย", "somchai"),
    ("สมศรี", "somsri"),
    ("ณัฐพล", "nattapon"),
    ("ปิยะวัฒน์", "piyawat"),
    ("วรรณา", "wanna"),
    ("กิตติพงษ์", "kittipong"),
    ("อนุชา", "anucha"),
    ("สุภาพร", "supaporn"),
    ("ธนพร", "thanaporn"),
    ("ชัยวัฒน์", "chaiwat"),
    ("พิมพ์ชนก", "pimchanok"),
    ("ศิริพร", "siriporn"),
    ("จิราพร", "jiraporn"),
    ("ธีรวัฒน์", "teerawat"),
    ("ปวีณา", "paweena"),
    ("อรุณี", "arunee"),
    ("นภัสสร", "napatsorn"),
    ("วีระ", "weera"),
    ("ประเสริฐ", "prasert"),
    ("มาลี", "malee"),
    ("ศักดิ์ชัย", "sakchai"),
    ("กมลชนก", "kamonchanok"),
    ("ณัฐธิดา", "natthida"),
    ("ภาณุวัฒน์", "panuwat"),
    ("รัตนา", "rattana"),
    ("อภิชาติ", "apichart"),
    ("ขวัญใจ", "kwanjai"),
    ("สุรชัย", "surachai"),
    ("เพ็ญศรี", "pensri"),
    ("ธนวัฒน์", "thanawat"),
    ("อัญชลี", "anchalee"),
    ("วิชัย", "wichai"),
)
_THAI_FAMILY = (
    ("ใจดี", "jaidee"),
    ("ศรีสุข", "srisuk"),
    ("วงศ์สวัสดิ์", "wongsawat"),
    ("สุขสวัสดิ์", "suksawat"),
    ("แก้วมณี", "kaewmanee"),
    ("ทองดี", "thongdee"),
    ("บุญมา", "boonma"),
    ("ศรีประเสริฐ", "sriprasert"),
    ("จันทร์เพ็ญ", "chanpen"),
    ("พรหมมา", "prommah"),
    ("สมบูรณ์ชัย", "sombunchai"),
    ("เจริญผล", "charoenpol"),
    ("มั่นคง", "mankong"),
    ("ชัยมงคล", "chaimongkol"),
    ("อินทรวงศ์", "intarawong"),
    ("ปัญญาดี", "panyadee"),
    ("สายทอง", "saithong"),
    ("พึ่งบุญ", "phuengboon"),
    ("นาคสวัสดิ์", "naksawat"),
    ("กิจเจริญ", "kitcharoen"),
    ("รุ่งเรือง", "rungruang"),
    ("ศรีวงศ์", "sriwong"),
    ("เพชรรัตน์", "petcharat"),
    ("วัฒนกุล", "wattanakul"),
)
_THAI_FIRM_HEAD = (
    ("สยาม", "Siam"),
    ("กรุงเทพ", "Krungthep"),
    ("ล้านนา", "Lanna"),
    ("อันดามัน", "Andaman"),
    ("เจ้าพระยา", "Chaophraya"),
    ("ศรีนคร", "Srinakorn"),
    ("รัตนโกสินทร์", "Rattanakosin"),
    ("อีสาน", "Isan"),
    ("บูรพา", "Burapha"),
    ("ทักษิณ", "Taksin"),
    ("นครชัย", "Nakhonchai"),
    ("ไทยรุ่งเรือง", "Thai Rungruang"),
)
_THAI_FIRM_TRADE = (
    ("เทค", "Tech"),
    ("ดิจิทัล", "Digital"),
    ("ฟู้ดส์", "Foods"),
    ("โลจิสติกส์", "Logistics"),
    ("ทราเวล", "Travel"),
    ("เทรดดิ้ง", "Trading"),
    ("คอนสตรัคชั่น", "Construction"),
    ("คลินิก", "Clinic"),
    ("คอฟฟี่", "Coffee"),
    ("มีเดีย", "Media"),
    ("ซอฟต์แวร์", "Software"),
    ("เอ็นจิเนียริ่ง", "Engineering"),
    ("พร็อพเพอร์ตี้", "Property"),
    ("การ์เมนท์", "Garment"),
)
_ENGLISH_GIVEN = (
    "James",
    "Emily",
    "Michael",
    "Sarah",
    "David",
    "Jessica",
    "Daniel",
    "Laura",
    "Thomas",
    "Olivia",
    "Robert",
    "Sophie",
    "Andrew",
    "Hannah",
    "Mark",
    "Chloe",
    "Kevin",
    "Grace",
    "Brian",
    "Megan",
)
_ENGLISH_FAMILY = (
    "Wilson",
    "Brown",
    "Taylor",
    "Clarke",
    "Walker",
    "Evans",
    "Hughes",
    "Patel",
    "O'Brien",
    "Murphy",
    "Nguyen",
    "Chen",
    "Anderson",
    "Campbell",
    "Mitchell",
    "Reed",
    "Garcia",
    "Kim",
)
_US_FIRM_HEAD = (
    "Brightline",
    "Harbor & Pine",
    "Northwind",
    "Bluebird",
    "Redwood",
    "Summit",
    "Granite",
    "Lakeshore",
    "Copperleaf",
    "Evergreen",
)
_US_FIRM_TRADE = ("Analytics", "Studios", "Logistics", "Dental", "Consulting", "Labs", "Partners")
# (zone, area codes): a customer's number and zone agree, as a person's would.
_US_ZONES = (
    ("America/New_York", ("212", "646", "718", "617")),
    ("America/New_York", ("212", "646", "718", "617")),
    ("America/Chicago", ("312", "773", "214")),
    ("America/Los_Angeles", ("213", "310", "415", "206")),
    ("America/Denver", ("303", "720")),
)
_JAPANESE_FAMILY = (
    ("佐藤", "sato"),
    ("鈴木", "suzuki"),
    ("高橋", "takahashi"),
    ("田中", "tanaka"),
    ("伊藤", "ito"),
    ("渡辺", "watanabe"),
    ("山本", "yamamoto"),
    ("中村", "nakamura"),
    ("小林", "kobayashi"),
    ("加藤", "kato"),
)
_JAPANESE_GIVEN = (
    ("健", "ken"),
    ("花子", "hanako"),
    ("翔太", "shota"),
    ("美咲", "misaki"),
    ("大輔", "daisuke"),
    ("陽菜", "hina"),
    ("直樹", "naoki"),
    ("由美", "yumi"),
    ("拓也", "takuya"),
    ("さくら", "sakura"),
)
_JAPANESE_FIRMS = (
    ("サクラソフト", "sakurasoft"),
    ("富士データ", "fujidata"),
    ("青空ロジスティクス", "aozora-logi"),
    ("みなと商事", "minato-shoji"),
    ("北斗システム", "hokuto-system"),
    ("ひかりデザイン", "hikari-design"),
    ("東京クラウド", "tokyo-cloud"),
    ("大和フーズ", "yamato-foods"),
)
_GERMAN_GIVEN = (
    "Lukas",
    "Anna",
    "Jonas",
    "Lea",
    "Felix",
    "Marie",
    "Paul",
    "Sophie",
    "Maximilian",
    "Hannah",
    "Leon",
    "Laura",
)
_GERMAN_FAMILY = (
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Richter",
)
_GERMAN_FIRM_HEAD = (
    "Nordlicht",
    "Bergmann",
    "Rheinwerk",
    "Alpenblick",
    "Elbtal",
    "Sonnenhof",
    "Kranich",
)
_GERMAN_FIRM_TRADE = ("Software", "Logistik", "Medien", "Consulting", "Handel")
_GERMAN_FORMS = ("GmbH", "GmbH", "GmbH", "GmbH & Co. KG", "UG (haftungsbeschränkt)")


def _ascii(text: str) -> str:
    """A name as it goes into an email address: lower case, no spaces, umlauts spelt out."""
    for letter, spelt in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.lower().replace(letter, spelt)
    return "".join(c for c in text if c.isalnum() or c in ".-")


def _digits(rng: random.Random, count: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(count))


def _maybe(rng: random.Random, phone: str, *, share: float) -> str:
    # Not everyone gives a phone number; email is the channel every customer has.
    return phone if rng.random() < share else ""


def _person_email(rng: random.Random, given: str, family: str) -> str:
    style = rng.randrange(3)
    local = (f"{given}.{family}", f"{given}{family[0]}", f"{given[0]}{family}")[style]
    return f"{_ascii(local)}@{rng.choice(_PERSON_DOMAINS)}"


def thai_mobile(rng: random.Random) -> str:
    # Thai mobiles are 0[689]x-xxx-xxxx; most in use start 08 or 09.
    prefix = rng.choice(
        ("81", "82", "83", "84", "85", "86", "87", "88", "89", "89", "92", "95", "61", "63")
    )
    return f"+66{prefix}{_digits(rng, 7)}"


def thai_person(rng: random.Random) -> Profile:
    (given, given_latin), (family, family_latin) = rng.choice(_THAI_GIVEN), rng.choice(_THAI_FAMILY)
    return Profile(
        name=f"{given} {family}",
        email=_person_email(rng, given_latin, family_latin),
        phone=_maybe(rng, thai_mobile(rng), share=0.9),
        locale="th-TH",
        time_zone="Asia/Bangkok",
        country="TH",
        is_business=False,
        currency="THB",
    )


def thai_firm_names(rng: random.Random) -> list[tuple[str, str]]:
    """Every (Thai, English) trading name, shuffled, so firms are drawn without repeats."""
    names = [
        (head + trade, f"{head_en} {trade_en}")
        for head, head_en in _THAI_FIRM_HEAD
        for trade, trade_en in _THAI_FIRM_TRADE
    ]
    rng.shuffle(names)
    return names


def thai_firm(rng: random.Random, trading: tuple[str, str], *, english: bool) -> Profile:
    thai, latin = trading
    domain = f"{_ascii(latin.replace(' ', ''))}.example"
    if english:
        name = f"{latin} Co., Ltd."
    else:
        # Thai legal forms: company limited, limited partnership, public company.
        form = rng.choices(
            ("บริษัท {} จำกัด", "ห้างหุ้นส่วนจำกัด {}", "บริษัท {} จำกัด (มหาชน)"), weights=(80, 15, 5)
        )[0]
        name = form.format(thai)
    # Bangkok landlines are 02-xxx-xxxx; firms answer those, or a mobile.
    landline = f"+662{rng.randrange(1, 10)}{_digits(rng, 6)}"
    phone = landline if rng.random() < 0.6 else thai_mobile(rng)
    return Profile(
        name=name,
        email=f"{rng.choice(('accounts', 'billing', 'finance'))}@{domain}",
        phone=_maybe(rng, phone, share=0.95),
        locale="en" if english else "th-TH",
        time_zone="Asia/Bangkok",
        country="TH",
        is_business=True,
        currency="THB",
    )


def english_in_thailand(rng: random.Random) -> Profile:
    """An expatriate, or a Thai who reads English, living in Thailand and paying in baht."""
    if rng.random() < 0.4:
        (_, given), (_, family) = rng.choice(_THAI_GIVEN), rng.choice(_THAI_FAMILY)
        given, family = given.capitalize(), family.capitalize()
    else:
        given, family = rng.choice(_ENGLISH_GIVEN), rng.choice(_ENGLISH_FAMILY)
    return Profile(
        name=f"{given} {family}",
        email=_person_email(rng, given, family),
        phone=_maybe(rng, thai_mobile(rng), share=0.85),
        locale="en",
        time_zone="Asia/Bangkok",
        country="TH",
        is_business=False,
        currency="THB",
    )


def american(rng: random.Random, *, business: bool) -> Profile:
    zone, areas = rng.choice(_US_ZONES)
    phone = f"+1{rng.choice(areas)}5550{rng.randrange(100, 200)}"
    if business:
        head, trade = rng.choice(_US_FIRM_HEAD), rng.choice(_US_FIRM_TRADE)
        name = f"{head} {trade} {rng.choice(('LLC', 'Inc.', 'Co.'))}"
        email = f"ap@{_ascii(head.replace(' & ', '-').replace(' ', '') + trade)}.example"
    else:
        given, family = rng.choice(_ENGLISH_GIVEN), rng.choice(_ENGLISH_FAMILY)
        name, email = f"{given} {family}", _person_email(rng, given, family)
    return Profile(
        name=name,
        email=email,
        phone=_maybe(rng, phone, share=0.8),
        locale="en-US",
        time_zone=zone,
        country="US",
        is_business=business,
        currency="USD",
    )


def japanese(rng: random.Random, *, business: bool) -> Profile:
    if business:
        firm, latin = rng.choice(_JAPANESE_FIRMS)
        # 株式会社 goes before or after the name; both are common.
        name = f"株式会社{firm}" if rng.random() < 0.6 else f"{firm}株式会社"
        # Tokyo numbers are 03-xxxx-xxxx; mobiles 090, 080 and 070.  A subscriber
        # number never starts with 0 (it would read as a trunk prefix).
        email, phone = f"keiri@{latin}.example", f"+813{rng.randint(1, 9)}{_digits(rng, 7)}"
    else:
        (family, family_latin), (given, given_latin) = (
            rng.choice(_JAPANESE_FAMILY),
            rng.choice(_JAPANESE_GIVEN),
        )
        # Family name first, as Japanese names are written.
        name = f"{family} {given}"
        email = _person_email(rng, given_latin, family_latin)
        phone = f"+81{rng.choice(('90', '80', '70'))}{rng.randint(1, 9)}{_digits(rng, 7)}"
    return Profile(
        name=name,
        email=email,
        phone=_maybe(rng, phone, share=0.85),
        locale="ja-JP",
        time_zone="Asia/Tokyo",
        country="JP",
        is_business=business,
        currency="JPY",
    )


def german(rng: random.Random, *, business: bool) -> Profile:
    if business:
        head, trade = rng.choice(_GERMAN_FIRM_HEAD), rng.choice(_GERMAN_FIRM_TRADE)
        name = f"{head} {trade} {rng.choice(_GERMAN_FORMS)}"
        email = f"buchhaltung@{_ascii(head + '-' + trade)}.example"
        phone = f"+49{rng.choice(('30', '89', '40'))}{_digits(rng, 8)}"
    else:
        given, family = rng.choice(_GERMAN_GIVEN), rng.choice(_GERMAN_FAMILY)
        name, email = f"{given} {family}", _person_email(rng, given, family)
        phone = f"+49{rng.choice(('151', '152', '157', '160', '176'))}{_digits(rng, 8)}"
    return Profile(
        name=name,
        email=email,
        phone=_maybe(rng, phone, share=0.8),
        locale="de-DE",
        time_zone="Europe/Berlin",
        country="DE",
        is_business=business,
        currency="EUR",
    )
