from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "dunning.gateways"
    label = "gateways"
    verbose_name = "Payment gateways"
    default_auto_field = "django.db.models.BigAutoField"
