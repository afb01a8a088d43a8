"""JSON in a CSV cell: metadata, context and invoice lines, held to the API's rules.

Each function takes the cell's text and returns the JSON text to store, or
raises `FieldError` saying what is wrong.  The limits are the API's
(dunning.api.schemas), so the same value is accepted whichever way it comes in.
"""

from __future__ import annotations

import json
from typing import Any, TypeGuard

from dunning.core import fields, money

MAX_JSON_KEYS = 50
MAX_JSON_DEPTH = 8
MAX_JSON_TEXT = 10_000
MAX_LINES = 500
MAX_LINE_DESCRIPTION = 500
MAX_LINE_QUANTITY = 1_000_000
# JSON numbers beyond 2^53 lose digits in JavaScript clients of the API.
MAX_JSON_INT = 2**53


def parse_json_object(text: str) -> str:
    """Metadata or context: a JSON object of at most 50 keys, as the API accepts it.

    Returns the JSON text to store.
    """
    value = _load_json(text)
    if not isinstance(value, dict):
        raise fields.FieldError('must be a JSON object, such as {"plan": "Pro"}')
    if len(value) > MAX_JSON_KEYS:
        raise fields.FieldError(f"{MAX_JSON_KEYS} keys at most")
    _check_json(value, depth=0)
    return json.dumps(value)


def parse_invoice_lines(text: str) -> str:
    """Invoice lines as the API takes them: [{"description", "quantity", "amount"}].

    Line amounts are integer minor units, exactly as in the API's JSON, so the
    same `lines` value can be pasted from an API request.  Returns the JSON text.
    """
    value = _load_json(text)
    if not isinstance(value, list):
        raise fields.FieldError(
            'must be a JSON list, such as [{"description": "Pro plan", '
            '"quantity": 1, "amount": 123450}]'
        )
    if len(value) > MAX_LINES:
        raise fields.FieldError(f"{MAX_LINES} lines at most")
    lines = []
    for number, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise fields.FieldError(f"line item {number} must be a JSON object")
        unknown = set(item) - {"description", "quantity", "amount"}
        if unknown:
            raise fields.FieldError(f"line item {number}: unknown key {sorted(unknown)[0]!r}")
        description = item.get("description")
        if not isinstance(description, str) or not description:
            raise fields.FieldError(f"line item {number}: a description is required")
        fields.check_text(description, max_length=MAX_LINE_DESCRIPTION)
        quantity = item.get("quantity", 1)
        if not _is_int(quantity) or not 1 <= quantity <= MAX_LINE_QUANTITY:
            raise fields.FieldError(
                f"line item {number}: quantity must be a whole number from 1 to {MAX_LINE_QUANTITY}"
            )
        amount = item.get("amount")
        if not _is_int(amount) or abs(amount) > money.MAX_MINOR_UNITS:
            raise fields.FieldError(
                f"line item {number}: amount must be whole minor units "
                "(12345 for 123.45), negative for a discount"
            )
        lines.append({"description": description, "quantity": quantity, "amount": amount})
    return json.dumps(lines)


def _load_json(text: str) -> Any:
    def refuse_constant(name: str) -> Any:
        # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them.
        raise fields.FieldError(f"{name} is not a JSON value")

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except json.JSONDecodeError as error:
        raise fields.FieldError(
            f"not valid JSON: {error.msg} (character {error.pos + 1})"
        ) from None
    except RecursionError:
        raise fields.FieldError(f"nested too deeply ({MAX_JSON_DEPTH} levels at most)") from None


def _check_json(value: Any, *, depth: int) -> None:
    """The API's rules for free JSON: storable text, bounded depth, integers JavaScript can hold."""
    if depth > MAX_JSON_DEPTH:
        raise fields.FieldError(f"nested too deeply ({MAX_JSON_DEPTH} levels at most)")
    if isinstance(value, str):
        fields.check_text(value, max_length=MAX_JSON_TEXT)
    elif isinstance(value, dict):
        for key, item in value.items():
            fields.check_text(key, max_length=MAX_JSON_TEXT)
            _check_json(item, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth=depth + 1)
    elif _is_int(value) and abs(value) > MAX_JSON_INT:
        raise fields.FieldError("integers must fit in 53 bits")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
