"""The independent referees catch constructed violations and pass clean runs.

Dates: 2026-01-17 is a Saturday, 2026-01-18 a Sunday, 2026-01-12 a Monday;
2026-04-13 is Songkran (a Thai public holiday, a Monday); 2026-01-01 is New
Year's Day (a Thursday).
"""

from __future__ import annotations

import ast
import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dunning.simulator import checkers
from dunning.simulator.checkers import (
    ChargeAttempt,
    ContactRuleChecker,
    NetworkRuleChecker,
    SentMessage,
    allowed_hours,
    check_attempts,
    check_messages,
)

BANGKOK = ZoneInfo("Asia/Bangkok")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 1, 5, 3, tzinfo=UTC)


def thai(at: datetime, channel: str = "email", *, who: str = "cus_th") -> SentMessage:
    return SentMessage(
        at=at, customer_id=who, country="TH", time_zone="Asia/Bangkok", channel=channel
    )


def local(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=zone)


def judge(*messages: SentMessage) -> list[str]:
    return [v.rule for v in check_messages(messages).violations]


class TestThaiContactHours:
    def test_saturday_at_seven_in_the_evening_is_a_violation(self) -> None:
        report = check_messages([thai(local(BANGKOK, 2026, 1, 17, 19))])
        assert report.count == 1
        (message,) = report.messages
        assert "cus_th" in message
        assert "Thai weekend" in message
        assert "08:00-18:00" in message

    def test_a_weekday_at_seven_in_the_evening_is_allowed(self) -> None:
        assert judge(thai(local(BANGKOK, 2026, 1, 12, 19))) == []

    def test_a_weekday_ends_at_eight_in_the_evening(self) -> None:
        assert judge(thai(local(BANGKOK, 2026, 1, 12, 19, 59, 59))) == []
        assert judge(thai(local(BANGKOK, 2026, 1, 13, 20))) == ["contact_hours"]

    def test_every_day_starts_at_eight_in_the_morning(self) -> None:
        assert judge(thai(local(BANGKOK, 2026, 1, 12, 7, 59))) == ["contact_hours"]
        assert judge(thai(local(BANGKOK, 2026, 1, 18, 8))) == []

    def test_a_thai_public_holiday_on_a_monday_ends_at_six(self) -> None:
        assert judge(thai(local(BANGKOK, 2026, 4, 13, 17, 59))) == []
        assert judge(thai(local(BANGKOK, 2026, 4, 20, 19))) == []  # the Monday after
        report = check_messages([thai(local(BANGKOK, 2026, 4, 13, 19))])
        assert report.count == 1
        assert "Songkran" in report.messages[0]

    def test_hours_are_judged_in_the_customers_zone(self) -> None:
        # 12:30Z on a Saturday is 19:30 in Bangkok.
        assert judge(thai(datetime(2026, 1, 17, 12, 30, tzinfo=UTC))) == ["contact_hours"]

    def test_a_second_contact_the_same_thai_day_is_a_violation(self) -> None:
        first = thai(local(BANGKOK, 2026, 1, 12, 9), "sms")
        second = thai(local(BANGKOK, 2026, 1, 12, 14), "email")
        report = check_messages([first, second])
        assert [v.rule for v in report.violations] == ["contact_once_per_day"]
        assert report.violations[0].at == second.at
        assert "email" in report.messages[0]

    def test_one_contact_a_day_on_consecutive_days_is_fine(self) -> None:
        assert (
            judge(thai(local(BANGKOK, 2026, 1, 12, 19, 30)), thai(local(BANGKOK, 2026, 1, 13, 8)))
            == []
        )

    def test_the_day_is_the_bangkok_day_not_the_utc_day(self) -> None:
        # Both are 2026-01-12 in Bangkok although the UTC dates differ.
        early = thai(datetime(2026, 1, 11, 23, 30, tzinfo=UTC))  # 06:30 -> also too early
        late = thai(datetime(2026, 1, 12, 10, tzinfo=UTC))  # 17:00
        assert judge(early, late) == ["contact_hours", "contact_once_per_day"]

    def test_the_cap_is_per_customer(self) -> None:
        at = local(BANGKOK, 2026, 1, 12, 10)
        assert judge(thai(at, who="cus_1"), thai(at, who="cus_2")) == []

    def test_a_thai_business_is_judged_by_the_default_window_and_no_daily_cap(self) -> None:
        saturday = SentMessage(
            at=local(BANGKOK, 2026, 1, 17, 16),
            customer_id="cus_co",
            country="TH",
            time_zone="Asia/Bangkok",
            channel="email",
            is_business=True,
        )
        assert judge(saturday, saturday) == []
        late = SentMessage(
            at=local(BANGKOK, 2026, 1, 17, 17),
            customer_id="cus_co",
            country="TH",
            time_zone="Asia/Bangkok",
            channel="email",
            is_business=True,
        )
        assert judge(late) == ["contact_hours"]


