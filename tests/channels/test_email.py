from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dunning.channels import TransportError
from dunning.channels.email.message import OutgoingEmail, UnsendableAddress, build_email
from dunning.channels.email.transport import FileTransport, SmtpConfig, SmtpTransport
from tests.smtp_server import SmtpServer, free_port

NOW = datetime(2026, 3, 16, 3, 0, tzinfo=UTC)


def thai_reminder(key: str = "outbox-1", **changes: str) -> OutgoingEmail:
    values = {
        "sender_name": "บริษัท ตัวอย่าง จำกัด",
        "sender_address": "billing@example.co.th",
        "to_name": "สมชาย ใจดี",
        "to_address": "somchai@example.co.th",
        "subject": "แจ้งเตือน: ใบแจ้งหนี้ INV-1001 เลยกำหนดชำระแล้ว",
        "text": "เรียน คุณสมชาย\nยอดค้างชำระ ฿1,234.50\nชำระได้ที่ https://pay.example/x",
        "html": "<p>เรียน คุณสมชาย</p><p>ยอดค้างชำระ ฿1,234.50</p>",
        "idempotency_key": key,
        "date": NOW,
        "unsubscribe_url": "https://dunning.example/u/abc",
        "unsubscribe_mailto": "mailto:unsubscribe@example.co.th?subject=abc",
    }
    return OutgoingEmail(**{**values, **changes})  # type: ignore[arg-type]


def test_it_delivers_a_thai_reminder_with_both_parts_and_an_encoded_subject(
    smtp_server: SmtpServer,
) -> None:
    transport = SmtpTransport(SmtpConfig.from_url(smtp_server.url))

    transport.send(build_email(thai_reminder()))
    transport.close()

    [received] = smtp_server.mailbox.received
    raw = smtp_server.mailbox.envelopes[0].original_content.decode("ascii")
    # RFC 2047 encoded words and quoted-printable bodies: the wire stays 7-bit ASCII.
    assert "Subject: =?utf-8?" in raw
    assert "Content-Transfer-Encoding: base64" in raw  # Thai: a third the size of QP
    assert received["Subject"] == "แจ้งเตือน: ใบแจ้งหนี้ INV-1001 เลยกำหนดชำระแล้ว"
    assert received.get_content_type() == "multipart/alternative"
    text = received.get_body(preferencelist=("plain",))
    html = received.get_body(preferencelist=("html",))
    assert text is not None and "฿1,234.50" in text.get_content()
    assert html is not None and "<p>เรียน คุณสมชาย</p>" in html.get_content()


def test_every_message_has_one_message_id_and_the_required_headers(smtp_server: SmtpServer) -> None:
    transport = SmtpTransport(SmtpConfig.from_url(smtp_server.url))

    transport.send(build_email(thai_reminder("outbox-1")))
    transport.send(build_email(thai_reminder("outbox-2")))
    transport.close()

    first, second = smtp_server.mailbox.received
    for message in (first, second):
        for header in ("Message-ID", "From", "To", "Subject", "Date"):
            assert len(message.get_all(header)) == 1, header
        assert re.fullmatch(r"<[0-9a-f]{32}@example\.co\.th>", message["Message-ID"])
    assert first["Message-ID"] != second["Message-ID"]


def test_a_resent_outbox_row_keeps_its_message_id() -> None:
    assert (
        build_email(thai_reminder("outbox-7"))["Message-ID"]
        == (build_email(thai_reminder("outbox-7"))["Message-ID"])
    )


def test_reminders_carry_one_click_unsubscribe_headers(smtp_server: SmtpServer) -> None:
    transport = SmtpTransport(SmtpConfig.from_url(smtp_server.url))

    transport.send(build_email(thai_reminder()))

    [received] = smtp_server.mailbox.received
    assert received["List-Unsubscribe"] == (
        "<https://dunning.example/u/abc>, <mailto:unsubscribe@example.co.th?subject=abc>"
    )
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_4xx_answer_is_temporary_and_a_5xx_answer_is_permanent(smtp_server: SmtpServer) -> None:
    transport = SmtpTransport(SmtpConfig.from_url(smtp_server.url))

    smtp_server.mailbox.answer = "451 4.3.0 try again later"
    with pytest.raises(TransportError) as busy:
        transport.send(build_email(thai_reminder()))
    smtp_server.mailbox.answer = "550 5.1.1 no such user"
    with pytest.raises(TransportError) as refused:
        transport.send(build_email(thai_reminder()))

    assert busy.value.permanent is False
    assert refused.value.permanent is True
    assert smtp_server.mailbox.received == []


def test_a_server_that_is_down_is_a_temporary_failure_and_sending_resumes_when_it_returns(
    smtp_server: SmtpServer,
) -> None:
    transport = SmtpTransport(SmtpConfig.from_url(smtp_server.url, timeout=5))
    transport.send(build_email(thai_reminder("before")))
    smtp_server.stop()

    with pytest.raises(TransportError) as down:
        transport.send(build_email(thai_reminder("during")))

    smtp_server.start()
    transport.send(build_email(thai_reminder("after")))
    assert down.value.permanent is False
    assert len(smtp_server.mailbox.received) == 2


