from tests.gateways.stripe_server import stripe_api  # noqa: F401 - fixture
