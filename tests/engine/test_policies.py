from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from dunning.core.policy import (
    CHARGE_AUTOMATICALLY_DEFAULT,
    DEFAULT_POLICIES,
    SEND_INVOICE_DEFAULT,
)
from dunning.core.policy_json import to_dict
from dunning.engine import policies
from dunning.engine.models import Case, CaseEvent, Message, PolicyVersion
from tests.conftest import NOW

LATER = NOW + timedelta(days=1)


def test_it_creates_version_one_of_each_default_once(db: None) -> None:
    created = policies.ensure_default_policies(NOW)
    again = policies.ensure_default_policies(LATER)

    assert [row.key for row in created] == [p.id for p in DEFAULT_POLICIES]
    assert again == []
    assert list(PolicyVersion.objects.values_list("key", "version")) == [
        (CHARGE_AUTOMATICALLY_DEFAULT.id, 1),
        (SEND_INVOICE_DEFAULT.id, 1),
    ]


def test_a_stored_default_loads_as_the_same_policy(db: None) -> None:
    policies.ensure_default_policies(NOW)

    loaded = {policy.id: policy for _, policy in policies.active_policies()}

    assert loaded == {p.id: p for p in DEFAULT_POLICIES}


def test_a_version_is_read_by_its_content_not_its_id() -> None:
    """Parsed versions are kept per process; a rolled-back id may come back with other
    content (tests, SQLite), so the same id with another definition is another policy."""
    shorter = replace(SEND_INVOICE_DEFAULT, steps=SEND_INVOICE_DEFAULT.steps[:1])

    def row(policy: Any) -> PolicyVersion:
        return PolicyVersion(
            pk=7, key=policy.id, version=1, name=policy.name, definition=to_dict(policy)
        )

    assert policies.load(row(SEND_INVOICE_DEFAULT)) == SEND_INVOICE_DEFAULT
    assert policies.load(row(shorter)) == shorter
    assert policies.load(row(SEND_INVOICE_DEFAULT)) == SEND_INVOICE_DEFAULT


def test_a_save_adds_the_next_version_and_leaves_the_old_one_as_it_was(db: None) -> None:
    policies.ensure_default_policies(NOW)
    first = PolicyVersion.objects.get(key=SEND_INVOICE_DEFAULT.id)
    before = dict(first.definition)
    firmer = replace(SEND_INVOICE_DEFAULT, name="Firmer", steps=SEND_INVOICE_DEFAULT.steps[1:])

    second = policies.save_policy(firmer, LATER)

    assert (second.key, second.version, second.name) == (SEND_INVOICE_DEFAULT.id, 2, "Firmer")
    assert policies.load(second) == replace(firmer, version=2)
    first.refresh_from_db()
    assert first.definition == before
    assert policies.load(first) == SEND_INVOICE_DEFAULT
    active = {row.key: row.version for row, _ in policies.active_policies()}
    assert active == {SEND_INVOICE_DEFAULT.id: 2, CHARGE_AUTOMATICALLY_DEFAULT.id: 1}


def test_a_new_key_starts_at_version_one_whatever_the_policy_says(db: None) -> None:
    row = policies.save_policy(replace(SEND_INVOICE_DEFAULT, id="thai-smb", version=7), NOW)

    assert (row.key, row.version) == ("thai-smb", 1)
    assert row.definition["version"] == 1


def test_an_unsound_policy_is_refused_and_nothing_is_saved(db: None) -> None:
    broken = replace(SEND_INVOICE_DEFAULT, steps=tuple(reversed(SEND_INVOICE_DEFAULT.steps)))

    with pytest.raises(policies.PolicyRejected) as raised:
        policies.save_policy(broken, NOW)

    assert ("steps[1].key", "comes after the final action of 'uncollectible'") in (
        raised.value.problems
    )
    assert not PolicyVersion.objects.exists()


def test_a_retired_latest_version_takes_its_key_out_of_use(db: None) -> None:
    policies.ensure_default_policies(NOW)
    policies.save_policy(SEND_INVOICE_DEFAULT, LATER)
    PolicyVersion.objects.filter(key=SEND_INVOICE_DEFAULT.id, version=2).update(is_active=False)

    keys = [row.key for row, _ in policies.active_policies()]

    assert keys == [CHARGE_AUTOMATICALLY_DEFAULT.id]
    assert policies.ensure_default_policies(LATER) == []  # retired is not missing


# ---------------------------------------------------------------- admin


