"""Retry workers side by side on one PostgreSQL: each in its own thread, with its own
connection and its own gateway client, claiming while another's charge is in flight.

The rules behind each: a card's network caps count every charge on it, whichever
worker and whichever of the customer's cases makes it; an invoice is never
charged twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import pytest
from django.db import connection

from dunning.engine.models import Case
from dunning.engine.retries import RetryReport, retry_due
from dunning.gateways.base import ChargeRequest, ChargeResult
from tests.engine.test_retries import Bank, customer
from tests.engine.test_retries_one_card import (
    NOW,
    mastercard_declines,
    nine_declines_on_one_mastercard,
    run_wakes,
    worst_day,
)

__all__ = ["customer"]  # fixtures

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WAIT = 10.0  # seconds a held charge waits for the other worker at most


class Worker(threading.Thread):
    """`retry_due` once as of `now`, in a thread of its own (its own connection)."""

    def __init__(self, bank: Bank, now: datetime, *, limit: int = 1) -> None:
        super().__init__(daemon=True)
        self.bank, self.now, self.limit = bank, now, limit
        self.report: RetryReport | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.bank.now = self.now
            self.report = retry_due(now=self.now, gateway=self.bank.gateway, limit=self.limit)
        except BaseException as error:  # surfaced to the test below
            self.error = error
        finally:
            connection.close()

    def finish(self) -> RetryReport:
        self.join(timeout=60)
        assert not self.is_alive(), "the worker is still running"
        if self.error is not None:
            raise self.error
        assert self.report is not None
        return self.report


def held_until(
    released: threading.Event, sent: threading.Event, answer: Callable[..., ChargeResult]
) -> Callable[[ChargeRequest], ChargeResult]:
    """An answer that comes only once `released` is set (or after WAIT seconds): a slow
    gateway, while another worker runs.  `sent` is set when the charge reaches it."""

    def slow(request: ChargeRequest) -> ChargeResult:
        sent.set()
        released.wait(timeout=WAIT)
        return answer(request)

    return slow


def test_two_workers_never_take_a_mastercard_past_ten_declines_in_24_hours(
    customer: None,
) -> None:
    """The customer's two cases (THB and USD) on one Mastercard are due at the same
    moment, with nine declines on the card in the last 24 hours: room for one more.
    One worker claims the THB case and charges; while its answer is on its way,
    another worker claims the USD case.  It must not charge the card too."""
    nine_declines_on_one_mastercard()
    planner = Bank()
    planner.run(NOW)
    wakes = set(Case.objects.values_list("next_retry_at", flat=True))
    assert len(wakes) == 1 and None not in wakes  # both planned for the same moment
    (at,) = wakes
    assert worst_day() == 9

    first, second = Bank(), Bank()  # two workers, each with its gateway client
    released, sent = threading.Event(), threading.Event()
    first.answer(held_until(released, sent, mastercard_declines))
    second.answer(mastercard_declines)
    one = Worker(first, at)
    one.start()
    assert sent.wait(timeout=WAIT), "the first worker never charged"

    other = Worker(second, at)
    other.start()
    other.finish()
    released.set()
    one.finish()

    assert len(first.gateway.charges) == 1
    assert second.gateway.charges == []  # the card's last decline of the day is taken
    assert worst_day() <= 10
    # The case left waiting is planned again on the first charge's answer, and charged
    # once the card has room.
    planner.answer(*[mastercard_declines] * 20)
    run_wakes(planner)
    assert len(planner.gateway.charges) >= 1
    assert worst_day() <= 10
