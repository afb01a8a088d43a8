"""A policy as JSON: how the database stores it and how the admin and the API edit it.

`to_dict` and `from_dict` are inverses: ``from_dict(to_dict(p)) == p``.  Bad
input raises `PolicyFormatError` naming every field at fault with a path such
as ``steps[2].templates.email``; `check` then lists what makes a well-formed
policy unusable (`dunning.core.policy.validate`, plus templates that do not
exist), named the same way.

The shape::

    {"key": "default-send-invoice",          # a-z, 0-9, ".", "_", "-"; at most 64
     "version": 1,                           # optional on input; the store assigns it
     "name": "Invoices paid by the customer (default)",
     "applies_to": {"collection_method": "send_invoice",  # or charge_automatically, or null
                    "countries": ["TH"], "currencies": ["THB"],
                    "min_amount": {"THB": 50000}, "max_amount": {},
                    "is_business": null},
     "steps": [{"key": "courtesy", "offset": "-P3D", "anchor": "due", "tone": "friendly",
                "channels": ["email"], "templates": {"email": "send_invoice.courtesy"},
                "actions": [], "deadline": null,
                "variants": [{"key": "a", "weight": 1}]}],
     "retry": {"max_attempts": 0, "within": "PT0S"}}

Durations (``offset``, ``deadline``, ``retry.within``) are ISO 8601 durations in
days, hours, minutes and whole seconds, with an optional leading minus:
``P1D``, ``PT36H``, ``P1DT12H``, ``-P3D`` (three days before the anchor).
``P-3D`` is read too.  Years and months are refused: they have no fixed
length.  `to_dict` writes the shortest form (``-P3D``, ``P1DT12H``, ``PT0S``).
Only ``key``, ``name``, ``steps`` and, in a step, ``key``, ``offset`` and
``tone`` are required; the rest default as in `dunning.core.policy`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

from dunning.core.contacts import Channel
from dunning.core.money import MAX_MINOR_UNITS as MAX_AMOUNT
from dunning.core.policy import (
    MAX_RETRY_ATTEMPTS,
    Action,
    Anchor,
    Criteria,
    Policy,
    RetryBudget,
    Step,
    Tone,
    Variant,
    validate,
)
from dunning.core.rendering import DEFAULT_TEMPLATE_KEYS, UnknownTemplate, default_template

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
COLLECTION_METHODS = ("send_invoice", "charge_automatically")
# Every step template must exist in both languages the product ships.
TEMPLATE_LOCALES = ("en", "th")
# Ten years either way: longer than any dunning campaign, and far from the
# ~2.7 million years at which `timedelta` overflows.
MAX_DURATION = timedelta(days=3650)
MAX_STEPS = 50
_NAME_LENGTH = 200  # PolicyVersion.name
_KEY_TEXT = re.compile(r"^[\x20-\x7e]{0,100}$")  # template keys are short printable ASCII
_STEP_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<days>-?\d{1,7})D)?"
    r"(?:T(?=-?\d)(?:(?P<hours>-?\d{1,9})H)?(?:(?P<minutes>-?\d{1,9})M)?(?:(?P<seconds>-?\d{1,11})S)?)?$"
)

Problem = tuple[str, str]  # (field path, message)
E = TypeVar("E", bound=StrEnum)


class PolicyFormatError(ValueError):
    """The JSON is not a policy; `problems` names each field at fault."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(f"{path or 'policy'}: {message}" for path, message in problems))


# ---------------------------------------------------------------- durations


def format_duration(value: timedelta) -> str:
    """`timedelta(days=-3)` -> ``"-P3D"``; whole seconds only."""
    if value.microseconds:
        raise ValueError("policy durations are whole seconds")
    sign = "-" if value < timedelta(0) else ""
    seconds = int(abs(value).total_seconds())
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    date_part = f"{days}D" if days else ""
    time_part = "".join(
        f"{amount}{unit}"
        for amount, unit in ((hours, "H"), (minutes, "M"), (seconds, "S"))
        if amount
    )
    if not date_part and not time_part:
        return "PT0S"
    return f"{sign}P{date_part}" + (f"T{time_part}" if time_part else "")


