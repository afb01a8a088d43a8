"""The scenario's truth: what each charge answers, and when the new card takes over.

Every moment is fixed; times are written in the customer's zone (Asia/Bangkok, +07:00).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dunning.simulator.scenario import (
    CardRole,
    DeclineWindow,
    ReplacementCard,
    SimCard,
    SimCustomer,
    SimInvoice,
)
from dunning.simulator.world import (
    Outcome,
    card_expires_at,
    card_in_use,
    charge_outcome,
    replacement_takes_over,
)

BANGKOK = timezone(timedelta(hours=7))
VISA_05_2027 = SimCard(brand="visa", exp_month=5, exp_year=2027)
ORIGINAL, REPLACEMENT = CardRole.ORIGINAL, CardRole.REPLACEMENT


def bkk(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=BANGKOK)


def window(
    starts: datetime,
    ends: datetime,
    code: str = "insufficient_funds",
    *,
    card: CardRole = ORIGINAL,
    advice: str | None = None,
) -> DeclineWindow:
    return DeclineWindow(
        starts_at=starts.astimezone(UTC),
        ends_at=ends.astimezone(UTC),
        decline_code=code,
        card=card,
        advice_code=advice,
    )


def customer(
    *,
    declines: tuple[DeclineWindow, ...] = (),
    card: SimCard = VISA_05_2027,
    replacement: ReplacementCard | None = None,
) -> SimCustomer:
    return SimCustomer(
        id="cus_1",
        name="สมชาย ใจดี",
        email="somchai@example.com",
        locale="th",
        time_zone="Asia/Bangkok",
        country="TH",
        card=card,
        invoices=(
            SimInvoice(
                id="in_1",
                number="INV-1001",
                amount_due=49900,
                currency="THB",
                due_at=bkk(2026, 1, 20).astimezone(UTC),
                collection_method="charge_automatically",
            ),
        ),
        declines=declines,
        replacement_card=replacement,
    )


ISSUE_EXAMPLE = customer(declines=(window(bkk(2026, 1, 20), bkk(2026, 1, 25)),))
INSUFFICIENT = Outcome(succeeded=False, decline_code="insufficient_funds")


class TestDeclineWindows:
    def test_a_charge_at_from_fails(self) -> None:
        assert charge_outcome(ISSUE_EXAMPLE, bkk(2026, 1, 20), ORIGINAL) == INSUFFICIENT

    def test_a_charge_just_before_until_fails(self) -> None:
        at = bkk(2026, 1, 24, 23, 59, 59, 999999)
        assert charge_outcome(ISSUE_EXAMPLE, at, ORIGINAL) == INSUFFICIENT

    def test_a_charge_at_until_succeeds(self) -> None:
        assert charge_outcome(ISSUE_EXAMPLE, bkk(2026, 1, 25), ORIGINAL).succeeded

    def test_a_charge_just_before_from_succeeds(self) -> None:
        assert charge_outcome(ISSUE_EXAMPLE, bkk(2026, 1, 19, 23, 59, 59), ORIGINAL).succeeded

    def test_the_same_instant_in_another_offset_is_the_same_instant(self) -> None:
        # 2026-01-24 17:00Z is 2026-01-25 00:00 in Bangkok: until, so it succeeds.
        assert charge_outcome(ISSUE_EXAMPLE, datetime(2026, 1, 24, 17, tzinfo=UTC), ORIGINAL)
        assert charge_outcome(
            ISSUE_EXAMPLE, datetime(2026, 1, 24, 16, 59, tzinfo=UTC), ORIGINAL
        ).failed

    def test_a_window_for_the_original_card_leaves_the_replacement_alone(self) -> None:
        assert charge_outcome(ISSUE_EXAMPLE, bkk(2026, 1, 21), REPLACEMENT).succeeded

    def test_a_window_for_the_replacement_leaves_the_original_alone(self) -> None:
        person = customer(
            declines=(window(bkk(2026, 2, 1), bkk(2026, 3, 1), "do_not_honor", card=REPLACEMENT),)
        )
        assert charge_outcome(person, bkk(2026, 2, 10), ORIGINAL).succeeded
        assert charge_outcome(person, bkk(2026, 2, 10), REPLACEMENT) == Outcome(
            succeeded=False, decline_code="do_not_honor"
        )

    def test_the_first_window_that_holds_the_moment_decides(self) -> None:
        person = customer(
            declines=(
                window(bkk(2026, 1, 20), bkk(2026, 1, 21), "lost_card", advice="do_not_try_again"),
                window(bkk(2026, 1, 1), bkk(2026, 2, 1), "insufficient_funds"),
            )
        )
        assert charge_outcome(person, bkk(2026, 1, 20, 12), ORIGINAL) == Outcome(
            succeeded=False, decline_code="lost_card", advice_code="do_not_try_again"
        )
        assert charge_outcome(person, bkk(2026, 1, 21), ORIGINAL) == INSUFFICIENT

    def test_the_codes_come_through_as_written(self) -> None:
        person = customer(
            declines=(
                dataclasses.replace(
                    window(bkk(2026, 1, 1), bkk(2026, 1, 2), "do_not_honor", advice="x"),
                    network_advice_code="03",
                ),
            )
        )
        assert charge_outcome(person, bkk(2026, 1, 1, 9), ORIGINAL) == Outcome(
            succeeded=False, decline_code="do_not_honor", advice_code="x", network_advice_code="03"
        )

    def test_it_refuses_a_naive_moment(self) -> None:
        with pytest.raises(ValueError, match="naive"):
            charge_outcome(ISSUE_EXAMPLE, datetime(2026, 1, 20), ORIGINAL)  # noqa: DTZ001


class TestExpiry:
    def test_the_card_works_to_the_last_moment_of_its_expiry_month(self) -> None:
        assert charge_outcome(ISSUE_EXAMPLE, bkk(2027, 5, 31, 23, 59, 59), ORIGINAL).succeeded

    def test_the_card_fails_with_expired_card_once_the_month_is_over(self) -> None:
        assert charge_outcome(ISSUE_EXAMPLE, bkk(2027, 6, 1), ORIGINAL) == Outcome(
            succeeded=False, decline_code="expired_card"
        )

    def test_the_month_ends_in_the_customers_time_zone(self) -> None:
        # 2027-05-31 17:00Z is already June in Bangkok.
        assert card_expires_at(ISSUE_EXAMPLE.card, customer=ISSUE_EXAMPLE) == datetime(
            2027, 5, 31, 17, tzinfo=UTC
        )
        assert charge_outcome(ISSUE_EXAMPLE, datetime(2027, 5, 31, 17, tzinfo=UTC), ORIGINAL).failed

    def test_a_december_card_lasts_until_january(self) -> None:
        person = customer(card=SimCard(brand="mastercard", exp_month=12, exp_year=2026))
        assert charge_outcome(person, bkk(2026, 12, 31, 23), ORIGINAL).succeeded
        assert charge_outcome(person, bkk(2027, 1, 1), ORIGINAL).decline_code == "expired_card"

    def test_the_replacement_card_does_not_expire(self) -> None:
        assert charge_outcome(ISSUE_EXAMPLE, bkk(2027, 7, 1), REPLACEMENT).succeeded

    def test_a_decline_window_comes_before_the_expiry(self) -> None:
        person = customer(
            declines=(window(bkk(2027, 6, 1), bkk(2027, 6, 2), "issuer_not_available"),)
        )
        assert charge_outcome(person, bkk(2027, 6, 1, 3), ORIGINAL).decline_code == (
            "issuer_not_available"
        )
        assert charge_outcome(person, bkk(2027, 6, 2), ORIGINAL).decline_code == "expired_card"


class TestReplacement:
    MESSAGES = (bkk(2026, 1, 20, 9), bkk(2026, 1, 23, 10), bkk(2026, 1, 27, 9))

    def test_no_replacement_card_never_takes_over(self) -> None:
        assert replacement_takes_over(customer(), self.MESSAGES) is None

    def test_both_triggers_null_never_takes_over(self) -> None:
        person = customer(replacement=ReplacementCard())
        assert replacement_takes_over(person, self.MESSAGES) is None

    def test_the_card_updater_takes_over_at_its_moment(self) -> None:
        person = customer(replacement=ReplacementCard(at=bkk(2026, 2, 1, 12)))
        assert replacement_takes_over(person, ()) == bkk(2026, 2, 1, 12)

    def test_the_customer_updates_delay_hours_after_the_kth_message(self) -> None:
        person = customer(replacement=ReplacementCard(after_messages=2, delay_hours=24))
        assert replacement_takes_over(person, self.MESSAGES) == bkk(2026, 1, 24, 10)

    def test_fewer_than_k_messages_means_not_yet(self) -> None:
        person = customer(replacement=ReplacementCard(after_messages=2, delay_hours=24))
        assert replacement_takes_over(person, self.MESSAGES[:1]) is None

    def test_the_messages_may_come_in_any_order(self) -> None:
        person = customer(replacement=ReplacementCard(after_messages=2, delay_hours=0))
        shuffled = (self.MESSAGES[2], self.MESSAGES[0], self.MESSAGES[1])
        assert replacement_takes_over(person, shuffled) == self.MESSAGES[1]

    def test_the_earlier_trigger_wins(self) -> None:
        early_updater = customer(
            replacement=ReplacementCard(at=bkk(2026, 1, 22), after_messages=2, delay_hours=24)
        )
        assert replacement_takes_over(early_updater, self.MESSAGES) == bkk(2026, 1, 22)
        late_updater = customer(
            replacement=ReplacementCard(at=bkk(2026, 3, 1), after_messages=2, delay_hours=24)
        )
        assert replacement_takes_over(late_updater, self.MESSAGES) == bkk(2026, 1, 24, 10)
        assert replacement_takes_over(late_updater, ()) == bkk(2026, 3, 1)

    def test_card_in_use_switches_at_the_take_over(self) -> None:
        person = customer(replacement=ReplacementCard(after_messages=1, delay_hours=6))
        messages = self.MESSAGES[:1]
        assert card_in_use(person, bkk(2026, 1, 20, 14, 59), messages) is ORIGINAL
        assert card_in_use(person, bkk(2026, 1, 20, 15), messages) is REPLACEMENT

    def test_card_in_use_ignores_messages_from_the_future(self) -> None:
        person = customer(replacement=ReplacementCard(after_messages=1, delay_hours=0))
        assert card_in_use(person, bkk(2026, 1, 20, 8), self.MESSAGES) is ORIGINAL
