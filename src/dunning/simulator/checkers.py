"""Independent referees: count the network and contact rules a simulated run broke.

These are written straight from reference/rules.md and deliberately share no
code with the engine (`dunning.core.contact_rules`, the planner, the retry
rules): a referee that imports the player's rulebook would agree with every
mistake in it.  They are fed what actually happened (every charge attempt the
simulated gateway saw, every message the customer received) and count
breaches; they never advise.

Each breach is one `Violation`: one attempt or message breaking one rule (an
attempt that breaks two rules counts twice).  Attempts on one card must come
in time order (the rolling windows depend on it); messages may come in any order.
"""

from __future__ import annotations

import functools
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

# Network rules, reference/rules.md §2.
VISA_MAX_REATTEMPTS = 15  # §2.1: at most 15 reattempts of a transaction in 30 days
THIRTY_DAYS = timedelta(days=30)
MASTERCARD_MAX_DECLINES_24H = 10  # §2.2 TPE: at most 10 declines per card in a rolling 24 h
MASTERCARD_MAX_ATTEMPTS_30D = 35  # §2.2 TPE: at most 35 attempts of a transaction in 30 days
DAY = timedelta(hours=24)
# §2.3 (I): Amex and Discover publish no limits; apply Visa's until they do.
VISA_RULE_BRANDS = frozenset({"visa", "amex", "discover"})

# Never retry the same card for the same charge after these (§2.1, §1.2 analogue column):
# Visa category 1 (04/07 pickup, 41 lost, 43 stolen, 57 not permitted, R0/R1/R3
# revocations), plus 14 and 62, which older tables put in category 1 (§9 item 1).
NEVER_RETRY_DECLINE_CODES = frozenset(
    {
        "pickup_card",  # Visa 04/07
        "lost_card",  # 41
        "stolen_card",  # 43
        "not_permitted",  # 57
        "transaction_not_allowed",  # 57
        "stop_payment_order",  # R0
        "revocation_of_authorization",  # R1
        "revocation_of_all_authorizations",  # R3
        "invalid_account",  # 14/46
        "invalid_number",  # 14
        "incorrect_number",  # 14
        "restricted_card",  # 62, category 1 in the older table
        "do_not_try_again",  # deprecated Stripe code that says so
    }
)
# Stripe's advice_code overrides the decline code (§1.1).
NEVER_RETRY_ADVICE_CODES = frozenset({"do_not_try_again"})
# Mastercard MAC 03 (do not try again), 21 (payment cancellation), 22 (the merchant
# does not qualify for the product code: "no retry (I)") and 04 (token requirements
# not fulfilled: "no blind retry"), §2.2.
NEVER_RETRY_MASTERCARD_ADVICE = frozenset({"03", "21", "22", "04"})

# Mastercard MAC 24-30: the earliest retry after the decline (§2.2; acceptance case N04).
MASTERCARD_ADVISED_WAITS = {
    "24": timedelta(hours=1),
    "25": timedelta(hours=24),
    "26": timedelta(days=2),
    "27": timedelta(days=4),
    "28": timedelta(days=6),
    "29": timedelta(days=8),
    "30": timedelta(days=10),
}

# Not these card details again for this charge: the customer must update the card,
# authenticate or correct the data first (§1.2 class CUSTOMER; Visa category 3, "cannot
# approve with the details provided"). A new card is new details.
CUSTOMER_ACTION_DECLINE_CODES = frozenset(
    {
        "authentication_required",  # Visa 1A
        "card_not_supported",
        "currency_not_supported",
        "expired_card",  # Visa 54
        "incorrect_cvc",  # Visa N7/82
        "incorrect_zip",
        "invalid_amount",  # Visa 13
        "invalid_cvc",  # Visa N7
        "invalid_expiry_month",  # Visa 54
        "invalid_expiry_year",  # Visa 54
        "new_account_information_available",  # Mastercard MAC 01
        "pin_try_exceeded",  # Visa 75
    }
)
# §1.1: advice_code overrides the decline code, both ways.
CUSTOMER_ACTION_ADVICE_CODES = frozenset({"confirm_card_data"})
RETRY_ADVICE_CODES = frozenset({"try_again_later"})
# Mastercard MAC 01, new account information: never the old credentials again (§2.2).
CUSTOMER_ACTION_MASTERCARD_ADVICE = frozenset({"01"})


@dataclass(frozen=True, slots=True)
class Violation:
    """One breach: which rule, who (a card or a customer), when, and a sentence saying so."""

    rule: str
    at: datetime
    subject: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class ViolationReport:
    count: int
    violations: tuple[Violation, ...]

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(v.message for v in self.violations)