class TestOtherCountries:
    @staticmethod
    def us(at: datetime) -> SentMessage:
        return SentMessage(
            at=at, customer_id="cus_us", country="US", time_zone="America/New_York", channel="sms"
        )

    @staticmethod
    def de(at: datetime) -> SentMessage:
        return SentMessage(
            at=at, customer_id="cus_de", country="DE", time_zone="Europe/Berlin", channel="email"
        )

    def test_the_us_allows_eight_to_nine_every_day(self) -> None:
        assert judge(self.us(local(NEW_YORK, 2026, 1, 18, 8))) == []  # a Sunday
        assert judge(self.us(local(NEW_YORK, 2026, 1, 1, 20, 59))) == []  # a holiday
        assert judge(self.us(local(NEW_YORK, 2026, 1, 12, 21))) == ["contact_hours"]
        assert judge(self.us(local(NEW_YORK, 2026, 1, 12, 7, 59))) == ["contact_hours"]

    def test_the_us_has_no_daily_cap_here(self) -> None:
        at = local(NEW_YORK, 2026, 1, 12, 10)
        assert judge(self.us(at), self.us(at + timedelta(hours=1))) == []

    def test_elsewhere_weekdays_run_eight_to_eight(self) -> None:
        assert judge(self.de(local(BERLIN, 2026, 1, 12, 8))) == []
        assert judge(self.de(local(BERLIN, 2026, 1, 12, 19, 59))) == []
        assert judge(self.de(local(BERLIN, 2026, 1, 12, 20))) == ["contact_hours"]

    def test_elsewhere_saturday_runs_nine_to_five(self) -> None:
        assert judge(self.de(local(BERLIN, 2026, 1, 17, 8, 30))) == ["contact_hours"]
        assert judge(self.de(local(BERLIN, 2026, 1, 17, 9))) == []
        assert judge(self.de(local(BERLIN, 2026, 1, 17, 17))) == ["contact_hours"]

    def test_elsewhere_nothing_on_sunday_or_a_public_holiday(self) -> None:
        assert judge(self.de(local(BERLIN, 2026, 1, 18, 12))) == ["contact_hours"]
        report = check_messages([self.de(local(BERLIN, 2026, 1, 1, 12))])
        assert report.count == 1
        assert "New Year" in report.messages[0]

    def test_an_unknown_country_gets_the_default_window(self) -> None:
        hours, why = allowed_hours(
            "ZZ", datetime(2026, 1, 12, tzinfo=UTC).date(), is_business=False
        )
        assert (str(hours), why) == ("08:00-20:00", "weekday")

    def test_it_refuses_a_naive_moment(self) -> None:
        with pytest.raises(ValueError, match="naive"):
            ContactRuleChecker().record(thai(datetime(2026, 1, 12, 10)))  # noqa: DTZ001


def attempt(
    minutes: float,
    *,
    ok: bool = False,
    code: str | None = "insufficient_funds",
    advice: str | None = None,
    mac: str | None = None,
    brand: str = "visa",
    card: str = "card_1",
    charge: str = "in_1",
    amount: int | None = None,
) -> ChargeAttempt:
    return ChargeAttempt(
        at=T0 + timedelta(minutes=minutes),
        card_id=card,
        brand=brand,
        charge_id=charge,
        succeeded=ok,
        decline_code=None if ok else code,
        advice_code=advice,
        network_advice_code=mac,
        amount=amount,
        currency="" if amount is None else "THB",
    )


