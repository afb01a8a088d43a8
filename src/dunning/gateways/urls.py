"""Inbound gateway webhooks, mounted under /webhooks/ (outside the /api/v1 API)."""

from django.urls import path

from dunning.gateways.webhooks import stripe_webhook

urlpatterns = [
    path("stripe", stripe_webhook, name="stripe-webhook"),
]