@dataclass(frozen=True, slots=True)
class ChargeAttempt:
    """One authorisation request the gateway saw, and the issuer's answer."""

    at: datetime
    card_id: str  # the card (PAN): the original and the replacement are different cards
    brand: str
    charge_id: str  # the charge being collected, e.g. the invoice id
    succeeded: bool
    decline_code: str | None = None
    advice_code: str | None = None  # Stripe's advice_code
    network_advice_code: str | None = None  # Mastercard MAC
    amount: int | None = None  # minor units, with `currency`; None: not known
    currency: str = ""

    @property
    def transaction(self) -> tuple[str, ...]:
        """What the networks take for one transaction: the card number, the merchant (one
        per run) and the amount (§2.1 "what counts as the same transaction", §2.2); so two
        invoices of one amount on one card are one.  Without an amount: the charge."""
        if self.amount is None:
            return (self.card_id, "charge", self.charge_id)
        return (self.card_id, "amount", self.currency, str(self.amount))


class _Referee:
    def __init__(self) -> None:
        self._violations: list[Violation] = []

    @property
    def count(self) -> int:
        return len(self._violations)

    @property
    def violations(self) -> tuple[Violation, ...]:
        return tuple(self._violations)

    def report(self) -> ViolationReport:
        return ViolationReport(count=self.count, violations=self.violations)

    @staticmethod
    def _require_aware(at: datetime) -> None:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"{at!r} is naive; the checkers need aware times")

    def _add(self, rule: str, at: datetime, subject: str, message: str) -> Violation:
        violation = Violation(rule=rule, at=at, subject=subject, message=message)
        self._violations.append(violation)
        return violation


class NetworkRuleChecker(_Referee):
    """Counts attempts that break the card networks' retry rules (reference/rules.md §2).

    A transaction is what the networks match attempts on: the card and the amount
    (`ChargeAttempt.transaction`), so two invoices of one amount on one card are one.

    - Visa (and, per §2.3, Amex and Discover): a reattempt is an attempt that
      follows a decline of the same transaction (an approval ends it); the 16th
      and later within a rolling 30 days each count.
    - Mastercard: each decline beyond 10 on a card in a rolling 24 h, and each
      attempt of a transaction, approved or not, beyond 35 in 30 days.
    - Every brand: any attempt on a card and charge after a never-retry answer
      (Visa category 1 codes, advice do_not_try_again, Mastercard MAC 03/21);
      and after a decline that asks the customer to act (an expired card, wrong
      data, authentication, advice confirm_card_data, MAC 01): only a new card may
      be charged for that charge.
    - Every brand: any attempt on a card and charge before the wait a Mastercard
      advice code 24-30 on an earlier decline asked for has passed.
    """

    def __init__(self) -> None:
        super().__init__()
        self._last_declined: dict[tuple[str, ...], bool] = {}  # per transaction
        self._reattempts: defaultdict[tuple[str, ...], deque[datetime]] = defaultdict(deque)
        self._mc_declines: defaultdict[str, deque[datetime]] = defaultdict(deque)
        self._mc_attempts: defaultdict[tuple[str, ...], deque[datetime]] = defaultdict(deque)
        self._never_retry: dict[tuple[str, str], str] = {}
        self._customer_action: dict[tuple[str, str], str] = {}
        self._advised: dict[tuple[str, str], tuple[datetime, str]] = {}
        self._last_at: dict[str, datetime] = {}

    def record(self, attempt: ChargeAttempt) -> tuple[Violation, ...]:
        """Judge one attempt; returns the violations it adds (usually none)."""
        self._require_aware(attempt.at)
        last = self._last_at.get(attempt.card_id)
        if last is not None and attempt.at < last:
            raise ValueError(
                f"attempts on card {attempt.card_id} must come in time order: "
                f"{attempt.at} is before {last}"
            )
        self._last_at[attempt.card_id] = attempt.at
        at, pair = attempt.at, (attempt.card_id, attempt.charge_id)
        found: list[Violation] = []
        where = f"card {attempt.card_id} ({attempt.brand}), charge {attempt.charge_id}"

        if pair in self._never_retry:
            found.append(
                self._add(
                    "never_retry",
                    at,
                    attempt.card_id,
                    f"{at.isoformat()}: {where} attempted again after a never-retry decline "
                    f"({self._never_retry[pair]})",
                )
            )
        if pair in self._customer_action:
            found.append(
                self._add(
                    "customer_action",
                    at,
                    attempt.card_id,
                    f"{at.isoformat()}: {where} attempted again with the same details after a "
                    f"decline that needs the customer ({self._customer_action[pair]})",
                )
            )

        advised = self._advised.get(pair)
        if advised is not None and at < advised[0]:
            found.append(
                self._add(
                    "mastercard_advised_wait",
                    at,
                    attempt.card_id,
                    f"{at.isoformat()}: {where} attempted before {advised[0].isoformat()} "
                    f"({advised[1]})",
                )
            )

        brand = attempt.brand.lower()
        transaction = attempt.transaction
        if brand in VISA_RULE_BRANDS and self._last_declined.get(transaction, False):
            window = self._reattempts[transaction]
            window.append(at)
            _drop_older(window, at - THIRTY_DAYS)
            if len(window) > VISA_MAX_REATTEMPTS:
                found.append(
                    self._add(
                        "visa_reattempts_30d",
                        at,
                        attempt.card_id,
                        f"{at.isoformat()}: {where}: reattempt {len(window)} within 30 days "
                        f"(at most {VISA_MAX_REATTEMPTS})",
                    )
                )

        self._last_declined[transaction] = not attempt.succeeded
        if brand == "mastercard":
            found.extend(self._judge_mastercard_attempt(attempt, where))
        if not attempt.succeeded:
            reason = _never_retry_reason(attempt)
            if reason is not None:
                self._never_retry.setdefault(pair, reason)
            else:
                needs = _customer_action_reason(attempt)
                if needs is not None:
                    self._customer_action.setdefault(pair, needs)
            wait = MASTERCARD_ADVISED_WAITS.get(attempt.network_advice_code or "")
            if wait is not None and (advised is None or at + wait > advised[0]):
                self._advised[pair] = (
                    at + wait,
                    f"Mastercard MAC {attempt.network_advice_code} on the decline of "
                    f"{at.isoformat()}: retry after {wait}",
                )
            if brand == "mastercard":
                found.extend(self._judge_mastercard_decline(attempt, where))
        return tuple(found)

    def _judge_mastercard_attempt(self, attempt: ChargeAttempt, where: str) -> list[Violation]:
        at = attempt.at
        found = []
        attempts = self._mc_attempts[attempt.transaction]
        attempts.append(at)
        _drop_older(attempts, at - THIRTY_DAYS)
        if len(attempts) > MASTERCARD_MAX_ATTEMPTS_30D:
            found.append(
                self._add(
                    "mastercard_attempts_30d",
                    at,
                    attempt.card_id,
                    f"{at.isoformat()}: {where}: attempt {len(attempts)} of the transaction "
                    f"within 30 days (at most {MASTERCARD_MAX_ATTEMPTS_30D})",
                )
            )
        return found

    def _judge_mastercard_decline(self, attempt: ChargeAttempt, where: str) -> list[Violation]:
        at = attempt.at
        declines = self._mc_declines[attempt.card_id]
        declines.append(at)
        _drop_older(declines, at - DAY)
        found = []
        if len(declines) > MASTERCARD_MAX_DECLINES_24H:
            found.append(
                self._add(
                    "mastercard_declines_24h",
                    at,
                    attempt.card_id,
                    f"{at.isoformat()}: {where}: decline {len(declines)} on the card within 24 h "
                    f"(at most {MASTERCARD_MAX_DECLINES_24H})",
                )
            )
        return found


