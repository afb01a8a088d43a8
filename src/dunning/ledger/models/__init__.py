from dunning.ledger.models.customers import Customer, PaymentMethod, PaymentMethodType
from dunning.ledger.models.events import Event
from dunning.ledger.models.invoices import CollectionMethod, Invoice, InvoiceStatus
from dunning.ledger.models.payments import AttemptOutcome, Payment, PaymentAttempt

__all__ = [
    "AttemptOutcome",
    "CollectionMethod",
    "Customer",
    "Event",
    "Invoice",
    "InvoiceStatus",
    "Payment",
    "PaymentAttempt",
    "PaymentMethod",
    "PaymentMethodType",
]
