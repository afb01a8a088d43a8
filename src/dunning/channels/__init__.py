"""Outbound channels: one package per channel, one small contract for all.

A transport sends one message and either returns the provider's id for it or
raises `TransportError`, saying whether trying again later can help
(`permanent=False`: the server is down, busy or answered 4xx) or not
(`permanent=True`: the address or the message was refused).  The delivery
stage uses that to retry with backoff or to mark the message failed.
"""

from __future__ import annotations


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent

    def __str__(self) -> str:
        kind = "permanent" if self.permanent else "temporary"
        return f"{self.message} ({kind})"
