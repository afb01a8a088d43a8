from __future__ import annotations

from typing import Any

from django.db import models

from dunning.ledger.models.customers import Customer
from dunning.ledger.models.invoices import Invoice


class AppendOnlyError(Exception):
    """Events are evidence: once written they are never changed or deleted."""


class Event(models.Model):
    """One fact or decision, in the order it was recorded.  Append-only."""

    type = models.CharField(max_length=64, help_text="e.g. invoice.created, payment.recorded")
    occurred_at = models.DateTimeField(help_text="when it happened in the world")
    recorded_at = models.DateTimeField(help_text="when dunning wrote it down")
    source = models.CharField(max_length=32, help_text="api, import, admin, demo, stripe ...")
    # Indexed by event_customer_idx and event_invoice_idx, which serve the keys too:
    # every index is one more write per event, and events are the busiest table.
    customer = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
        db_index=False,
    )
    invoice = models.ForeignKey(
        Invoice,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
        db_index=False,
    )
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["type", "id"], name="event_type_idx"),
            models.Index(fields=["customer", "id"], name="event_customer_idx"),
            models.Index(fields=["invoice", "id"], name="event_invoice_idx"),
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError("events cannot be deleted")

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"
