"""One error shape for the whole API.

    {"error": {"code": "validation_error",
               "message": "2 fields are invalid.",
               "fields": [{"field": "lines[2].amount", "message": "must be an integer"}]}}

`fields` is present for validation errors and for ledger errors that name a
field.  Messages never repeat the submitted value back, so a card number
pasted into the wrong field does not travel further.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from dunning.ledger.errors import ErrorCode, LedgerError

logger = logging.getLogger(__name__)

STATUS_BY_CODE = {ErrorCode.INVALID: 422, ErrorCode.NOT_FOUND: 404, ErrorCode.CONFLICT: 409}
CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "server_error",
}


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    fields: Sequence[dict[str, str]] = (),
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    error: dict[str, Any] = {
        "code": code or CODE_BY_STATUS.get(status, "error"),
        "message": message,
    }
    if fields:
        error["fields"] = list(fields)
    response = JsonResponse({"error": error}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def too_large() -> JsonResponse:
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE (Django raises when it is first read)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error_response(413, f"The request body is larger than {limit} bytes.")


def field_path(loc: Iterable[Any]) -> str:
    """('lines', 2, 'amount') -> 'lines[2].amount'."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def _message(error: dict[str, Any]) -> str:
    kind, message = error.get("type", ""), str(error.get("msg", "invalid"))
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "not a known field"
    if kind == "json_invalid":
        return "not valid JSON"
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message[:1].lower() + message[1:]


def validation_fields(errors: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    fields = []
    for error in errors:
        if "loc" not in error:
            # ninja's own checks (the pagination cursor) raise {"name": "message"}.
            fields += [{"field": str(k), "message": str(v).lower()} for k, v in error.items()]
            continue
        loc = list(error.get("loc", ()))
        # ninja prefixes the source ("body", "query", "path") and, for bodies,
        # the view's parameter name; clients know neither.
        if loc and loc[0] == "body":
            loc = loc[2:]
        elif loc and loc[0] in ("query", "path", "header", "cookie", "form"):
            loc = loc[1:]
        fields.append({"field": field_path(loc), "message": _message(error)})
    return fields


def install(api: NinjaAPI) -> None:
    """Route every error the API can raise through `error_response`."""

    def on_validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        fields = validation_fields(exc.errors)
        count = len({f["field"] for f in fields})
        noun = "field is" if count == 1 else "fields are"
        return error_response(422, f"{count} {noun} invalid.", fields=fields)

    def on_ledger(request: HttpRequest, exc: LedgerError) -> HttpResponse:
        status = STATUS_BY_CODE[exc.code]
        fields = [{"field": exc.field, "message": exc.message}] if exc.field else []
        message = f"{exc.field}: {exc.message}" if exc.field else exc.message
        return error_response(
            status, message, code=None if status != 422 else "invalid", fields=fields
        )

    def on_auth(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return error_response(
            401,
            "Missing or invalid API key: send 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": 'Bearer realm="dunning"'},
        )

    def on_http(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return error_response(exc.status_code, str(exc.message))

    def on_too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return too_large()

    def on_any(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "Something went wrong on our side; nothing was changed.")

    handlers: list[tuple[type[Exception], Callable[..., HttpResponse]]] = [
        (ValidationError, on_validation),
        (LedgerError, on_ledger),
        (AuthenticationError, on_auth),
        (HttpError, on_http),
        (RequestDataTooBig, on_too_large),
        (Exception, on_any),
    ]
    for exc_class, handler in handlers:
        api.add_exception_handler(exc_class, handler)


class JsonErrorsMiddleware:
    """Gives the API's 404 and 405 (raised before any view runs) the API's error shape."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code in (404, 405)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            if response.status_code == 405:
                allow = response.get("Allow", "")
                fixed = error_response(405, f"Method not allowed here; allowed: {allow}.")
                fixed["Allow"] = allow
                return fixed
            return error_response(404, "No such endpoint.")
        return response