def rules(attempts: list[ChargeAttempt]) -> list[str]:
    return [v.rule for v in check_attempts(attempts).violations]


DAY = 24 * 60


class TestVisa:
    def test_fifteen_reattempts_are_allowed(self) -> None:
        attempts = [attempt(i * DAY) for i in range(16)]  # the first decline + 15 reattempts
        assert rules(attempts) == []

    def test_the_sixteenth_reattempt_is_a_violation(self) -> None:
        attempts = [attempt(i * DAY) for i in range(17)]
        report = check_attempts(attempts)
        assert [v.rule for v in report.violations] == ["visa_reattempts_30d"]
        assert report.violations[0].at == attempts[16].at
        assert "reattempt 16" in report.messages[0]
        assert "card_1" in report.messages[0]

    def test_a_successful_sixteenth_reattempt_still_counts(self) -> None:
        attempts = [attempt(i * 60) for i in range(16)] + [attempt(16 * 60, ok=True)]
        assert rules(attempts) == ["visa_reattempts_30d"]

    def test_reattempts_older_than_thirty_days_drop_out(self) -> None:
        attempts = [attempt(i * DAY) for i in range(16)] + [attempt(31 * DAY)]
        assert rules(attempts) == []

    def test_reattempts_are_counted_per_charge(self) -> None:
        attempts = sorted(
            [attempt(i * 60, charge="in_1") for i in range(11)]
            + [attempt(i * 60 + 1, charge="in_2") for i in range(11)],
            key=lambda a: a.at,
        )
        assert rules(attempts) == []

    def test_two_invoices_of_one_amount_on_one_card_are_one_transaction(self) -> None:
        # rules.md 2.1: Visa matches reattempts on card number, merchant and amount.
        # in_1: a decline and 8 reattempts; in_2 (same amount): its first charge follows
        # a decline of that transaction, so it is reattempt 9; 7 more make 16.
        attempts = [attempt(i * 60, amount=49900) for i in range(9)] + [
            attempt(i * 60, charge="in_2", amount=49900) for i in range(9, 17)
        ]
        report = check_attempts(attempts)
        assert [v.rule for v in report.violations] == ["visa_reattempts_30d"]
        assert report.violations[0].at == attempts[16].at

    def test_other_amounts_are_other_transactions(self) -> None:
        attempts = [attempt(i * 60, amount=49900) for i in range(9)] + [
            attempt(i * 60, charge="in_2", amount=29900) for i in range(9, 17)
        ]
        assert rules(attempts) == []

    def test_an_approval_ends_the_declined_transaction(self) -> None:
        # in_1 is paid at its 15th reattempt; in_2 of the same amount starts afresh.
        attempts = [attempt(i * 60, amount=49900) for i in range(15)]
        attempts.append(attempt(15 * 60, ok=True, amount=49900))
        attempts.append(attempt(16 * 60, ok=True, charge="in_2", amount=49900))
        assert rules(attempts) == []

    def test_amex_and_discover_follow_visa(self) -> None:
        for brand in ("amex", "discover"):
            assert rules([attempt(i * 60, brand=brand) for i in range(17)]) == [
                "visa_reattempts_30d"
            ]

    def test_jcb_has_no_count_cap(self) -> None:
        assert rules([attempt(i * 60, brand="jcb") for i in range(30)]) == []


