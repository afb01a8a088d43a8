from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import formataddr, parseaddr

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dunning.core.fields import (
    EARLIEST,
    LATEST,
    FieldError,
    check_text,
    default_time_zone,
    known_zone,
    normalize_country,
    normalize_email,
    normalize_locale,
    normalize_phone,
    normalize_time_zone,
    parse_instant,
)

SECRET = "4111111111111111"


# --- countries, locales, time zones ------------------------------------------------------


@pytest.mark.parametrize(("value", "code"), [("TH", "TH"), ("th", "TH"), (" jp ", "JP")])
def test_a_country_is_an_iso_3166_alpha_2_code_in_upper_case(value: str, code: str) -> None:
    assert normalize_country(value) == code


@pytest.mark.parametrize("value", ["", "XX", "THA", "Thailand", "T", SECRET])
def test_an_unknown_country_is_refused_without_repeating_it(value: str) -> None:
    with pytest.raises(FieldError) as raised:
        normalize_country(value)

    assert str(raised.value) == "unknown country: use an ISO 3166 alpha-2 code such as TH"


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("th", "th"),
        ("th-TH", "th-TH"),
        ("th_th", "th-TH"),
        ("en-us", "en-US"),
        ("zh-Hant-TW", "zh-Hant-TW"),
        (" en ", "en"),
    ],
)
def test_a_locale_is_a_bcp_47_tag_in_canonical_case(value: str, tag: str) -> None:
    assert normalize_locale(value) == tag


@pytest.mark.parametrize("value", ["", "xx-YY", "english", "th--TH", "123", SECRET])
def test_an_unknown_locale_is_refused_without_repeating_it(value: str) -> None:
    with pytest.raises(FieldError) as raised:
        normalize_locale(value)

    assert str(raised.value) == "unknown locale: use a tag such as th, th-TH or en-US"


@pytest.mark.parametrize(
    "value", ["Asia/Bangkok", "UTC", "America/Argentina/Buenos_Aires", " Asia/Tokyo "]
)
def test_a_time_zone_is_an_iana_name(value: str) -> None:
    assert normalize_time_zone(value) == value.strip()


@pytest.mark.parametrize("value", ["", "asia/bangkok", "GMT+7", "+07:00", "Mars/Olympus", SECRET])
def test_an_unknown_time_zone_is_refused_without_repeating_it(value: str) -> None:
    with pytest.raises(FieldError) as raised:
        normalize_time_zone(value)

    assert str(raised.value) == "unknown time zone: use an IANA name such as Asia/Bangkok"


@pytest.mark.parametrize(
    "stored", ["", "asia/bangkok", "Mars/Olympus", "/etc/localtime", "../zoneinfo/UTC", "zone.tab"]
)
def test_a_stored_zone_this_machine_does_not_know_is_none_not_an_error(stored: str) -> None:
    assert known_zone(stored) is None


def test_a_stored_zone_this_machine_knows_is_its_zone() -> None:
    zone = known_zone("Asia/Kathmandu")
    assert zone is not None and zone.key == "Asia/Kathmandu"


@pytest.mark.parametrize(
    ("country", "zone"),
    [("TH", "Asia/Bangkok"), ("JP", "Asia/Tokyo"), ("US", None), ("", None), ("XX", None)],
)
def test_a_country_with_one_time_zone_gives_it_as_the_default(
    country: str, zone: str | None
) -> None:
    assert default_time_zone(country) == zone


# --- phones and emails ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "country", "e164"),
    [
        ("+66812345678", "", "+66812345678"),
        ("+66 81 234 5678", "", "+66812345678"),
        ("081 234 5678", "TH", "+66812345678"),
        ("081-234-5678", "TH", "+66812345678"),
        ("(415) 555-2671", "US", "+14155552671"),
    ],
)
def test_a_phone_number_is_stored_in_e164(value: str, country: str, e164: str) -> None:
    assert normalize_phone(value, country=country) == e164


def test_a_national_number_without_a_country_asks_for_one() -> None:
    with pytest.raises(FieldError, match="set the country"):
        normalize_phone("081 234 5678")


