"""The manual gateway and the registry that picks a gateway from settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ImproperlyConfigured
from pytest_django.fixtures import Settings

from dunning.gateways.base import ChargeRequest, ChargeStatus
from dunning.gateways.manual import ManualGateway
from dunning.gateways.registry import get_gateway, use_gateway
from dunning.gateways.simulated import SimulatedGateway, succeeded
from dunning.gateways.stripe_gateway import StripeGateway

NOW = datetime(2026, 3, 16, 3, 0, tzinfo=UTC)
REQUEST = ChargeRequest(
    amount=500000,
    currency="JPY",
    customer_external_id="cus_1",
    payment_method_external_id="pm_1",
    invoice_external_id="in_1",
    idempotency_key="attempt-1",
)


def test_the_manual_gateway_attempts_nothing_so_nothing_is_a_decline() -> None:
    result = ManualGateway().charge(REQUEST)

    assert result.status is ChargeStatus.NOT_ATTEMPTED
    assert not result.succeeded and not result.declined
    assert result.decline_code == ""
    assert (result.amount, result.currency, result.gateway) == (500000, "JPY", "manual")
    assert "bank transfer" in result.message
    with pytest.raises(ValueError, match="not a payment attempt"):
        result.attempt_fields()


def test_manual_is_the_default(settings: Settings) -> None:
    del settings.DUNNING_GATEWAY

    assert isinstance(get_gateway(), ManualGateway)


def test_it_builds_the_stripe_gateway_from_settings(settings: Settings) -> None:
    settings.DUNNING_GATEWAY = "stripe"
    settings.DUNNING_STRIPE_API_KEY = "sk_test_registry"
    settings.DUNNING_STRIPE_API_BASE = "http://127.0.0.1:9"

    gateway = get_gateway()

    assert isinstance(gateway, StripeGateway)
    assert gateway.api_base == "http://127.0.0.1:9"
    assert isinstance(get_gateway("manual"), ManualGateway)


def test_an_unknown_gateway_names_the_setting(settings: Settings) -> None:
    settings.DUNNING_GATEWAY = "paypal"

    with pytest.raises(ImproperlyConfigured, match="DUNNING_GATEWAY is 'paypal'"):
        get_gateway()


def test_the_simulated_gateway_is_the_one_its_caller_installed(settings: Settings) -> None:
    settings.DUNNING_GATEWAY = "simulated"
    with pytest.raises(ImproperlyConfigured, match="use_gateway"):
        get_gateway()

    simulated = SimulatedGateway(oracle=lambda request, at: succeeded(request), clock=lambda: NOW)
    with use_gateway(simulated):
        assert get_gateway() is simulated

    with pytest.raises(ImproperlyConfigured):
        get_gateway()
