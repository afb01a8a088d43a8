from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dunning.core.cases import (
    CaseEventType,
    CaseFacts,
    CaseState,
    CaseTransitionError,
    OpenReason,
    apply_payment,
    close_case,
    exhaust_case,
    invoice_changed,
    open_case,
    pause_case,
    reduce_debt,
    resume_case,
)
from dunning.core.contacts import Channel
from dunning.core.policy import (
    CHARGE_AUTOMATICALLY_DEFAULT,
    DEFAULT_POLICIES,
    SEND_INVOICE_DEFAULT,
    Action,
    Anchor,
    Criteria,
    Policy,
    Step,
    Tone,
    Variant,
    choose_policy,
    validate,
)

DUE = datetime(2026, 3, 15, tzinfo=UTC)


def email_step(key: str, days: int, tone: Tone = Tone.FRIENDLY, **kwargs: object) -> Step:
    return Step(
        key,
        timedelta(days=days),
        tone,
        channels=(Channel.EMAIL,),
        templates={Channel.EMAIL: f"t.{key}"},
        **kwargs,  # type: ignore[arg-type]
    )


def policy_of(*steps: Step, criteria: Criteria | None = None, policy_id: str = "p") -> Policy:
    return Policy(policy_id, 1, policy_id, criteria or Criteria(), tuple(steps))


def facts(**kwargs: object) -> CaseFacts:
    base = CaseFacts(
        case_id="case-1",
        state=CaseState.ACTIVE,
        collection_method="send_invoice",
        currency="THB",
        amount_due=150_000,
        country="TH",
        is_business=False,
        due_at=DUE,
    )
    return replace(base, **kwargs)  # type: ignore[arg-type]


def fields_of(policy: Policy) -> list[tuple[str | None, str]]:
    return [(problem.step, problem.field) for problem in validate(policy)]


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("policy", DEFAULT_POLICIES, ids=lambda p: p.id)
def test_the_default_policies_are_valid(policy: Policy) -> None:
    assert validate(policy) == []


def test_a_policy_needs_at_least_one_step() -> None:
    assert fields_of(policy_of()) == [(None, "steps")]


def test_no_step_may_come_after_the_final_action() -> None:
    end = Step("end", timedelta(days=10), Tone.FINAL, actions=(Action.CANCEL,))
    late = email_step("late", 12, Tone.FINAL)
    assert fields_of(policy_of(end, late)) == [("late", "key")]


def test_a_late_fee_is_not_a_final_action() -> None:
    fee = Step("fee", timedelta(days=10), Tone.FIRM, actions=(Action.LATE_FEE,))
    assert validate(policy_of(fee, email_step("after", 12, Tone.FIRM))) == []


def test_an_empty_template_key_is_a_problem() -> None:
    step = Step(
        "s", timedelta(0), Tone.FRIENDLY, channels=(Channel.EMAIL,), templates={Channel.EMAIL: " "}
    )
    assert fields_of(policy_of(step)) == [("s", "templates")]


def test_a_channel_without_a_template_is_a_problem() -> None:
    step = email_step("s", 0)
    both = replace(step, channels=(Channel.EMAIL, Channel.SMS))
    assert fields_of(policy_of(both)) == [("s", "templates")]


def test_offsets_must_not_go_backwards() -> None:
    assert fields_of(policy_of(email_step("a", 5), email_step("b", 2))) == [("b", "offset")]


def test_equal_offsets_are_allowed() -> None:
    assert validate(policy_of(email_step("a", 5), email_step("b", 5))) == []


def test_the_tone_must_not_soften() -> None:
    problems = fields_of(policy_of(email_step("a", 1, Tone.FIRM), email_step("b", 2)))
    assert problems == [("b", "tone")]


def test_every_step_uses_the_same_anchor() -> None:
    failure = email_step("b", 2, anchor=Anchor.FAILURE)
    assert fields_of(policy_of(email_step("a", 1), failure)) == [("b", "anchor")]


def test_variant_weights_must_be_positive() -> None:
    step = email_step("a", 1, variants=(Variant("x", 1), Variant("y", 0)))
    assert fields_of(policy_of(step)) == [("a", "variants")]


def test_step_keys_must_be_unique() -> None:
    assert fields_of(policy_of(email_step("a", 1), email_step("a", 2))) == [("a", "key")]


