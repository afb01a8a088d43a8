from django.db import migrations, models


class Migration(migrations.Migration):
    """When a card's number (brand or last four) last changed: the networks count
    reattempts per card number, so a reissued number is another card.

    Rows changed before this field existed keep null: treated as the number they
    were saved with, the cautious reading (declines and caps stay counted).
    """

    dependencies = [
        ("ledger", "0007_attempt_network_advice_code"),
    ]

    operations = [
        migrations.AddField(
            model_name="paymentmethod",
            name="number_changed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
