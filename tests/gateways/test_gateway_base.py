"""The charge contract: requests that cannot be wrong, results that say what to record."""

from __future__ import annotations

import pytest

from dunning.channels import TransportError
from dunning.gateways.base import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    GatewayError,
    safe_message,
)


def request(**changes: object) -> ChargeRequest:
    values: dict[str, object] = {
        "amount": 125050,
        "currency": "THB",
        "customer_external_id": "cus_1",
        "payment_method_external_id": "pm_1",
        "invoice_external_id": "in_1",
        "idempotency_key": "attempt-1",
    }
    return ChargeRequest(**{**values, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -100}, "amount"),
        ({"amount": 12.5}, "amount"),
        ({"amount": True}, "amount"),
        ({"currency": "thb"}, "currency"),
        ({"currency": "BAHT"}, "currency"),
        ({"customer_external_id": ""}, "customer_external_id"),
        ({"payment_method_external_id": ""}, "payment_method_external_id"),
        ({"invoice_external_id": ""}, "invoice_external_id"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 256}, "idempotency_key"),
        ({"metadata": {"case": 42}}, "metadata"),
    ],
)
def test_a_bad_request_names_its_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        request(**changes)


def test_a_request_cannot_be_changed_after_it_is_made() -> None:
    metadata = {"case": "7"}
    made = request(metadata=metadata)
    metadata["case"] = "8"

    assert made.metadata == {"case": "7"}
    with pytest.raises(TypeError):
        made.metadata["case"] = "9"  # type: ignore[index]


def test_a_decline_needs_a_code_and_a_success_has_none() -> None:
    with pytest.raises(ValueError, match="decline_code"):
        ChargeResult(status=ChargeStatus.DECLINED, gateway="x", amount=1, currency="USD")
    with pytest.raises(ValueError, match="decline_code"):
        ChargeResult(
            status=ChargeStatus.SUCCEEDED,
            gateway="x",
            amount=1,
            currency="USD",
            decline_code="insufficient_funds",
        )


def test_a_declined_result_becomes_a_failed_attempt() -> None:
    result = ChargeResult(
        status=ChargeStatus.DECLINED,
        gateway="stripe",
        amount=2900,
        currency="USD",
        reference="pi_1",
        decline_code="insufficient_funds",
        advice_code="try_again_later",
        network_decline_code="51",
        network_advice_code="25",
    )

    assert result.declined and not result.succeeded
    assert result.attempt_fields() == {
        "outcome": "failed",
        "amount": 2900,
        "decline_code": "insufficient_funds",
        "advice_code": "try_again_later",
        "network_code": "51",
        "network_advice_code": "25",
        "gateway": "stripe",
        "reference": "pi_1",
    }


def test_a_gateway_error_is_a_transport_error_the_delivery_stage_knows() -> None:
    error = GatewayError("Stripe answered 503", permanent=False, http_status=503)

    assert isinstance(error, TransportError)
    assert error.outcome_unknown
    assert str(error) == "Stripe answered 503 (temporary)"


def test_it_blanks_keys_and_card_numbers_in_messages() -> None:
    text = (
        "Invalid API Key provided: sk_live_51AbCdEf0123456789 for card 4242 4242 4242 4242,"
        " also 5555-5555-5555-4444 and whsec_abc123=; invoice 1001 on 2026-03-16"
    )

    cleaned = safe_message(text)

    assert "sk_live" not in cleaned
    assert "4242" not in cleaned
    assert "5555" not in cleaned
    assert "whsec_" not in cleaned
    assert "invoice 1001 on 2026-03-16" in cleaned
    assert GatewayError(text, permanent=True).message == cleaned
    assert len(safe_message("x" * 1000)) == 300
