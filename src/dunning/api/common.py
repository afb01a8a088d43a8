from __future__ import annotations

import re
from typing import Annotated, Any

import pydantic
from django.http import HttpRequest
from django.utils import timezone
from ninja import Path
from ninja.errors import ValidationError
from ninja.pagination import CursorPagination

from dunning.ledger.errors import ErrorCode, LedgerError

SOURCE = "api"
MAX_ID = 2**63 - 1

# Ids in paths are bounded so that no number a client sends can overflow a
# 64-bit column and surface as a database error.
ObjectId = Annotated[int, Path(ge=1, le=MAX_ID)]


_POSITION = re.compile(r"^[0-9]{1,19}$")


class IdCursor(CursorPagination.Cursor):
    """ninja's cursor, refusing a tampered one with a 422 rather than a 500.

    ninja validates the cursor's fields with pydantic (whose error is not the
    API's) and passes the position to an `id__lte` filter unchecked, so a cursor
    such as base64("p=abc") or base64("o=-1") would raise inside the view.
    """

    @classmethod
    def from_encoded_param(cls, encoded_param: str | None, context: Any = None) -> Any:
        try:
            cursor = super().from_encoded_param(encoded_param, context)
        except pydantic.ValidationError:
            raise ValidationError([{"cursor": "Invalid Cursor"}]) from None
        if cursor.p is not None and not (_POSITION.match(cursor.p) and int(cursor.p) <= MAX_ID):
            raise ValidationError([{"cursor": "Invalid Cursor"}])
        return cursor


class NewestFirst(CursorPagination):
    Cursor = IdCursor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(ordering=("-id",), **kwargs)


class OldestFirst(CursorPagination):
    Cursor = IdCursor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(ordering=("id",), **kwargs)


def now(request: HttpRequest) -> Any:
    """The moment a request is recorded at: read once, at the edge."""
    return timezone.now()


def not_found(noun: str, object_id: int) -> LedgerError:
    return LedgerError(f"no {noun} with id {object_id}", code=ErrorCode.NOT_FOUND)
