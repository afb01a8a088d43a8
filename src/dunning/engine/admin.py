"""Admin views of the engine: policies (read, and save a new version), cases and messages.

A policy version is never edited: "Add" (or "New version from this one" on a
version's page) takes the policy as JSON, checks it like the API does, and
saves it through `engine.policies.save_policy` as the next version of its key.
Problems are listed one per JSON field (``steps[2].templates.email: ...``).
Cases, their timeline and messages are written by the worker only, so they are
read-only here.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from dunning.core.policy import SEND_INVOICE_DEFAULT
from dunning.core.policy_json import PolicyFormatError, check, from_dict, to_dict
from dunning.engine import policies
from dunning.engine.models import Case, CaseEvent, Message, PolicyVersion
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
    )
    list_filter = ("state", "currency", "collection_method")
    search_fields = ("customer__external_id", "customer__name", "customer__email")
    list_select_related = ("customer", "policy")
    inlines = [CaseEventInline]

    @admin.display(description="amount due", ordering="amount_due")
    def owed(self, case: Case) -> str:
        return money(case.amount_due, case.currency)


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
