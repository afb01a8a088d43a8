"""`/templates`: the message templates in the store, saved as versions, and previews.

A POST never edits a version: it adds version N + 1 of the key, channel and
locale (1 for a new one), after the lint `dunning templates check` runs.  A
template that fails it is a 422 naming the part at fault (``subject``,
``html`` or ``text``, or ``key``, ``locale``, ``channel``) and nothing is
saved.  `GET /templates/resolved` shows the wording a customer in a locale gets
now, from the store or the packaged default, which is also where an edit of a
default starts from.  Placeholders and layouts: docs/templates.md.
"""

# No `from __future__ import annotations`: ninja reads Query[...] at import time.
from datetime import datetime
from typing import Annotated, Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import ValidationError
from ninja.pagination import paginate

from dunning.api.common import NewestFirst, ObjectId, not_found, now
from dunning.api.schemas import Input
from dunning.core.rendering import MessageTemplate, RenderError, UnknownTemplate
from dunning.engine import templates
from dunning.engine.models import MessageTemplate as TemplateVersion
from dunning.ledger.errors import ErrorCode, LedgerError

router = Router(tags=["templates"])

_KEY_DOC = "lower-case words joined by dots; an A/B variant's key names its template"
# In a body, the service names what is wrong with a key or locale; in a query,
# the pattern keeps what reaches the database to what a key or locale can be.
TemplateKey = Annotated[
    str, Field(max_length=100, examples=["send_invoice.overdue_1"], description=_KEY_DOC)
]
Locale = Annotated[str, Field(max_length=35, examples=["th"], description="en, th, th-TH ...")]
KeyQuery = Annotated[
    str,
    Field(max_length=100, pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$", description=_KEY_DOC),
]
LocaleQuery = Annotated[
    str, Field(max_length=35, pattern=r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$", examples=["th"])
]
ChannelName = Annotated[str, Field(json_schema_extra={"enum": list(templates.TEMPLATE_CHANNELS)})]


class TemplateIn(Input):
    key: TemplateKey
    locale: Locale
    channel: ChannelName = "email"
    subject: str = Field(description="Jinja2; folded onto one line when rendered")
    html: str = Field(description='Jinja2, autoescaped; may {% extends "en/_layout.html" %}')
    text: str = Field(description="Jinja2: the plain-text part")
    notes: str = Field("", max_length=10_000, description="why this version was made")


class TemplateOut(Schema):
    id: int
    key: str
    channel: str
    locale: str
    version: int
    is_active: bool
    subject: str
    html: str
    text: str
    created_at: datetime
    created_by: str
    notes: str


class ResolvedOut(Schema):
    key: str
    locale: str = Field(description="the language the template is written in")
    version: str = Field(description='"db:v3" for a stored version, "default" for a packaged one')
    subject: str
    html: str
    text: str


class PreviewOut(Schema):
    subject: str
    html: str
    text: str


class TemplateFilters(Schema):
    key: KeyQuery | None = None
    locale: LocaleQuery | None = None
    channel: ChannelName | None = None


def _invalid(problems: list[templates.Problem]) -> ValidationError:
    return ValidationError(
        [{"loc": (field,), "msg": message, "type": "template"} for field, message in problems]
    )


@router.get("", response=list[TemplateOut], summary="List stored template versions, newest first")
@paginate(NewestFirst)
def list_templates(
    request: HttpRequest, filters: Query[TemplateFilters]
) -> QuerySet[TemplateVersion]:
    query = TemplateVersion.objects.all()
    if filters.key is not None:
        query = query.filter(key=filters.key)
    if filters.locale is not None:
        query = query.filter(locale=templates.normal_locale(filters.locale))
    if filters.channel is not None:
        query = query.filter(channel=filters.channel)
    return query


@router.get("/resolved", response=ResolvedOut, summary="The template a customer gets now")
def resolved_template(
    request: HttpRequest, key: KeyQuery, locale: LocaleQuery, variant: KeyQuery | None = None
) -> MessageTemplate:
    """For each language the customer reads, closest first: the stored version, else the default."""
    try:
        return templates.resolve(key, locale, variant=variant or "")
    except UnknownTemplate as error:
        raise LedgerError(str(error), code=ErrorCode.NOT_FOUND) from None


@router.get("/{id}", response=TemplateOut, summary="Get a template version")
def get_template(request: HttpRequest, id: ObjectId) -> TemplateVersion:
    row = TemplateVersion.objects.filter(pk=id).first()
    if row is None:
        raise not_found("template", id)
    return row


@router.get("/{id}/preview", response=PreviewOut, summary="Render a version with sample data")
def preview_template(request: HttpRequest, id: ObjectId, locale: LocaleQuery | None = None) -> Any:
    """The version rendered for a made-up customer (in `locale`, or the template's own)."""
    row = get_template(request, id)
    if locale and not templates.is_known_locale(locale):
        raise _invalid([("locale", "must be a known language tag such as en, th or th-TH")])
    try:
        return templates.preview(
            templates.template_of(row), today=now(request).date(), customer_locale=locale or ""
        )
    except RenderError as error:
        raise _invalid([(error.part, str(error))]) from None


@router.post("", response={201: TemplateOut}, summary="Save a new version of a template")
def save_template(request: HttpRequest, payload: TemplateIn) -> Status[TemplateVersion]:
    """Saves the body as the next version of its key, channel and locale, after the lint."""
    key_name = getattr(getattr(request, "auth", None), "name", "")
    try:
        row = templates.save_template(
            payload.key,
            payload.locale,
            payload.subject,
            payload.html,
            payload.text,
            now=now(request),
            channel=payload.channel,
            created_by=f"api:{key_name}" if key_name else "api",
            notes=payload.notes,
        )
    except templates.TemplateRejected as error:
        raise _invalid(error.problems) from None
    return Status(201, row)