@pytest.mark.parametrize("value", ["12", "+66 12", "not a phone", "+999 1234567", SECRET])
def test_a_phone_number_that_is_not_valid_is_refused_without_repeating_it(value: str) -> None:
    with pytest.raises(FieldError) as raised:
        normalize_phone(value, country="TH")

    assert str(raised.value) in (
        "not a phone number: write it as +66812345678",
        "not a valid phone number for its country",
    )


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("somchai@example.co.th", "somchai@example.co.th"),
        ("Somchai@Example.CO.TH", "Somchai@example.co.th"),
        ("  a.b+c@x.io ", "a.b+c@x.io"),
    ],
)
def test_an_email_keeps_its_local_part_and_lowers_its_domain(value: str, stored: str) -> None:
    assert normalize_email(value) == stored


@pytest.mark.parametrize(
    "value",
    [
        "",
        "somchai",
        "a@b",
        "a b@example.com",
        "@example.com",
        "a@example",
        "x" * 250 + "@example.com",
        SECRET,
    ],
)
def test_a_malformed_email_is_refused_without_repeating_it(value: str) -> None:
    with pytest.raises(FieldError) as raised:
        normalize_email(value)

    assert str(raised.value) == "not an email address"


@pytest.mark.parametrize(
    ("value", "reaches"),
    [
        ("a@x,y.com", "a@x"),
        ("x@evil.example>x.com", "x@evil.example"),
        ("a(note)@example.com", "a@example.com"),
        ("<a@example.com>", "a@example.com"),
    ],
)
def test_an_email_a_mail_client_would_read_as_another_address_is_refused(
    value: str, reaches: str
) -> None:
    # Each reads as `reaches` once in a To header: stored, it would be mailed there.
    assert parseaddr(formataddr(("", value)))[1] == reaches
    with pytest.raises(FieldError, match=r"^not an email address"):
        normalize_email(value)


@pytest.mark.parametrize("value", ["a@exa_mple.com", "a@-example.com", "a@example-.com", "a@x..io"])
def test_an_email_whose_domain_is_not_a_host_name_is_refused(value: str) -> None:
    with pytest.raises(FieldError, match=r"^not an email address: the domain is not a valid"):
        normalize_email(value)


@pytest.mark.parametrize("value", [".a@x.io", "a.@x.io", "a..b@x.io", "a\\b@x.io"])
def test_an_email_whose_mailbox_name_is_not_a_dot_string_is_refused(value: str) -> None:
    with pytest.raises(FieldError, match=r"^not an email address$"):
        normalize_email(value)


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("somchai@bücher.de", "somchai@bücher.de"),
        ("somchai@BÜCHER.de", "somchai@bücher.de"),
        ("somchai@ตัวอย่าง.ไทย", "somchai@ตัวอย่าง.ไทย"),
        ("o'brien+bills@example.ie", "o'brien+bills@example.ie"),
    ],
)
def test_an_internationalised_domain_is_accepted(value: str, stored: str) -> None:
    # The email channel sends it in its ASCII form (IDNA 2008).
    assert normalize_email(value) == stored


@pytest.mark.parametrize("value", ["สมชาย@example.co.th", "jürgen@example.de"])
def test_a_mailbox_name_that_is_not_ascii_is_refused_saying_why_without_repeating_it(
    value: str,
) -> None:
    # Such an address needs SMTPUTF8 (RFC 6531), which the email channel does not
    # speak: accepted, it would only fail when the first message is sent.
    with pytest.raises(FieldError) as raised:
        normalize_email(value)

    reason = str(raised.value)
    assert "before @" in reason and "SMTPUTF8" in reason
    assert value.partition("@")[0] not in reason


def test_a_domain_idna_cannot_encode_is_refused() -> None:
    with pytest.raises(FieldError, match=r"^not an email address: the domain"):
        normalize_email("somchai@bü--cher.de")


