"""Building a dunning email: multipart text and HTML, with the headers mailbox providers expect.

- One Message-ID per outbox row (RFC 5322 3.6.4), made from the row's
  idempotency key, so a message re-sent after a crash carries the same id and
  receivers can tell it is the same message.
- List-Unsubscribe with an https URL (and a mailto when configured) and
  List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058), as Gmail and
  Yahoo ask of bulk senders (shared/reference/rules.md 6.1, 6.2).
- Non-ASCII subjects and names (Thai) are encoded by the email package's
  SMTP policy as RFC 2047 encoded words; bodies are UTF-8.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    sender_name: str
    sender_address: str
    to_name: str
    to_address: str
    subject: str
    text: str
    html: str
    idempotency_key: str  # the outbox row's key: also the Message-ID's left part
    date: datetime  # aware; the moment the message is handed to the transport
    reply_to: str = ""
    unsubscribe_url: str = ""  # https URL accepting RFC 8058 one-click POSTs
    unsubscribe_mailto: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def message_id(key: str, *, domain: str) -> str:
    # The key may hold characters a msg-id cannot; a digest keeps it a dot-atom.
    left = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<{left}@{domain}>"


def build_email(email: OutgoingEmail) -> EmailMessage:
    if email.date.tzinfo is None:
        raise ValueError("the Date header needs an aware datetime")
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(email.sender_name, addr_spec=email.sender_address)
    message["To"] = Address(email.to_name, addr_spec=email.to_address)
    message["Subject"] = email.subject
    message["Date"] = format_datetime(email.date)
    domain = email.sender_address.rpartition("@")[2] or "localhost"
    message["Message-ID"] = message_id(email.idempotency_key, domain=domain)
    if email.reply_to:
        message["Reply-To"] = email.reply_to
    unsubscribe = [f"<{uri}>" for uri in (email.unsubscribe_url, email.unsubscribe_mailto) if uri]
    if unsubscribe:
        message["List-Unsubscribe"] = ", ".join(unsubscribe)
        if email.unsubscribe_url:
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in email.headers.items():
        message[name] = value
    # Quoted-printable keeps the wire 7-bit, so relays without 8BITMIME pass Thai intact.
    message.set_content(email.text, charset="utf-8", cte="quoted-printable")
    message.add_alternative(email.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message
