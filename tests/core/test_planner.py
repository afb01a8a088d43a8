from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dunning.core.cases import CaseFacts, CaseState
from dunning.core.contacts import Channel, Contact, Debtor, Verdict
from dunning.core.planner import Plan, SentStep, choose_variant, plan
from dunning.core.policy import (
    CHARGE_AUTOMATICALLY_DEFAULT,
    SEND_INVOICE_DEFAULT,
    Action,
    Criteria,
    Policy,
    Step,
    Tone,
    Variant,
    validate,
)

OPENS, CLOSES = time(8), time(20)


@dataclass(frozen=True)
class DaytimeOncePerDay:
    """A fake rule pack: 08:00-20:00 UTC, one contact a day (any channel), opt-outs block."""

    def earliest(
        self,
        *,
        at: datetime,
        channel: Channel,
        debtor: Debtor,
        history: Sequence[Contact],
        debt: str = "",
    ) -> Verdict:
        if channel in debtor.opted_out:
            return Verdict(None, (f"opted out of {channel}",))
        used = {contact.at.date() for contact in history}
        moment, reasons = at, list[str]()
        while True:
            next_morning = datetime.combine(moment.date() + timedelta(days=1), OPENS, UTC)
            if moment.time() < OPENS:
                moment, reason = datetime.combine(moment.date(), OPENS, UTC), "before 08:00"
            elif moment.time() >= CLOSES:
                moment, reason = next_morning, "after 20:00"
            elif moment.date() in used:
                moment, reason = next_morning, "one contact a day"
            else:
                return Verdict(moment, tuple(reasons))
            reasons.append(reason)


RULES = DaytimeOncePerDay()
DEBTOR = Debtor(time_zone="UTC", country="TH", is_business=False)
DUE = datetime(2026, 3, 15, tzinfo=UTC)  # a Sunday


def invoice_case(**kwargs: object) -> CaseFacts:
    base = CaseFacts("case-1", CaseState.ACTIVE, "send_invoice", "THB", 150_000, due_at=DUE)
    return replace(base, **kwargs)  # type: ignore[arg-type]


def plan_at(
    now: datetime,
    *,
    case: CaseFacts | None = None,
    policy: Policy = SEND_INVOICE_DEFAULT,
    history: Sequence[SentStep | Contact] = (),
    debtor: Debtor = DEBTOR,
) -> Plan:
    return plan(
        case=case or invoice_case(),
        policy=policy,
        history=history,
        rules=RULES,
        debtor=debtor,
        now=now,
    )


@dataclass
class Run:
    """What a simulated worker did: every plan, and what went out when."""

    plans: list[tuple[datetime, Plan]]
    history: list[SentStep | Contact]
    finished: bool

    @property
    def sent(self) -> list[SentStep]:
        return [item for item in self.history if isinstance(item, SentStep)]


def simulate(
    *,
    case: CaseFacts,
    policy: Policy,
    start: datetime,
    history: Sequence[SentStep | Contact] = (),
    debtor: Debtor = DEBTOR,
    bound: int = 200,
) -> Run:
    """Plan, carry out, and wake at next_wake_at, as the worker does, until nothing is left."""
    now, done, plans = start, list(history), []
    for _ in range(bound):
        result = plan(case=case, policy=policy, history=done, rules=RULES, debtor=debtor, now=now)
        plans.append((now, result))
        done += [SentStep(a.step, a.due_at, a.channel, a.variant) for a in result.actions]
        done += [SentStep(key, now) for key in dict.fromkeys(e.step for e in result.effects)]
        if result.next_wake_at is None:
            return Run(plans, done, finished=True)
        now = result.next_wake_at
    return Run(plans, done, finished=False)


def timeline(run: Run) -> list[tuple[str, str]]:
    return [(f"{s.at:%a %Y-%m-%d %H:%M}", s.step) for s in run.sent]


# --- the default policies over a timeline ---------------------------------------------------


def test_an_invoice_due_on_march_15_gets_the_default_reminders_on_these_days() -> None:
    run = simulate(
        case=invoice_case(), policy=SEND_INVOICE_DEFAULT, start=datetime(2026, 3, 1, 10, tzinfo=UTC)
    )
    assert run.finished
    assert timeline(run) == [
        ("Thu 2026-03-12 08:00", "courtesy"),
        ("Mon 2026-03-16 08:00", "overdue_1"),
        ("Mon 2026-03-23 08:00", "overdue_2"),
        ("Mon 2026-03-30 08:00", "final"),
        # Due+22d is 04-06 00:00, but the final notice gave until 04-06 08:00.
        ("Mon 2026-04-06 08:00", "uncollectible"),
    ]


