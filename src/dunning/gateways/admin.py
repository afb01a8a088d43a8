"""Read-only admin views of what the gateways delivered: for operators checking a webhook."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from dunning.gateways.models import GatewayObject, WebhookEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "provider", "type", "event_id", "object_id", "outcome")
    list_filter = ("provider", "outcome", "type")
    search_fields = ("event_id", "object_id")
    date_hierarchy = "received_at"


@admin.register(GatewayObject)
class GatewayObjectAdmin(ReadOnlyAdmin):
    list_display = ("object_id", "provider", "type", "last_event_created", "invoice")
    list_filter = ("provider", "type")
    search_fields = ("object_id", "invoice")
