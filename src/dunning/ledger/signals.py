"""Signals the ledger sends after a write, inside the write's transaction.

The engine listens, so that a payment recorded through any door (API, import,
webhook, admin) recovers its case at once, while the ledger knows nothing of
the engine.
"""

from django.dispatch import Signal

# Sent with invoices=<list[Invoice]>, now=<datetime>, source=<str> when money
# was applied to the invoices or their status or amount changed.  One write
# sends one signal for all the invoices it changed, so a receiver can look
# them up together.
invoices_changed = Signal()

# Sent with attempts=<list[PaymentAttempt]>, now=<datetime>, source=<str> after
# charge attempts are recorded (the engine plans the next retry after a decline).
attempts_recorded = Signal()

# Sent with method=<PaymentMethod>, created=<bool>, now=<datetime>,
# source=<str> after a saved payment method is added or changed (a new card
# is retried at once).
payment_method_changed = Signal()

# Sent with invoice=<Invoice>, now=<datetime>, source=<str> after the time the
# gateway will charge the invoice again itself changes (Stripe's
# next_payment_attempt; None: it will not): the engine waits for the gateway,
# or takes over once the gateway has stopped retrying.
gateway_retry_changed = Signal()

# Sent with dispute=<Dispute>, opened=<bool> (it was not open before this write),
# now=<datetime>, source=<str> after a dispute is recorded or its status changes:
# the engine pauses the customer's dunning while one is open.
dispute_changed = Signal()