def test_a_step_that_does_nothing_is_a_problem() -> None:
    assert fields_of(policy_of(Step("idle", timedelta(0), Tone.FRIENDLY))) == [("idle", "channels")]


def test_a_deadline_needs_a_message_to_carry_it() -> None:
    silent = Step(
        "end", timedelta(0), Tone.FINAL, actions=(Action.CANCEL,), deadline=timedelta(days=7)
    )
    assert fields_of(policy_of(silent)) == [("end", "deadline")]


def test_steps_are_frozen_even_through_their_templates() -> None:
    step = email_step("a", 1)
    with pytest.raises(TypeError):
        step.templates[Channel.SMS] = "x"  # type: ignore[index]
    assert hash(step) == hash(email_step("a", 1))


# --- the default policies ------------------------------------------------------------------


def test_the_send_invoice_default_reminds_before_and_after_the_due_date() -> None:
    offsets = [(s.key, s.offset.days, s.tone) for s in SEND_INVOICE_DEFAULT.steps]
    assert offsets == [
        ("courtesy", -3, Tone.FRIENDLY),
        ("overdue_1", 1, Tone.FRIENDLY),
        ("overdue_2", 8, Tone.FIRM),
        ("final", 15, Tone.FINAL),
        ("uncollectible", 22, Tone.FINAL),
    ]
    final = SEND_INVOICE_DEFAULT.step("final")
    assert final is not None and final.deadline == timedelta(days=7)


def test_the_charge_default_tells_the_customer_at_once_and_cancels_after_three_weeks() -> None:
    steps = CHARGE_AUTOMATICALLY_DEFAULT.steps
    assert [(s.key, s.offset.days) for s in steps] == [
        ("failed", 0),
        ("reminder_1", 3),
        ("reminder_2", 7),
        ("final", 14),
        ("cancel", 21),
    ]
    assert {s.anchor for s in steps} == {Anchor.FAILURE}
    assert steps[-1].actions == (Action.CANCEL, Action.MARK_UNCOLLECTIBLE)


def test_the_defaults_use_the_documented_template_keys() -> None:
    keys = {t for p in DEFAULT_POLICIES for s in p.steps for t in s.templates.values()}
    assert keys == {
        "send_invoice.courtesy",
        "send_invoice.overdue_1",
        "send_invoice.overdue_2",
        "send_invoice.final",
        "charge.failed",
        "charge.reminder",
        "charge.final",
    }


# --- choosing a policy ---------------------------------------------------------------------


def test_each_collection_method_gets_its_default() -> None:
    assert choose_policy(DEFAULT_POLICIES, facts()) is SEND_INVOICE_DEFAULT
    charge = facts(collection_method="charge_automatically")
    assert choose_policy(DEFAULT_POLICIES, charge) is CHARGE_AUTOMATICALLY_DEFAULT


def test_the_most_specific_matching_policy_wins() -> None:
    thai = policy_of(
        email_step("a", 1),
        criteria=Criteria(collection_method="send_invoice", countries=frozenset({"TH"})),
        policy_id="thai",
    )
    policies = (*DEFAULT_POLICIES, thai)
    assert choose_policy(policies, facts()) is thai
    assert choose_policy(policies, facts(country="JP")) is SEND_INVOICE_DEFAULT


def test_amount_bounds_apply_to_their_own_currency_only() -> None:
    large = policy_of(
        email_step("a", 1),
        criteria=Criteria(min_amount={"THB": 1_000_000}),
        policy_id="large",
    )
    assert choose_policy([large], facts(amount_due=999_999)) is None
    assert choose_policy([large], facts(amount_due=1_000_000)) is large
    assert choose_policy([large], facts(currency="JPY", amount_due=1)) is large


def test_a_business_policy_does_not_apply_to_individuals() -> None:
    b2b = policy_of(email_step("a", 1), criteria=Criteria(is_business=True), policy_id="b2b")
    assert choose_policy([b2b], facts()) is None
    assert choose_policy([b2b], facts(is_business=True)) is b2b


def test_no_matching_policy_gives_none() -> None:
    assert choose_policy(DEFAULT_POLICIES, facts(collection_method="other")) is None


def test_ties_are_broken_by_policy_id_so_the_choice_is_stable() -> None:
    first, second = (
        policy_of(email_step("a", 1), policy_id="a"),
        policy_of(email_step("a", 1), policy_id="b"),
    )
    assert choose_policy([second, first], facts()) is first