def test_the_final_notice_states_a_deadline_a_week_after_it_goes_out() -> None:
    result = plan_at(datetime(2026, 3, 30, 8, tzinfo=UTC), history=_sent("courtesy", "overdue_2"))
    [notice] = result.actions
    assert (notice.step, notice.tone, notice.template) == (
        "final",
        Tone.FINAL,
        "send_invoice.final",
    )
    assert notice.deadline_at == datetime(2026, 4, 6, 8, tzinfo=UTC)


def test_the_final_action_is_emitted_as_an_effect_not_a_message() -> None:
    history = [*_sent("courtesy", "overdue_1", "overdue_2"), SentStep("final", _at(3, 30, 8))]
    result = plan_at(datetime(2026, 4, 6, 8, tzinfo=UTC), history=history)
    assert result.actions == ()
    assert [(e.step, e.action) for e in result.effects] == [
        ("uncollectible", Action.MARK_UNCOLLECTIBLE)
    ]
    assert result.next_wake_at is None


def test_a_failed_payment_is_told_at_once_then_reminded_while_retries_continue() -> None:
    failed = datetime(2026, 3, 15, 14, 30, tzinfo=UTC)
    case = invoice_case(collection_method="charge_automatically", due_at=None, failed_at=failed)
    run = simulate(case=case, policy=CHARGE_AUTOMATICALLY_DEFAULT, start=failed)
    assert timeline(run) == [
        ("Sun 2026-03-15 14:30", "failed"),
        ("Wed 2026-03-18 14:30", "reminder_1"),
        ("Sun 2026-03-22 14:30", "reminder_2"),
        ("Sun 2026-03-29 14:30", "final"),
        ("Sun 2026-04-05 14:30", "cancel"),
    ]
    _, last = run.plans[-1]
    assert [e.action for e in last.effects] == [Action.CANCEL, Action.MARK_UNCOLLECTIBLE]
    first = run.plans[0][1].actions[0]
    assert (first.template, first.due_at) == ("charge.failed", failed)


def test_a_payment_failing_at_night_is_told_the_next_morning() -> None:
    failed = datetime(2026, 3, 15, 22, 10, tzinfo=UTC)
    case = invoice_case(collection_method="charge_automatically", failed_at=failed)
    result = plan_at(failed, case=case, policy=CHARGE_AUTOMATICALLY_DEFAULT)
    assert result.actions == ()
    [deferral] = result.deferred
    assert (deferral.step, deferral.until) == ("failed", datetime(2026, 3, 16, 8, tzinfo=UTC))
    assert deferral.reasons == ("after 20:00",)
    assert result.next_wake_at == deferral.until


# --- catching up, pausing, variants ----------------------------------------------------------


def test_a_case_imported_late_gets_only_the_latest_due_reminder() -> None:
    result = plan_at(datetime(2026, 3, 25, 10, tzinfo=UTC))
    assert [a.step for a in result.actions] == ["overdue_2"]
    assert [s.step for s in result.skipped] == ["courtesy", "overdue_1"]
    assert result.next_wake_at == datetime(2026, 3, 30, tzinfo=UTC)


def test_a_case_imported_after_the_whole_schedule_still_gets_its_final_notice_first() -> None:
    now = datetime(2026, 5, 1, 10, tzinfo=UTC)
    result = plan_at(now)
    assert [a.step for a in result.actions] == ["final"]
    assert result.effects == ()
    assert [s.step for s in result.skipped] == ["courtesy", "overdue_1", "overdue_2"]
    # The deadline runs from the notice, so the consequence waits a week.
    assert result.next_wake_at == now + timedelta(days=7)


def test_nothing_is_planned_for_a_paused_case() -> None:
    result = plan_at(datetime(2026, 3, 25, 10, tzinfo=UTC), case=invoice_case(state="paused"))
    assert result == Plan(notes=("the case is paused: nothing is planned",))


def test_a_second_channel_waits_for_the_next_day_when_only_one_contact_a_day_is_allowed() -> None:
    policy = Policy("p", 1, "p", Criteria(), (_step("both", 0, Channel.EMAIL, Channel.SMS),))
    now = datetime(2026, 3, 15, 9, tzinfo=UTC)
    result = plan_at(now, policy=policy)
    assert [a.channel for a in result.actions] == [Channel.EMAIL]
    assert [(d.channel, d.until) for d in result.deferred] == [
        (Channel.SMS, datetime(2026, 3, 16, 8, tzinfo=UTC))
    ]


def test_a_channel_still_waiting_is_dropped_when_the_next_step_falls_due() -> None:
    first, second = _step("first", 0, Channel.EMAIL, Channel.SMS), _step("second", 2, Channel.EMAIL)
    policy = Policy("p", 1, "p", Criteria(), (first, second))
    history = [SentStep("first", datetime(2026, 3, 15, 9, tzinfo=UTC), Channel.EMAIL)]
    result = plan_at(datetime(2026, 3, 17, 9, tzinfo=UTC), policy=policy, history=history)
    assert [(a.step, a.channel) for a in result.actions] == [("second", Channel.EMAIL)]
    assert [(s.step, s.channel) for s in result.skipped] == [("first", Channel.SMS)]


