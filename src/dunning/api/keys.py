"""API keys: create, list, revoke, authenticate."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q

from dunning.api.models import ApiKey

KEY_PREFIX = "dun_"
# last_used_at is a hint for operators, not an audit trail: writing it on
# every request would double the writes of a busy integration.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def hash_key(key: str) -> str:
    # Keys are 256 random bits, so a plain SHA-256 cannot be brute-forced and
    # keeps authentication to one indexed lookup (a slow password hash would not
    # add safety here and would cost milliseconds per request).
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    record: ApiKey
    key: str  # shown once, never stored


def create_key(*, name: str, now: datetime) -> NewKey:
    if not name.strip():
        raise ValueError("an API key needs a name")
    if len(name.strip()) > 100:  # ApiKey.name; PostgreSQL would refuse it with a DataError
        raise ValueError("an API key name is at most 100 characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey.objects.create(
        name=name.strip(), prefix=key[:10], key_hash=hash_key(key), created_at=now
    )
    return NewKey(record=record, key=key)


def revoke_key(*, key_id: int, now: datetime) -> ApiKey:
    record = ApiKey.objects.get(pk=key_id)
    _auth_cache.pop(record.key_hash, None)
    if record.revoked_at is None:
        record.revoked_at = now
        record.save(update_fields=["revoked_at"])
    return record


# Each worker remembers a key it has checked for a moment, so a busy
# integration's requests skip the lookup (the ingest benchmark measured it as a
# sixth of a request's cost).  A revoked key stops working at once in the
# process that revoked it and within this delay everywhere else.
AUTH_CACHE_TTL = timedelta(seconds=2)
_AUTH_CACHE_SIZE = 1024
_auth_cache: dict[str, tuple[ApiKey, datetime]] = {}


def authenticate(key: str, *, now: datetime) -> ApiKey | None:
    """The live key matching `key`, or None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    digest = hash_key(key)
    cached = _auth_cache.get(digest)
    if cached is not None and timedelta(0) <= now - cached[1] < AUTH_CACHE_TTL:
        return cached[0]
    record = ApiKey.objects.filter(key_hash=digest, revoked_at__isnull=True).first()
    if record is None:
        _auth_cache.pop(digest, None)
        return None
    if record.last_used_at is None or now - record.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=record.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
    if len(_auth_cache) >= _AUTH_CACHE_SIZE:
        _auth_cache.clear()
    _auth_cache[digest] = (record, now)
    return record