class TestMastercard:
    def test_ten_declines_in_a_day_are_allowed(self) -> None:
        assert rules([attempt(i * 60, brand="mastercard") for i in range(10)]) == []

    def test_the_eleventh_decline_in_twenty_four_hours_is_a_violation(self) -> None:
        attempts = [attempt(i * 60, brand="mastercard") for i in range(11)]
        report = check_attempts(attempts)
        assert [v.rule for v in report.violations] == ["mastercard_declines_24h"]
        assert "decline 11" in report.messages[0]

    def test_the_declines_are_counted_per_card_across_charges(self) -> None:
        attempts = [attempt(i * 60, brand="mastercard", charge=f"in_{i % 3}") for i in range(11)]
        assert rules(attempts) == ["mastercard_declines_24h"]

    def test_an_eleventh_attempt_that_succeeds_is_not_a_decline(self) -> None:
        attempts = [attempt(i * 60, brand="mastercard") for i in range(10)]
        attempts.append(attempt(11 * 60, brand="mastercard", ok=True))
        assert rules(attempts) == []

    def test_the_twenty_four_hours_roll(self) -> None:
        attempts = [attempt(i * 60, brand="mastercard") for i in range(10)]
        attempts.append(attempt(DAY, brand="mastercard"))  # the first has just dropped out
        assert rules(attempts) == []

    def test_the_thirty_sixth_decline_in_thirty_days_is_a_violation(self) -> None:
        attempts = [attempt(i * DAY / 5, brand="mastercard") for i in range(36)]
        assert rules(attempts) == ["mastercard_attempts_30d"]

    def test_the_thirty_sixth_attempt_of_a_transaction_counts_even_when_approved(self) -> None:
        # rules.md 2.2: at most 35 attempts (not declines) of one transaction in 30 days.
        attempts = [attempt(i * DAY / 5, brand="mastercard") for i in range(35)]
        attempts.append(attempt(35 * DAY / 5, brand="mastercard", ok=True))
        report = check_attempts(attempts)
        assert [v.rule for v in report.violations] == ["mastercard_attempts_30d"]
        assert "attempt 36" in report.messages[0]

    def test_the_thirty_day_count_is_per_transaction(self) -> None:
        attempts = [
            attempt(i * DAY / 5, brand="mastercard", charge=f"in_{i % 2}", amount=1000 + i % 2)
            for i in range(40)
        ]
        assert rules(attempts) == []

    def test_a_replacement_card_starts_its_own_count(self) -> None:
        attempts = [attempt(i * 60, brand="mastercard") for i in range(10)]
        attempts.append(attempt(10 * 60, brand="mastercard", card="card_2"))
        assert rules(attempts) == []


class TestNeverRetry:
    @pytest.mark.parametrize("code", ["lost_card", "stolen_card", "pickup_card", "restricted_card"])
    def test_a_retry_after_a_category_one_decline_is_a_violation(self, code: str) -> None:
        report = check_attempts([attempt(0, code=code), attempt(DAY)])
        assert [v.rule for v in report.violations] == ["never_retry"]
        assert code in report.messages[0]

    def test_every_further_retry_counts(self) -> None:
        attempts = [attempt(0, code="lost_card"), attempt(DAY), attempt(2 * DAY, ok=True)]
        assert rules(attempts) == ["never_retry", "never_retry"]

    def test_advice_do_not_try_again_overrides_a_soft_code(self) -> None:
        attempts = [attempt(0, code="generic_decline", advice="do_not_try_again"), attempt(60)]
        assert rules(attempts) == ["never_retry"]

    @pytest.mark.parametrize("mac", ["03", "21", "22", "04"])
    def test_a_retry_after_mastercard_mac_03_21_22_or_04_is_a_violation(self, mac: str) -> None:
        attempts = [
            attempt(0, code="do_not_honor", mac=mac, brand="mastercard"),
            attempt(DAY, brand="mastercard"),
        ]
        assert rules(attempts) == ["never_retry"]

    def test_mac_02_allows_a_retry(self) -> None:
        attempts = [
            attempt(0, code="do_not_honor", mac="02", brand="mastercard"),
            attempt(3 * DAY, brand="mastercard"),
        ]
        assert rules(attempts) == []

    def test_the_replacement_card_may_be_charged(self) -> None:
        attempts = [attempt(0, code="stolen_card"), attempt(60, card="card_2", ok=True)]
        assert rules(attempts) == []

    def test_it_applies_to_every_brand(self) -> None:
        attempts = [attempt(0, code="lost_card", brand="jcb"), attempt(60, brand="jcb")]
        assert rules(attempts) == ["never_retry"]