# --- the case state machine ----------------------------------------------------------------


def test_a_case_opens_active_with_its_reason() -> None:
    opened = open_case(reason=OpenReason.PAYMENT_FAILED)
    assert opened.state is CaseState.ACTIVE
    assert (opened.event.type, opened.event.reason) == (CaseEventType.OPENED, "payment_failed")
    assert opened.event.from_state is None


def test_a_partial_payment_reduces_the_debt_and_keeps_the_case_active() -> None:
    moved = apply_payment(CaseState.ACTIVE, remaining=500)
    assert moved.state is CaseState.ACTIVE
    assert moved.event.type is CaseEventType.PAYMENT_APPLIED


def test_a_voided_invoice_reduces_the_debt_without_a_payment() -> None:
    for state in (CaseState.ACTIVE, CaseState.PAUSED, CaseState.EXHAUSTED):
        moved = reduce_debt(state, remaining=500, reason="invoice INV-2 voided")
        assert moved.state is state
        assert moved.event.type is CaseEventType.DEBT_REDUCED
    with pytest.raises(CaseTransitionError):
        reduce_debt(CaseState.ACTIVE, remaining=0, reason="nothing left is the case's end")
    with pytest.raises(CaseTransitionError):
        reduce_debt(CaseState.RECOVERED, remaining=500, reason="owes nothing")


def test_an_invoice_change_closes_reduces_or_applies_a_payment() -> None:
    def changed(remaining: int, *, money: bool, voided: bool) -> CaseEventType:
        return invoice_changed(
            CaseState.ACTIVE,
            remaining=remaining,
            money_received=money,
            voided=voided,
            reason="invoice INV-2",
            closing_reason="nothing owed, nothing paid",
        ).event.type

    assert changed(0, money=False, voided=True) is CaseEventType.CLOSED
    assert changed(0, money=False, voided=False) is CaseEventType.CLOSED  # credited away
    assert changed(0, money=True, voided=True) is CaseEventType.RECOVERED
    assert changed(500, money=False, voided=True) is CaseEventType.DEBT_REDUCED
    assert changed(500, money=False, voided=False) is CaseEventType.PAYMENT_APPLIED


def test_paying_everything_recovers_the_case_even_when_paused_or_exhausted() -> None:
    for state in (CaseState.ACTIVE, CaseState.PAUSED, CaseState.EXHAUSTED):
        moved = apply_payment(state, remaining=0, reason="invoice INV-1 paid")
        assert moved.state is CaseState.RECOVERED
        assert moved.event.reason == "invoice INV-1 paid"


def test_pause_and_resume_go_back_and_forth() -> None:
    paused = pause_case(CaseState.ACTIVE, reason="customer called")
    assert paused.state is CaseState.PAUSED
    assert resume_case(paused.state, reason="call handled").state is CaseState.ACTIVE


def test_the_final_action_exhausts_an_active_case() -> None:
    assert exhaust_case(CaseState.ACTIVE, reason="cancel").state is CaseState.EXHAUSTED


def test_any_case_but_a_closed_one_can_be_closed() -> None:
    for state in (CaseState.ACTIVE, CaseState.PAUSED, CaseState.EXHAUSTED, CaseState.RECOVERED):
        assert close_case(state, reason="written off").state is CaseState.CLOSED
    with pytest.raises(CaseTransitionError, match="closed"):
        close_case(CaseState.CLOSED, reason="again")


@pytest.mark.parametrize(
    ("state", "move"),
    [
        (CaseState.ACTIVE, resume_case),
        (CaseState.PAUSED, pause_case),
        (CaseState.PAUSED, exhaust_case),
        (CaseState.RECOVERED, pause_case),
        (CaseState.CLOSED, resume_case),
    ],
)
def test_an_impossible_transition_raises_a_clear_error(state: CaseState, move: object) -> None:
    with pytest.raises(CaseTransitionError, match=f"a case that is {state} cannot be"):
        move(state, reason="why")  # type: ignore[operator]


def test_a_payment_on_a_case_that_owes_nothing_is_refused() -> None:
    with pytest.raises(CaseTransitionError, match="owes nothing"):
        apply_payment(CaseState.RECOVERED, remaining=0)
    with pytest.raises(CaseTransitionError, match="negative"):
        apply_payment(CaseState.ACTIVE, remaining=-1)
