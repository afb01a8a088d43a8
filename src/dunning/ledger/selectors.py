"""Reads of the ledger shared by the API, the admin and later the engine."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from dunning.ledger.models import Invoice, InvoiceStatus


def overdue_invoices(*, now: datetime) -> QuerySet[Invoice]:
    """Open invoices past their due date with money remaining (uses invoice_open_due_idx)."""
    return Invoice.objects.filter(status=InvoiceStatus.OPEN, due_at__lt=now, amount_remaining__gt=0)


def not_overdue_invoices(*, now: datetime) -> QuerySet[Invoice]:
    return Invoice.objects.exclude(
        status=InvoiceStatus.OPEN, due_at__lt=now, amount_remaining__gt=0
    )
