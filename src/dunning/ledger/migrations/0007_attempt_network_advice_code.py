from django.db import migrations, models


class Migration(migrations.Migration):
    """Mastercard's merchant advice code on each attempt (Stripe's network_advice_code):
    MAC 03 and 21 forbid a retry, MAC 24-30 ask for a wait (rules.md 2.2).

    Attempts recorded before it have none: "" (nothing was kept to fill it from).
    """

    dependencies = [
        ("ledger", "0006_payment_method_detached_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="paymentattempt",
            name="network_advice_code",
            field=models.CharField(blank=True, max_length=64),
        ),
    ]
