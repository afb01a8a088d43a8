from django.db import migrations, models


class Migration(migrations.Migration):
    """When a card's charge details last changed, apart from its other updates.

    Rows updated before this field existed keep their old reading: any update
    counted as new details, so their last update is taken as the change.
    """

    dependencies = [
        ("ledger", "0003_invoice_gateway_retry_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="paymentmethod",
            name="details_changed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(
            "UPDATE ledger_paymentmethod SET details_changed_at = updated_at "
            "WHERE updated_at > created_at",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
