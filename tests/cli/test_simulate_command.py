"""`dunning simulate`: scenarios out with --generate, results out with --scenario, and
never a write to the configured database."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from dunning.cli.management.commands.simulate import _table
from dunning.simulator.scenario import load_scenario


def generated(*args: str) -> str:
    out = io.StringIO()
    call_command("simulate", *args, stdout=out)
    return out.getvalue()


def dunning(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The real entry point, in its own process; the configured database is a SQLite
    file in tmp_path and the scratch folders go to tmp_path/tmp."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DUNNING_", "DATABASE_URL", "TEST_DATABASE_URL"))
    }
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'configured.sqlite3'}",
        "DUNNING_DATA_DIR": str(tmp_path / "data"),
        "TMPDIR": str(tmp_path / "tmp"),
    }
    return subprocess.run(
        [sys.executable, "-m", "dunning", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_generate_prints_one_line_of_json_the_loader_accepts_and_the_seed_repeats() -> None:
    out = generated("--generate", "5", "--seed", "3")

    assert out.count("\n") == 1
    scenario = load_scenario(json.loads(out))
    assert len(scenario.customers) == 5
    assert generated("--generate", "5", "--seed", "3") == out
    assert generated("--generate", "5", "--seed", "4") != out


def test_a_bad_scenario_exits_non_zero_naming_the_json_path(tmp_path: Path) -> None:
    scenario = json.loads(generated("--generate", "2", "--seed", "3", "--days", "30"))
    scenario["customers"][1]["invoices"][0]["currency"] = "thb"
    del scenario["customers"][0]["email"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(scenario))

    finished = dunning("simulate", "--scenario", str(path), "--json", tmp_path=tmp_path)

    assert finished.returncode != 0
    assert finished.stdout == ""
    assert "customers[0]: 'email' is a required property" in finished.stderr
    assert (
        "customers[1].invoices[0].currency: 'thb' must be an ISO 4217 currency code"
        in finished.stderr
    )
    assert not (tmp_path / "configured.sqlite3").exists()


def test_json_prints_one_object_and_leaves_the_configured_database_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(generated("--generate", "3", "--seed", "3", "--days", "30"))

    finished = dunning(
        "simulate", "--scenario", str(path), "--strategy", "fixed", "--json", tmp_path=tmp_path
    )

    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)
    assert {
        "strategy",
        "customers",
        "invoices",
        "failed_invoices",
        "recovered_invoices",
        "amount_due",
        "recovered",
        "attempts",
        "first_charges",
        "messages",
        "median_hours_to_recovery",
        "network_rule_violations",
        "contact_rule_violations",
        "violations",
        "seconds",
    } <= result.keys()
    assert (result["strategy"], result["customers"]) == ("fixed", 3)
    assert (result["network_rule_violations"], result["contact_rule_violations"]) == (0, 0)
    assert "scenario.json: 3 customers, strategy fixed" in finished.stderr
    assert "simulated in" in finished.stderr
    # The run's database lived in a scratch folder, gone now; the configured one was never made.
    assert not (tmp_path / "configured.sqlite3").exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_budget_the_policies_cannot_hold_is_refused_naming_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(generated("--generate", "1", "--seed", "3", "--days", "30"))

    too_many = dunning("simulate", "--scenario", str(path), "--retries", "16", tmp_path=tmp_path)
    odd_window = dunning("simulate", "--scenario", str(path), "--within", "P9D", tmp_path=tmp_path)
    not_a_duration = dunning(
        "simulate", "--scenario", str(path), "--within", "two weeks", tmp_path=tmp_path
    )

    assert too_many.returncode != 0
    assert "--retries: must be between 0 and 15" in too_many.stderr
    assert odd_window.returncode != 0
    assert "--within: must be 1, 2 or 3 weeks" in odd_window.stderr
    assert "--within: must be an ISO 8601 duration" in not_a_duration.stderr
    assert not (tmp_path / "configured.sqlite3").exists()


@pytest.mark.parametrize("days", ["0", "-5"])
def test_generate_with_no_days_is_refused_as_a_flag_not_a_traceback(days: str) -> None:
    with pytest.raises(CommandError, match="--days"):
        call_command("simulate", "--generate", "2", "--days", days, stdout=io.StringIO())


def test_a_scenario_with_nothing_recovered_prints_a_dash_for_the_median() -> None:
    row = {
        "strategy": "smart",
        "retry_budget": "the policies' own",
        "customers": 0,
        "invoices": 0,
        "failed_invoices": 0,
        "recovered_invoices": 0,
        "amount_due": {},
        "recovered": {},
        "recoverable": {},
        "attempts": 0,
        "messages": 0,
        "median_hours_to_recovery": None,
        "network_rule_violations": 0,
        "contact_rule_violations": 0,
    }

    table = _table(row)

    assert "None" not in table
    assert re.search(r"^median hours to recovery +-$", table, re.MULTILINE)


def test_a_refused_scenario_leaves_nothing_in_the_data_folder(tmp_path: Path) -> None:
    # docs/simulator.md: "nothing of a run is left behind".  The settings used to
    # write a new .dunning-secret-key into DUNNING_DATA_DIR before the file was read.
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"start": "2026-01-01T00:00:00Z", "customers": []}))

    finished = dunning("simulate", "--scenario", str(path), tmp_path=tmp_path)
    generate = dunning("simulate", "--generate", "1", tmp_path=tmp_path)

    assert finished.returncode == 1
    assert "scenario: 'end' is a required property" in finished.stderr
    assert generate.returncode == 0
    data = tmp_path / "data"
    assert not data.exists() or not any(data.iterdir()), sorted(data.iterdir())
    assert not (tmp_path / ".dunning-secret-key").exists()
