"""`dunning demo` at its edges, without loading the whole demo."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from dunning.api.keys import hash_key
from dunning.api.models import ApiKey
from dunning.cli.management.commands.demo import operator_directions
from dunning.demo.data import DemoData
from dunning.demo.load import Later
from dunning.engine.models import CaseEvent, CaseInvoice
from dunning.ledger.models import Customer, Event, Invoice, PaymentAttempt
from tests.conftest import NOW


def test_it_refuses_a_database_that_already_has_customers(
    make_customer: Callable[..., Any],
    on_postgres: bool,
) -> None:
    make_customer("cus_real")
    with pytest.raises(CommandError) as refused:
        call_command("demo", "--load", "--now", NOW.isoformat(), stdout=StringIO())
    message = str(refused.value)
    assert "already has 1 customer(s)" in message
    assert ("new, empty database" if on_postgres else "delete the SQLite file") in message
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["cus_real"]
    assert not Event.objects.filter(source="demo").exists()


def test_it_does_nothing_without_load(db: None) -> None:
    with pytest.raises(CommandError, match="nothing to do"):
        call_command("demo", stdout=StringIO())


def test_it_refuses_a_now_that_is_not_a_date(db: None) -> None:
    with pytest.raises(CommandError, match="--now: not a date"):
        call_command("demo", "--load", "--now", "yesterday", stdout=StringIO())


def test_it_counts_ages_from_the_current_time_unless_told(
    db: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded: list[DemoData] = []

    def load(data: DemoData, *, until: datetime | None) -> Later:
        loaded.append(data)
        return Later(deque())

    monkeypatch.setattr("dunning.cli.management.commands.demo.load", load)
    monkeypatch.setattr("dunning.cli.management.commands.demo.timezone.now", lambda: NOW)
    call_command("demo", "--load", "--seed", "3", "--play-days", "0", stdout=StringIO())
    call_command(
        "demo",
        "--load",
        "--now",
        "2026-01-02T09:00:00+07:00",
        "--play-days",
        "0",
        stdout=StringIO(),
    )
    assert [(d.seed, d.now.isoformat()) for d in loaded] == [
        (3, "2026-03-16T03:00:00+00:00"),
        (2569, "2026-01-02T02:00:00+00:00"),
    ]


def test_operator_directions_are_made_once_kept_private_and_the_same_on_every_start(
    db: None,
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.DATA_DIR = tmp_path
    first = operator_directions(url="http://127.0.0.1:8000")
    again = operator_directions(url="http://127.0.0.1:8000")

    password = (tmp_path / ".dunning-demo-password").read_text()
    key = (tmp_path / ".dunning-demo-api-key").read_text()
    assert first == again
    assert f"log in as admin / {password}" in first
    assert f"Authorization: Bearer {key}" in first
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert ApiKey.objects.filter(key_hash=hash_key(key), revoked_at=None).count() == 1
    for kept in (".dunning-demo-password", ".dunning-demo-api-key"):
        assert oct((tmp_path / kept).stat().st_mode & 0o777) == "0o600", kept


def test_a_revoked_demo_key_is_replaced_by_a_new_one_kept_as_privately(
    db: None,
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.DATA_DIR = tmp_path
    operator_directions(url="http://127.0.0.1:8000")
    revoked = (tmp_path / ".dunning-demo-api-key").read_text()
    ApiKey.objects.update(revoked_at=NOW)

    directions = operator_directions(url="http://127.0.0.1:8000")

    key = (tmp_path / ".dunning-demo-api-key").read_text()
    assert key != revoked
    assert f"Authorization: Bearer {key}" in directions
    assert ApiKey.objects.filter(key_hash=hash_key(key), revoked_at=None).count() == 1
    assert oct((tmp_path / ".dunning-demo-api-key").stat().st_mode & 0o777) == "0o600"


def test_a_demo_secret_kept_readable_by_all_is_made_private_again(
    db: None, settings: Any, tmp_path: Path
) -> None:
    settings.DATA_DIR = tmp_path
    operator_directions(url="http://127.0.0.1:8000")
    key = tmp_path / ".dunning-demo-api-key"
    key.chmod(0o644)  # as the version before wrote a replaced key

    operator_directions(url="http://127.0.0.1:8000")
    assert oct(key.stat().st_mode & 0o777) == "0o600"

    ApiKey.objects.update(revoked_at=NOW)
    key.chmod(0o644)
    operator_directions(url="http://127.0.0.1:8000")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".dunning-demo-api-key",
        ".dunning-demo-password",
    ]


def test_the_engine_plays_the_demo_s_last_days_without_seeing_its_future(
    db: None, settings: Any, tmp_path: Path
) -> None:
    settings.DUNNING_GATEWAY = "demo"
    settings.DUNNING_OUTBOX_DIR = tmp_path
    out = StringIO()

    call_command("demo", "--load", "--now", NOW.isoformat(), "--play-days", "14", stdout=out)

    assert "The engine ran through the last 14 days" in out.getvalue()
    assert CaseEvent.objects.exists() and PaymentAttempt.objects.filter(gateway="demo").exists()
    # Nothing the engine did leans on a fact recorded after it.
    for link in CaseInvoice.objects.select_related("invoice"):
        assert link.added_at >= link.invoice.created_at, link.invoice.number
    for event in CaseEvent.objects.select_related("case"):
        assert event.occurred_at >= event.case.opened_at, event
    for invoice in Invoice.objects.exclude(paid_at=None):
        later = invoice.attempts.filter(attempted_at__gt=invoice.paid_at)
        assert not later.exists(), f"{invoice.number} charged after it was paid"