def _never_retry_reason(attempt: ChargeAttempt) -> str | None:
    if attempt.advice_code in NEVER_RETRY_ADVICE_CODES:
        return f"advice {attempt.advice_code}"
    if attempt.decline_code in NEVER_RETRY_DECLINE_CODES:
        return str(attempt.decline_code)
    if attempt.network_advice_code in NEVER_RETRY_MASTERCARD_ADVICE:
        return f"Mastercard MAC {attempt.network_advice_code}"
    return None


def _customer_action_reason(attempt: ChargeAttempt) -> str | None:
    if attempt.advice_code in CUSTOMER_ACTION_ADVICE_CODES:
        return f"advice {attempt.advice_code}"
    if attempt.network_advice_code in CUSTOMER_ACTION_MASTERCARD_ADVICE:
        return f"Mastercard MAC {attempt.network_advice_code}"
    if (
        attempt.decline_code in CUSTOMER_ACTION_DECLINE_CODES
        and attempt.advice_code not in RETRY_ADVICE_CODES
    ):
        return str(attempt.decline_code)
    return None


def _drop_older(times: deque[datetime], cutoff: datetime) -> None:
    """Keep only the times strictly after `cutoff` (a rolling window)."""
    while times and times[0] <= cutoff:
        times.popleft()


def check_attempts(attempts: Iterable[ChargeAttempt]) -> ViolationReport:
    checker = NetworkRuleChecker()
    for attempt in attempts:
        checker.record(attempt)
    return checker.report()


# Contact rules, reference/rules.md §3.2 and §4.1.
@dataclass(frozen=True, slots=True)
class Hours:
    """Allowed local wall-clock hours, half-open: [start, end)."""

    start: time
    end: time

    def holds(self, moment: time) -> bool:
        return self.start <= moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


