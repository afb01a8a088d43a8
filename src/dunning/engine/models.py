"""What the engine decides and sends: policies, cases, their timeline, and the outbox."""

from __future__ import annotations

from typing import Any

from django.db import models

from dunning.core.cases import CaseState
from dunning.core.contacts import Channel
from dunning.ledger.models import Customer, Invoice, PaymentMethod

OPEN_STATES = (CaseState.ACTIVE, CaseState.PAUSED)


class PolicyVersion(models.Model):
    """One saved version of a policy (campaign).  Versions are never edited, only added."""

    key = models.CharField(max_length=64, help_text="e.g. default-send-invoice")
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    # The policy as `dunning.core.policy` reads it: criteria, steps, retry budget.
    definition = models.JSONField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["key", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["key", "version"], name="policy_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Case(models.Model):
    """One customer's overdue money in one currency: one case, one message listing every invoice."""

    # Indexed by case_customer_idx, which serves the key too.
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="cases", db_index=False
    )
    currency = models.CharField(max_length=3)
    state = models.CharField(max_length=16, choices=[(s.value, s.value) for s in CaseState])
    collection_method = models.CharField(max_length=24)
    policy = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="cases")
    invoices = models.ManyToManyField(Invoice, through="CaseInvoice", related_name="cases")
    amount_due = models.BigIntegerField(help_text="minor units still owed across its invoices")
    due_at = models.DateTimeField(null=True, blank=True, help_text="earliest due date")
    failed_at = models.DateTimeField(null=True, blank=True, help_text="first failed payment")
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    # When the worker must look at the case again; null when nothing is planned.
    next_action_at = models.DateTimeField(null=True, blank=True)
    # The charge retries (engine.retries): when the next one is planned and why,
    # in words a person reads on the case ("funds usually arrive on the 25th").
    next_retry_at = models.DateTimeField(null=True, blank=True)
    retry_reason = models.CharField(max_length=300, blank=True)
    # The idempotency key of a charge whose outcome is not known yet (a timeout):
    # the next try reuses it, so the gateway never charges twice.
    retry_key = models.CharField(max_length=64, blank=True)
    # What the charge under `retry_key` is: the invoice, card and amount the key
    # was made for, so the charge asked again is the very same request whatever
    # has changed since.  Only meaningful with a key; the plan sets them together.
    retry_invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    retry_payment_method = models.ForeignKey(
        PaymentMethod,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    retry_amount = models.BigIntegerField(null=True, blank=True)
    # Since when the charge under `retry_key` has had no recorded answer: from
    # the moment a worker sends it until its answer is recorded, and on after a
    # timeout or a worker that died.  Until it is settled nothing replans the
    # case, so no other key can charge twice.
    charge_in_doubt_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            # Account-level dunning: at most one open case per customer and currency.
            models.UniqueConstraint(
                fields=["customer", "currency"],
                condition=models.Q(state__in=[s.value for s in OPEN_STATES]),
                name="case_one_open_per_customer_currency",
            ),
        ]
        indexes = [
            # Claimed by the worker's decide stage (engine.worker.claim_due_cases):
            # partial, so its size follows the open work, never the closed history.
            models.Index(
                fields=["next_action_at"],
                name="case_due_idx",
                condition=models.Q(state=CaseState.ACTIVE.value, next_action_at__isnull=False),
            ),
            # Claimed by the retry stage (engine.retries.claim_due_retries).
            models.Index(
                fields=["next_retry_at"],
                name="case_retry_due_idx",
                condition=models.Q(state=CaseState.ACTIVE.value, next_retry_at__isnull=False),
            ),
            # A charge in doubt on a case paused or exhausted meanwhile is still
            # asked about (engine.retries.claim_due_retries): a handful of rows.
            models.Index(
                fields=["next_retry_at"],
                name="case_doubt_due_idx",
                condition=models.Q(charge_in_doubt_since__isnull=False)
                & ~models.Q(state=CaseState.ACTIVE.value),
            ),
            # Every change to an invoice asks about the charges in doubt for it
            # (engine.retries.ask_about_changed_invoices): a handful of rows, where
            # retry_invoice alone would index every case ever charged.
            models.Index(
                fields=["retry_invoice"],
                name="case_doubt_invoice_idx",
                condition=models.Q(charge_in_doubt_since__isnull=False),
            ),
            models.Index(fields=["customer", "state"], name="case_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"case {self.pk} ({self.currency}, {self.state})"


class CaseInvoice(models.Model):
    # Indexed by case_invoice_unique (case, invoice), which serves the key too.
    case = models.ForeignKey(Case, on_delete=models.CASCADE, db_index=False)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT)
    added_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "invoice"], name="case_invoice_unique"),
        ]


class CaseEvent(models.Model):
    """The case's timeline: every transition, decision, deferral and block, with its reason."""

    # Indexed by case_event_case_idx (case, id), which serves the foreign key too.
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="events", db_index=False)
    type = models.CharField(max_length=64)
    reason = models.TextField()
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    data = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["case", "id"], name="case_event_case_idx")]

    def __str__(self) -> str:
        return f"{self.type} on case {self.case_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("case events are append-only")
        super().save(*args, **kwargs)


