from django.apps import AppConfig


class EngineConfig(AppConfig):
    name = "dunning.engine"
    label = "engine"
    verbose_name = "Engine"

    def ready(self) -> None:
        from dunning.engine import disputes, predunning
        from dunning.engine.cases import on_invoices_changed
        from dunning.engine.retries import (
            ask_about_changed_invoices,
            on_attempts_recorded,
            on_gateway_retry_changed,
            on_payment_method_changed,
        )
        from dunning.ledger.signals import (
            attempts_recorded,
            dispute_changed,
            gateway_retry_changed,
            invoices_changed,
            payment_method_changed,
        )

        # In the ledger write's transaction: a payment recovers its case at once.
        invoices_changed.connect(on_invoices_changed, dispatch_uid="engine.on_invoices_changed")
        # The invoice of a charge in doubt changed: the gateway is asked about it now.
        invoices_changed.connect(
            ask_about_changed_invoices, dispatch_uid="engine.ask_about_changed_invoices"
        )
        # A decline from outside, or a new card: the next retry is planned again.
        attempts_recorded.connect(on_attempts_recorded, dispatch_uid="engine.on_attempts_recorded")
        payment_method_changed.connect(
            on_payment_method_changed, dispatch_uid="engine.on_payment_method_changed"
        )
        # A card request waiting to go out that the change answers is not sent.
        payment_method_changed.connect(
            predunning.on_payment_method_changed,
            dispatch_uid="engine.predunning.on_payment_method_changed",
        )
        # The gateway retries an invoice itself, or has stopped: its cases plan again.
        gateway_retry_changed.connect(
            on_gateway_retry_changed, dispatch_uid="engine.on_gateway_retry_changed"
        )
        # A dispute opened: the customer's dunning is paused for a person to look.
        dispute_changed.connect(
            disputes.on_dispute_changed, dispatch_uid="engine.disputes.on_dispute_changed"
        )
