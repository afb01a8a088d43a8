"""Idempotency-Key for every POST under /api/.

The record of a key is written in the same transaction as the work the request
does.  A repeat that arrives while the first request is still running waits on
the unique index (PostgreSQL) or the write lock (SQLite), then finds the
finished record and replays it, so the work is done exactly once.  Only
successes are remembered: an error response keeps no record (and a 5xx rolls
everything back), so the client may correct the request and retry with the
same key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta

from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from dunning.api.errors import error_response, too_large
from dunning.api.models import IdempotencyRecord

HEADER = "Idempotency-Key"
RETENTION = timedelta(hours=24)


def _request_hash(request: HttpRequest) -> str:
    body = request.body
    # The same JSON with other spacing or key order is the same request.  A body
    # that is not JSON (or is nested too deeply to normalise) is hashed as sent.
    with contextlib.suppress(ValueError, UnicodeDecodeError, RecursionError):
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def purge_expired(*, now: datetime) -> int:
    """Delete records older than the retention period; returns how many."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=now - RETENTION).delete()
    return deleted


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get(HEADER)
        authorization = request.headers.get("Authorization", "")
        if request.method != "POST" or key is None or not request.path.startswith("/api/"):
            return self.get_response(request)
        if not authorization:
            return self.get_response(request)  # answered 401 by the API, nothing to record
        if not key or len(key) > 255 or not key.isascii() or not key.isprintable():
            return error_response(
                400,
                f"{HEADER} must be 1 to 255 printable ASCII characters.",
                fields=[{"field": HEADER, "message": "1 to 255 printable ASCII characters"}],
            )
        scope = hashlib.sha256(authorization.encode()).hexdigest()
        try:
            request_hash = _request_hash(request)
        except RequestDataTooBig:
            return too_large()
        now = timezone.now()
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        scope=scope,
                        key=key,
                        method=request.method,
                        path=request.path[:255],
                        request_hash=request_hash,
                        status_code=0,
                        content_type="",
                        body=b"",
                        created_at=now,
                    )
            except IntegrityError:
                return self._replay(
                    scope=scope, key=key, request_hash=request_hash, now=now, request=request
                )
            response = self.get_response(request)
            if response.status_code >= 400:
                # Only work that was done is remembered.  An error changed
                # nothing, so the client may correct the request and send it
                # again under the same key (as Stripe does for invalid requests).
                record.delete()
                if response.status_code >= 500:
                    transaction.set_rollback(True)
                return response
            record.status_code = response.status_code
            record.content_type = response.get("Content-Type", "application/json")
            record.body = response.content
            record.save(update_fields=["status_code", "content_type", "body"])
        return response

    def _replay(
        self, *, scope: str, key: str, request_hash: str, now: datetime, request: HttpRequest
    ) -> HttpResponse:
        record = IdempotencyRecord.objects.get(scope=scope, key=key)
        if record.created_at < now - RETENTION:
            record.delete()
            return self(request)
        if record.request_hash != request_hash:
            return error_response(
                409,
                f"This {HEADER} was used with a different request; "
                "use a new key for a new request.",
                code="idempotency_conflict",
            )
        response = HttpResponse(
            bytes(record.body), status=record.status_code, content_type=record.content_type
        )
        response["Idempotent-Replayed"] = "true"
        return response