# §4.1 s.9(3): Mon-Fri 08:00-20:00; official holidays 08:00-18:00, and (I) weekends are
# official holidays too.
TH_WORKING_DAY = Hours(time(8), time(20))
TH_HOLIDAY = Hours(time(8), time(18))
TH_MAX_CONTACTS_PER_DAY = 1  # §4.1 Committee notification 2019, across channels (I)
# §3.2 Reg F / FDCPA: 08:00-21:00 local, every day.
US_ANY_DAY = Hours(time(8), time(21))
# Everyone else, and businesses: a courtesy window (Ireland's s.46 and common practice):
# weekdays 08:00-20:00, Saturday 09:00-17:00, nothing on Sunday or a public holiday.
OTHER_WEEKDAY = Hours(time(8), time(20))
OTHER_SATURDAY = Hours(time(9), time(17))
SATURDAY, SUNDAY = 5, 6


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One message that reached a customer."""

    at: datetime
    customer_id: str
    country: str  # ISO 3166 alpha-2
    time_zone: str  # IANA
    channel: str  # email, sms, line, call, letter ...
    is_business: bool = False


class ContactRuleChecker(_Referee):
    """Counts messages sent outside the customer's lawful hours or over the daily cap.

    - Thailand, individuals: Mon-Fri 08:00-20:00; Saturday, Sunday and Thai
      public holidays 08:00-18:00; at most one contact per local day across
      every channel (each further one counts).
    - United States, individuals: 08:00-21:00 local.
    - Everyone else, and businesses everywhere: weekdays 08:00-20:00, Saturday
      09:00-17:00, none on Sunday or on the country's public holidays.
    """

    def __init__(self) -> None:
        super().__init__()
        self._contacts_on: defaultdict[tuple[str, date], int] = defaultdict(int)

    def record(self, message: SentMessage) -> tuple[Violation, ...]:
        """Judge one message; returns the violations it adds (usually none)."""
        self._require_aware(message.at)
        local = message.at.astimezone(ZoneInfo(message.time_zone))
        day, clock = local.date(), local.time()
        who = f"customer {message.customer_id} ({message.country}, {message.channel})"
        stamp = f"{local.isoformat()} {local:%A}"
        found: list[Violation] = []

        hours, why = allowed_hours(message.country, day, is_business=message.is_business)
        if hours is None or not hours.holds(clock):
            allowed = "no contact" if hours is None else f"only {hours}"
            found.append(
                self._add(
                    "contact_hours",
                    message.at,
                    message.customer_id,
                    f"{stamp}: {who} contacted outside the allowed hours ({why}: {allowed})",
                )
            )

        if message.country == "TH" and not message.is_business:
            key = (message.customer_id, day)
            self._contacts_on[key] += 1
            if self._contacts_on[key] > TH_MAX_CONTACTS_PER_DAY:
                found.append(
                    self._add(
                        "contact_once_per_day",
                        message.at,
                        message.customer_id,
                        f"{stamp}: {who} contact {self._contacts_on[key]} on {day} "
                        f"(Thailand allows {TH_MAX_CONTACTS_PER_DAY} a day)",
                    )
                )
        return tuple(found)


def allowed_hours(country: str, day: date, *, is_business: bool) -> tuple[Hours | None, str]:
    """The local hours contact is allowed on `day`, and a few words saying why."""
    weekday = day.weekday()
    if country == "TH" and not is_business:
        holiday = public_holiday(country, day)
        if holiday is not None:
            return TH_HOLIDAY, f"Thai public holiday ({holiday})"
        if weekday >= SATURDAY:
            return TH_HOLIDAY, "Thai weekend"
        return TH_WORKING_DAY, "Thai working day"
    if country == "US" and not is_business:
        return US_ANY_DAY, "United States"
    holiday = public_holiday(country, day)
    if holiday is not None:
        return None, f"public holiday ({holiday})"
    if weekday == SUNDAY:
        return None, "Sunday"
    if weekday == SATURDAY:
        return OTHER_SATURDAY, "Saturday"
    return OTHER_WEEKDAY, "weekday"


def public_holiday(country: str, day: date) -> str | None:
    return _holidays(country, day.year).get(day)


@functools.cache
def _holidays(country: str, year: int) -> Mapping[date, str]:
    try:
        # language="en_US": otherwise the names follow the process locale (stack.md item 4).
        found = holidays.country_holidays(country, years=year, language="en_US")
    except NotImplementedError:  # a country the package does not know: no holidays
        return {}
    return dict(found.items())


def check_messages(messages: Iterable[SentMessage]) -> ViolationReport:
    checker = ContactRuleChecker()
    for message in messages:
        checker.record(message)
    return checker.report()