def test_an_opted_out_channel_is_blocked_with_its_reason() -> None:
    debtor = replace(DEBTOR, opted_out=frozenset({Channel.EMAIL}))
    result = plan_at(datetime(2026, 3, 16, 9, tzinfo=UTC), debtor=debtor)
    [deferral] = result.deferred
    assert (deferral.until, deferral.reasons) == (None, ("opted out of email",))


def test_a_case_without_a_due_date_says_why_nothing_is_scheduled() -> None:
    result = plan_at(datetime(2026, 3, 16, 9, tzinfo=UTC), case=invoice_case(due_at=None))
    assert result.actions == () and result.next_wake_at is None
    assert result.notes == ("step 'courtesy' waits for a due date, and the case has none",)


def test_variants_are_chosen_by_weight_and_the_same_for_the_same_case() -> None:
    step = replace(SEND_INVOICE_DEFAULT.steps[1], variants=(Variant("a", 1), Variant("b", 3)))
    chosen = Counter(choose_variant(case_id=f"case-{n}", step=step) for n in range(4000))
    assert 0.70 < chosen["b"] / 4000 < 0.80
    assert choose_variant(case_id="case-7", step=step) == choose_variant(
        case_id="case-7", step=step
    )
    assert choose_variant(case_id="case-7", step=SEND_INVOICE_DEFAULT.steps[1]) == ""


# --- properties over random policies and histories -------------------------------------------

CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.CALL)
moments = st.datetimes(
    min_value=datetime(2026, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive; timezones= makes them aware
    max_value=datetime(2026, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    count = draw(st.integers(1, 5))
    hours = sorted(draw(st.lists(st.integers(-5 * 24, 40 * 24), min_size=count, max_size=count)))
    tones = sorted(
        draw(st.lists(st.sampled_from(Tone), min_size=count, max_size=count)), key=lambda t: t.rank
    )
    steps = []
    for index, (hour, tone) in enumerate(zip(hours, tones, strict=True)):
        channels = tuple(draw(st.lists(st.sampled_from(CHANNELS), min_size=1, unique=True)))
        last = index == count - 1
        actions = draw(st.lists(st.sampled_from(Action), unique=True)) if last else []
        if not last and draw(st.booleans()):
            actions = [Action.LATE_FEE]
        deadline = draw(st.none() | st.integers(1, 10).map(lambda d: timedelta(days=d)))
        weights = draw(st.lists(st.integers(1, 5), max_size=3))
        steps.append(
            Step(
                f"s{index}",
                timedelta(hours=hour),
                tone,
                channels=channels,
                templates={c: f"t{index}.{c}" for c in channels},
                actions=tuple(actions),
                deadline=deadline,
                variants=tuple(Variant(f"v{n}", w) for n, w in enumerate(weights)),
            )
        )
    policy = Policy("random", 1, "random", Criteria(), tuple(steps))
    assert validate(policy) == []
    return policy


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Policy, CaseFacts, list[SentStep | Contact], datetime]:
    policy = draw(policies())
    now = draw(moments)
    due = draw(moments)
    case = invoice_case(due_at=due, case_id=draw(st.sampled_from(["c1", "c2", "c3"])))
    before_now = st.datetimes(
        min_value=(now - timedelta(days=60)).replace(tzinfo=None),
        max_value=now.replace(tzinfo=None),
        timezones=st.just(UTC),
    )
    keys = [step.key for step in policy.steps]
    sent = st.builds(
        SentStep,
        step=st.sampled_from(keys),
        at=before_now,
        channel=st.none() | st.sampled_from(CHANNELS),
    )
    others = st.builds(Contact, at=before_now, channel=st.sampled_from(CHANNELS))
    history = draw(st.lists(sent | others, max_size=8))
    return policy, case, history, now


debtors = st.builds(
    Debtor,
    time_zone=st.just("UTC"),
    country=st.just("TH"),
    is_business=st.just(False),
    opted_out=st.frozensets(st.sampled_from(CHANNELS), max_size=2),
)


def _in_window(moment: datetime) -> bool:
    return OPENS <= moment.time() < CLOSES


@given(scenarios(), debtors)
def test_no_message_is_due_outside_the_allowed_window(scenario: tuple, debtor: Debtor) -> None:
    policy, case, history, now = scenario
    result = plan_at(now, case=case, policy=policy, history=history, debtor=debtor)
    for action in result.actions:
        assert _in_window(action.due_at) and action.due_at <= now
        assert action.channel not in debtor.opted_out


@given(scenarios(), debtors)
def test_no_message_goes_on_a_day_that_already_had_a_contact(
    scenario: tuple, debtor: Debtor
) -> None:
    policy, case, history, now = scenario
    result = plan_at(now, case=case, policy=policy, history=history, debtor=debtor)
    used = {item.at.date() for item in history if getattr(item, "channel", None) is not None}
    assert len(result.actions) <= 1
    for action in result.actions:
        assert action.due_at.date() not in used


@given(scenarios(), st.sampled_from([s for s in CaseState if s is not CaseState.ACTIVE]))
def test_nothing_is_planned_unless_the_case_is_active(scenario: tuple, state: CaseState) -> None:
    policy, case, history, now = scenario
    result = plan_at(now, case=replace(case, state=state), policy=policy, history=history)
    assert (result.actions, result.effects, result.deferred, result.next_wake_at) == (
        (),
        (),
        (),
        None,
    )


@given(scenarios(), debtors, st.randoms(use_true_random=False))
def test_the_same_input_gives_the_same_plan_in_any_history_order(
    scenario: tuple, debtor: Debtor, rng: random.Random
) -> None:
    policy, case, history, now = scenario
    first = plan_at(now, case=case, policy=policy, history=history, debtor=debtor)
    assert plan_at(now, case=case, policy=policy, history=history, debtor=debtor) == first
    shuffled = list(history)
    rng.shuffle(shuffled)
    assert plan_at(now, case=case, policy=policy, history=shuffled, debtor=debtor) == first


@given(scenarios(), debtors)
def test_the_next_wake_up_is_always_in_the_future(scenario: tuple, debtor: Debtor) -> None:
    policy, case, history, now = scenario
    result = plan_at(now, case=case, policy=policy, history=history, debtor=debtor)
    assert result.next_wake_at is None or result.next_wake_at > now


@settings(max_examples=200)
@given(policies(), moments, moments, debtors)
def test_a_simulated_worker_sends_each_step_once_within_the_rules_and_then_stops(
    policy: Policy, due: datetime, start: datetime, debtor: Debtor
) -> None:
    run = simulate(case=invoice_case(due_at=due), policy=policy, start=start, debtor=debtor)
    assert run.finished
    messages = [(s.step, s.channel) for s in run.sent if s.channel is not None]
    assert len(messages) == len(set(messages))
    single = {s.key for s in policy.steps if len(s.channels) == 1}
    assert all(n == 1 for k, n in Counter(k for k, _ in messages).items() if k in single)
    effects = [s.step for s in run.sent if s.channel is None]
    assert len(effects) == len(set(effects))
    days = Counter(s.at.date() for s in run.sent if s.channel is not None)
    assert all(n == 1 for n in days.values())
    assert all(_in_window(s.at) for s in run.sent if s.channel is not None)
    for (now, result), (later, _) in zip(run.plans, run.plans[1:], strict=False):
        assert result.next_wake_at == later and later > now


@settings(max_examples=200)
@given(policies(), moments, moments)
def test_nothing_follows_a_final_notice_before_the_deadline_it_gave(
    policy: Policy, due: datetime, start: datetime
) -> None:
    run = simulate(case=invoice_case(due_at=due), policy=policy, start=start)
    order = {step.key: index for index, step in enumerate(policy.steps)}
    for notice in run.sent:
        deadline = policy.steps[order[notice.step]].deadline
        if notice.channel is None or deadline is None:
            continue
        later = [s for s in run.sent if order[s.step] > order[notice.step]]
        assert all(s.at >= notice.at + deadline for s in later)


@given(policies(), moments, moments, st.integers(0, 20), st.sampled_from(["paused", "recovered"]))
def test_nothing_goes_out_once_the_case_is_paused_or_recovered(
    policy: Policy, due: datetime, start: datetime, cut: int, state: str
) -> None:
    case = invoice_case(due_at=due)
    run = simulate(case=case, policy=policy, start=start)
    moments_seen = [now for now, _ in run.plans][: cut + 1]
    stopped = replace(case, state=CaseState(state))
    for now in moments_seen:
        result = plan_at(now, case=stopped, policy=policy, history=run.history)
        assert result.actions == () and result.effects == () and result.next_wake_at is None


def _at(month: int, day: int, hour: int = 8) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def _sent(*keys: str) -> list[SentStep | Contact]:
    days = {"courtesy": (3, 12), "overdue_1": (3, 16), "overdue_2": (3, 23)}
    return [SentStep(key, _at(*days[key]), Channel.EMAIL) for key in keys]


def _step(key: str, days: int, *channels: Channel) -> Step:
    templates = {channel: f"{key}.{channel}" for channel in channels}
    return Step(key, timedelta(days=days), Tone.FRIENDLY, channels=channels, templates=templates)
