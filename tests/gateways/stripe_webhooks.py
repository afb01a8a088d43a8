"""Posting Stripe events to /webhooks/stripe the way Stripe does: signed, on a fixed clock."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from dunning.gateways import webhooks
from tests.external import STRIPE_FIXTURES

SECRET = "whsec_dunning_tests_5b0c9d2f"
URL = "/webhooks/stripe"


def load(relative: str) -> Any:
    return json.loads((STRIPE_FIXTURES / relative).read_text(encoding="utf-8"))


def story(name: str) -> dict[str, Any]:
    (path,) = (STRIPE_FIXTURES / "stories").glob(f"{name}.*.json")
    return json.loads(path.read_text(encoding="utf-8"))


def story_event(name: str, seq: int) -> dict[str, Any]:
    """A copy of the event at `seq` in story `name`'s timeline, free to change."""
    told = story(name)
    step = next(step for step in told["timeline"] if step["seq"] == seq)
    return copy.deepcopy(next(e for e in told["events"] if e["id"] == step["event"]))


def s1(seq: int) -> dict[str, Any]:
    return story_event("S1", seq)


def body_of(event: dict[str, Any]) -> bytes:
    # The shared README: 2-space indentation gives the exact body the vectors sign.
    return json.dumps(event, indent=2, ensure_ascii=False).encode("utf-8")


def sign(body: bytes, *, secret: str = SECRET, timestamp: int) -> str:
    """The Stripe-Signature header: t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>.<body>"))."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


class StripePoster:
    """Posts bodies with the view's clock set; `send` signs an event as Stripe would."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.monkeypatch = monkeypatch
        self.client = Client()

    def post(self, body: bytes, header: str | None, *, now: int) -> Any:
        self.monkeypatch.setattr(webhooks, "clock", lambda: at(now))
        headers = {"Stripe-Signature": header} if header is not None else {}
        return self.client.post(URL, body, content_type="application/json", headers=headers)

    def send(self, event: dict[str, Any], *, delay: int = 1, secret: str = SECRET) -> Any:
        """Deliver `event` `delay` seconds after it was created, signed with `secret`."""
        sent = event["created"] + delay
        body = body_of(event)
        return self.post(body, sign(body, secret=secret, timestamp=sent), now=sent)


def envelope(
    type: str, obj: dict[str, Any], *, id: str, created: int, **data: Any
) -> dict[str, Any]:
    return {
        "api_version": "2026-06-24.dahlia",
        "created": created,
        "data": {"object": obj, **data},
        "id": id,
        "livemode": False,
        "object": "event",
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
    }
