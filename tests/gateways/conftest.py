from typing import Any

import pytest

from tests.gateways.stripe_server import stripe_api  # noqa: F401 - fixture
from tests.gateways.stripe_webhooks import SECRET, StripePoster


@pytest.fixture
def stripe(db: None, settings: Any, monkeypatch: pytest.MonkeyPatch) -> StripePoster:
    """Posts signed Stripe events to /webhooks/stripe, with the secret configured."""
    settings.DUNNING_STRIPE_WEBHOOK_SECRET = [SECRET]
    return StripePoster(monkeypatch)
