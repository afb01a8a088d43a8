from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import override_settings
from django.utils import timezone

from tests.conftest import NOW


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
