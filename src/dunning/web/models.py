"""What customers tell us from the public pages."""

from __future__ import annotations

from django.db import models

from dunning.core.contacts import Channel
from dunning.ledger.models import Customer


class OptOutSource(models.TextChoices):
    ONE_CLICK = "one_click"  # an RFC 8058 POST from the mail client (List-Unsubscribe=One-Click)
    PAGE = "page"  # the button on the unsubscribe page


class ContactOptOut(models.Model):
    """The customer asked not to be contacted on this channel any more."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="opt_outs")
    channel = models.CharField(max_length=16, choices=[(c.value, c.value) for c in Channel])
    created_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=OptOutSource.choices)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel"], name="contact_opt_out_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} opted out of {self.channel}"
