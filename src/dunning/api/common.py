from __future__ import annotations

from typing import Annotated, Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Path
from ninja.pagination import CursorPagination

from dunning.ledger.errors import ErrorCode, LedgerError

SOURCE = "api"
MAX_ID = 2**63 - 1

# Ids in paths are bounded so that no number a client sends can overflow a
# 64-bit column and surface as a database error.
ObjectId = Annotated[int, Path(ge=1, le=MAX_ID)]


class NewestFirst(CursorPagination):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(ordering=("-id",), **kwargs)


class OldestFirst(CursorPagination):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(ordering=("id",), **kwargs)


def now(request: HttpRequest) -> Any:
    """The moment a request is recorded at: read once, at the edge."""
    return timezone.now()


def not_found(noun: str, object_id: int) -> LedgerError:
    return LedgerError(f"no {noun} with id {object_id}", code=ErrorCode.NOT_FOUND)