def parse_duration(text: str) -> timedelta:
    """``"P1DT12H"`` -> 1.5 days; raises ValueError with the format in its message."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or text in ("P", "-P"):
        raise ValueError(
            'must be an ISO 8601 duration in days, hours, minutes and seconds, e.g. "P1D", '
            '"PT12H" or "-P3D" (years and months have no fixed length)'
        )
    parts = {name: int(match.group(name) or 0) for name in ("days", "hours", "minutes", "seconds")}
    if any(amount < 0 for amount in parts.values()) and (
        match.group("sign") or any(amount > 0 for amount in parts.values())
    ):
        raise ValueError('put one minus sign in front ("-P1DT12H"), not on each part')
    value = timedelta(**parts)
    if match.group("sign"):
        value = -value
    if abs(value) > MAX_DURATION:
        raise ValueError(f"must be within {MAX_DURATION.days} days")
    return value


# ---------------------------------------------------------------- to JSON


def to_dict(policy: Policy) -> dict[str, Any]:
    """The policy as JSON-ready data, every field written out."""
    criteria = policy.applies_to
    return {
        "key": policy.id,
        "version": policy.version,
        "name": policy.name,
        "applies_to": {
            "collection_method": criteria.collection_method,
            "countries": sorted(criteria.countries),
            "currencies": sorted(criteria.currencies),
            "min_amount": dict(criteria.min_amount),
            "max_amount": dict(criteria.max_amount),
            "is_business": criteria.is_business,
        },
        "steps": [_step_to_dict(step) for step in policy.steps],
        "retry": {
            "max_attempts": policy.retry.max_attempts,
            "within": format_duration(policy.retry.within),
        },
    }


def _step_to_dict(step: Step) -> dict[str, Any]:
    return {
        "key": step.key,
        "offset": format_duration(step.offset),
        "anchor": step.anchor.value,
        "tone": step.tone.value,
        "channels": [channel.value for channel in step.channels],
        "templates": {channel.value: key for channel, key in step.templates.items()},
        "actions": [action.value for action in step.actions],
        "deadline": None if step.deadline is None else format_duration(step.deadline),
        "variants": [{"key": v.key, "weight": v.weight} for v in step.variants],
    }


# ---------------------------------------------------------------- from JSON


_MISSING: Any = object()


@dataclass
class _Reader:
    """Reads one JSON object, collecting a problem for each bad field instead of stopping."""

    data: Mapping[str, Any]
    path: str
    problems: list[Problem]
    allowed: frozenset[str]
    seen: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, data: Any, path: str, problems: list[Problem], allowed: set[str]) -> _Reader | None:
        if not isinstance(data, Mapping):
            problems.append((path, "must be an object"))
            return None
        reader = cls(data, path, problems, frozenset(allowed))
        for name in data:
            if name not in reader.allowed:
                problems.append((reader.at(str(name)), "not a known field"))
        return reader

    def at(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, parse: Callable[[Any], Any], default: Any = _MISSING) -> Any:
        """The parsed field, or `default` when absent; None after recording a problem."""
        value = self.data.get(name, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                self.problems.append((self.at(name), "required"))
                return None
            return default
        try:
            return parse(value)
        except ValueError as error:
            self.problems.append((self.at(name), str(error)))
            return None


def _text(max_length: int, *, pattern: re.Pattern[str] | None = None) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if not value.strip():
            raise ValueError("must not be empty")
        _check_storable(value)
        if len(value) > max_length:
            raise ValueError(f"at most {max_length} characters")
        if pattern is not None and not pattern.match(value):
            raise ValueError(
                "only letters, digits, '.', '_' and '-', starting with a letter or digit"
            )
        return value

    return parse


def _check_storable(value: str) -> None:
    # What PostgreSQL's jsonb cannot hold: NUL, and lone surrogates from "\\ud800" escapes.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("must be an integer")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _choice(kind: type[E]) -> Callable[[Any], E]:
    def parse(value: Any) -> E:
        try:
            return kind(value)
        except ValueError:
            names = ", ".join(member.value for member in kind)
            raise ValueError(f"must be one of {names}") from None

    return parse


def _duration(value: Any) -> timedelta:
    if not isinstance(value, str):
        raise ValueError('must be a string such as "P1D"')
    return parse_duration(value)


def _optional_bool(value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ValueError("must be true, false or null")
    return value  # type: ignore[no-any-return]


def _collection_method(value: Any) -> str | None:
    if value is not None and value not in COLLECTION_METHODS:
        raise ValueError(f"must be one of {', '.join(COLLECTION_METHODS)}, or null")
    return value  # type: ignore[no-any-return]


def _list(data: Any, path: str, problems: list[Problem], *, limit: int = 50) -> list[Any]:
    if not isinstance(data, list):
        problems.append((path, "must be a list"))
        return []
    if len(data) > limit:
        problems.append((path, f"at most {limit} entries"))
        return []
    return data


def _codes(
    data: Any, path: str, problems: list[Problem], *, length: int, what: str
) -> frozenset[str]:
    codes = set()
    for index, value in enumerate(_list(data, path, problems, limit=300)):
        if isinstance(value, str) and re.fullmatch(f"[A-Z]{{{length}}}", value):
            codes.add(value)
        else:
            problems.append((f"{path}[{index}]", f"must be an upper-case {what}"))
    return frozenset(codes)


def _amounts(data: Any, path: str, problems: list[Problem]) -> dict[str, int]:
    if not isinstance(data, Mapping):
        problems.append((path, "must be an object of currency: minor units"))
        return {}
    amounts = {}
    for currency, amount in data.items():
        if not (isinstance(currency, str) and re.fullmatch("[A-Z]{3}", currency)):
            problems.append((f"{path}.{currency}", "must be an ISO 4217 currency code"))
        elif (
            not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= MAX_AMOUNT
        ):
            problems.append((f"{path}.{currency}", "must be a non-negative integer (minor units)"))
        else:
            amounts[currency] = amount
    return amounts


def from_dict(data: Any) -> Policy:
    """The policy `data` describes, or PolicyFormatError naming every field at fault.

    Only the form is checked here; `check` says whether the policy is sound.
    """
    problems: list[Problem] = []
    reader = _Reader.of(
        data, "", problems, {"key", "version", "name", "applies_to", "steps", "retry"}
    )
    if reader is None:
        raise PolicyFormatError(problems)
    key = reader.get("key", _text(64, pattern=KEY_PATTERN))
    version = reader.get("version", _integer(1, 2**31 - 1), default=1)
    name = reader.get("name", _text(_NAME_LENGTH))
    criteria = _criteria(data.get("applies_to", {}), problems)
    if "steps" in data:
        raw_steps = _list(data["steps"], "steps", problems, limit=MAX_STEPS)
    else:
        raw_steps = []
        problems.append(("steps", "required"))
    steps = [_step(step, f"steps[{index}]", problems) for index, step in enumerate(raw_steps)]
    retry = _retry(data.get("retry", {}), problems)
    if problems:
        raise PolicyFormatError(problems)
    return Policy(
        id=key,
        version=version,
        name=name,
        applies_to=criteria,
        steps=tuple(s for s in steps if s is not None),
        retry=retry,
    )


def _criteria(data: Any, problems: list[Problem]) -> Criteria:
    allowed = {"collection_method", "countries", "currencies", "min_amount", "max_amount"}
    reader = _Reader.of(data, "applies_to", problems, allowed | {"is_business"})
    if reader is None:
        return Criteria()
    return Criteria(
        collection_method=reader.get("collection_method", _collection_method, default=None),
        countries=_codes(
            data.get("countries", []),
            "applies_to.countries",
            problems,
            length=2,
            what="ISO 3166 alpha-2 country code",
        ),
        currencies=_codes(
            data.get("currencies", []),
            "applies_to.currencies",
            problems,
            length=3,
            what="ISO 4217 currency code",
        ),
        min_amount=_amounts(data.get("min_amount", {}), "applies_to.min_amount", problems),
        max_amount=_amounts(data.get("max_amount", {}), "applies_to.max_amount", problems),
        is_business=reader.get("is_business", _optional_bool, default=None),
    )


_STEP_FIELDS = {
    "key",
    "offset",
    "anchor",
    "tone",
    "channels",
    "templates",
    "actions",
    "deadline",
    "variants",
}


def _step(data: Any, path: str, problems: list[Problem]) -> Step | None:
    before = len(problems)
    reader = _Reader.of(data, path, problems, _STEP_FIELDS)
    if reader is None:
        return None
    key = reader.get("key", _text(64, pattern=_STEP_KEY))
    offset = reader.get("offset", _duration)
    anchor = reader.get("anchor", _choice(Anchor), default=Anchor.DUE)
    tone = reader.get("tone", _choice(Tone))
    channels = _enums(data.get("channels", []), f"{path}.channels", problems, Channel)
    actions = _enums(data.get("actions", []), f"{path}.actions", problems, Action)
    deadline = reader.get("deadline", lambda v: None if v is None else _duration(v), default=None)
    templates = _templates(data.get("templates", {}), f"{path}.templates", problems)
    variants = [
        _variant(variant, f"{path}.variants[{index}]", problems)
        for index, variant in enumerate(
            _list(data.get("variants", []), f"{path}.variants", problems)
        )
    ]
    if len(problems) > before:
        return None
    return Step(
        key=key,
        offset=offset,
        tone=tone,
        channels=tuple(channels),
        templates=templates,
        anchor=anchor,
        actions=tuple(actions),
        deadline=deadline,
        variants=tuple(v for v in variants if v is not None),
    )


def _enums(data: Any, path: str, problems: list[Problem], kind: type[E]) -> list[E]:
    values = []
    parse = _choice(kind)
    for index, value in enumerate(_list(data, path, problems)):
        try:
            values.append(parse(value))
        except ValueError as error:
            problems.append((f"{path}[{index}]", str(error)))
    return values


def _templates(data: Any, path: str, problems: list[Problem]) -> dict[Channel, str]:
    if not isinstance(data, Mapping):
        problems.append((path, "must be an object of channel: template key"))
        return {}
    templates = {}
    parse_channel = _choice(Channel)
    for channel, key in data.items():
        where = f"{path}.{channel}"
        try:
            parsed = parse_channel(channel)
        except ValueError as error:
            problems.append((where, f"not a channel: the key {error}"))
            continue
        if not isinstance(key, str) or not _KEY_TEXT.match(key):
            problems.append((where, "must be a template key (a string of at most 100 characters)"))
            continue
        templates[parsed] = key
    return templates


def _variant(data: Any, path: str, problems: list[Problem]) -> Variant | None:
    reader = _Reader.of(data, path, problems, {"key", "weight"})
    if reader is None:
        return None
    key = reader.get("key", _text(32, pattern=_STEP_KEY))
    weight = reader.get("weight", _integer(0, 1_000_000), default=1)
    if key is None or weight is None:
        return None
    return Variant(key=key, weight=weight)


def _retry(data: Any, problems: list[Problem]) -> RetryBudget:
    """The retry budget; a missing field takes `RetryBudget`'s default (8 within P14D)."""
    default = RetryBudget()
    reader = _Reader.of(data, "retry", problems, {"max_attempts", "within"})
    if reader is None:
        return default
    max_attempts = reader.get(
        "max_attempts", _integer(0, MAX_RETRY_ATTEMPTS), default=default.max_attempts
    )
    within = reader.get("within", _duration, default=default.within)
    if max_attempts is None or within is None:
        return default
    found = RetryBudget.problems_with(max_attempts=max_attempts, within=within)
    problems.extend((f"retry.{name}", message) for name, message in found)
    return default if found else RetryBudget(max_attempts=max_attempts, within=within)