@pytest.fixture
def operator(db: None) -> Client:
    user = User.objects.create_superuser("ops", "ops@example.com", "a-long-password")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def case(make_invoice: Any) -> Case:
    """An open case with one timeline entry and one scheduled message."""
    invoice = make_invoice(amount_due=123450)
    (version, *_) = policies.ensure_default_policies(NOW)
    case = Case.objects.create(
        customer=invoice.customer,
        currency="THB",
        state="active",
        collection_method="send_invoice",
        policy=version,
        amount_due=123450,
        due_at=invoice.due_at,
        opened_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    CaseEvent.objects.create(
        case=case, type="case.opened", reason="invoice overdue", to_state="active", occurred_at=NOW
    )
    Message.objects.create(
        case=case,
        customer=case.customer,
        channel="email",
        to="somchai@example.co.th",
        locale="th-TH",
        subject="Reminder",
        body_text="1,234.50",
        step="overdue_1",
        template="send_invoice.overdue_1",
        send_after=NOW,
        idempotency_key="k1",
        created_at=NOW,
        updated_at=NOW,
    )
    return case


@pytest.mark.parametrize("model", ["policyversion", "case", "caseevent", "message"])
def test_operators_can_look_at_every_engine_list_and_record(
    operator: Client, case: Case, model: str
) -> None:
    from django.apps import apps

    record = apps.get_model("engine", model).objects.first()

    assert operator.get(f"/admin/engine/{model}/").status_code == 200
    assert operator.get(f"/admin/engine/{model}/{record.pk}/change/").status_code == 200


def test_the_case_list_shows_the_amount_in_major_units(operator: Client, case: Case) -> None:
    assert "THB\xa01,234.50" in operator.get("/admin/engine/case/").content.decode()


def test_a_case_s_own_page_shows_its_amount_as_money_and_names_its_timeline(
    operator: Client, case: Case
) -> None:
    event = CaseEvent.objects.create(case=case, type="retry.planned", reason="why", occurred_at=NOW)

    page = operator.get(f"/admin/engine/case/{case.pk}/change/").content.decode()

    assert "THB\xa01,234.50" in page and "123450" not in page
    assert "CaseEvent object" not in page
    assert str(event) == f"retry.planned on case {case.pk}"


def test_operators_can_read_a_policy_version_and_start_a_new_one_from_it(
    operator: Client,
) -> None:
    (row, *_) = policies.ensure_default_policies(NOW)

    page = operator.get(f"/admin/engine/policyversion/{row.pk}/change/")
    form = operator.get(f"/admin/engine/policyversion/add/?from={row.pk}")

    assert page.status_code == 200
    assert "send_invoice.courtesy" in page.content.decode()
    assert form.status_code == 200
    assert "send_invoice.courtesy" in form.content.decode()


def test_saving_edited_json_in_the_admin_adds_a_version(operator: Client) -> None:
    policies.ensure_default_policies(NOW)
    data = to_dict(SEND_INVOICE_DEFAULT)
    data["name"] = "Edited"

    response = operator.post("/admin/engine/policyversion/add/", {"definition": _json(data)})

    assert response.status_code == 302, response.content.decode()[:2000]
    latest = policies.latest_version(SEND_INVOICE_DEFAULT.id)
    assert latest is not None and (latest.version, latest.name) == (2, "Edited")


def test_the_admin_shows_each_problem_by_its_field_and_saves_nothing(operator: Client) -> None:
    data = to_dict(SEND_INVOICE_DEFAULT)
    data["steps"][2]["templates"]["email"] = "send_invoice.nope"
    data["steps"][3]["offset"] = "P1Y"

    response = operator.post("/admin/engine/policyversion/add/", {"definition": _json(data)})

    page = response.content.decode()
    assert response.status_code == 200
    assert "steps[3].offset: must be an ISO 8601 duration" in page
    assert not PolicyVersion.objects.exists()


def test_the_admin_refuses_an_unknown_template_by_its_field(operator: Client) -> None:
    data = to_dict(SEND_INVOICE_DEFAULT)
    data["steps"][2]["templates"]["email"] = "send_invoice.nope"

    page = operator.post("/admin/engine/policyversion/add/", {"definition": _json(data)})

    assert "steps[2].templates.email: no such template" in page.content.decode()
    assert not PolicyVersion.objects.exists()


def test_the_admin_cannot_edit_or_delete_versions_or_cases(operator: Client) -> None:
    (row, *_) = policies.ensure_default_policies(NOW)

    edit = operator.post(f"/admin/engine/policyversion/{row.pk}/change/", {"definition": "{}"})

    assert edit.status_code == 403
    assert operator.get(f"/admin/engine/policyversion/{row.pk}/delete/").status_code == 403
    assert operator.get("/admin/engine/case/add/").status_code == 403
    assert not Case.objects.exists()


def _json(data: object) -> str:
    return json.dumps(data, ensure_ascii=False)


def test_a_row_that_cannot_be_read_is_skipped_not_fatal(db: None) -> None:
    policies.ensure_default_policies(NOW)
    PolicyVersion.objects.create(key="broken", version=1, name="x", definition={}, created_at=NOW)

    keys = [row.key for row, _ in policies.active_policies()]

    assert keys == [CHARGE_AUTOMATICALLY_DEFAULT.id, SEND_INVOICE_DEFAULT.id]


def test_the_admin_starts_a_new_policy_from_an_example_and_refuses_bad_json(
    operator: Client,
) -> None:
    blank = operator.get("/admin/engine/policyversion/add/")
    bad = operator.post("/admin/engine/policyversion/add/", {"definition": "{not json"})

    assert blank.status_code == 200
    assert "my-policy" in blank.content.decode()
    assert "not valid JSON" in bad.content.decode()
    assert not PolicyVersion.objects.exists()


# ---------------------------------------------------------------- concurrency


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_four_editors_saving_at_once_get_distinct_versions() -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def editor(number: int) -> None:
        try:
            start.wait(timeout=30)
            for edit in range(3):
                policies.save_policy(replace(SEND_INVOICE_DEFAULT, name=f"{number}.{edit}"), NOW)
        except BaseException as error:  # surfaced to the test thread below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=editor, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    versions = PolicyVersion.objects.filter(key=SEND_INVOICE_DEFAULT.id)
    assert sorted(versions.values_list("version", flat=True)) == list(range(1, 13))
    assert len(set(versions.values_list("name", flat=True))) == 12
