"""Building a dunning email: multipart text and HTML, with the headers mailbox providers expect.

- One Message-ID per outbox row (RFC 5322 3.6.4), made from the row's
  idempotency key, so a message re-sent after a crash carries the same id and
  receivers can tell it is the same message.
- List-Unsubscribe with an https URL (and a mailto when configured) and
  List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058), as Gmail and
  Yahoo ask of bulk senders (shared/reference/rules.md 6.1, 6.2).
- Non-ASCII subjects and names (Thai) become RFC 2047 encoded words; bodies
  are UTF-8, quoted-printable or base64.  The message is built with the email
  package's compat32 classes (`email.mime`), which serialise Thai headers
  about three times faster than `EmailMessage`'s re-parsing and re-folding:
  delivery spent most of its time there.
- An internationalised domain (somchai@bücher.de) goes on the wire in its
  ASCII form (IDNA 2008, RFC 5891), in the headers and so in the envelope; a
  mailbox name that is not ASCII would need SMTPUTF8 (RFC 6531), which this
  channel does not speak: such a message fails for good (`UnsendableAddress`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from email.charset import BASE64, QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import format_datetime, formataddr
from typing import Any

import idna

from dunning.channels import TransportError


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


class UnsendableAddress(TransportError):
    """An address this channel cannot put on the wire: sending again will not help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


def wire_address(address: str) -> str:
    """`address` as SMTP carries it without SMTPUTF8: the domain in its ASCII form.

    somchai@bücher.de -> somchai@xn--bcher-kva.de (IDNA 2008 with the UTS 46
    mapping browsers use, so BÜCHER.de means the same).  Raises
    `UnsendableAddress` for a mailbox name that is not ASCII or a domain IDNA
    cannot encode.  The address itself is never in the message: it is personal data.
    """
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not at:
        raise UnsendableAddress("not an email address")
    if not local.isascii():
        raise UnsendableAddress(
            "the address's part before @ is not ASCII: it needs SMTPUTF8, which is not supported"
        )
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise UnsendableAddress("the address's domain is not a valid domain name") from None
    return f"{local}@{ascii_domain}"


def build_email(email: OutgoingEmail) -> Message:
    """The message as it goes on the wire (multipart/alternative, 7-bit).

    Raises `UnsendableAddress` when an address cannot go on the wire.
    """
    if email.date.tzinfo is None:
        raise ValueError("the Date header needs an aware datetime")
    message = MIMEMultipart("alternative")
    # compat32 messages take Header objects, which typeshed's str-only setter omits.
    sender = wire_address(email.sender_address)
    message["From"] = _address(email.sender_name, sender)  # type: ignore[assignment]
    message["To"] = _address(email.to_name, wire_address(email.to_address))  # type: ignore[assignment]
    message["Subject"] = _header(email.subject)  # type: ignore[assignment]
    message["Date"] = format_datetime(email.date)
    domain = sender.rpartition("@")[2] or "localhost"
    message["Message-ID"] = message_id(email.idempotency_key, domain=domain)
    if email.reply_to:
        message["Reply-To"] = wire_address(email.reply_to)
    unsubscribe = [f"<{uri}>" for uri in (email.unsubscribe_url, email.unsubscribe_mailto) if uri]
    if unsubscribe:
        message["List-Unsubscribe"] = ", ".join(unsubscribe)
        if email.unsubscribe_url:
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in email.headers.items():
        message[name] = _header(value)  # type: ignore[assignment]
    # MIMEText takes a Charset (it picks the body encoding); typeshed says str only.
    message.attach(MIMEText(email.text, "plain", _body_charset(email.text)))  # type: ignore[arg-type]
    message.attach(MIMEText(email.html, "html", _body_charset(email.html)))  # type: ignore[arg-type]
    return message


# What SMTP carries: CRLF line ends (smtplib sends bytes as they are).
class _WirePolicy(Compat32):
    """compat32 that writes a short ASCII header as it is.

    compat32 wraps every header value in a `Header` and re-folds it, a third
    of the time it takes to serialise a message; a value that is ASCII and
    fits on one 78-character line needs none of that.  Everything else
    (encoded words, long values) goes through the library's folding.
    """

    def fold_binary(self, name: str, value: Any) -> bytes:
        one_line = isinstance(value, str) and len(name) + 2 + len(value) <= 78
        if one_line and value.isascii() and "\r" not in value and "\n" not in value:
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


WIRE = _WirePolicy(linesep="\r\n", cte_type="8bit")


def to_wire(message: Message) -> bytes:
    return message.as_bytes(policy=WIRE)


def _address(name: str, address: str) -> str | Header:
    """'Name <address>', the name as RFC 2047 encoded words of at most 75 characters."""
    if name.isascii():
        return formataddr((name, address))
    header = Header(name, "utf-8")
    header.append(f"<{address}>", "us-ascii")
    return header


def _header(value: str) -> str | Header:
    # RFC 2047 encoded words only where needed: an English subject stays readable.
    return value if value.isascii() else Header(value, "utf-8")


# Both keep the wire 7-bit, so relays without 8BITMIME pass Thai intact.
# Quoted-printable leaves mostly-English text readable; base64 is a third the
# size of quoted-printable for Thai, whose every UTF-8 byte QP would escape.
_QUOTED_PRINTABLE = Charset("utf-8")
_QUOTED_PRINTABLE.body_encoding = QP
_BASE64 = Charset("utf-8")
_BASE64.body_encoding = BASE64


def _body_charset(text: str) -> Charset:
    """Whichever encoding is shorter on the wire for `text`."""
    encoded = text.encode("utf-8")
    ascii_bytes = len(encoded.translate(None, _HIGH_BYTES))
    escaped = len(encoded) - ascii_bytes  # bytes QP writes as =XX
    quoted = ascii_bytes + 3 * escaped
    return _QUOTED_PRINTABLE if 3 * quoted <= 4 * len(encoded) else _BASE64


_HIGH_BYTES = bytes(range(128, 256))
