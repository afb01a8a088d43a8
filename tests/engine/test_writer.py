"""What the writer puts into a message's context."""

from __future__ import annotations

from dunning.core.policy import Action
from dunning.engine.writer import consequences_of


def test_a_final_notice_s_consequences_end_as_a_sentence_in_english_and_not_in_thai() -> None:
    both = (Action.PAUSE_SERVICE, Action.MARK_UNCOLLECTIBLE)

    assert consequences_of(both, locale="en-US") == (
        "your service will be paused until the balance is paid; "
        "the balance will be passed to our collections team."
    )
    assert consequences_of(both, locale="th-TH") == (
        "บริการของท่านจะถูกระงับชั่วคราวจนกว่าจะได้รับชำระเงิน; ยอดค้างชำระจะถูกส่งต่อให้ฝ่ายติดตามหนี้ของเรา"
    )
    assert consequences_of((), locale="en") == ""
