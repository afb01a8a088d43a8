from tests.smtp_server import smtp_server, smtp_server_with_auth  # noqa: F401 - fixtures
