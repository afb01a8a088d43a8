"""Admin views of the engine: policies (read, and save a new version), cases and messages.

A policy version is never edited: "Add" (or "New version from this one" on a
version's page) takes the policy as JSON, checks it like the API does, and
saves it through `engine.policies.save_policy` as the next version of its key.
Problems are listed one per JSON field (``steps[2].templates.email: ...``).
Message templates work the same way: saving the form of a version (or "Add")
lints the wording and saves it through `engine.templates.save_template` as the
next version; a problem shows on the part at fault.  Cases, their timeline and
messages are written by the worker only, so they are read-only here.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from dunning.core.policy import SEND_INVOICE_DEFAULT
from dunning.core.policy_json import PolicyFormatError, check, from_dict, to_dict
from dunning.core.rendering import RenderError, UnknownTemplate
from dunning.engine import policies, templates
from dunning.engine.models import Case, CaseEvent, Message, MessageTemplate, PolicyVersion
from dunning.engine.retry_status import retry_status
from dunning.ledger.admin import ReadOnlyAdmin, money


def _pretty(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


class PolicyVersionForm(forms.ModelForm):
    definition = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 40, "cols": 100, "spellcheck": "false"}),
        help_text=(
            "The policy as JSON (see dunning.core.policy_json). Saving adds the next "
            "version of its key; durations are ISO 8601, e.g. P1D, PT12H, -P3D."
        ),
    )

    class Meta:
        model = PolicyVersion
        fields = ("definition",)

    def clean_definition(self) -> str:
        text: str = self.cleaned_data["definition"]
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"not valid JSON: {error}") from None
        try:
            policy = from_dict(data)
        except PolicyFormatError as error:
            raise _field_errors(error.problems) from None
        problems = check(policy)
        if problems:
            raise _field_errors(problems)
        self.cleaned_data["policy"] = policy
        return text


def _field_errors(problems: list[tuple[str, str]]) -> forms.ValidationError:
    return forms.ValidationError(
        [forms.ValidationError(f"{path or 'policy'}: {message}") for path, message in problems]
    )


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    form = PolicyVersionForm
    list_display = ("key", "version", "name", "is_active", "steps", "created_at")
    list_filter = ("is_active", "key")
    search_fields = ("key", "name")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("definition",)
        return ("key", "version", "name", "is_active", "created_at", "policy_json", "new_version")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return self.get_fields(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # versions are never edited; a new one is added instead

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # cases point at the version they follow

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        source = request.GET.get("from", "")
        row = PolicyVersion.objects.filter(pk=source).first() if source.isdigit() else None
        if row is not None:
            data = to_dict(policies.load(row))
        else:
            data = {**to_dict(SEND_INVOICE_DEFAULT), "key": "my-policy", "name": "My policy"}
        data.pop("version")
        return {"definition": _pretty(data)}

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Through the service, like the API: it numbers the version.
        row = policies.save_policy(form.cleaned_data["policy"], timezone.now())
        obj.pk, obj.key, obj.version, obj.name = row.pk, row.key, row.version, row.name
        obj.definition, obj.is_active, obj.created_at = (
            row.definition,
            row.is_active,
            row.created_at,
        )

    @admin.display(description="steps")
    def steps(self, row: PolicyVersion) -> int:
        steps = row.definition.get("steps") if isinstance(row.definition, dict) else None
        return len(steps) if isinstance(steps, list) else 0

    @admin.display(description="definition")
    def policy_json(self, row: PolicyVersion) -> str:
        return format_html("<pre>{}</pre>", _pretty(row.definition))

    @admin.display(description="edit")
    def new_version(self, row: PolicyVersion) -> str:
        url = reverse("admin:engine_policyversion_add") + f"?from={row.pk}"
        return format_html('<a href="{}">New version from this one</a>', url)


class CaseEventInline(admin.TabularInline):
    model = CaseEvent
    fields = ("occurred_at", "type", "from_state", "to_state", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("id",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChargeInDoubtFilter(admin.SimpleListFilter):
    """The cases whose last retry has no answer, and those waiting for an operator."""

    title = "charge in doubt"
    parameter_name = "in_doubt"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("any", "in doubt"), ("stopped", "in doubt, waiting for an operator")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "any":
            return queryset.filter(charge_in_doubt_since__isnull=False)
        if self.value() == "stopped":
            # Released with POST /api/v1/cases/{id}/charge-in-doubt/release.
            return queryset.filter(charge_in_doubt_since__isnull=False, next_retry_at__isnull=True)
        return queryset


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "customer",
        "state",
        "owed",
        "collection_method",
        "policy",
        "opened_at",
        "next_action_at",
        "next_retry",
        "why_this_retry",
        "charge_in_doubt_since",
    )
    list_filter = ("state", ChargeInDoubtFilter, "currency", "collection_method")
    search_fields = ("customer__external_id", "customer__name", "customer__email")
    list_select_related = ("customer", "policy")
    inlines = [CaseEventInline]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The retry as the API shows it, not the retry stage's wake-up and last plan:
        # a paused or exhausted case keeps those, and will not be charged.
        self._shown |= {"next_retry_at": "next_retry", "retry_reason": "why_this_retry"}

    @admin.display(description="amount due", ordering="amount_due")
    def owed(self, case: Case) -> str:
        return money(case.amount_due, case.currency)

    @admin.display(description="next retry at", ordering="next_retry_at")
    def next_retry(self, case: Case) -> datetime | None:
        return retry_status(case, now=timezone.now()).at

    @admin.display(description="retry reason")
    def why_this_retry(self, case: Case) -> str:
        return retry_status(case, now=timezone.now()).reason


@admin.register(CaseEvent)
class CaseEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "case", "type", "from_state", "to_state", "occurred_at")
    list_filter = ("type",)
    search_fields = ("type", "reason")
    list_select_related = ("case",)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "case",
        "channel",
        "to",
        "step",
        "template",
        "status",
        "attempts",
        "send_after",
        "sent_at",
    )
    list_filter = ("status", "channel", "template")
    search_fields = ("to", "subject", "customer__external_id", "idempotency_key")
    list_select_related = ("case",)


_SOURCE_WIDGET = {"rows": 24, "cols": 110, "spellcheck": "false", "style": "font-family:monospace"}


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ("key", "locale", "channel", "subject", "html", "text", "notes")
        widgets = {
            "subject": forms.TextInput(attrs={"size": 110}),
            "html": forms.Textarea(attrs=_SOURCE_WIDGET),
            "text": forms.Textarea(attrs=_SOURCE_WIDGET),
            "notes": forms.Textarea(attrs={"rows": 3, "cols": 110}),
        }
        help_texts = {
            "html": 'Jinja2, autoescaped. Start with {% extends "en/_layout.html" %} (or '
            '"th/_layout.html") and fill {% block content %}; see docs/templates.md.',
            "notes": "why this version was made",
        }

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        # On a version's page the key, locale and channel are shown, not edited.
        names = ("key", "locale", "channel")
        key, locale, channel = (cleaned.get(n, getattr(self.instance, n, "")) for n in names)
        subject, html, text = (cleaned.get(part) for part in ("subject", "html", "text"))
        if subject is None or html is None or text is None or not key or not locale:
            return cleaned  # a required field is missing; the form already says which
        problems = templates.check_template(key, locale, subject, html, text, channel=channel)
        for field, message in problems:
            self.add_error(field if field in self.fields else None, message)
        return cleaned


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    form = MessageTemplateForm
    list_display = ("key", "locale", "channel", "version", "is_active", "created_at", "created_by")
    list_filter = ("is_active", "channel", "locale", "key")
    search_fields = ("key", "subject", "notes")
    actions = ("stop_using", "use_again")
    _details = ("version", "is_active", "created_at", "created_by")
    _sources = ("subject", "html", "text", "notes")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("key", "locale", "channel", *self._sources)
        return ("key", "locale", "channel", *self._details, *self._sources, "preview")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ("key", "locale", "channel", *self._details, "preview")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # sent messages name the version they were written with

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        # "Add" with ?key=...&locale=... starts from the wording in use now.
        key, locale = request.GET.get("key", ""), request.GET.get("locale", "en")
        try:
            current = templates.resolve(key, locale)
        except UnknownTemplate:
            return {"locale": locale} if key else {}
        return {
            "key": current.key,
            "locale": current.locale,
            "subject": current.subject,
            "html": current.html,
            "text": current.text,
        }

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Never an update: the edited wording becomes the next version, through the service.
        data = form.cleaned_data
        row = templates.save_template(
            data.get("key", obj.key),
            data.get("locale", obj.locale),
            data["subject"],
            data["html"],
            data["text"],
            now=timezone.now(),
            channel=data.get("channel", obj.channel),
            created_by=request.user.get_username(),
            notes=data.get("notes", ""),
        )
        for field in MessageTemplate._meta.concrete_fields:
            setattr(obj, field.attname, getattr(row, field.attname))
        obj._state.adding = False

    @admin.action(description="Stop using the selected versions (fall back a step)")
    def stop_using(self, request: HttpRequest, queryset: Any) -> None:
        for row in queryset:
            templates.set_active(row, active=False)

    @admin.action(description="Use the selected versions again")
    def use_again(self, request: HttpRequest, queryset: Any) -> None:
        for row in queryset:
            templates.set_active(row, active=True)

    @admin.display(description="preview")
    def preview(self, row: MessageTemplate) -> str:
        """This version for a customer in its language, and what the other language gets now."""
        today = timezone.now().date()
        sections = []
        for language in ("en", "th"):
            if templates.normal_locale(row.locale).split("-")[0] == language:
                template, title = templates.template_of(row), f"This version ({language})"
            else:
                try:
                    template = templates.resolve(row.key, language)
                except UnknownTemplate:
                    continue
                title = f"{language} customers get now: {template.locale}, {template.version}"
            try:
                shown = templates.preview(template, today=today, customer_locale=language)
            except RenderError as error:
                sections.append(format_html("<h3>{}</h3><p>{}</p>", title, str(error)))
                continue
            sections.append(
                format_html(
                    "<h3>{}</h3><p><strong>{}</strong></p>"
                    '<iframe sandbox="" srcdoc="{}" style="width:100%;height:480px;'
                    'border:1px solid #ccc"></iframe><pre>{}</pre>',
                    title,
                    shown.subject,
                    shown.html,
                    shown.text,
                )
            )
        return format_html_join("", "{}", ((section,) for section in sections))
