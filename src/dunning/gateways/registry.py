"""Which gateway charges: DUNNING_GATEWAY names it ("manual" unless set).

"manual", "stripe" and "demo" (the demo's bank, refused in production) are
built from settings.  "simulated" needs an oracle and a clock that only its
caller has, so the simulator or a test installs its instance with
`use_gateway(...)` for as long as it runs.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from dunning.gateways.base import Gateway
from dunning.gateways.demo import DemoGateway
from dunning.gateways.manual import ManualGateway
from dunning.gateways.stripe_gateway import StripeGateway

FACTORIES: dict[str, Callable[[], Gateway]] = {
    ManualGateway.name: ManualGateway,
    StripeGateway.name: StripeGateway.from_settings,
    DemoGateway.name: DemoGateway.from_settings,
}
NAMES = ("demo", "manual", "simulated", "stripe")

_installed: dict[str, Gateway] = {}
_lock = threading.Lock()


def get_gateway(name: str | None = None) -> Gateway:
    """The gateway called `name`, or the one DUNNING_GATEWAY names."""
    if name is None:
        name = getattr(settings, "DUNNING_GATEWAY", "") or "manual"
    chosen = name.strip().lower()
    with _lock:
        installed = _installed.get(chosen)
    if installed is not None:
        return installed
    factory = FACTORIES.get(chosen)
    if factory is not None:
        return factory()
    if chosen == "simulated":
        raise ImproperlyConfigured(
            "DUNNING_GATEWAY is 'simulated' but no simulated gateway is installed: "
            "the simulator and the tests install one with use_gateway(SimulatedGateway(...))"
        )
    raise ImproperlyConfigured(
        f"DUNNING_GATEWAY is {chosen!r}, which is not a gateway; use one of {', '.join(NAMES)}"
    )


@contextlib.contextmanager
def use_gateway(gateway: Gateway) -> Iterator[Gateway]:
    """Make `get_gateway(gateway.name)` return this instance inside the block."""
    with _lock:
        previous = _installed.get(gateway.name)
        _installed[gateway.name] = gateway
    try:
        yield gateway
    finally:
        with _lock:
            if previous is None:
                _installed.pop(gateway.name, None)
            else:
                _installed[gateway.name] = previous
