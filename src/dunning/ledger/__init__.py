"""The ledger: the facts dunning acts on (customers, invoices, payments, attempts, events)."""