# ---------------------------------------------------------------- soundness


def check(policy: Policy) -> list[Problem]:
    """Every reason `policy` cannot be used, as (field path, message); empty when it can.

    `validate` names a step by its key; here each problem is traced to the
    step's index, so a duplicated key is still named at the right place.
    """
    problems: list[Problem] = []
    if not policy.steps:
        problems.append(("steps", "a policy needs at least one step"))
    # validate() reports in step order, and what it says about step i depends on
    # steps[:i + 1] alone; so step i's problems are what the prefix of i + 1
    # steps adds to the prefix of i steps.
    reported = 0
    for index in range(len(policy.steps)):
        prefix = Policy(
            id=policy.id,
            version=policy.version,
            name=policy.name,
            applies_to=policy.applies_to,
            steps=policy.steps[: index + 1],
        )
        found = validate(prefix)
        for problem in found[reported:]:
            problems.append((f"steps[{index}].{problem.field}", problem.message))
        reported = len(found)
        problems.extend(_template_problems(policy.steps[index], f"steps[{index}].templates"))
    return problems


def _template_problems(step: Step, path: str) -> list[Problem]:
    problems = []
    for channel, key in step.templates.items():
        if not key.strip():
            continue  # validate() already says the step has no template for the channel
        for locale in TEMPLATE_LOCALES:
            try:
                default_template(key, locale)
            except UnknownTemplate:
                known = ", ".join(DEFAULT_TEMPLATE_KEYS)
                problems.append(
                    (f"{path}.{channel.value}", f"no such template; the keys are {known}")
                )
                break
    return problems