class TestCleanRuns:
    def test_eight_retries_over_two_weeks_then_success_are_clean(self) -> None:
        for brand in ("visa", "mastercard", "amex"):
            attempts = [attempt(i * 42 * 60, brand=brand) for i in range(9)]
            attempts.append(attempt(9 * 42 * 60, brand=brand, ok=True))
            assert rules(attempts) == []

    def test_first_time_successes_are_clean(self) -> None:
        attempts = [attempt(i, ok=True, charge=f"in_{i}") for i in range(50)]
        assert rules(attempts) == []

    def test_a_clean_thai_week_is_clean(self) -> None:
        week = [thai(local(BANGKOK, 2026, 1, d, 10)) for d in range(17, 24)]
        assert check_messages(week).count == 0


class TestFeeding:
    def test_the_checker_keeps_a_running_count(self) -> None:
        checker = NetworkRuleChecker()
        assert checker.record(attempt(0, code="lost_card")) == ()
        (found,) = checker.record(attempt(60))
        assert found.rule == "never_retry"
        assert str(found) == found.message
        assert checker.count == 1
        assert checker.report().violations == (found,)

    def test_attempts_on_one_card_must_come_in_order(self) -> None:
        checker = NetworkRuleChecker()
        checker.record(attempt(60))
        checker.record(attempt(0, card="card_2"))  # another card: its own clock
        with pytest.raises(ValueError, match="time order"):
            checker.record(attempt(0))

    def test_messages_may_come_in_any_order(self) -> None:
        later = thai(local(BANGKOK, 2026, 1, 12, 15))
        earlier = thai(local(BANGKOK, 2026, 1, 12, 9))
        assert judge(later, earlier) == ["contact_once_per_day"]

    def test_offsets_do_not_matter_only_instants(self) -> None:
        plus7 = timezone(timedelta(hours=7))
        assert judge(thai(datetime(2026, 1, 17, 19, tzinfo=plus7))) == ["contact_hours"]


