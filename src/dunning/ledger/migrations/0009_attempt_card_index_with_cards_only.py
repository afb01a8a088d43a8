import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0008_payment_method_number_changed_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="paymentattempt",
            name="payment_method",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="attempts",
                to="ledger.paymentmethod",
            ),
        ),
    ]
