from django.apps import AppConfig


class EngineConfig(AppConfig):
    name = "dunning.engine"
    label = "engine"
    verbose_name = "Engine"

    def ready(self) -> None:
        from dunning.engine.cases import on_invoice_changed
        from dunning.ledger.signals import invoice_changed

        # In the ledger write's transaction: a payment recovers its case at once.
        invoice_changed.connect(on_invoice_changed, dispatch_uid="engine.on_invoice_changed")
