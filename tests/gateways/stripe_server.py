"""A stand-in for api.stripe.com on loopback, answering with Stripe's own objects.

A real HTTP server (http.server in a thread) that the official `stripe` library
talks to through `api_base`.  It behaves like Stripe where our code depends on
it:

- every request must carry `Authorization: Bearer <api_key>`, else 401;
- an `Idempotency-Key` whose request executed (200 or 402) replays the same
  answer with `Idempotent-Replayed: true` and charges nothing; the same key
  with other form fields gets 400 `idempotency_error`; a 5xx saves nothing;
- answers are queued per route with `reply(...)`; a queued `delay` longer than
  the client's read timeout is a timeout after Stripe has already charged.

`charges` lists the PaymentIntent requests that reached the card (200 or 402,
not replays); `requests` lists everything received.  The bodies come from
../shared/fixtures/external/stripe/ as they are; `variant` derives the few
answers the fixtures lack by changing named fields that already exist.

Use it as the `stripe_api` fixture (import it into a conftest.py).
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.external import STRIPE_FIXTURES

PAYMENT_INTENTS = "/v1/payment_intents"


@functools.cache
def _load(name: str) -> dict[str, Any]:
    with (STRIPE_FIXTURES / name).open(encoding="utf-8") as file:
        data: dict[str, Any] = json.load(file)
    return data


def stripe_object(name: str) -> dict[str, Any]:
    """A fresh copy of one object from objects.examples.json (API 2026-06-24.dahlia)."""
    return copy.deepcopy(_load("objects.examples.json")[name])


def stripe_resource(name: str) -> dict[str, Any]:
    """A fresh copy of one resource from stripe/openapi's fixtures3 (for objects
    objects.examples.json lacks, such as the setup_intent)."""
    resources = _load("fixtures3.stripe-openapi.f0758b1.dunning-resources.json")["resources"]
    return copy.deepcopy(resources[name])


def variant(obj: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of a fixture object with some existing fields changed (never new ones)."""
    unknown = set(changes) - set(obj)
    assert not unknown, f"not fields of this Stripe object: {sorted(unknown)}"
    return {**copy.deepcopy(dict(obj)), **changes}


def with_payments(invoice: Mapping[str, Any], *payments: Mapping[str, Any]) -> dict[str, Any]:
    """An invoice as Stripe returns it with `expand[]=payments`: its InvoicePayments."""
    return {
        **copy.deepcopy(dict(invoice)),
        "payments": {
            "object": "list",
            "data": [copy.deepcopy(dict(payment)) for payment in payments],
            "has_more": False,
            "url": f"/v1/invoices/{invoice['id']}/payments",
        },
    }


def card_error(payment_intent: Mapping[str, Any]) -> dict[str, Any]:
    """Stripe's 402 body for a failed confirmation: the last payment error plus the intent."""
    return {"error": {**payment_intent["last_payment_error"], "payment_intent": payment_intent}}


def api_error(kind: str, message: str, **fields: Any) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **fields}}


@dataclass(frozen=True)
class Reply:
    status: int
    body: Mapping[str, Any] | str  # a str is sent as it is (a body cut short, a proxy's page)
    delay: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: str
    form: Mapping[str, str]

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


class FakeStripe:
    api_key = "sk_test_51DunningFakeKey0000secretDoNotLog"

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self.charges: list[ReceivedRequest] = []
        self._queues: dict[tuple[str, str], deque[Reply]] = {}
        self._saved: dict[str, tuple[Mapping[str, str], Reply]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def reply(
        self,
        status: int,
        body: Mapping[str, Any] | str,
        *,
        path: str = PAYMENT_INTENTS,
        method: str = "POST",
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Queue the next answer to `method path`."""
        with self._lock:
            self._queues.setdefault((method, path), deque()).append(
                Reply(status, body, delay, dict(headers or {}))
            )

    def answer(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if request.headers.get("authorization") != f"Bearer {self.api_key}":
                given = request.headers.get("authorization", "").removeprefix("Bearer ")
                return Reply(
                    401,
                    api_error(
                        "invalid_request_error",
                        f"Invalid API Key provided: {given[:8]}{'*' * 12}{given[-4:]}",
                    ),
                )
            key = request.idempotency_key
            if request.method == "POST" and key and key in self._saved:
                form, saved = self._saved[key]
                if form != request.form:
                    return Reply(
                        400,
                        api_error(
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with. Try using a key other "
                            f"than '{key}' if you meant to execute a different request.",
                        ),
                    )
                return Reply(saved.status, saved.body, headers={"Idempotent-Replayed": "true"})
            queue = self._queues.get((request.method, request.path))
            if queue:
                reply = queue.popleft()
            elif (request.method, request.path) == ("POST", PAYMENT_INTENTS):
                reply = Reply(200, stripe_object("payment_intent_succeeded"))
            else:
                reply = Reply(
                    404,
                    api_error(
                        "invalid_request_error",
                        f"Unrecognized request URL ({request.method}: {request.path}).",
                    ),
                )
            # Stripe saves a result once the endpoint ran (here: it answered
            # 200 or 402); then the card was tried, even if the answer is lost.
            if reply.status in (200, 402):
                if request.method == "POST" and key:
                    self._saved[key] = (request.form, reply)
                if (request.method, request.path) == ("POST", PAYMENT_INTENTS):
                    self.charges.append(request)  # a list (GET) charges nothing
            return reply

    def next_request_id(self) -> str:
        return f"req_fake{next(self._ids):06d}"

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()  # cuts short any delayed answer
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        fake: FakeStripe = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        parts = urlsplit(self.path)
        request = ReceivedRequest(
            method=self.command,
            path=parts.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            form=dict(parse_qsl(body or parts.query, keep_blank_values=True)),
        )
        reply = fake.answer(request)
        if reply.delay and fake.stopping.wait(reply.delay):
            return
        text = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
        payload = text.encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", fake.next_request_id())
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the timeout tests)

    do_GET = _serve
    do_POST = _serve
    do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet


@pytest.fixture
def stripe_api() -> Iterator[FakeStripe]:
    fake = FakeStripe()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
