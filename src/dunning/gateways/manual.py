"""The manual gateway: no card on file is charged; money comes by transfer, cash or the pay page.

Every charge answers NOT_ATTEMPTED, which is neither a payment nor a decline, so
the engine records no attempt and the reminders carry the case.
"""

from __future__ import annotations

from dunning.gateways.base import ChargeRequest, ChargeResult, ChargeStatus

NOT_ATTEMPTED_MESSAGE = "not attempted: collect by bank transfer or another manual method"


class ManualGateway:
    name = "manual"

    def charge(self, request: ChargeRequest) -> ChargeResult:
        return ChargeResult(
            status=ChargeStatus.NOT_ATTEMPTED,
            gateway=self.name,
            amount=request.amount,
            currency=request.currency,
            message=NOT_ATTEMPTED_MESSAGE,
        )

    def __repr__(self) -> str:
        return "ManualGateway()"
