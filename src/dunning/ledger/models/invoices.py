from __future__ import annotations

from django.db import models

from dunning.ledger.models.customers import Customer


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


class CollectionMethod(models.TextChoices):
    CHARGE_AUTOMATICALLY = "charge_automatically"
    SEND_INVOICE = "send_invoice"


class Invoice(models.Model):
    """A bill.  Amounts are integer minor units of `currency`; remaining = due - paid."""

    external_id = models.CharField(max_length=255, unique=True)
    number = models.CharField(max_length=64)
    # Indexed by invoice_customer_status_idx, which serves the key too.
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="invoices", db_index=False
    )
    currency = models.CharField(max_length=3)
    amount_due = models.BigIntegerField()
    amount_paid = models.BigIntegerField(default=0)
    amount_remaining = models.BigIntegerField()
    issued_at = models.DateTimeField()
    due_at = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.OPEN
    )
    collection_method = models.CharField(
        max_length=24, choices=CollectionMethod.choices, default=CollectionMethod.SEND_INVOICE
    )
    # [{"description": str, "quantity": int, "amount": int (minor units)}]
    lines = models.JSONField(default=list, blank=True)
    # Free context for messages, e.g. {"plan": "Pro", "period": "March 2026"}.
    context = models.JSONField(default=dict, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # When the payment gateway (Stripe's own retry schedule: the invoice's
    # next_payment_attempt) will charge this invoice again by itself; null when
    # it will not.  dunning's retry scheduler must not charge while one is
    # pending, so a customer is never charged twice for one invoice.
    gateway_retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["customer", "status"], name="invoice_customer_status_idx"),
            # Open invoices by due date: the overdue filter of the API and the
            # engine's scan for invoices that have gone overdue.  Partial, so
            # its size follows the open work, not the history of paid invoices.
            models.Index(
                fields=["due_at"],
                name="invoice_open_due_idx",
                condition=models.Q(status="open"),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_due__gte=0, amount_paid__gte=0, amount_remaining__gte=0),
                name="invoice_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    amount_remaining=models.F("amount_due") - models.F("amount_paid")
                ),
                name="invoice_remaining_is_due_minus_paid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.external_id})"
