from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "dunning.ledger"
    label = "ledger"
    verbose_name = "Ledger"
