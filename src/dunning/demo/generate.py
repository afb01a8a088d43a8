"""Demo data as plain values, built from a seed and `now`.

Pure: no Django, no clock.  The same seed and the same `now` give equal
`DemoData`, so a demo, a screenshot or a bug report can be rebuilt exactly.
Every fact lies at or before `now`, and ages are relative to it: run with
today's `now` and an invoice 30 days overdue is 30 days overdue today.

The stories (renewal paid first time, recovered after retries or a new card,
still failing, written off; for invoices sent by email: paid on time or late,
part paid, not yet due, void, uncollectible) are dealt from shuffled decks of
exact proportions, so every seed has the same mix, only arranged differently.
The ages of open overdue invoices are dealt the same way, from a deck holding
each day 0..120 once; at the default size there are more such invoices than
days, so every age appears whatever the seed.
"""

from __future__ import annotations

import random
import zoneinfo
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

from dunning.demo import catalog, declines, people
from dunning.demo.data import (
    DemoAttempt,
    DemoCard,
    DemoCustomer,
    DemoData,
    DemoInvoice,
    DemoPayment,
    DemoStatusChange,
)

DEFAULT_SEED = 2569
CUSTOMERS = 300
MAX_AGE_DAYS = 120
# The first charge is tried an hour after the invoice is finalised, as Stripe
# does; then the billing system's own retries, three in a week (well inside
# Stripe's "8 tries within 2 weeks", rules.md 1.1), before dunning takes over.
# Fewer retries keep the load fast and leave the engine room to retry.
FIRST_CHARGE_DELAY = timedelta(hours=1)
RETRY_DAYS = (2, 4, 7)
# Demo charges name the demo bank (`dunning.gateways.demo`), which `make demo`
# serves with; nothing ever asks Stripe about them.
GATEWAY = "demo"

# Customers per 300, by market.
_MARKETS = {
    "th_person": 135,
    "th_firm": 60,
    "en_th_person": 20,
    "en_th_firm": 15,
    "us_person": 20,
    "us_firm": 10,
    "jp_person": 14,
    "jp_firm": 6,
    "de_person": 13,
    "de_firm": 7,
}
_PERSON_ACCOUNTS = {"card": 85, "invoiced_plan": 15}
_FIRM_ACCOUNTS = {"card": 25, "invoiced_plan": 15, "services": 60}
_CARD_STORIES = {"paid": 35, "recovered": 15, "failing": 42, "written_off": 8}
_SENT_STORIES = {
    "overdue": 34,
    "overdue_partial": 14,
    "not_yet_due": 16,
    "deposit": 4,
    "paid_on_time": 12,
    "paid_late": 8,
    "uncollectible": 6,
    "void": 6,
}
_BRANDS = {
    "TH": {"visa": 50, "mastercard": 35, "jcb": 15},
    "JP": {"jcb": 45, "visa": 35, "mastercard": 20},
    "US": {"visa": 55, "mastercard": 40, "jcb": 5},
    "DE": {"visa": 45, "mastercard": 55},
}
_TERMS_DAYS = {"TH": 30, "US": 30, "JP": 30, "DE": 14}


