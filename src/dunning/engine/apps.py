from django.apps import AppConfig


class EngineConfig(AppConfig):
    name = "dunning.engine"
    label = "engine"
    verbose_name = "Engine"

    def ready(self) -> None:
        from dunning.engine.cases import on_invoice_changed
        from dunning.engine.retries import on_attempt_recorded, on_payment_method_changed
        from dunning.ledger.signals import attempt_recorded, invoice_changed, payment_method_changed

        # In the ledger write's transaction: a payment recovers its case at once.
        invoice_changed.connect(on_invoice_changed, dispatch_uid="engine.on_invoice_changed")
        # A decline from outside, or a new card: the next retry is planned again.
        attempt_recorded.connect(on_attempt_recorded, dispatch_uid="engine.on_attempt_recorded")
        payment_method_changed.connect(
            on_payment_method_changed, dispatch_uid="engine.on_payment_method_changed"
        )
