"""Policies stored as data: saved as numbered versions, never edited, loaded as core policies.

A save adds version N + 1 of the policy's key and leaves the older versions as
they are, so a case keeps following the version it was opened with
(`Case.policy`).  New cases use, for each key, its latest version when that
version is active: marking the latest version inactive retires the key, and
saving a new version brings it back.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Max, OuterRef, QuerySet, Subquery

from dunning.core.policy import DEFAULT_POLICIES, Policy
from dunning.core.policy_json import PolicyFormatError, Problem, check, from_dict, to_dict
from dunning.db import Prepared
from dunning.engine.models import PolicyVersion

logger = logging.getLogger(__name__)

# Two saves of one key at the same moment both choose N + 1; the loser retries.
_SAVE_ATTEMPTS = 10


class PolicyRejected(ValueError):
    """The policy is well formed but cannot be used; `problems` names each field at fault."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))


def save_policy(policy: Policy, now: datetime) -> PolicyVersion:
    """Store `policy` as the next version of its key (1 for a new key), active.

    `policy.version` is ignored: the store numbers the versions.  Raises
    PolicyRejected, saving nothing, when `check` finds a problem.
    """
    problems = check(policy)
    if problems:
        raise PolicyRejected(problems)
    for attempt in range(_SAVE_ATTEMPTS):
        latest = PolicyVersion.objects.filter(key=policy.id).aggregate(n=Max("version"))["n"]
        try:
            with transaction.atomic():
                return _create(policy, version=(latest or 0) + 1, now=now)
        except IntegrityError:
            if attempt == _SAVE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def ensure_default_policies(now: datetime) -> list[PolicyVersion]:
    """Version 1 of each default policy whose key has no version yet; the ones it created.

    Safe to call from every worker at start: a key that has any version, even an
    inactive one an operator retired, is left alone.
    """
    created = []
    for policy in DEFAULT_POLICIES:
        if PolicyVersion.objects.filter(key=policy.id).exists():
            continue
        try:
            with transaction.atomic():
                created.append(_create(policy, version=1, now=now))
        except IntegrityError:
            pass  # another process created it first
    return created


def _create(policy: Policy, *, version: int, now: datetime) -> PolicyVersion:
    stored = dataclasses.replace(policy, version=version)
    return PolicyVersion.objects.create(
        key=stored.id,
        version=version,
        name=stored.name,
        definition=to_dict(stored),
        is_active=True,
        created_at=now,
    )


def active_policies() -> list[tuple[PolicyVersion, Policy]]:
    """The latest version of each key, when it is active, with its policy; ordered by key."""
    loaded = []
    for row in _ACTIVE_VERSIONS().instances():
        try:
            loaded.append((row, load(row)))
        except PolicyFormatError:
            # Only a row written around save_policy can get here; one bad row must
            # not stop every other policy from being chosen.
            logger.exception("policy %s v%s cannot be read; it is skipped", row.key, row.version)
    return loaded


def _active_versions() -> QuerySet[PolicyVersion]:
    newest = PolicyVersion.objects.filter(key=OuterRef("key")).order_by("-version")
    return PolicyVersion.objects.filter(
        version=Subquery(newest.values("version")[:1]), is_active=True
    ).order_by("key")


_ACTIVE_VERSIONS: Prepared[PolicyVersion] = Prepared(_active_versions)  # read whenever cases open


def latest_version(key: str) -> PolicyVersion | None:
    """The newest version of `key`, active or not."""
    return PolicyVersion.objects.filter(key=key).order_by("-version").first()


def load(version: PolicyVersion) -> Policy:
    """The core policy a stored version describes; its key, number and name come from the row.

    Every batch of every worker pass reads its cases' policies, and a version
    is never edited, so each is parsed once per process: by its content, not
    its id (a rolled-back id may come back with other content).
    """
    text = json.dumps(version.definition, sort_keys=True, separators=(",", ":"))
    return _parsed(text, version.key, version.version, version.name)


@functools.lru_cache(maxsize=256)
def _parsed(definition: str, key: str, number: int, name: str) -> Policy:
    policy = from_dict(json.loads(definition))  # a Policy is immutable: one may be shared
    return dataclasses.replace(policy, id=key, version=number, name=name)
