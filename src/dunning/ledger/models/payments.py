from __future__ import annotations

from django.db import models

from dunning.ledger.models.customers import Customer, PaymentMethod
from dunning.ledger.models.invoices import Invoice


class Payment(models.Model):
    """Money received against an invoice; several partial payments may settle one invoice."""

    # Indexed by payment_invoice_idx and payment_customer_idx, which serve the keys too.
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="payments", db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="payments", db_index=False
    )
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    received_at = models.DateTimeField()
    method = models.CharField(max_length=32, help_text="card, bank_transfer, promptpay, cash ...")
    # The payer's or processor's reference; one reference is one payment per
    # invoice, so a retried webhook or a re-sent transfer slip counts once.
    reference = models.CharField(max_length=255, blank=True)
    attempt = models.OneToOneField(
        "PaymentAttempt", null=True, blank=True, on_delete=models.PROTECT, related_name="payment"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["customer", "received_at"], name="payment_customer_idx"),
            models.Index(fields=["invoice"], name="payment_invoice_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="payment_amount_positive"
            ),
            models.UniqueConstraint(
                fields=["invoice", "reference"],
                condition=~models.Q(reference=""),
                name="payment_reference_unique_per_invoice",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} on {self.invoice_id}"


class AttemptOutcome(models.TextChoices):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PaymentAttempt(models.Model):
    """One try to collect an invoice: a charge on a saved method, and how it ended."""

    # Indexed by attempt_invoice_idx and attempt_customer_idx, which serve the keys too.
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="attempts", db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="attempts", db_index=False
    )
    # Indexed by attempt_method_idx, of the attempts with a card only: an index of
    # every attempt's card would lead SQLite to read all those recorded without
    # one to find a few customers' (the retry stage's "card unknown" reads).
    payment_method = models.ForeignKey(
        PaymentMethod,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="attempts",
        db_index=False,
    )
    attempted_at = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    decline_code = models.CharField(max_length=64, blank=True)
    advice_code = models.CharField(max_length=64, blank=True)
    network_code = models.CharField(max_length=64, blank=True)
    # Mastercard's merchant advice code (Stripe's network_advice_code): MAC 03/21
    # forbid a retry, MAC 24-30 ask for a wait (rules.md 2.2).
    network_advice_code = models.CharField(max_length=64, blank=True)
    gateway = models.CharField(max_length=32, blank=True)
    reference = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["invoice", "attempted_at"], name="attempt_invoice_idx"),
            models.Index(fields=["customer", "attempted_at"], name="attempt_customer_idx"),
            # Network retry caps count declines per card over 24 h and 30 days.
            models.Index(
                fields=["payment_method", "attempted_at"],
                name="attempt_method_idx",
                condition=models.Q(payment_method__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gte=0), name="attempt_amount_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} {self.decline_code} on {self.invoice_id}"


# A dispute's statuses at the card network's end (Stripe's words); the rest are open.
DISPUTE_CLOSED = frozenset({"won", "lost", "warning_closed", "prevented"})


class Dispute(models.Model):
    """A customer's challenge of a payment at their bank (a chargeback or an inquiry),
    as the gateway reports it: while one is open, the customer disagrees with what
    was charged, and dunning leaves them to a person (`engine.disputes`)."""

    external_id = models.CharField(max_length=255, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="disputes")
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="disputes"
    )
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=64, blank=True, help_text="fraudulent, duplicate ...")
    status = models.CharField(max_length=32, help_text="needs_response, under_review, lost ...")
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    # When the gateway said the status: an older word arriving late changes nothing.
    status_at = models.DateTimeField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gte=0), name="dispute_amount_not_negative"
            ),
        ]

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def __str__(self) -> str:
        return f"dispute {self.external_id} ({self.status})"
