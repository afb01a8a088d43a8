"""The engine's share of ledger 0005_keys_served_by_composite_indexes (see there)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("engine", "0011_case_doubt_invoice_idx"),
        ("ledger", "0005_keys_served_by_composite_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="contactoptout",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="opt_outs",
                        to="ledger.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="case",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="cases",
                        to="ledger.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="caseinvoice",
                    name="case",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="engine.case",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS engine_contactoptout_customer_id_c96f58aa",
                    reverse_sql='CREATE INDEX engine_contactoptout_customer_id_c96f58aa ON engine_contactoptout ("customer_id")',
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS engine_case_customer_id_00f08ebd",
                    reverse_sql='CREATE INDEX engine_case_customer_id_00f08ebd ON engine_case ("customer_id")',
                ),
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS engine_caseinvoice_case_id_3be91c95",
                    reverse_sql='CREATE INDEX engine_caseinvoice_case_id_3be91c95 ON engine_caseinvoice ("case_id")',
                ),
            ],
        ),
    ]