# --- instants ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2026-03-15T09:30:00+07:00", datetime(2026, 3, 15, 2, 30, tzinfo=UTC)),
        ("2026-03-15T02:30:00Z", datetime(2026, 3, 15, 2, 30, tzinfo=UTC)),
        ("2026-03-15T02:30:00z", datetime(2026, 3, 15, 2, 30, tzinfo=UTC)),
        ("2026-03-15t02:30:00.123456-05:00", datetime(2026, 3, 15, 7, 30, 0, 123456, tzinfo=UTC)),
        ("2026-03-15", datetime(2026, 3, 15, tzinfo=UTC)),
        (" 2026-03-15 ", datetime(2026, 3, 15, tzinfo=UTC)),
        (date(2026, 3, 15), datetime(2026, 3, 15, tzinfo=UTC)),
        (
            datetime(2026, 3, 15, 9, 30, tzinfo=timezone(timedelta(hours=7))),
            datetime(2026, 3, 15, 2, 30, tzinfo=UTC),
        ),
    ],
)
def test_an_instant_is_read_into_utc(value: str | date, moment: datetime) -> None:
    parsed = parse_instant(value)

    assert parsed == moment
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    ["2026-03-15T09:30:00", "2026-03-15 09:30", datetime(2026, 3, 15, 9, 30)],  # noqa: DTZ001
)
def test_an_instant_without_a_utc_offset_is_refused_rather_than_guessed(
    value: str | datetime,
) -> None:
    with pytest.raises(FieldError, match="UTC offset"):
        parse_instant(value)


@pytest.mark.parametrize(
    "value",
    [
        "1969-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "0001-01-01",
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-23))),
        datetime.min.replace(tzinfo=timezone(timedelta(hours=23))),
    ],
)
def test_an_instant_outside_1970_to_2200_is_refused_even_at_the_edges_of_datetime(
    value: str | datetime,
) -> None:
    with pytest.raises(FieldError, match="between 1970 and 2200"):
        parse_instant(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "yesterday",
        "2026-02-30",
        "2026-13-01",
        "15/03/2026",
        "1e5",
        SECRET,
        "2026-03-15T25:00Z",
        "2026-03-15T09:30:00+25:00",
        1773542400,
        1.5,
        None,
        True,
        ["2026-03-15"],
        {"date": 1},
    ],
)
def test_anything_else_is_not_a_date_and_is_not_repeated(value: object) -> None:
    with pytest.raises(FieldError) as raised:
        parse_instant(value)  # type: ignore[arg-type]

    assert "not a date" in str(raised.value)
    assert SECRET not in str(raised.value)


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


# Hypothesis bounds are naive; the generated datetimes carry an offset.
@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 2),  # noqa: DTZ001
        max_value=datetime(2199, 12, 30),  # noqa: DTZ001
        timezones=offsets,
    )
)
def test_any_instant_in_range_reads_back_as_the_same_moment(moment: datetime) -> None:
    parsed = parse_instant(moment.isoformat())

    assert parsed == moment
    assert parsed.utcoffset() == timedelta(0)
    assert EARLIEST <= parsed < LATEST


@given(day=st.dates(min_value=date(1970, 1, 1), max_value=date(2199, 12, 31)))
def test_any_date_in_range_reads_as_its_midnight_utc(day: date) -> None:
    assert parse_instant(day.isoformat()) == datetime(day.year, day.month, day.day, tzinfo=UTC)


@given(text=st.text(max_size=40))
def test_no_text_makes_parse_instant_raise_anything_but_field_error(text: str) -> None:
    try:
        parse_instant(text)
    except FieldError as error:
        assert not text.strip() or len(text.strip()) < 3 or text.strip() not in str(error)


# --- text ----------------------------------------------------------------------------------


def test_text_that_every_database_can_store_passes_unchanged() -> None:
    assert check_text("Somchai ใจดี 🙂", max_length=20) == "Somchai ใจดี 🙂"


@pytest.mark.parametrize(
    ("value", "message"),
    [("a\x00b", "NUL"), ("a\ud800", "Unicode"), ("\udfff", "Unicode"), ("x" * 11, "at most 10")],
)
def test_text_with_nul_lone_surrogates_or_too_long_is_refused(value: str, message: str) -> None:
    with pytest.raises(FieldError, match=message):
        check_text(value, max_length=10)
