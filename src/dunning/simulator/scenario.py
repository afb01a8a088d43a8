"""A simulator scenario: customers, their invoices, and what their cards do when charged.

`load_scenario` reads a scenario file (or its text, or the parsed dict), checks it
against the shipped JSON Schema (`scenario.schema.json`, draft 2020-12) and then
against the rules a schema cannot state (start before end, unique ids, a real
IANA time zone, due dates inside the run, one email address per customer ...).
Bad input raises `ScenarioError` naming every fault by its JSON path, such as
``customers[3].invoices[0].due_at``; a file that is not JSON at all is named by
line and column.

Every datetime is aware and held in UTC; `dump_scenario` writes a customer's
times back in the customer's own time zone and `start`/`end` in UTC, so
``load_scenario(dump_scenario(s)) == s``.  The format is documented field by
field in docs/simulator.md.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import reprlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.utils import formataddr, parseaddr
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema

from dunning.channels.email.message import UnsendableAddress, wire_address
from dunning.core.fields import EARLIEST, LATEST
from dunning.core.money import currency_codes

SCHEMA_RESOURCE = "scenario.schema.json"
# A file with more faults than this is not worth listing in full.
MAX_REPORTED_ERRORS = 20
# Nor a fault worth more than a line: a 100 KB value is not repeated back.
MAX_MESSAGE = 200

# What the schema's patterns mean, for an error a person can act on.
_PATTERN_HINTS = {
    "datetime": "must be a date and time with an offset, like 2026-01-20T00:00:00+07:00",
    "^[A-Z]{3}$": "must be an ISO 4217 currency code in capitals, like THB",
    "^[A-Z]{2}$": "must be an ISO 3166 alpha-2 country code in capitals, like TH",
    "^[a-z0-9_]+$": "must be a code in lower case, digits and underscores, like insufficient_funds",
    "^[0-9]{2}$": "must be a two-digit Mastercard merchant advice code, like 03",
}


class ScenarioError(ValueError):
    """A scenario that cannot be used; `errors` holds one line per fault, path first."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        shown = list(self.errors[:MAX_REPORTED_ERRORS])
        if len(self.errors) > MAX_REPORTED_ERRORS:
            shown.append(f"... and {len(self.errors) - MAX_REPORTED_ERRORS} more")
        if len(shown) == 1:
            message = shown[0]
        else:
            message = f"{len(self.errors)} problems in the scenario:\n" + "\n".join(
                f"  {line}" for line in shown
            )
        super().__init__(message)


class CardRole(StrEnum):
    """Which of a customer's two cards: the one on file at start, or the one that replaces it."""

    ORIGINAL = "original"
    REPLACEMENT = "replacement"


class ChargeOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SimCard:
    brand: str  # visa, mastercard, amex, discover, jcb, unionpay, other
    exp_month: int  # 1..12
    exp_year: int


@dataclass(frozen=True, slots=True)
class HistoryCharge:
    """A charge made before the run starts, for the engine to learn the customer's habits."""

    at: datetime
    amount: int  # minor units
    currency: str
    outcome: ChargeOutcome
    decline_code: str | None = None  # set when the charge failed


@dataclass(frozen=True, slots=True)
class SimInvoice:
    id: str
    number: str
    amount_due: int  # minor units
    currency: str
    due_at: datetime  # the first charge happens here
    collection_method: str  # charge_automatically or send_invoice


@dataclass(frozen=True, slots=True)
class DeclineWindow:
    """Charges on `card` in [starts_at, ends_at) fail with these codes (JSON: from, until)."""

    starts_at: datetime
    ends_at: datetime
    decline_code: str
    card: CardRole
    advice_code: str | None = None  # Stripe's advice_code, e.g. do_not_try_again
    network_advice_code: str | None = None  # Mastercard MAC, e.g. "03"

    def holds(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True, slots=True)
class ReplacementCard:
    """When a new card takes over: at `at` (a card-updater event), or `delay_hours`
    after the customer received its `after_messages`-th message, whichever is first."""

    at: datetime | None = None
    after_messages: int | None = None
    delay_hours: int | None = None


@dataclass(frozen=True, slots=True)
class SimCustomer:
    id: str
    name: str
    email: str
    locale: str
    time_zone: str  # IANA, e.g. Asia/Bangkok
    country: str  # ISO 3166 alpha-2
    card: SimCard
    invoices: tuple[SimInvoice, ...]
    history: tuple[HistoryCharge, ...] = ()
    declines: tuple[DeclineWindow, ...] = ()
    replacement_card: ReplacementCard | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True, slots=True)
