"""Admin views of the ledger, so operators can look before the dashboard exists.

The ledger is changed only through its services (the API, imports, webhooks),
so these views are read-only; the two invoice actions go through the services
too and leave an event behind, like any other change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from dunning.core.formatting import format_money
from dunning.ledger import services
from dunning.ledger.errors import LedgerError
from dunning.ledger.models import (
    Customer,
    Dispute,
    Event,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAttempt,
    PaymentMethod,
)


def money(minor: int, currency: str) -> str:
    """An amount for operators: the currency's own symbol and grouping, in English."""
    return format_money(minor, currency, locale="en")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows only the services write: every field shown, none edited.

    An amount in minor units (an integer column beside `currency`) is shown as
    money in that currency, 990000 THB as THB 9,900.00, and a JSON column as
    indented JSON.
    """

    def __init__(self, model: type[models.Model], admin_site: admin.AdminSite) -> None:
        super().__init__(model, admin_site)
        self._shown: dict[str, str] = {}
        priced = any(field.name == "currency" for field in model._meta.fields)
        for field in model._meta.fields:
            if priced and isinstance(field, models.BigIntegerField) and not field.primary_key:
                self._show(field, _as_money(field.name))
            elif isinstance(field, models.JSONField):
                self._show(field, _as_json(field.name))

    def _show(self, field: models.Field[Any, Any], shown: Callable[[Any], str]) -> None:
        name = f"{field.name}_shown"
        shown.short_description = field.verbose_name  # type: ignore[attr-defined]
        setattr(self, name, shown)
        self._shown[field.name] = name

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = (field for field in self.opts.fields if not field.auto_created)
        return [self._shown.get(field.name, field.name) for field in fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_fields(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _as_money(name: str) -> Callable[[Any], str]:
    def shown(row: Any) -> str:
        value = getattr(row, name)
        return "-" if value is None else money(value, row.currency)

    return shown


def _as_json(name: str) -> Callable[[Any], str]:
    def shown(row: Any) -> str:
        text = json.dumps(getattr(row, name), indent=2, ensure_ascii=False)
        return format_html('<pre style="margin:0;white-space:pre-wrap">{}</pre>', text)

    return shown


class InvoiceInline(admin.TabularInline):
    model = Invoice
    fields = ("number", "status", "due", "remaining", "due_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-due_at",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="amount due")
    def due(self, invoice: Invoice) -> str:
        return money(invoice.amount_due, invoice.currency)

    @admin.display(description="remaining")
    def remaining(self, invoice: Invoice) -> str:
        return money(invoice.amount_remaining, invoice.currency)


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    list_display = (
        "external_id",
        "name",
        "email",
        "country",
        "locale",
        "is_business",
        "created_at",
    )
    list_filter = ("country", "is_business", "locale")
    search_fields = ("external_id", "name", "email", "phone")
    inlines = [InvoiceInline]


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = (
        "number",
        "customer",
        "status",
        "due",
        "remaining",
        "due_at",
        "collection_method",
    )
    list_filter = ("status", "currency", "collection_method")
    search_fields = ("external_id", "number", "customer__external_id", "customer__name")
    list_select_related = ("customer",)
    date_hierarchy = "due_at"
    actions = ["void", "mark_uncollectible"]

    @admin.display(description="amount due", ordering="amount_due")
    def due(self, invoice: Invoice) -> str:
        return money(invoice.amount_due, invoice.currency)

    @admin.display(description="remaining", ordering="amount_remaining")
    def remaining(self, invoice: Invoice) -> str:
        return money(invoice.amount_remaining, invoice.currency)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The list's actions need it; an invoice's own page is a view, with no Save.
        return obj is None and request.user.has_perm("ledger.change_invoice")

    def _change_status(
        self, request: HttpRequest, queryset: QuerySet[Invoice], status: str
    ) -> None:
        done = 0
        for invoice in queryset:
            try:
                services.change_invoice_status(
                    invoice=invoice.external_id,
                    status=status,
                    now=timezone.now(),
                    source="admin",
                    reason=f"by {request.user}",
                )
                done += 1
            except LedgerError as error:
                self.message_user(request, f"{invoice.number}: {error.message}", messages.WARNING)
        if done:
            self.message_user(request, f"{done} invoice(s) now {status}.")

    @admin.action(description="Void the selected invoices", permissions=["change"])
    def void(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._change_status(request, queryset, InvoiceStatus.VOID)

    @admin.action(description="Mark the selected invoices uncollectible", permissions=["change"])
    def mark_uncollectible(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._change_status(request, queryset, InvoiceStatus.UNCOLLECTIBLE)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("id", "invoice", "customer", "paid", "method", "reference", "received_at")
    list_filter = ("method", "currency")
    search_fields = (
        "reference",
        "invoice__number",
        "invoice__external_id",
        "customer__external_id",
    )
    list_select_related = ("invoice", "customer")

    @admin.display(description="amount", ordering="amount")
    def paid(self, payment: Payment) -> str:
        return money(payment.amount, payment.currency)


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "invoice",
        "outcome",
        "charged",
        "decline_code",
        "advice_code",
        "network_advice_code",
        "gateway",
        "attempted_at",
    )
    list_filter = ("outcome", "decline_code", "gateway")
    search_fields = (
        "invoice__number",
        "invoice__external_id",
        "customer__external_id",
        "reference",
    )
    list_select_related = ("invoice",)

    @admin.display(description="amount", ordering="amount")
    def charged(self, attempt: PaymentAttempt) -> str:
        return money(attempt.amount, attempt.currency)


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin):
    list_display = (
        "external_id",
        "customer",
        "invoice",
        "disputed",
        "reason",
        "status",
        "opened_at",
    )
    list_filter = ("status", "reason")
    search_fields = ("external_id", "customer__external_id", "invoice__number")
    list_select_related = ("customer", "invoice")

    @admin.display(description="amount", ordering="amount")
    def disputed(self, dispute: Dispute) -> str:
        return money(dispute.amount, dispute.currency)


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdmin):
    list_display = (
        "external_id",
        "customer",
        "type",
        "brand",
        "last4",
        "exp_month",
        "exp_year",
        "is_default",
        "detached_at",
    )
    list_filter = ("type", "brand", ("detached_at", admin.EmptyFieldListFilter))
    search_fields = ("external_id", "customer__external_id", "last4")
    list_select_related = ("customer",)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "customer", "invoice", "source", "occurred_at", "recorded_at")
    list_filter = ("type", "source")
    search_fields = ("type", "customer__external_id", "invoice__external_id")
    list_select_related = ("customer", "invoice")
