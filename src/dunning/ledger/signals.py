"""Signals the ledger sends after a write, inside the write's transaction.

The engine listens, so that a payment recorded through any door (API, import,
webhook, admin) recovers its case at once, while the ledger knows nothing of
the engine.
"""

from django.dispatch import Signal

# Sent with invoice=<Invoice>, now=<datetime>, source=<str> when money was
# applied to an invoice or its status or amount changed.
invoice_changed = Signal()
