"""Signed links put in messages: a case's pay page, a card's update page, a channel's opt-out.

A token carries the ids it stands for, signed with SECRET_KEY (django.core.signing,
HMAC-SHA256) under a salt per kind of link, so a pay token is never accepted as
an unsubscribe token and no id can be changed without the key.  Tokens are not
encrypted: the ids in them are not secret, only unforgeable.  They carry no
expiry, because a reminder read weeks later must still open its page; the page
shows the case as it is at that moment.

A pay token carries no date either: a case's pay link is the same in every
message, and so is the return URL its payments give the gateway, so that a
payment pressed again from another reminder is the very same request under
the same idempotency key (a gateway refuses a key sent with other
parameters).  Pay links sent before were dated (`signing.dumps`); they still open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing

from dunning.core.contacts import Channel
from dunning.engine.models import Case
from dunning.ledger.models import Customer, PaymentMethod

PAY_SALT = "dunning.links.pay"
CARD_SALT = "dunning.links.card"
UNSUBSCRIBE_SALT = "dunning.links.unsubscribe"


class BadLink(ValueError):
    """A token that was not signed by us, was signed for another kind of link, or is malformed."""


@dataclass(frozen=True, slots=True)
class PayTarget:
    customer_id: int
    case_id: int


@dataclass(frozen=True, slots=True)
class CardTarget:
    customer_id: int
    payment_method_id: int


@dataclass(frozen=True, slots=True)
class UnsubscribeTarget:
    customer_id: int
    channel: Channel


def pay_token(customer_id: int, case_id: int) -> str:
    return signing.Signer(salt=PAY_SALT).sign_object([customer_id, case_id])


def card_token(customer_id: int, payment_method_id: int) -> str:
    return signing.dumps([customer_id, payment_method_id], salt=CARD_SALT)


def unsubscribe_token(customer_id: int, channel: Channel | str) -> str:
    return signing.dumps([customer_id, Channel(channel).value], salt=UNSUBSCRIBE_SALT)


def pay_link(customer: Customer, case: Case) -> str:
    """The absolute URL of the case's pay page, for `customer` (who must own the case)."""
    if case.customer_id != customer.pk:
        raise ValueError(f"case {case.pk} is not customer {customer.pk}'s")
    return f"{settings.DUNNING_PUBLIC_URL}/pay/{pay_token(customer.pk, case.pk)}"


def card_link(customer: Customer, method: PaymentMethod) -> str:
    """The absolute URL of the page where `customer` updates the saved card `method`."""
    if method.customer_id != customer.pk:
        raise ValueError(f"payment method {method.pk} is not customer {customer.pk}'s")
    return f"{settings.DUNNING_PUBLIC_URL}/card/{card_token(customer.pk, method.pk)}"


def unsubscribe_link(customer: Customer, channel: Channel | str) -> str:
    """The absolute URL that opts `customer` out of `channel` (RFC 8058 one-click target)."""
    return f"{settings.DUNNING_PUBLIC_URL}/u/{unsubscribe_token(customer.pk, channel)}"


def read_pay_token(token: str) -> PayTarget:
    try:
        ids = _load(token, PAY_SALT)  # a dated link, sent before pay tokens were undated
    except BadLink:
        ids = _load_undated(token, PAY_SALT)
    customer_id, case_id = _ids(ids, 2)
    return PayTarget(customer_id=_positive(customer_id), case_id=_positive(case_id))


def read_card_token(token: str) -> CardTarget:
    customer_id, method_id = _ids(_load(token, CARD_SALT), 2)
    return CardTarget(customer_id=_positive(customer_id), payment_method_id=_positive(method_id))


def read_unsubscribe_token(token: str) -> UnsubscribeTarget:
    customer_id, channel = _ids(_load(token, UNSUBSCRIBE_SALT), 2)
    try:
        parsed = Channel(channel)
    except ValueError:
        raise BadLink("unknown channel") from None
    return UnsubscribeTarget(customer_id=_positive(customer_id), channel=parsed)


def _load(token: str, salt: str) -> Any:
    if len(token) > 500:
        raise BadLink("token too long")
    try:
        return signing.loads(token, salt=salt)
    except (signing.BadSignature, ValueError, UnicodeDecodeError) as exc:
        raise BadLink("invalid token") from exc


def _load_undated(token: str, salt: str) -> Any:
    if len(token) > 500:
        raise BadLink("token too long")
    try:
        return signing.Signer(salt=salt).unsign_object(token)
    except (signing.BadSignature, ValueError, UnicodeDecodeError) as exc:
        raise BadLink("invalid token") from exc


def _ids(value: Any, count: int) -> list[Any]:
    if not isinstance(value, list) or len(value) != count:
        raise BadLink("malformed token")
    return value


def _positive(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
        raise BadLink("malformed id")
    return value
