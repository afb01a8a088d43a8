"""Judging one proposed contact against a rule pack: send now, later, or never.

Pure: the moment, the customer and the contact history are arguments.  Windows
are judged on the customer's local calendar (zoneinfo), so a daylight-saving
change moves the UTC instant of 08:00, never the local hour.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dunning.core.contact_rules.packs import CapAction, RulePack, Window, pack_for
from dunning.core.contact_rules.public_holidays import holiday_name
from dunning.core.contacts import Channel, Contact, Debtor, Verdict

# A year and a month of local days: enough to step over any run of holidays and
# capped days a real pack produces; a pack that allows nothing in that span blocks.
MAX_SEARCH_DAYS = 400

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def earliest_contact(
    pack: RulePack,
    *,
    at: datetime,
    channel: Channel,
    debtor: Debtor,
    history: Sequence[Contact],
    debt: str = "",
) -> Verdict:
    """The earliest moment at or after `at` that `pack` allows this contact, in UTC.

    A contact outside its window or over a daily cap is deferred, never dropped;
    an opt-out blocks its channel only.  Every deferral or block carries reasons
    naming the rule and its source.
    """
    if at.utcoffset() is None:
        raise ValueError("at must be an aware datetime")
    if channel in debtor.opted_out:
        return Verdict(None, (f"the customer opted out of {channel} ({pack.opt_out_source})",))
    try:
        zone = ZoneInfo(debtor.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return Verdict(
            None,
            (f"unknown time zone {debtor.time_zone!r}: contact hours cannot be judged",),
        )
    judge = _Judge(pack=pack, zone=zone, debtor=debtor, channel=channel, debt=debt)
    return judge.search(at.astimezone(UTC), history)


class RulePackContactRules:
    """The `ContactRules` the planner uses: picks the debtor's pack, then judges."""

    def __init__(self, *, overrides: Mapping[str, RulePack] | None = None) -> None:
        self.overrides: Mapping[str, RulePack] = MappingProxyType(dict(overrides or {}))

    def pack_for(self, debtor: Debtor) -> RulePack:
        return pack_for(debtor, overrides=self.overrides)

    def earliest(
        self,
        *,
        at: datetime,
        channel: Channel,
        debtor: Debtor,
        history: Sequence[Contact],
        debt: str = "",
    ) -> Verdict:
        return earliest_contact(
            self.pack_for(debtor),
            at=at,
            channel=channel,
            debtor=debtor,
            history=history,
            debt=debt,
        )


def local_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time.

    fold=0: an ambiguous time (autumn) is its first occurrence; a missing one
    (spring) lands just after the gap, so a window never starts inside it.
    """
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)


def window_on(pack: RulePack, *, country: str, day: date) -> tuple[Window | None, str]:
    """The pack's window on a local day and how the day is described in reasons."""
    if pack.observes_holidays:
        name = holiday_name(country, day)
        if name is not None:
            return pack.holiday, f"a public holiday ({name})"
    return pack.week[day.weekday()], f"a {_DAY_NAMES[day.weekday()]}"


def _same_debt(a: str, b: str) -> bool:
    # An unnamed debt could be any debt, so it counts against every one (conservative).
    return a == b or not a or not b


@dataclasses.dataclass(frozen=True, slots=True)
class _Judge:
    pack: RulePack
    zone: ZoneInfo
    debtor: Debtor
    channel: Channel
    debt: str

    def search(self, asked: datetime, history: Sequence[Contact]) -> Verdict:
        zone_name = self.debtor.time_zone
        per_day = Counter(c.at.astimezone(self.zone).date() for c in history)
        calls: Counter[date] = Counter()
        conversations: list[date] = []
        if self.channel is Channel.CALL:
            for c in history:
                if not _same_debt(c.debt, self.debt):
                    continue
                if c.channel is Channel.CALL:
                    calls[c.at.astimezone(self.zone).date()] += 1
                if c.conversation:
                    conversations.append(c.at.astimezone(self.zone).date())

        reasons: list[str] = []

        def note(reason: str) -> None:
            if reason not in reasons:
                reasons.append(reason)

        candidate = asked
        day = asked.astimezone(self.zone).date()
        for _ in range(MAX_SEARCH_DAYS):
            window, label = window_on(self.pack, country=self.debtor.country, day=day)
            if window is None:
                note(f"no contact on {label} in {zone_name} ({self.pack.hours_source})")
            else:
                start = local_instant(day, window.start, self.zone)
                end = local_instant(day, window.end, self.zone)
                if not start <= candidate < end and candidate == asked:
                    note(f"outside {window} {zone_name} on {label} ({self.pack.hours_source})")
                candidate = max(candidate, start)
                if candidate < end:
                    daily = self._daily_cap_reached(day, per_day)
                    if daily is not None:
                        note(daily)
                    else:
                        call = self._call_rule_broken(day, calls, conversations)
                        if call is None:
                            return Verdict(candidate, tuple(reasons))
                        note(call)
                        if self.pack.call_cap_action is CapAction.BLOCK:
                            return self._blocked_call(asked, history, reasons)
            day += timedelta(days=1)
            candidate = max(candidate, local_instant(day, time(0), self.zone))
        note(f"no allowed moment within {MAX_SEARCH_DAYS} days ({self.pack.title} rules)")
        return Verdict(None, tuple(reasons))

    def _daily_cap_reached(self, day: date, per_day: Counter[date]) -> str | None:
        cap = self.pack.daily_cap
        if cap is None or per_day[day] < cap:
            return None
        return (
            f"already contacted on {day} in {self.debtor.time_zone}; at most {cap} contact(s) "
            f"a day across all channels and debts ({self.pack.daily_cap_source})"
        )

    def _call_rule_broken(
        self, day: date, calls: Counter[date], conversations: list[date]
    ) -> str | None:
        pack = self.pack
        if self.channel is not Channel.CALL:
            return None
        wait = pack.conversation_wait_days
        if wait is not None:
            for talked in conversations:
                if talked <= day < talked + timedelta(days=wait):
                    return (
                        f"a conversation about this debt on {talked}; no call for "
                        f"{wait} days counting that day ({pack.conversation_wait_source})"
                    )
        if pack.call_cap is not None:
            span = pack.call_cap_days
            # Every run of `span` consecutive days that contains `day` must stay within
            # the cap once this call is added, scheduled later calls included.
            for offset in range(span):
                first = day - timedelta(days=span - 1 - offset)
                made = sum(calls[first + timedelta(days=i)] for i in range(span))
                if made >= pack.call_cap:
                    return (
                        f"{made} calls about this debt from {first} to "
                        f"{first + timedelta(days=span - 1)}; at most {pack.call_cap} in "
                        f"{span} consecutive days ({pack.call_cap_source})"
                    )
        return None

    def _blocked_call(
        self, asked: datetime, history: Sequence[Contact], reasons: list[str]
    ) -> Verdict:
        # Reg F's presumptions (acceptance cases U05, U06) block the call; the reason
        # still says when the same debt may be called again, for the planner and the timeline.
        deferring = dataclasses.replace(
            self, pack=dataclasses.replace(self.pack, call_cap_action=CapAction.DEFER)
        )
        resume = deferring.search(asked, history).allowed_at
        if resume is None:
            return Verdict(None, (*reasons, "call blocked; no later call allowed"))
        local = resume.astimezone(self.zone)
        return Verdict(
            None,
            (
                *reasons,
                f"call blocked; calls about this debt allowed again from "
                f"{local:%Y-%m-%d %H:%M} {self.debtor.time_zone}",
            ),
        )