class Scenario:
    start: datetime
    end: datetime
    customers: tuple[SimCustomer, ...]
    description: str = ""


@functools.cache
def scenario_schema() -> Mapping[str, Any]:
    """The shipped JSON Schema (draft 2020-12) every scenario must satisfy."""
    text = resources.files("dunning.simulator").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = scenario_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@functools.cache
def _customer_validator() -> jsonschema.protocols.Validator:
    schema = scenario_schema()
    return jsonschema.Draft202012Validator({"$ref": "#/$defs/customer", "$defs": schema["$defs"]})


@functools.cache
def _fast_validator() -> Any:
    """jsonschema-rs, when installed: the same schema checked ~100x faster.

    The pure-Python `jsonschema` needs about 3 ms per customer, half a minute for
    the 10,000-customer benchmark; jsonschema-rs needs 25 microseconds.  It only
    says yes or no here: the messages always come from `jsonschema`, so they read
    the same with or without it.
    """
    try:
        import jsonschema_rs  # optional: a dependency of the test extras, not of the runtime
    except ImportError:
        return None
    return jsonschema_rs.validator_for(dict(scenario_schema()), validate_formats=False)


def load_scenario(source: str | os.PathLike[str] | Mapping[str, Any]) -> Scenario:
    """Read, validate and build a scenario.

    `source` is a path, the JSON text itself (a string starting with ``{`` or ``[``), or
    an already parsed dict.  Raises `ScenarioError` on any fault.
    """
    if isinstance(source, Mapping):
        return scenario_from_dict(source)
    if isinstance(source, str) and source.lstrip()[:1] in ("{", "["):
        text = source
    else:
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise ScenarioError([f"cannot read {os.fspath(source)}: {exc}"]) from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            raise ScenarioError(
                [f"line {line}, column {column}: not UTF-8 (byte 0x{raw[exc.start]:02x})"]
            ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(
            [f"line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"]
        ) from exc
    return scenario_from_dict(data)


def scenario_from_dict(data: Any) -> Scenario:
    """Validate parsed JSON against the schema and the semantic rules, then build it."""
    fast = _fast_validator()
    if fast is None or not fast.is_valid(data):
        schema_errors = _schema_errors(data, fast)
        if schema_errors:
            raise ScenarioError(schema_errors)
    builder = _Builder()
    scenario = builder.scenario(data)
    if builder.errors:
        raise ScenarioError(builder.errors)
    return scenario


def _schema_errors(data: Any, fast: Any) -> list[str]:
    """The schema's complaints, path first, in document order.

    With jsonschema-rs at hand only the parts it rejected are re-checked by
    `jsonschema` (the top level without its customers, then each rejected
    customer), so a large file with one typo is reported in well under a second.
    Customers beyond the first `MAX_REPORTED_ERRORS` rejected keep jsonschema-rs's
    own wording: nobody reads that far, but the count stays right.
    """
    customers = data.get("customers") if isinstance(data, dict) else None
    if fast is None or not isinstance(customers, list):
        found = [(_error_order(e.absolute_path), e) for e in _validator().iter_errors(data)]
        return [_describe_schema_error(e) for _, e in sorted(found, key=lambda f: f[0])]
    errors = [
        (_error_order(e.absolute_path), _describe_schema_error(e))
        for e in _validator().iter_errors({**data, "customers": []})
    ]
    fast_errors = [e for e in fast.iter_errors(data) if len(e.instance_path) >= 2]
    rejected = sorted({e.instance_path[1] for e in fast_errors})
    checked = set(rejected[:MAX_REPORTED_ERRORS])
    for index in checked:
        for e in _customer_validator().iter_errors(customers[index]):
            path = ["customers", index, *e.absolute_path]
            errors.append((_error_order(path), _describe_schema_error(e, prefix=path[:2])))
    for e in fast_errors:
        if e.instance_path[1] not in checked:
            path = list(e.instance_path)
            errors.append((_error_order(path), _capped(f"{json_path(path)}: {e.message}")))
    return [message for _, message in sorted(errors, key=lambda f: f[0])]


def _error_order(path: Iterable[str | int]) -> list[str]:
    return [f"{p:09d}" if isinstance(p, int) else p for p in path]


def json_path(parts: Sequence[str | int]) -> str:
    """``("customers", 3, "due_at")`` -> ``customers[3].due_at``; the root is ``scenario``."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "scenario"


def _describe_schema_error(
    error: jsonschema.ValidationError, prefix: Sequence[str | int] = ()
) -> str:
    path = json_path([*prefix, *error.absolute_path])
    if error.validator == "pattern":
        pattern = str(error.validator_value)
        hint = _PATTERN_HINTS.get(pattern)
        if hint is None and pattern.startswith("^[0-9]{4}-"):
            hint = _PATTERN_HINTS["datetime"]
        if hint is not None:
            return f"{path}: {shown(error.instance)} {hint}"
    if error.validator == "type":
        return f"{path}: {_kind(error.instance)} is not of type {error.validator_value!r}"
    if error.validator == "maxLength" and isinstance(error.instance, str):
        return f"{path}: {len(error.instance):,} characters, at most {error.validator_value}"
    # jsonschema's messages start with the whole value: cut it short, and the rest too.
    message = error.message.replace(repr(error.instance), shown(error.instance), 1)
    return _capped(f"{path}: {message}")


def _capped(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def _kind(value: object) -> str:
    """What a JSON value is, in a few words: 'an array of 50 items', 'a string'."""
    if isinstance(value, list):
        return f"an array of {len(value):,} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return f"an object with {len(value):,} key{'' if len(value) == 1 else 's'}"
    if isinstance(value, str):
        return shown(value)
    return repr(value)


def _mailbox(address: str) -> str:
    """The mailbox an address reaches: the domain's case does not matter (RFC 5321 2.4),
    nor whether it is written in Unicode or in its ASCII form."""
    with contextlib.suppress(UnsendableAddress):  # reported by _Builder.email
        address = wire_address(address)
    local, at, domain = address.rpartition("@")
    return f"{local}{at}{domain.lower()}"


_SHORT = reprlib.Repr()
_SHORT.maxstring = 60
_SHORT.maxother = 60


def shown(value: object) -> str:
    """`value` for an error line: its repr, cut short (a 100 KB name is not repeated)."""
    return _SHORT.repr(value)


# Stands in for a datetime that did not parse, so later checks can skip it.
_UNREADABLE = datetime.min.replace(tzinfo=UTC)


def _readable(*instants: datetime) -> bool:
    return all(at is not _UNREADABLE for at in instants)


class _Builder:
    """Turns schema-valid data into dataclasses, collecting the faults a schema cannot see."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, path: Sequence[str | int], message: str) -> None:
        self.errors.append(f"{json_path(path)}: {message}")

    def whole(self, value: int | float, path: Sequence[str | int]) -> int:
        """JSON Schema counts 49900.0 as an integer; money and counts here are written
        without a decimal point, so a float never reaches the engine."""
        if isinstance(value, float):
            self.fail(path, f"{value!r} must be a whole number written without a decimal point")
            return int(value)
        return value

    def instant(self, value: str, path: Sequence[str | int]) -> datetime:
        try:
            parsed = datetime.fromisoformat(value).astimezone(UTC)
        except ValueError as exc:
            self.fail(path, f"{value!r} is not a real date and time ({exc})")
            return _UNREADABLE
        except OverflowError:  # 0001-01-01T00:00+01:00 is before datetime's first year
            parsed = _UNREADABLE
        # The run adds hours and years to these (and the engine, its windows): far-off
        # years would leave datetime's range mid-run.
        if not EARLIEST <= parsed < LATEST:
            self.fail(path, f"{value!r} must be from {EARLIEST.year} and before {LATEST.year}")
            return _UNREADABLE
        return parsed

    def currency(self, value: str, path: Sequence[str | int]) -> str:
        if value not in currency_codes():
            self.fail(path, f"{value!r} is not an ISO 4217 currency an invoice can be in")
        return value

    def email(self, value: str, path: Sequence[str | int]) -> str:
        """An address the run can deliver to and tell apart: as the engine's email
        channel puts it in the To header, read back by the simulated mail server."""
        if any(character.isspace() for character in value):
            self.fail(path, f"{shown(value)} must not contain spaces")
            return value
        try:
            wire = wire_address(value)
        except UnsendableAddress as exc:
            self.fail(path, f"{shown(value)} cannot be sent to: {exc.message}")
            return value
        if parseaddr(formataddr(("", wire)))[1] != wire:
            self.fail(
                path,
                f"{shown(value)} is not one email address (no commas, angle brackets or comments)",
            )
        return value

    def scenario(self, data: Mapping[str, Any]) -> Scenario:
        start = self.instant(data["start"], ["start"])
        end = self.instant(data["end"], ["end"])
        if _readable(start, end) and not start < end:
            self.fail(["end"], f"must be after start ({data['start']})")
        customers = tuple(
            self.customer(raw, ["customers", i], start=start, end=end)
            for i, raw in enumerate(data["customers"])
        )
        self.check_unique(
            ((c.id, ["customers", i, "id"]) for i, c in enumerate(customers)), "customer id"
        )
        self.check_unique(
            (
                (inv.id, ["customers", i, "invoices", j, "id"])
                for i, c in enumerate(customers)
                for j, inv in enumerate(c.invoices)
            ),
            "invoice id",
        )
        # The mail server tells customers apart by address (runner._Mailbox), as a real
        # one would: two customers with one address would read each other's reminders.
        self.check_unique(
            ((_mailbox(c.email), ["customers", i, "email"]) for i, c in enumerate(customers)),
            "email address",
        )
        return Scenario(
            start=start, end=end, customers=customers, description=data.get("description", "")
        )

    def check_unique(self, items: Iterator[tuple[str, list[str | int]]], what: str) -> None:
        seen: dict[str, list[str | int]] = {}
        for value, path in items:
            if value in seen:
                self.fail(path, f"duplicate {what} {value!r} (first at {json_path(seen[value])})")
            else:
                seen[value] = path

    def customer(
        self, raw: Mapping[str, Any], path: list[str | int], *, start: datetime, end: datetime
    ) -> SimCustomer:
        try:
            ZoneInfo(raw["time_zone"])
        except (ZoneInfoNotFoundError, ValueError):
            self.fail([*path, "time_zone"], f"{shown(raw['time_zone'])} is not an IANA time zone")
        history = tuple(
            self.history_charge(h, [*path, "history", i], start=start)
            for i, h in enumerate(raw.get("history", ()))
        )
        invoices = tuple(
            self.invoice(inv, [*path, "invoices", i], start=start, end=end)
            for i, inv in enumerate(raw["invoices"])
        )
        declines = tuple(
            self.decline_window(d, [*path, "declines", i])
            for i, d in enumerate(raw.get("declines", ()))
        )
        replacement = raw.get("replacement_card")
        card = raw["card"]
        return SimCustomer(
            id=raw["id"],
            name=raw["name"],
            email=self.email(raw["email"], [*path, "email"]),
            locale=raw["locale"],
            time_zone=raw["time_zone"],
            country=raw["country"],
            card=SimCard(
                brand=card["brand"],
                exp_month=self.whole(card["exp_month"], [*path, "card", "exp_month"]),
                exp_year=self.whole(card["exp_year"], [*path, "card", "exp_year"]),
            ),
            invoices=invoices,
            history=history,
            declines=declines,
            replacement_card=(
                None
                if replacement is None
                else self.replacement_card(replacement, [*path, "replacement_card"])
            ),
        )

    def history_charge(
        self, raw: Mapping[str, Any], path: list[str | int], *, start: datetime
    ) -> HistoryCharge:
        at = self.instant(raw["at"], [*path, "at"])
        if _readable(at, start) and at >= start:
            self.fail([*path, "at"], "history must be before the scenario's start")
        outcome = ChargeOutcome(raw["outcome"])
        code = raw.get("decline_code")
        if outcome is ChargeOutcome.SUCCEEDED and code is not None:
            self.fail([*path, "decline_code"], "a succeeded charge has no decline code")
        return HistoryCharge(
            at=at,
            amount=self.whole(raw["amount"], [*path, "amount"]),
            currency=self.currency(raw["currency"], [*path, "currency"]),
            outcome=outcome,
            decline_code=code,
        )

    def invoice(
        self, raw: Mapping[str, Any], path: list[str | int], *, start: datetime, end: datetime
    ) -> SimInvoice:
        due_at = self.instant(raw["due_at"], [*path, "due_at"])
        if _readable(start, due_at, end) and not start <= due_at < end:
            self.fail(
                [*path, "due_at"], "must be within the scenario, at or after start and before end"
            )
        return SimInvoice(
            id=raw["id"],
            number=raw["number"],
            amount_due=self.whole(raw["amount_due"], [*path, "amount_due"]),
            currency=self.currency(raw["currency"], [*path, "currency"]),
            due_at=due_at,
            collection_method=raw["collection_method"],
        )

    def decline_window(self, raw: Mapping[str, Any], path: list[str | int]) -> DeclineWindow:
        starts_at = self.instant(raw["from"], [*path, "from"])
        ends_at = self.instant(raw["until"], [*path, "until"])
        if _readable(starts_at, ends_at) and not starts_at < ends_at:
            self.fail([*path, "until"], f"must be after from ({raw['from']})")
        return DeclineWindow(
            starts_at=starts_at,
            ends_at=ends_at,
            decline_code=raw["decline_code"],
            card=CardRole(raw["card"]),
            advice_code=raw.get("advice_code"),
            network_advice_code=raw.get("network_advice_code"),
        )

    def replacement_card(self, raw: Mapping[str, Any], path: list[str | int]) -> ReplacementCard:
        if (raw["after_messages"] is None) != (raw["delay_hours"] is None):
            self.fail(path, "after_messages and delay_hours are given together or both null")
        at, after, delay = raw["at"], raw["after_messages"], raw["delay_hours"]
        return ReplacementCard(
            at=None if at is None else self.instant(at, [*path, "at"]),
            after_messages=None if after is None else self.whole(after, [*path, "after_messages"]),
            delay_hours=None if delay is None else self.whole(delay, [*path, "delay_hours"]),
        )


def dump_scenario(scenario: Scenario) -> dict[str, Any]:
    """The scenario as JSON-ready data; `load_scenario` reads it back equal."""
    data: dict[str, Any] = {}
    if scenario.description:
        data["description"] = scenario.description
    data["start"] = format_instant(scenario.start, UTC)
    data["end"] = format_instant(scenario.end, UTC)
    data["customers"] = [_dump_customer(c) for c in scenario.customers]
    return data


def format_instant(at: datetime, zone: tzinfo) -> str:
    """ISO 8601 with the offset of `zone` (``Z`` for UTC), seconds unless finer is needed."""
    local = at.astimezone(zone)
    text = local.isoformat(timespec="microseconds" if local.microsecond else "seconds")
    return text[:-6] + "Z" if zone is UTC else text


def _dump_customer(customer: SimCustomer) -> dict[str, Any]:
    zone = customer.zone
    replacement = customer.replacement_card
    return {
        "id": customer.id,
        "name": customer.name,
        "email": customer.email,
        "locale": customer.locale,
        "time_zone": customer.time_zone,
        "country": customer.country,
        "card": {
            "brand": customer.card.brand,
            "exp_month": customer.card.exp_month,
            "exp_year": customer.card.exp_year,
        },
        "history": [_dump_history(h, zone) for h in customer.history],
        "invoices": [
            {
                "id": inv.id,
                "number": inv.number,
                "amount_due": inv.amount_due,
                "currency": inv.currency,
                "due_at": format_instant(inv.due_at, zone),
                "collection_method": inv.collection_method,
            }
            for inv in customer.invoices
        ],
        "declines": [_dump_window(d, zone) for d in customer.declines],
        "replacement_card": (
            None
            if replacement is None
            else {
                "at": None if replacement.at is None else format_instant(replacement.at, zone),
                "after_messages": replacement.after_messages,
                "delay_hours": replacement.delay_hours,
            }
        ),
    }


def _dump_history(charge: HistoryCharge, zone: tzinfo) -> dict[str, Any]:
    data: dict[str, Any] = {
        "at": format_instant(charge.at, zone),
        "amount": charge.amount,
        "currency": charge.currency,
        "outcome": str(charge.outcome),
    }
    if charge.decline_code is not None:
        data["decline_code"] = charge.decline_code
    return data


def _dump_window(window: DeclineWindow, zone: tzinfo) -> dict[str, Any]:
    data: dict[str, Any] = {
        "from": format_instant(window.starts_at, zone),
        "until": format_instant(window.ends_at, zone),
        "decline_code": window.decline_code,
        "advice_code": window.advice_code,
    }
    if window.network_advice_code is not None:
        data["network_advice_code"] = window.network_advice_code
    data["card"] = str(window.card)
    return data
