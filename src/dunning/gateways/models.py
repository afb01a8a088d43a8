"""What the gateway webhooks have received, and how far each provider object has been applied."""

from __future__ import annotations

from django.db import models


class WebhookOutcome(models.TextChoices):
    APPLIED = "applied"  # its facts are in the ledger
    IGNORED = "ignored"  # a type dunning does not use, or nothing to do
    STALE = "stale"  # older than what was already applied to its object
    REJECTED = "rejected"  # the ledger refused the fact (see notes); nothing changed


class WebhookEvent(models.Model):
    """One event a provider delivered, stored once however often it is delivered.

    The row is inserted first, in the transaction that applies the event: a
    second delivery of the same id (a retry, or a concurrent duplicate) hits the
    unique constraint and changes nothing.
    """

    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=128)
    object_id = models.CharField(max_length=255, blank=True, help_text="data.object.id")
    created = models.DateTimeField(help_text="when the provider created the event")
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=WebhookOutcome.choices, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "event_id"], name="webhook_event_unique_per_provider"
            ),
        ]
        indexes = [models.Index(fields=["object_id"], name="webhook_event_object_idx")]

    def __str__(self) -> str:
        return f"{self.provider} {self.type} {self.event_id}"


class GatewayObject(models.Model):
    """A provider object (invoice, customer, payment method, payment intent ...) as last applied.

    `last_event_created` is the provider's creation time of the newest event
    whose snapshot of this object reached the ledger: an older snapshot that
    arrives later is not applied (see `dunning.gateways.webhooks`).  For a
    payment intent, `invoice` remembers which invoice it pays, since current
    Stripe charges and payment intents no longer name their invoice.  For a
    customer, `default_payment_method` is the card its newest event named the
    default, kept so that a card whose own event arrives later still becomes it.
    """

    provider = models.CharField(max_length=32)
    object_id = models.CharField(max_length=255)
    type = models.CharField(max_length=64)
    last_event_id = models.CharField(max_length=255, blank=True)
    last_event_created = models.DateTimeField(null=True, blank=True)
    invoice = models.CharField(max_length=255, blank=True, help_text="the invoice it pays")
    default_payment_method = models.CharField(
        max_length=255, blank=True, help_text="a customer's default, as the provider names it"
    )
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "object_id"], name="gateway_object_unique_per_provider"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.type} {self.object_id}"