def test_nothing_listening_is_a_temporary_failure() -> None:
    transport = SmtpTransport(SmtpConfig.from_url(f"smtp://127.0.0.1:{free_port()}", timeout=5))

    with pytest.raises(TransportError) as error:
        transport.send(build_email(thai_reminder()))

    assert error.value.permanent is False


def test_it_logs_in_with_the_credentials_of_the_url(smtp_server_with_auth: SmtpServer) -> None:
    url = f"smtp://dunning:s3cret%3Apass@127.0.0.1:{smtp_server_with_auth.port}"
    transport = SmtpTransport(SmtpConfig.from_url(url))

    transport.send(build_email(thai_reminder()))

    assert len(smtp_server_with_auth.mailbox.received) == 1


def test_a_wrong_password_is_permanent_and_never_shown(smtp_server_with_auth: SmtpServer) -> None:
    url = f"smtp://dunning:wrong-secret@127.0.0.1:{smtp_server_with_auth.port}"
    config = SmtpConfig.from_url(url)

    with pytest.raises(TransportError) as error:
        SmtpTransport(config).send(build_email(thai_reminder()))

    assert error.value.permanent is True
    assert "wrong-secret" not in str(error.value) + repr(config)


@pytest.mark.parametrize(
    ("url", "scheme", "port"),
    [
        ("smtp://mail.example:2525", "smtp", 2525),
        ("smtp+starttls://u:p@mail.example", "smtp+starttls", 587),
        ("smtps://u:p@mail.example", "smtps", 465),
    ],
)
def test_it_reads_the_three_kinds_of_smtp_url(url: str, scheme: str, port: int) -> None:
    config = SmtpConfig.from_url(url)

    assert (config.scheme, config.host, config.port) == (scheme, "mail.example", port)


@pytest.mark.parametrize("url", ["http://mail.example", "smtp://", "smtp://host:notaport"])
def test_it_refuses_a_url_it_cannot_use(url: str) -> None:
    with pytest.raises(ValueError, match="DUNNING_SMTP_URL"):
        SmtpConfig.from_url(url)


def test_without_smtp_the_demo_writes_eml_files(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path / "outbox")

    message_id = transport.send(build_email(thai_reminder()))

    [written] = (tmp_path / "outbox").iterdir()
    assert written.suffix == ".eml"
    assert message_id.strip("<>").startswith(written.stem)
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in written.read_bytes()


def test_an_english_reminder_stays_readable_on_the_wire(smtp_server: SmtpServer) -> None:
    transport = SmtpTransport(SmtpConfig.from_url(smtp_server.url))
    english = thai_reminder(
        sender_name="Example Co., Ltd.",
        to_name="Jane Doe",
        subject="Reminder: invoice INV-1001 is overdue",
        text="Dear Jane,\nThe balance is \u0e3f1,234.50.\nPay at https://pay.example/x",
        html="<p>Dear Jane,</p><p>The balance is \u0e3f1,234.50.</p>",
    )

    transport.send(build_email(english))
    transport.close()

    raw = smtp_server.mailbox.envelopes[0].original_content.decode("ascii")
    [received] = smtp_server.mailbox.received
    assert "Subject: Reminder: invoice INV-1001 is overdue" in raw
    assert "Content-Transfer-Encoding: quoted-printable" in raw
    assert "Dear Jane," in raw
    text = received.get_body(preferencelist=("plain",))
    assert text is not None and "\u0e3f1,234.50" in text.get_content()


def test_an_internationalised_domain_goes_on_the_wire_in_its_ascii_form(
    smtp_server: SmtpServer,
) -> None:
    # The API and the CSV import take somchai@bücher.de (a valid address); the
    # worker used to die on it with UnicodeEncodeError at every pass.
    transport = SmtpTransport(SmtpConfig.from_url(smtp_server.url))

    transport.send(build_email(thai_reminder(to_address="somchai@Bücher.de")))
    transport.close()

    [envelope] = smtp_server.mailbox.envelopes
    [received] = smtp_server.mailbox.received
    assert envelope.rcpt_tos == ["somchai@xn--bcher-kva.de"]
    assert received["To"].addresses[0].addr_spec == "somchai@xn--bcher-kva.de"
    assert received["To"].addresses[0].display_name == "สมชาย ใจดี"


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("สมชาย@example.co.th", id="thai-mailbox-name"),
        pytest.param("somchai@bü--cher.de", id="not-a-domain-idna-can-encode"),
    ],
)
def test_an_address_smtp_cannot_carry_fails_for_good_without_echoing_it(address: str) -> None:
    with pytest.raises(UnsendableAddress) as caught:
        build_email(thai_reminder(to_address=address))

    assert caught.value.permanent
    assert address.partition("@")[0] not in str(caught.value)
