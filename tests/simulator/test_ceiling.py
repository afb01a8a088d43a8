"""The clairvoyant ceiling: the first moment any strategy's retry would have been accepted.

Times in the customer's zone (Asia/Bangkok, +07:00); the grid is whole hours from
midnight UTC, as in a scenario that starts at 00:00Z.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dunning.simulator.ceiling import Grid, first_chance
from dunning.simulator.scenario import CardRole, SimCard, SimCustomer
from tests.simulator.test_world import ORIGINAL, REPLACEMENT, bkk, customer, window

HOURLY = Grid(datetime(2026, 1, 1, tzinfo=UTC), timedelta(hours=1))
FAILED = bkk(2026, 1, 20, 9, 30)
TWO_WEEKS = FAILED + timedelta(weeks=2)


def chance(
    who: SimCustomer,
    *,
    failed_on: CardRole = ORIGINAL,
    closes_at: datetime = TWO_WEEKS,
    replaced_at: datetime | None = None,
) -> datetime | None:
    return first_chance(
        who,
        failed_at=FAILED,
        failed_on=failed_on,
        closes_at=closes_at,
        replaced_at=replaced_at,
        grid=HOURLY,
    )


class TestGrid:
    def test_the_first_moment_strictly_after(self) -> None:
        assert HOURLY.after(bkk(2026, 1, 20, 9, 30)) == bkk(2026, 1, 20, 10)
        assert HOURLY.after(bkk(2026, 1, 20, 10)) == bkk(2026, 1, 20, 11)

    def test_a_grid_that_does_not_start_on_the_hour(self) -> None:
        grid = Grid(datetime(2026, 1, 1, 0, 20, tzinfo=UTC), timedelta(hours=1))
        assert grid.after(datetime(2026, 1, 2, 5, 0, tzinfo=UTC)) == datetime(
            2026, 1, 2, 5, 20, tzinfo=UTC
        )


class TestTheCardThatFailed:
    def test_when_the_money_arrives_at_the_window_end(self) -> None:
        who = customer(declines=(window(bkk(2026, 1, 20), bkk(2026, 1, 25, 8, 15)),))
        assert chance(who) == bkk(2026, 1, 25, 9)  # the first pass at or after 08:15

    def test_a_window_ending_on_a_pass_is_that_pass(self) -> None:
        who = customer(declines=(window(bkk(2026, 1, 20), bkk(2026, 1, 25, 8)),))
        assert chance(who) == bkk(2026, 1, 25, 8)

    def test_back_to_back_windows_are_one_stretch(self) -> None:
        who = customer(
            declines=(
                window(bkk(2026, 1, 20), bkk(2026, 1, 22)),
                window(bkk(2026, 1, 22), bkk(2026, 1, 24), "do_not_honor"),
            )
        )
        assert chance(who) == bkk(2026, 1, 24)

    def test_a_short_decline_is_over_by_the_next_pass(self) -> None:
        who = customer(declines=(window(bkk(2026, 1, 20, 9), bkk(2026, 1, 20, 9, 45)),))
        assert chance(who) == bkk(2026, 1, 20, 10)

    def test_money_that_comes_after_the_window_is_out_of_reach(self) -> None:
        who = customer(declines=(window(bkk(2026, 1, 20), bkk(2026, 2, 10)),))
        assert chance(who) is None

    def test_the_window_end_itself_is_still_in(self) -> None:
        who = customer(declines=(window(bkk(2026, 1, 20), bkk(2026, 2, 3, 9)),))
        assert chance(who, closes_at=bkk(2026, 2, 3, 9)) == bkk(2026, 2, 3, 9)

    @pytest.mark.parametrize(
        ("code", "advice"),
        [
            ("stolen_card", None),  # never retry
            ("insufficient_funds", "do_not_try_again"),  # the advice code wins
            ("expired_card", None),  # the customer must act
            ("authentication_required", None),
        ],
    )
    def test_no_retry_on_a_card_whose_decline_forbids_it(self, code: str, advice: str) -> None:
        who = customer(declines=(window(bkk(2026, 1, 20), bkk(2026, 1, 21), code, advice=advice),))
        assert chance(who) is None

    def test_an_expired_card_never_comes_back(self) -> None:
        expired = SimCard(brand="visa", exp_month=12, exp_year=2025)
        assert chance(customer(card=expired)) is None


class TestTheReplacementCard:
    def test_tried_from_the_pass_after_it_took_over(self) -> None:
        who = customer(declines=(window(bkk(2026, 1, 20), bkk(2026, 2, 28), "expired_card"),))
        assert chance(who, replaced_at=bkk(2026, 1, 23, 14, 5)) == bkk(2026, 1, 23, 15)

    def test_a_card_that_took_over_by_the_failure_s_pass_is_tried_in_that_pass(self) -> None:
        # The pass charges first (declined on the old card), then takes the new
        # card, then retries: all at the same moment.
        who = customer(declines=(window(bkk(2026, 1, 20), bkk(2026, 2, 28), "stolen_card"),))
        failed = bkk(2026, 1, 20, 10)
        on_grid = first_chance(
            who,
            failed_at=failed,
            failed_on=ORIGINAL,
            closes_at=failed + timedelta(weeks=2),
            replaced_at=bkk(2026, 1, 20, 9, 30),
            grid=HOURLY,
        )
        assert on_grid == failed

    def test_the_earlier_of_the_two_cards(self) -> None:
        who = customer(declines=(window(bkk(2026, 1, 20), bkk(2026, 1, 22)),))
        assert chance(who, replaced_at=bkk(2026, 1, 25)) == bkk(2026, 1, 22)
        assert chance(who, replaced_at=bkk(2026, 1, 21)) == bkk(2026, 1, 21)

    def test_a_new_card_can_be_declined_too(self) -> None:
        who = customer(
            declines=(
                window(bkk(2026, 1, 20), bkk(2026, 2, 28), "lost_card"),
                window(bkk(2026, 1, 23), bkk(2026, 1, 26), card=REPLACEMENT),
            )
        )
        assert chance(who, replaced_at=bkk(2026, 1, 23)) == bkk(2026, 1, 26)

    def test_a_new_card_after_the_window_comes_too_late(self) -> None:
        who = customer(declines=(window(bkk(2026, 1, 20), bkk(2026, 2, 28), "stolen_card"),))
        assert chance(who, replaced_at=TWO_WEEKS + timedelta(hours=1)) is None

    def test_a_failure_on_the_replacement_has_no_third_card(self) -> None:
        who = customer(
            declines=(window(bkk(2026, 1, 20), bkk(2026, 2, 28), "stolen_card", card=REPLACEMENT),)
        )
        assert chance(who, failed_on=REPLACEMENT, replaced_at=bkk(2026, 1, 1)) is None
