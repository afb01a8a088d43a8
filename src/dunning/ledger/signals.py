"""Signals the ledger sends after a write, inside the write's transaction.

The engine listens, so that a payment recorded through any door (API, import,
webhook, admin) recovers its case at once, while the ledger knows nothing of
the engine.
"""

from django.dispatch import Signal

# Sent with invoice=<Invoice>, now=<datetime>, source=<str> when money was
# applied to an invoice or its status or amount changed.
invoice_changed = Signal()

# Sent with attempt=<PaymentAttempt>, now=<datetime>, source=<str> after a
# charge attempt is recorded (the engine plans the next retry after a decline).
attempt_recorded = Signal()

# Sent with method=<PaymentMethod>, created=<bool>, now=<datetime>,
# source=<str> after a saved payment method is added or changed (a new card
# is retried at once).
payment_method_changed = Signal()
