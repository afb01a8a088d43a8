"""Repeatable demo data: a few hundred customers with invoices, cards and payment histories.

`generate` builds plain data from a seed and `now` (pure: no Django, no clock);
`load` writes it through the ledger services, as any other source of facts would.
"""
