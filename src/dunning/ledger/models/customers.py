from __future__ import annotations

from datetime import datetime

from django.db import models


class Customer(models.Model):
    """Someone who owes money: a person or a business, known by the billing system's id."""

    external_id = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255)
    email = models.CharField(max_length=254, blank=True)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164, e.g. +66812345678")
    locale = models.CharField(max_length=35, default="en", help_text="BCP 47 tag, e.g. th-TH")
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA name")
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166 alpha-2")
    is_business = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"


class PaymentMethodType(models.TextChoices):
    CARD = "card"
    BANK_ACCOUNT = "bank_account"
    PROMPTPAY = "promptpay"
    OTHER = "other"


class PaymentMethod(models.Model):
    """A saved way to charge a customer.  Only what is safe to show: never a card number."""

    external_id = models.CharField(max_length=255, unique=True)
    # Indexed by payment_method_customer_idx, which serves the key too.
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="payment_methods", db_index=False
    )
    type = models.CharField(max_length=20, choices=PaymentMethodType.choices)
    brand = models.CharField(max_length=32, blank=True)
    last4 = models.CharField(max_length=4, blank=True)
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="issuing country")
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    # When what a charge is made with (brand, last four, expiry) last changed after
    # the card was saved: a card updater or the customer.  Null: never.  Other
    # updates (the issuing country, the default flag) leave it, so they neither
    # count as an updated card nor lift a decline that asked for new details.
    details_changed_at = models.DateTimeField(null=True, blank=True)
    # Since when the card is off the customer's file at the gateway: detached or
    # deleted there, or only ever seen on a declined charge, never saved.  It is
    # kept for its history (attempts, network caps) but never charged or offered;
    # null while it is on file.  Set and cleared by the services only.
    detached_at = models.DateTimeField(null=True, blank=True)
    # When the card number behind this method last changed (its brand or last four: a
    # lost card reissued, the card updater bringing the new number).  The networks
    # count reattempts per card number (rules.md 2.1, 2.2), so attempts before it were
    # on another card.  Null: the number it was saved with (or changed before this
    # was kept).  An expiry renewed on the same number leaves it.
    number_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["customer", "-is_default"], name="payment_method_customer_idx")
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(exp_month__isnull=True) | models.Q(exp_month__range=(1, 12)),
                name="payment_method_exp_month_valid",
            ),
        ]

    @property
    def details_since(self) -> datetime:
        """Since when the card's charge details are what they are now."""
        return self.details_changed_at or self.created_at

    def __str__(self) -> str:
        if self.type == PaymentMethodType.CARD:
            return f"{self.brand or 'card'} •••• {self.last4}"
        return f"{self.type} {self.external_id}"