def generate(*, seed: int = DEFAULT_SEED, now: datetime, customers: int = CUSTOMERS) -> DemoData:
    """Build the demo ledger for `now` from `seed`: same arguments, equal result."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    return _Generator(random.Random(seed), now.astimezone(UTC)).run(seed=seed, count=customers)


def deck(rng: random.Random, weights: Mapping[str, int], size: int) -> list[str]:
    """`size` labels in exactly the proportions of `weights` (largest remainders), shuffled."""
    total = sum(weights.values())
    exact = {label: weight * size / total for label, weight in weights.items()}
    counts = {label: int(share) for label, share in exact.items()}
    by_remainder = sorted(exact, key=lambda label: (counts[label] - exact[label], label))
    for label in by_remainder[: size - sum(counts.values())]:
        counts[label] += 1
    cards = [label for label in weights for _ in range(counts[label])]
    rng.shuffle(cards)
    return cards


class _AgeDeck:
    """Days overdue for open invoices: each of 0..MAX_AGE_DAYS once, then again, shuffled."""

    def __init__(self, rng: random.Random):
        self._rng = rng
        self._cards: list[int] = []

    def draw(self) -> int:
        if not self._cards:
            self._cards = list(range(MAX_AGE_DAYS + 1))
            self._rng.shuffle(self._cards)
        return self._cards.pop()


_Day = TypeVar("_Day", bound=date)  # a date, or a datetime keeping its time of day


def _add_months(moment: _Day, months: int) -> _Day:
    # Billing days past the 28th would not exist in every month; renewals stay put.
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1, day=min(moment.day, 28))


class _Generator:
    def __init__(self, rng: random.Random, now: datetime):
        self.rng, self.now = rng, now.replace(microsecond=0)
        self.customers: list[DemoCustomer] = []
        self.cards: list[DemoCard] = []
        self.invoices: list[DemoInvoice] = []
        self.ages = _AgeDeck(rng)
        self.firm_names = people.thai_firm_names(rng)
        self.charges = self.transfers = 0

    def run(self, *, seed: int, count: int) -> DemoData:
        markets = deck(self.rng, _MARKETS, count)
        firms = [m.endswith("_firm") for m in markets]
        person_kinds = iter(deck(self.rng, _PERSON_ACCOUNTS, firms.count(False)))
        firm_kinds = iter(deck(self.rng, _FIRM_ACCOUNTS, firms.count(True)))
        kinds = [next(firm_kinds) if firm else next(person_kinds) for firm in firms]
        card_stories = iter(deck(self.rng, _CARD_STORIES, kinds.count("card")))
        sent_stories = iter(deck(self.rng, _SENT_STORIES, len(kinds) - kinds.count("card")))
        for number, (market, kind) in enumerate(zip(markets, kinds, strict=True), start=1):
            customer = f"cus_demo{number:04d}"
            profile = self._profile(market)
            if kind == "card":
                first = self._card_account(customer, profile, next(card_stories))
            else:
                first = self._invoiced_account(
                    customer, profile, kind, next(sent_stories), english_firm=market == "en_th_firm"
                )
            self.customers.append(
                DemoCustomer(
                    external_id=customer,
                    name=profile.name,
                    email=profile.email,
                    phone=profile.phone,
                    locale=profile.locale,
                    time_zone=profile.time_zone,
                    country=profile.country,
                    is_business=profile.is_business,
                    created_at=first,
                )
            )
        return DemoData(
            seed=seed,
            now=self.now,
            customers=tuple(self.customers),
            cards=tuple(self.cards),
            invoices=self._numbered(),
        )

    def _profile(self, market: str) -> people.Profile:
        rng = self.rng
        if market in ("th_firm", "en_th_firm"):
            if not self.firm_names:  # more firms than names: names repeat, as in life
                self.firm_names = people.thai_firm_names(rng)
            return people.thai_firm(rng, self.firm_names.pop(), english=market == "en_th_firm")
        makers = {
            "th_person": lambda: people.thai_person(rng),
            "en_th_person": lambda: people.english_in_thailand(rng),
            "us_person": lambda: people.american(rng, business=False),
            "us_firm": lambda: people.american(rng, business=True),
            "jp_person": lambda: people.japanese(rng, business=False),
            "jp_firm": lambda: people.japanese(rng, business=True),
            "de_person": lambda: people.german(rng, business=False),
            "de_firm": lambda: people.german(rng, business=True),
        }
        return makers[market]()

    # --- time -----------------------------------------------------------------------------

    def _between(self, start: datetime, end: datetime) -> datetime:
        span = max(int((end - start).total_seconds()), 0)
        return start + timedelta(seconds=self.rng.randint(0, span))

    def _hours(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=self.rng.randint(int(low * 3600), int(high * 3600)))

    def _local_midnight(self, moment: datetime, zone: str) -> datetime:
        local = moment.astimezone(zoneinfo.ZoneInfo(zone))
        return datetime.combine(local.date(), time(0), tzinfo=local.tzinfo).astimezone(UTC)

    def _due_days_ago(self, days: int, zone: str) -> datetime:
        """A due date (the start of the customer's local day) exactly `days` whole days ago."""
        due = self._local_midnight(self.now - timedelta(days=days), zone)
        if (self.now - due).days != days:  # a daylight-saving change moved midnight
            due = self.now - timedelta(days=days, hours=1)
        return due

    def _office_hours(self, day_start: datetime) -> datetime:
        return day_start + self._hours(9, 11.5)

    # --- card subscriptions ---------------------------------------------------------------

    def _card_account(self, customer: str, profile: people.Profile, story: str) -> datetime:
        """A subscription renewed by card; returns when the customer signed up."""
        rng, now = self.rng, self.now
        yearly = not profile.is_business and rng.random() < 0.12
        plans = catalog.PLANS[profile.currency]
        plan = rng.choices(plans, weights=(20, 50, 30) if profile.is_business else (45, 40, 15))[0]
        seats = rng.choice((0, 2, 3, 5, 8)) if profile.is_business else 0
        if story == "failing":
            latest = now - timedelta(days=self.ages.draw()) - self._hours(2, 22)
        elif story == "written_off":
            latest = now - timedelta(days=rng.randint(75, 150)) - self._hours(0, 23)
        elif story == "recovered":
            latest = now - timedelta(days=rng.randint(16, 29)) - self._hours(0, 23)
        else:
            latest = now - self._hours(2, 24 * (330 if yearly else 29))
        history = 0 if yearly else rng.choice((0, 1, 1, 2))
        first = declines.first_decline(rng) if story != "paid" else None
        expired = first is not None and first.decline_code == "expired_card"
        if expired:
            # The card paid at least one renewal before it ran out.
            history = max(history, 1)
        step = 12 if yearly else 1
        issues = [_add_months(latest, -back * step) for back in range(history, -1, -1)]
        signup = issues[0] - self._hours(0.05, 0.5)
        if expired:
            # The card ran out the month before the renewal that it failed.
            expires = _add_months(latest, -1)
        else:
            # About one card in eight runs out this month or next: "card expiring" reminders.
            ahead = rng.randint(0, 1) if rng.random() < 0.12 else rng.randint(2, 48)
            expires = _add_months(now, ahead)
        card = self._card(
            customer, profile, added_at=signup + timedelta(minutes=1), expires=expires
        )
        for issued in issues[:-1]:
            self._renewal(
                customer,
                profile,
                issued,
                plan,
                yearly,
                seats,
                card,
                "recovered" if rng.random() < 0.1 else "paid",
                declines.decline_named(rng, "insufficient_funds"),
            )
        self._renewal(customer, profile, latest, plan, yearly, seats, card, story, first)
        return signup

    def _card(
        self, customer: str, profile: people.Profile, *, added_at: datetime, expires: datetime
    ) -> DemoCard:
        brands = _BRANDS[profile.country]
        card = DemoCard(
            external_id=f"pm_demo{len(self.cards) + 1:05d}",
            customer=customer,
            brand=self.rng.choices(list(brands), weights=list(brands.values()))[0],
            last4=f"{self.rng.randrange(10000):04d}",
            exp_month=expires.month,
            exp_year=expires.year,
            country=profile.country,
            added_at=added_at,
        )
        self.cards.append(card)
        return card

    def _charge(
        self, at: datetime, amount: int, card: DemoCard, failure: declines.Outcome | None = None
    ) -> DemoAttempt:
        self.charges += 1
        reference = f"ch_demo{self.charges:06d}"
        if failure is None:
            return DemoAttempt(at, "succeeded", amount, card.external_id, reference)
        return DemoAttempt(
            at,
            "failed",
            amount,
            card.external_id,
            reference,
            failure.decline_code,
            failure.advice_code,
            failure.network_code,
        )

    def _renewal(
        self,
        customer: str,
        profile: people.Profile,
        issued: datetime,
        plan: tuple[str, str],
        yearly: bool,
        seats: int,
        card: DemoCard,
        story: str,
        first: declines.Outcome | None,
    ) -> None:
        rng, language = self.rng, profile.locale.split("-")[0]
        start = issued.astimezone(zoneinfo.ZoneInfo(profile.time_zone)).date()
        lines = catalog.plan_lines(
            currency=profile.currency,
            plan=plan,
            yearly=yearly,
            seats=seats,
            start=start,
            language=language,
        )
        amount = sum(line.amount for line in lines)
        charged_at = issued + FIRST_CHARGE_DELAY + self._hours(0, 0.2)
        attempts = [self._charge(charged_at, amount, card, first if story != "paid" else None)]
        status = None
        if first and story != "paid":
            outcome = first
            # Retry the same card on the billing system's schedule while the decline allows it.
            wanted = rng.randint(0, 2) if story == "recovered" else len(RETRY_DAYS)
            for day in RETRY_DAYS[:wanted]:
                at = issued + timedelta(days=day) + self._hours(0, 3)
                if not outcome.retry_same_card or at >= self.now:
                    break
                outcome = declines.retry_decline(rng, outcome)
                attempts.append(self._charge(at, amount, card, outcome))
            last = attempts[-1].attempted_at
            if story == "recovered":
                attempts.append(
                    self._recovery(
                        issued, last, amount, card, outcome, len(attempts), customer, profile
                    )
                )
            elif story == "written_off":
                status = DemoStatusChange(
                    "uncollectible",
                    self._between(issued + timedelta(days=45), issued + timedelta(days=60)),
                    "card retries exhausted",
                )
        end = _add_months(start, 12 if yearly else 1) - timedelta(days=1)
        label = catalog.period_label(start, "en")
        if yearly:
            label = f"{label} to {catalog.period_label(end, 'en')}"
        self.invoices.append(
            DemoInvoice(
                external_id="",
                number="",
                customer=customer,
                currency=profile.currency,
                amount_due=amount,
                issued_at=issued,
                due_at=issued,
                collection_method="charge_automatically",
                lines=tuple(lines),
                context={
                    "plan": plan[0],
                    "interval": "year" if yearly else "month",
                    "period": label,
                    "period_start": start.isoformat(),
                    "period_end": end.isoformat(),
                },
                attempts=tuple(attempts),
                status_change=status,
            )
        )

    def _recovery(
        self,
        issued: datetime,
        last: datetime,
        amount: int,
        card: DemoCard,
        outcome: declines.Outcome,
        tries: int,
        customer: str,
        profile: people.Profile,
    ) -> DemoAttempt:
        """The charge that finally succeeds after `tries` failures."""
        if outcome.retry_same_card:
            at = issued + timedelta(days=RETRY_DAYS[tries - 1]) + self._hours(0, 3)
            return self._charge(at, amount, card)
        if outcome.decline_code == "authentication_required":
            # The customer completed 3-D Secure on the pay page: same card, on session.
            return self._charge(last + self._hours(1, 48), amount, card)
        # Any other hard decline: the customer saved a new card, which was charged at once.
        added = last + self._hours(1, 72)
        new = self._card(
            customer,
            profile,
            added_at=added,
            expires=_add_months(self.now, self.rng.randint(12, 60)),
        )
        return self._charge(added + self._hours(0.03, 0.5), amount, new)

    # --- invoices sent by email -----------------------------------------------------------

    def _invoiced_account(
        self, customer: str, profile: people.Profile, kind: str, story: str, *, english_firm: bool
    ) -> datetime:
        """A customer paying by transfer; returns when they became a customer."""
        rng = self.rng
        terms = _TERMS_DAYS[profile.country] if profile.is_business else 7
        if profile.country == "US" and rng.random() < 0.4:
            terms = 15
        plan = (rng.choice(catalog.PLANS[profile.currency]), not profile.is_business)
        current = self._sent(customer, profile, kind, plan, story, terms, profile.currency)
        issued = [current.issued_at]
        # Earlier periods, settled; a yearly plan has none within the demo's window.
        for back in range(1, 1 + (0 if plan[1] and kind != "services" else rng.randint(0, 2))):
            late = rng.random() < 0.25
            issued.append(
                self._sent(
                    customer,
                    profile,
                    kind,
                    plan,
                    "paid_late" if late else "paid",
                    terms,
                    profile.currency,
                    issued=_add_months(current.issued_at, -back),
                ).issued_at
            )
        if kind == "services" and rng.random() < 0.25:
            # A second unpaid invoice: one reminder should list both (account-level dunning).
            issued.append(
                self._sent(
                    customer, profile, kind, plan, "overdue", terms, profile.currency
                ).issued_at
            )
        if english_firm and kind == "services" and rng.random() < 0.3:
            # Some work for Thai firms is contracted in US dollars.
            extra = rng.choices(list(_SENT_STORIES), weights=list(_SENT_STORIES.values()))[0]
            issued.append(self._sent(customer, profile, kind, plan, extra, terms, "USD").issued_at)
        return min(issued) - timedelta(days=rng.randint(1, 60))

    def _sent(
        self,
        customer: str,
        profile: people.Profile,
        kind: str,
        plan: tuple[tuple[str, str], bool],
        story: str,
        terms: int,
        currency: str,
        *,
        issued: datetime | None = None,
    ) -> DemoInvoice:
        rng, now, zone = self.rng, self.now, profile.time_zone
        if issued is not None:  # an earlier period, settled before the current one
            due = self._local_midnight(issued, zone) + timedelta(days=terms)
        elif story in ("overdue", "overdue_partial"):
            due = self._due_days_ago(self.ages.draw(), zone)
        elif story in ("not_yet_due", "deposit"):
            due = self._local_midnight(now + timedelta(days=rng.randint(1, terms - 1)), zone)
        elif story == "paid_on_time":
            due = self._due_days_ago(rng.randint(0, 60), zone)
        elif story == "paid_late":
            due = self._due_days_ago(rng.randint(3, 75), zone)
        elif story == "uncollectible":
            due = self._due_days_ago(rng.randint(95, 150), zone)
        else:  # void: issued between 3 and 90 days ago
            due = self._local_midnight(now - timedelta(days=rng.randint(3, 90)), zone) + timedelta(
                days=terms
            )
        if issued is None:
            issued = self._office_hours(due - timedelta(days=terms))
        language = profile.locale.split("-")[0]
        start = issued.astimezone(zoneinfo.ZoneInfo(zone)).date()
        if kind == "services":
            lines = catalog.service_lines(rng, currency=currency, start=start, language=language)
            context = {
                "purchase_order": f"PO-{start.year}-{rng.randrange(100, 10000):04d}",
                "payment_terms": f"net {terms}",
            }
        else:
            (name, _), yearly = plan
            lines = catalog.plan_lines(
                currency=currency,
                plan=plan[0],
                yearly=yearly,
                seats=0,
                start=start,
                language=language,
            )
            context = {
                "plan": name,
                "interval": "year" if yearly else "month",
                "period": str(start.year) if yearly else catalog.period_label(start, "en"),
                "payment_terms": f"net {terms}",
            }
        amount = sum(line.amount for line in lines)
        payments, status = self._settlement(profile, story, amount, currency, issued, due)
        invoice = DemoInvoice(
            external_id="",
            number="",
            customer=customer,
            currency=currency,
            amount_due=amount,
            issued_at=issued,
            due_at=due,
            collection_method="send_invoice",
            lines=tuple(lines),
            context=context,
            payments=tuple(payments),
            status_change=status,
        )
        self.invoices.append(invoice)
        return invoice

    def _settlement(
        self,
        profile: people.Profile,
        story: str,
        amount: int,
        currency: str,
        issued: datetime,
        due: datetime,
    ) -> tuple[list[DemoPayment], DemoStatusChange | None]:
        rng, latest = self.rng, self.now - timedelta(hours=1)
        day, hour = timedelta(days=1), timedelta(hours=1)
        if story == "paid" or (story == "paid_late" and due + day >= latest):
            story = "paid_on_time"
        if story == "paid_on_time":
            at = self._between(issued + day, min(due - hour, latest))
            return [self._transfer(profile, amount, currency, at)], None
        if story == "paid_late":
            at = self._between(due + day, min(due + 45 * day, latest))
            return [self._transfer(profile, amount, currency, at)], None
        if story == "void":
            at = self._between(issued + hour, min(issued + 2 * day, latest))
            return [], DemoStatusChange("void", at, "issued in error")
        partial = story in ("overdue_partial", "deposit")
        if partial or (story == "uncollectible" and rng.random() < 0.4):
            # One or two round sums, never the whole amount.
            first = catalog.round_part(amount, rng.randint(20, 70), currency)
            parts = [first] if rng.random() < 0.6 else [catalog.round_part(first, 50, currency)] * 2
            until = min(due + 30 * day, latest) if story == "uncollectible" else latest
            times = sorted(self._between(issued + 2 * hour, until) for _ in parts)
            payments = [
                self._transfer(profile, part, currency, at)
                for part, at in zip(parts, times, strict=True)
            ]
        else:
            payments = []
        if story == "uncollectible":
            return payments, DemoStatusChange(
                "uncollectible",
                self._between(due + 60 * day, due + 90 * day),
                "no answer to the final notice",
            )
        return payments, None

    def _transfer(
        self, profile: people.Profile, amount: int, currency: str, at: datetime
    ) -> DemoPayment:
        self.transfers += 1
        if profile.country == "TH" and not profile.is_business:
            method = "promptpay"  # Thailand's instant transfer by phone or ID number
        elif profile.country == "US" and self.rng.random() < 0.3:
            method = "check"
        else:
            method = "bank_transfer"
        prefix = {"promptpay": "PP", "check": "CHK", "bank_transfer": "TRF"}[method]
        return DemoPayment(at, amount, method, f"{prefix}-{at:%Y%m%d}-{self.transfers:05d}")

    def _numbered(self) -> tuple[DemoInvoice, ...]:
        """Invoice ids and numbers in order of issue, numbered per year as a billing system does."""
        ordered = sorted(enumerate(self.invoices), key=lambda pair: (pair[1].issued_at, pair[0]))
        per_year: dict[int, int] = {}
        numbered: list[DemoInvoice] = []
        for position, (_, invoice) in enumerate(ordered, start=1):
            year = invoice.issued_at.year
            per_year[year] = per_year.get(year, 0) + 1
            numbered.append(
                replace(
                    invoice,
                    external_id=f"in_demo{position:05d}",
                    number=f"INV-{year}-{per_year[year]:05d}",
                )
            )
        return tuple(numbered)
