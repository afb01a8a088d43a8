from dunning.ledger.models.customers import Customer, PaymentMethod, PaymentMethodType
from dunning.ledger.models.events import Event
from dunning.ledger.models.invoices import CollectionMethod, Invoice, InvoiceStatus
from dunning.ledger.models.payments import (
    DISPUTE_CLOSED,
    AttemptOutcome,
    Dispute,
    Payment,
    PaymentAttempt,
)

__all__ = [
    "DISPUTE_CLOSED",
    "AttemptOutcome",
    "CollectionMethod",
    "Customer",
    "Dispute",
    "Event",
    "Invoice",
    "InvoiceStatus",
    "Payment",
    "PaymentAttempt",
    "PaymentMethod",
    "PaymentMethodType",
]
