"""Drop the single-column indexes of keys a composite index already serves (it leads
with the same column): each was one more write per row on the busiest tables.

Only the indexes go; the columns and their constraints stay.  Dropped by name
(Django's own names for them, the same on SQLite and PostgreSQL) rather than by
altering the fields, which on SQLite would rebuild every table.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0004_payment_method_details_changed_at"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="paymentmethod",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="payment_methods",
                        to="ledger.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="customer",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="events",
                        to="ledger.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="invoice",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="events",
                        to="ledger.invoice",
                    ),
                ),
                migrations.AlterField(
                    model_name="invoice",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="invoices",
                        to="ledger.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="payment",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="payments",
                        to="ledger.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="payment",
                    name="invoice",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="payments",
                        to="ledger.invoice",
                    ),
                ),
                migrations.AlterField(
                    model_name="paymentattempt",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="attempts",
                        to="ledger.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="paymentattempt",
                    name="invoice",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="attempts",
                        to="ledger.invoice",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS ledger_paymentmethod_customer_id_3ca1e654",
                    reverse_sql='CREATE INDEX ledger_paymentmethod_customer_id_3ca1e654 ON ledger_paymentmethod ("customer_id")',
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS ledger_event_customer_id_7450d23d",
                    reverse_sql='CREATE INDEX ledger_event_customer_id_7450d23d ON ledger_event ("customer_id")',
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS ledger_event_invoice_id_240ac67f",
                    reverse_sql='CREATE INDEX ledger_event_invoice_id_240ac67f ON ledger_event ("invoice_id")',
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS ledger_invoice_customer_id_0ef025d2",
                    reverse_sql='CREATE INDEX ledger_invoice_customer_id_0ef025d2 ON ledger_invoice ("customer_id")',
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS ledger_payment_customer_id_7f43fe63",
                    reverse_sql='CREATE INDEX ledger_payment_customer_id_7f43fe63 ON ledger_payment ("customer_id")',
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS ledger_payment_invoice_id_9c248046",
                    reverse_sql='CREATE INDEX ledger_payment_invoice_id_9c248046 ON ledger_payment ("invoice_id")',
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS ledger_paymentattempt_customer_id_769ef515",
                    reverse_sql='CREATE INDEX ledger_paymentattempt_customer_id_769ef515 ON ledger_paymentattempt ("customer_id")',
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS ledger_paymentattempt_invoice_id_d63c94db",
                    reverse_sql='CREATE INDEX ledger_paymentattempt_invoice_id_d63c94db ON ledger_paymentattempt ("invoice_id")',
                ),
            ],
        ),
    ]
