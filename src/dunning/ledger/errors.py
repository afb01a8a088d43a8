from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID = "invalid"  # the request contradicts the ledger (wrong currency, overpayment)
    NOT_FOUND = "not_found"  # it names something that does not exist
    CONFLICT = "conflict"  # it collides with what is already recorded


class LedgerError(Exception):
    """A write the ledger refuses.  `field` names the input at fault, when there is one."""

    def __init__(
        self, message: str, *, field: str | None = None, code: ErrorCode = ErrorCode.INVALID
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code
