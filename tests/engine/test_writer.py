"""What the writer puts into a message's context."""

from __future__ import annotations

from dunning.core.policy import Action
from dunning.engine.writer import consequences_of


def test_a_final_notice_s_consequences_end_as_a_sentence_in_english_and_not_in_thai() -> None:
    both = (Action.PAUSE_SERVICE, Action.MARK_UNCOLLECTIBLE)

    assert consequences_of(both, locale="en-US") == (
        "your service will be paused until the balance is paid; automatic reminders "
        "will stop and our accounts team will contact you about the unpaid balance."
    )
    assert consequences_of(both, locale="th-TH") == (
        "เราจะระงับบริการของท่านชั่วคราวจนกว่าจะได้รับชำระเงิน และ"
        "ระบบจะหยุดส่งการแจ้งเตือนอัตโนมัติ และฝ่ายบัญชีของเราจะติดต่อท่านเกี่ยวกับยอดค้างชำระ"
    )
    assert consequences_of((), locale="en") == ""