class MessageStatus(models.TextChoices):
    SCHEDULED = "scheduled"  # written by a decision; waiting for delivery
    SENT = "sent"
    FAILED = "failed"  # refused for good, or out of retries: visible on the case
    # The case recovered or paused before it went out, or the customer opted out
    # of its channel; or, for a card request (engine.predunning), a card change
    # answered it first or a case opened.
    CANCELED = "canceled"


# The step of a request to update a card about to expire (engine.predunning): a
# message of no case.
CARD_REQUEST_STEP = "card.expiring"


class Message(models.Model):
    """One contact on one channel, stored exactly as sent: the outbox and the record in one row."""

    # Indexed by message_case_idx and message_customer_idx, which serve the keys too:
    # every index is one more write per message, and the outbox is the hot table.
    # No case for a message about no debt: a card about to expire (engine.predunning).
    case = models.ForeignKey(
        Case,
        on_delete=models.PROTECT,
        related_name="messages",
        db_index=False,
        null=True,
        blank=True,
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="messages", db_index=False
    )
    channel = models.CharField(max_length=16, choices=[(c.value, c.value) for c in Channel])
    to = models.CharField(max_length=254)
    locale = models.CharField(max_length=35)
    subject = models.CharField(max_length=500, blank=True)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    # Extra headers sent with it (List-Unsubscribe ...), kept as sent.
    headers = models.JSONField(default=dict, blank=True)
    step = models.CharField(max_length=64)
    template = models.CharField(max_length=100)
    # Which wording: "default" (the packaged file) or "db:v<N>" (a stored version).
    template_version = models.CharField(max_length=16, blank=True)
    variant = models.CharField(max_length=32, blank=True)
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.SCHEDULED
    )
    # Delivery: due now or later, tried `attempts` times; sent to providers as
    # their idempotency key, and the email's Message-ID is made from it.
    send_after = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    # Unique through message_idempotency_key_unique (a constraint, not unique=True,
    # which on PostgreSQL adds a second, LIKE-pattern index nobody queries).
    idempotency_key = models.CharField(max_length=64)
    provider_id = models.CharField(max_length=255, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [
            # Claimed by the delivery stage (engine.delivery.claim_due_messages).
            models.Index(
                fields=["send_after"],
                name="message_due_idx",
                condition=models.Q(status="scheduled"),
            ),
            models.Index(fields=["case", "id"], name="message_case_idx"),
            models.Index(fields=["customer", "id"], name="message_customer_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"], name="message_idempotency_key_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.to} ({self.status})"


class OptOutSource(models.TextChoices):
    ONE_CLICK = "one_click"  # an RFC 8058 POST from the mail client (List-Unsubscribe=One-Click)
    PAGE = "page"  # the button on the unsubscribe page


class ContactOptOut(models.Model):
    """The customer asked not to be contacted on this channel any more (the planner honours it)."""

    # Indexed by contact_opt_out_unique (customer, channel), which serves the key too.
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="opt_outs", db_index=False
    )
    channel = models.CharField(max_length=16, choices=[(c.value, c.value) for c in Channel])
    created_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=OptOutSource.choices)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel"], name="contact_opt_out_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} opted out of {self.channel}"


class MessageTemplate(models.Model):
    """One saved version of a message template: subject, HTML and text for a key and locale.

    Versions are never edited: saving a template adds version N + 1 of its key,
    channel and locale (`engine.templates.save_template`), so a message can name
    the exact wording it was sent with.  The latest version is the one in use
    when it is active; marking it inactive falls back to the packaged default.
    """

    key = models.CharField(max_length=100, help_text="e.g. send_invoice.overdue_1, or a variant")
    channel = models.CharField(
        max_length=16, choices=[(c.value, c.value) for c in Channel], default=Channel.EMAIL.value
    )
    locale = models.CharField(max_length=35, help_text="the language it is written in: en, th")
    version = models.PositiveIntegerField()
    subject = models.CharField(max_length=500)
    html = models.TextField()
    text = models.TextField()
    # sha256 of the three parts: with the id and version, what compiled-template
    # caches are keyed on, so a reused id (a rolled-back row on SQLite) never
    # serves another row's wording.
    digest = models.CharField(max_length=64)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=150, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["key", "channel", "locale", "-version"]
        constraints = [
            # Also the index `engine.templates.resolve` reads the latest version with.
            models.UniqueConstraint(
                fields=["key", "channel", "locale", "version"],
                name="message_template_version_unique",
            ),
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The wording of a version never changes; only whether it is in use does.
        changed = set(kwargs.get("update_fields") or ())
        if not self._state.adding and (not changed or changed - {"is_active"}):
            raise ValueError("template versions are never edited; save a new version instead")
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.key} ({self.channel}, {self.locale}) v{self.version}"


class RetryStat(models.Model):
    """The tenant's own retry outcomes per local hour of the customer: what smart retries learn.

    One row per hour for every card (`segment` "") and per hour for each card
    brand, issuing country, and brand and country (`retry_timing.card_segments`:
    "visa/", "/TH", "visa/TH"), updated after every retry the engine makes
    (`engine.retries`).
    """

    segment = models.CharField(max_length=40, blank=True)
    hour = models.PositiveSmallIntegerField()
    successes = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "hour"], name="retry_stat_segment_hour"),
            models.CheckConstraint(condition=models.Q(hour__lte=23), name="retry_stat_hour_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.segment or 'all cards'} {self.hour:02d}:00 {self.successes}/{self.attempts}"
