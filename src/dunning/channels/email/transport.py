"""Email transports: SMTP (any provider) and a folder of .eml files for the demo.

DUNNING_SMTP_URL selects SMTP:
    smtp://host:25                      plain (a local relay)
    smtp+starttls://user:pass@host:587  STARTTLS, then AUTH
    smtps://user:pass@host:465          TLS from the first byte
User and password are URL-encoded; they never appear in logs or errors.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from dataclasses import dataclass
from email.message import Message
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dunning.channels import TransportError
from dunning.channels.email.message import to_wire

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    scheme: str
    host: str
    port: int
    username: str = ""
    password: str = ""
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 30.0) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS:
            raise ValueError(
                "DUNNING_SMTP_URL must start with smtp://, smtp+starttls:// or smtps://"
            )
        if not parts.hostname:
            raise ValueError("DUNNING_SMTP_URL has no host")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise ValueError("DUNNING_SMTP_URL has an invalid port") from None
        return cls(
            scheme=parts.scheme,
            host=parts.hostname,
            port=port,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            timeout=timeout,
        )

    def __repr__(self) -> str:  # keeps the password out of logs and tracebacks
        return f"SmtpConfig({self.scheme}://{self.host}:{self.port})"


class SmtpTransport:
    """Sends over one connection, opened on first use and reopened after a failure."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._connection: smtplib.SMTP | None = None

    def send(self, message: Message) -> str:
        """Send `message`; returns its Message-ID.  Raises TransportError."""
        try:
            connection = self._connect()
            # sendmail with the bytes as built: send_message would flatten the
            # message again under a slower policy.
            refused = connection.sendmail(
                parseaddr(str(message["From"]))[1],
                [parseaddr(str(message["To"]))[1]],
                to_wire(message),
            )
        except smtplib.SMTPRecipientsRefused as error:
            self.close()
            codes = [code for code, _ in error.recipients.values()]
            raise TransportError(
                f"recipient refused ({', '.join(map(str, codes))})",
                permanent=all(code >= 500 for code in codes),
            ) from None
        except smtplib.SMTPResponseException as error:
            self.close()
            raise TransportError(
                f"SMTP server answered {error.smtp_code}", permanent=error.smtp_code >= 500
            ) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as error:
            # Connection refused, reset, timed out or dropped: the server may be back soon.
            self.close()
            raise TransportError(
                f"SMTP server unreachable ({type(error).__name__})", permanent=False
            ) from None
        if refused:
            codes = sorted({code for code, _ in refused.values()})
            raise TransportError(
                f"recipient refused ({', '.join(map(str, codes))})",
                permanent=all(code >= 500 for code in codes),
            )
        return str(message["Message-ID"])

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        config = self.config
        connection: smtplib.SMTP
        if config.scheme == "smtps":
            connection = smtplib.SMTP_SSL(
                config.host,
                config.port,
                timeout=config.timeout,
                context=ssl.create_default_context(),
            )
        else:
            connection = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
            if config.scheme == "smtp+starttls":
                connection.starttls(context=ssl.create_default_context())
        if config.username:
            connection.login(config.username, config.password)
        self._connection = connection
        return connection

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._connection.quit()
            self._connection = None


class FileTransport:
    """Writes each message as an .eml file: the demo works with no mail server."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: Message) -> str:
        message_id = str(message["Message-ID"])
        name = message_id.strip("<>").partition("@")[0] + ".eml"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / name).write_bytes(to_wire(message))
        except OSError as error:
            raise TransportError(
                f"cannot write {name} ({error.strerror})", permanent=False
            ) from None
        return message_id

    def close(self) -> None:
        pass
