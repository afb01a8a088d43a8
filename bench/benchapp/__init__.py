"""Bench-only Django wiring: the product's URLs plus a baseline endpoint.

Nothing here ships: it is importable only with bench/ on PYTHONPATH and
DJANGO_SETTINGS_MODULE=benchapp.settings.
"""
