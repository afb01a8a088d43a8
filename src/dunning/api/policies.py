"""Policies (campaigns): read the versions in use, and save a new version.

A POST never edits a version: it adds version N + 1 of the key (1 for a new
key), so open cases keep the version they started with.  The body has the
shape of `dunning.core.policy_json` without `version`; durations are ISO 8601
(``"P1D"``, ``"PT12H"``, ``"-P3D"`` for three days before the anchor).  A
policy that is malformed or unsound (`dunning.core.policy.validate`, or a
template key with no template in English and Thai) is a 422 naming each field,
such as ``steps[2].templates.email``, and nothing is saved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Field, Path, Router, Schema, Status
from ninja.errors import ValidationError
from pydantic import StrictBool, StrictInt

from dunning.api.common import now
from dunning.api.schemas import Input
from dunning.core.contacts import Channel
from dunning.core.policy import Action, Anchor, Tone
from dunning.core.policy_json import (
    COLLECTION_METHODS,
    PolicyFormatError,
    Problem,
    from_dict,
    to_dict,
)
from dunning.engine import policies
from dunning.engine.models import PolicyVersion
from dunning.ledger.errors import ErrorCode, LedgerError

router = Router(tags=["policies"])


def _one_of(*values: str) -> Any:
    # Documented as an enum but read as a string, so that a wrong choice is
    # reported with every other problem by `from_dict`, not in a first round.
    return Field(json_schema_extra={"enum": list(values)})


AnchorName = Annotated[str, _one_of(*Anchor)]
ToneName = Annotated[str, _one_of(*Tone)]
ChannelName = Annotated[str, _one_of(*Channel)]
ActionName = Annotated[str, _one_of(*Action)]
CollectionMethod = Annotated[str, _one_of(*COLLECTION_METHODS)]
Duration = Annotated[
    str,
    Field(
        description="ISO 8601 duration in days, hours, minutes, seconds; '-' before the anchor",
        examples=["P1D", "PT12H", "-P3D"],
    ),
]


class VariantBody(Input):
    key: str
    weight: StrictInt = 1


class StepBody(Input):
    key: str
    offset: Duration = Field(description="when, after (or with '-' before) the anchor")
    anchor: AnchorName = "due"
    tone: ToneName
    channels: list[ChannelName] = []
    templates: dict[str, str] = Field(
        default={}, description="channel: template key", examples=[{"email": "charge.failed"}]
    )
    actions: list[ActionName] = []
    deadline: Duration | None = Field(None, description="time to pay, on a final notice")
    variants: list[VariantBody] = []


class CriteriaBody(Input):
    collection_method: CollectionMethod | None = None
    countries: list[str] = Field(default=[], examples=[["TH"]])
    currencies: list[str] = Field(default=[], examples=[["THB"]])
    min_amount: dict[str, StrictInt] = Field(default={}, description="currency: minor units")
    max_amount: dict[str, StrictInt] = Field(default={}, description="currency: minor units")
    is_business: StrictBool | None = None


class RetryBody(Input):
    max_attempts: StrictInt = 0
    within: Duration = "PT0S"


class PolicyIn(Input):
    key: str = Field(examples=["default-send-invoice"], description="a-z, 0-9, '.', '_', '-'")
    name: str
    applies_to: CriteriaBody = CriteriaBody()
    steps: list[StepBody]
    retry: RetryBody = RetryBody()


class PolicyOut(Schema):
    key: str
    version: int
    name: str
    is_active: bool
    created_at: datetime
    applies_to: CriteriaBody
    steps: list[StepBody]
    retry: RetryBody


class VersionOut(Schema):
    version: int
    name: str
    is_active: bool
    created_at: datetime


class PolicyDetailOut(PolicyOut):
    versions: list[VersionOut] = Field(description="every version of the key, newest first")


def _out(row: PolicyVersion) -> dict[str, Any]:
    return {
        **to_dict(policies.load(row)),
        "is_active": row.is_active,
        "created_at": row.created_at,
    }


def _invalid(problems: list[Problem]) -> ValidationError:
    return ValidationError(
        [{"loc": (path,), "msg": message, "type": "policy"} for path, message in problems]
    )


@router.get("", response=list[PolicyOut], summary="List the policies new cases can follow")
def list_policies(request: HttpRequest) -> list[dict[str, Any]]:
    """The latest version of each policy, when that version is active; ordered by key."""
    return [_out(row) for row, _ in policies.active_policies()]


@router.get("/{key}", response=PolicyDetailOut, summary="Get a policy and its versions")
def get_policy(request: HttpRequest, key: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    """The latest version of the policy, active or not, and the list of all its versions."""
    row = policies.latest_version(key)
    if row is None:
        raise LedgerError("no policy with this key", code=ErrorCode.NOT_FOUND)
    versions = PolicyVersion.objects.filter(key=key).order_by("-version")
    return {
        **_out(row),
        "versions": [
            {
                "version": v.version,
                "name": v.name,
                "is_active": v.is_active,
                "created_at": v.created_at,
            }
            for v in versions
        ],
    }


@router.post("", response={201: PolicyOut}, summary="Save a new version of a policy")
def save_policy(request: HttpRequest, payload: PolicyIn) -> Status[dict[str, Any]]:
    """Saves the body as the next version of its key (version 1 for a new key)."""
    try:
        policy = from_dict(payload.model_dump())
        row = policies.save_policy(policy, now(request))
    except (PolicyFormatError, policies.PolicyRejected) as error:
        raise _invalid(error.problems) from None
    return Status(201, _out(row))
