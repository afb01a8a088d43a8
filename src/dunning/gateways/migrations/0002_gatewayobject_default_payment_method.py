from django.db import migrations, models


class Migration(migrations.Migration):
    """A customer's default payment method as the provider last named it."""

    dependencies = [
        ("gateways", "0001_webhook_events"),
    ]

    operations = [
        migrations.AddField(
            model_name="gatewayobject",
            name="default_payment_method",
            field=models.CharField(
                blank=True,
                help_text="a customer's default, as the provider names it",
                max_length=255,
            ),
        ),
    ]
