from django.db import migrations, models


class Migration(migrations.Migration):
    """When a card left the customer's file at the gateway; null while it is on file."""

    dependencies = [
        ("ledger", "0005_keys_served_by_composite_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="paymentmethod",
            name="detached_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
