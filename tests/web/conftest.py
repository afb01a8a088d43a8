from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from tests.conftest import NOW
from tests.gateways.stripe_server import FakeStripe, stripe_api  # noqa: F401 - fixture


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The pages read the time once per request (`timezone.now()`); in tests it is NOW."""
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    yield


@pytest.fixture(autouse=True)
def public_settings() -> Iterator[None]:
    with override_settings(
        DUNNING_PUBLIC_URL="https://pay.example.com",
        DUNNING_COMPANY_NAME="Example Co., Ltd.",
        DUNNING_SUPPORT_EMAIL="help@example.com",
        DUNNING_SUPPORT_PHONE="+66 2 123 4567",
    ):
        yield


@pytest.fixture
def stripe_gateway(stripe_api: FakeStripe) -> Iterator[FakeStripe]:  # noqa: F811
    """The gateway is Stripe, at the fake on loopback (tests/gateways/stripe_server.py)."""
    with override_settings(
        DUNNING_GATEWAY="stripe",
        DUNNING_STRIPE_API_KEY=stripe_api.api_key,
        DUNNING_STRIPE_API_BASE=stripe_api.url,
    ):
        yield stripe_api


@pytest.fixture
def client() -> Client:
    """A client that makes the CSRF round trip a browser makes (pytest-django's skips it)."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def jane(make_customer: Callable[..., Any], make_card: Callable[..., Any]) -> Any:
    """Jane Doe, in the US, English, with a saved Visa card (pm_cus_en)."""
    customer = make_customer(
        "cus_en", name="Jane Doe", locale="en-US", country="US", email="jane@example.com"
    )
    make_card("pm_cus_en", customer="cus_en")
    return customer
