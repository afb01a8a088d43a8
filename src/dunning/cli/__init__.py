"""The `dunning` command: Django's management commands under one name."""
