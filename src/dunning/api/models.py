from __future__ import annotations

from django.db import models


class ApiKey(models.Model):
    """A bearer key for the REST API.  Only its SHA-256 is kept; the key is shown once."""

    name = models.CharField(max_length=100)
    # The first characters of the key, kept in clear so an operator can tell keys apart.
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class IdempotencyRecord(models.Model):
    """The first response to a POST carrying an Idempotency-Key, replayed for repeats."""

    # SHA-256 of the bearer key, so one client's keys never collide with another's
    # and the record can be found before the key is looked up.
    scope = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    content_type = models.CharField(max_length=100)
    body = models.BinaryField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_unique"),
        ]
        indexes = [
            # Used by the clean-up of old records (they are kept for 24 hours).
            models.Index(fields=["created_at"], name="idempotency_created_idx"),
        ]