def test_the_checkers_do_not_import_the_engines_rules() -> None:
    """A referee that reads the player's rulebook agrees with its mistakes."""
    tree = ast.parse(Path(checkers.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not [name for name in imported if name.startswith("dunning")], imported


class TestCustomerAction:
    """rules.md 1.2 CUSTOMER: stop retrying the same credentials until they change."""

    @pytest.mark.parametrize(
        "code", ["expired_card", "incorrect_cvc", "authentication_required", "incorrect_zip"]
    )
    def test_a_retry_of_the_same_card_after_a_customer_action_decline_is_a_violation(
        self, code: str
    ) -> None:
        report = check_attempts([attempt(0, code=code), attempt(DAY)])
        assert [v.rule for v in report.violations] == ["customer_action"]
        assert code in report.messages[0]

    def test_advice_confirm_card_data_asks_the_customer_whatever_the_code(self) -> None:
        attempts = [attempt(0, code="insufficient_funds", advice="confirm_card_data"), attempt(60)]
        assert rules(attempts) == ["customer_action"]

    def test_mastercard_mac_01_asks_for_new_credentials(self) -> None:
        attempts = [
            attempt(0, code="do_not_honor", mac="01", brand="mastercard"),
            attempt(DAY, brand="mastercard"),
        ]
        assert rules(attempts) == ["customer_action"]

    def test_advice_try_again_later_overrides_the_code(self) -> None:
        attempts = [attempt(0, code="expired_card", advice="try_again_later"), attempt(DAY)]
        assert rules(attempts) == []

    def test_the_new_card_may_be_charged(self) -> None:
        attempts = [attempt(0, code="expired_card"), attempt(DAY, card="card_2", ok=True)]
        assert rules(attempts) == []

    def test_the_first_charge_of_another_invoice_is_not_a_retry(self) -> None:
        attempts = [attempt(0, code="expired_card"), attempt(DAY, charge="in_2")]
        assert rules(attempts) == []

    def test_a_retry_breaking_both_card_rules_counts_twice(self) -> None:
        attempts = [attempt(0, code="expired_card"), attempt(1, code="lost_card"), attempt(DAY)]
        assert rules(attempts) == ["customer_action", "never_retry", "customer_action"]

    def test_every_further_retry_counts(self) -> None:
        attempts = [attempt(0, code="expired_card"), attempt(DAY), attempt(2 * DAY)]
        assert rules(attempts) == ["customer_action", "customer_action"]


class TestMastercardAdvisedWait:
    """rules.md 2.2 MAC 24-30 and acceptance case N04."""

    def test_a_retry_before_mac_25s_day_is_a_violation_and_at_it_is_not(self) -> None:
        declined = attempt(0, code="insufficient_funds", mac="25", brand="mastercard")
        early = ChargeAttempt(
            at=declined.at + timedelta(hours=24) - timedelta(seconds=1),
            card_id="card_1",
            brand="mastercard",
            charge_id="in_1",
            succeeded=False,
            decline_code="insufficient_funds",
        )
        report = check_attempts([declined, early])
        assert [v.rule for v in report.violations] == ["mastercard_advised_wait"]
        assert "MAC 25" in report.messages[0]
        on_time = dataclasses.replace(early, at=declined.at + timedelta(hours=24))
        assert rules([declined, on_time]) == []

    @pytest.mark.parametrize(
        ("mac", "wait"),
        [
            ("24", 60),
            ("26", 2 * DAY),
            ("27", 4 * DAY),
            ("28", 6 * DAY),
            ("29", 8 * DAY),
            ("30", 10 * DAY),
        ],
    )
    def test_each_code_sets_its_own_wait(self, mac: str, wait: int) -> None:
        declined = attempt(0, mac=mac, brand="mastercard")
        assert rules([declined, attempt(wait - 1, brand="mastercard")]) == [
            "mastercard_advised_wait"
        ]
        assert rules([declined, attempt(wait, brand="mastercard")]) == []

    def test_the_wait_is_per_transaction_and_card(self) -> None:
        declined = attempt(0, mac="30", brand="mastercard")
        other_invoice = attempt(60, brand="mastercard", charge="in_2")
        new_card = attempt(120, brand="mastercard", card="card_2")
        assert rules([declined, other_invoice, new_card]) == []

    def test_a_later_decline_without_advice_does_not_shorten_the_wait(self) -> None:
        attempts = [
            attempt(0, mac="27", brand="mastercard"),
            attempt(DAY, brand="mastercard"),  # too early: counted
            attempt(2 * DAY, brand="mastercard"),  # still inside the four days: counted
        ]
        assert rules(attempts) == ["mastercard_advised_wait", "mastercard_advised_wait"]


class TestDaylightSaving:
    """Hours are the customer's wall clock on the day itself, not a fixed offset."""

    @staticmethod
    def us(at: datetime) -> SentMessage:
        return SentMessage(
            at=at, customer_id="cus_us", country="US", time_zone="America/New_York", channel="email"
        )

    def test_eight_in_the_morning_moves_with_new_yorks_spring_forward(self) -> None:
        # 2026-03-08: EST (-05:00) until 02:00, EDT (-04:00) after.
        assert judge(self.us(datetime(2026, 3, 8, 12, tzinfo=UTC))) == []  # 08:00 EDT
        assert judge(self.us(datetime(2026, 3, 8, 11, 59, tzinfo=UTC))) == ["contact_hours"]
        assert judge(self.us(datetime(2026, 3, 7, 12, 59, tzinfo=UTC))) == ["contact_hours"]

    def test_nine_in_the_evening_moves_with_new_yorks_fall_back(self) -> None:
        # 2026-11-01: EDT until 02:00, EST after; 21:00 EST is 02:00Z the next day.
        assert judge(self.us(datetime(2026, 11, 2, 1, 59, tzinfo=UTC))) == []
        assert judge(self.us(datetime(2026, 11, 2, 2, tzinfo=UTC))) == ["contact_hours"]

    def test_berlins_saturday_window_after_the_clocks_go_forward(self) -> None:
        # Saturday 2026-03-28 is CET (+01:00); Sunday 2026-03-29 CEST: nothing on Sunday.
        de = {"customer_id": "cus_de", "country": "DE", "time_zone": "Europe/Berlin"}
        saturday_late = SentMessage(
            at=datetime(2026, 3, 28, 15, 59, tzinfo=UTC), channel="email", **de
        )
        assert judge(saturday_late) == []  # 16:59 CET
        sunday_small_hours = SentMessage(
            at=datetime(2026, 3, 28, 23, 30, tzinfo=UTC), channel="email", **de
        )
        assert judge(sunday_small_hours) == ["contact_hours"]  # 00:30 Sunday
