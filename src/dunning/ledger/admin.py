"""Admin views of the ledger, so operators can look before the dashboard exists.

The ledger is changed only through its services (the API, imports, webhooks),
so these views are read-only; the two invoice actions go through the services
too and leave an event behind, like any other change.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from dunning.core.money import format_major
from dunning.ledger import services
from dunning.ledger.errors import LedgerError
from dunning.ledger.models import (
    Customer,
    Event,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAttempt,
    PaymentMethod,
)


def money(minor: int, currency: str) -> str:
    return f"{format_major(minor, currency)} {currency}"


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class InvoiceInline(admin.TabularInline):
    model = Invoice
    fields = ("number", "status", "currency", "amount_due", "amount_remaining", "due_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-due_at",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
        # Needed for the actions; the form itself stays read-only.
        return request.user.has_perm("ledger.change_invoice")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in Invoice._meta.fields]

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
    )
    list_filter = ("type", "brand")
    search_fields = ("external_id", "customer__external_id", "last4")
    list_select_related = ("customer",)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "customer", "invoice", "source", "occurred_at", "recorded_at")
    list_filter = ("type", "source")
    search_fields = ("type", "customer__external_id", "invoice__external_id")
    list_select_related = ("customer", "invoice")
