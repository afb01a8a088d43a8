"""Read-only admin views of what the gateways delivered: for operators checking a webhook."""

from __future__ import annotations

from django.contrib import admin

from dunning.gateways.models import GatewayObject, WebhookEvent
from dunning.ledger.admin import ReadOnlyAdmin


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "provider", "type", "event_id", "object_id", "outcome")
    list_filter = ("provider", "outcome", "type")
    search_fields = ("event_id", "object_id")
    date_hierarchy = "received_at"


@admin.register(GatewayObject)
class GatewayObjectAdmin(ReadOnlyAdmin):
    list_display = (
        "object_id",
        "provider",
        "type",
        "last_event_created",
        "invoice",
        "default_payment_method",
    )
    list_filter = ("provider", "type")
    search_fields = ("object_id", "invoice")
