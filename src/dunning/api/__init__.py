"""The REST API (django-ninja): API keys, idempotency, errors and the routers."""
