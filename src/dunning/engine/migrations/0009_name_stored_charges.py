"""Name the charges planned before 0008 stored them with their keys.

A key is "case<id>:try<n>:<digest>", the digest the first 16 hex digits of
SHA-256 over "<invoice pk>:<card pk>:<amount>" (`retries.charge_key`).  For
each case with a key and no stored charge, the case's invoices, its
customer's cards and the amounts the invoice owed (what remains, or all of
it) are tried until one gives the digest.  A charge in doubt named so is
asked about as any other; one that cannot be named waits for an operator.
"""

import hashlib

from django.db import migrations


def name_charges(apps, schema_editor):  # type: ignore[no-untyped-def]
    Case = apps.get_model("engine", "Case")
    CaseInvoice = apps.get_model("engine", "CaseInvoice")
    PaymentMethod = apps.get_model("ledger", "PaymentMethod")
    unnamed = Case.objects.exclude(retry_key="").filter(retry_invoice__isnull=True)
    for case in unnamed.iterator():
        digest = case.retry_key.rsplit(":", 1)[-1]
        invoices = [link.invoice for link in CaseInvoice.objects.filter(case=case)]
        cards = list(PaymentMethod.objects.filter(customer_id=case.customer_id))
        found = next(
            (
                (invoice, card, amount)
                for invoice in invoices
                for card in cards
                for amount in {invoice.amount_remaining, invoice.amount_due}
                if hashlib.sha256(f"{invoice.pk}:{card.pk}:{amount}".encode()).hexdigest()[:16]
                == digest
            ),
            None,
        )
        if found is not None:
            case.retry_invoice, case.retry_payment_method, case.retry_amount = found
            case.save(update_fields=["retry_invoice", "retry_payment_method", "retry_amount"])


class Migration(migrations.Migration):
    dependencies = [
        ("engine", "0008_charge_parameters"),
        ("ledger", "0004_payment_method_details_changed_at"),
    ]

    operations = [migrations.RunPython(name_charges, migrations.RunPython.noop)]
