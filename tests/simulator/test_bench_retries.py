"""The verdicts `bench/retries.py` prints from two runs' JSON (no run is made here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "retries.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_retries", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(strategy: str, **fields: Any) -> dict[str, Any]:
    return {
        "strategy": strategy,
        "failed_invoices": 10,
        "recovered_invoices": 5,
        "recovered": {"THB": 100_000},
        "recoverable": {"THB": 200_000},
        "attempts": 50,
        "messages": 20,
        "median_hours_to_recovery": 100.0,
        "network_rule_violations": 0,
        "contact_rule_violations": 0,
        "seconds": 1.0,
    } | fields


def test_all_goals_met(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    smart = run("smart", recovered={"THB": 120_000}, attempts=40, median_hours_to_recovery=80.0)
    assert bench.report([(1, run("fixed"), smart)], customers=10_000)
    assert "MISSED" not in capsys.readouterr().out


def test_a_smart_run_that_recovered_nothing_is_not_sooner(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # No recovery has no median (null): never, not sooner than fixed's 100 hours.
    smart = run("smart", recovered_invoices=0, recovered={"THB": 0}, median_hours_to_recovery=None)
    assert not bench.report([(1, run("fixed"), smart)], customers=10_000)
    assert "median sooner: MISSED" in capsys.readouterr().out


def test_recovering_when_fixed_never_did_is_sooner(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    fixed = run("fixed", recovered_invoices=0, recovered={"THB": 0}, median_hours_to_recovery=None)
    assert bench.report([(1, fixed, run("smart", attempts=40))], customers=10_000)
    assert "median sooner: ok" in capsys.readouterr().out


def test_more_retry_attempts_miss_the_goal(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    smart = run("smart", recovered={"THB": 120_000}, attempts=51, median_hours_to_recovery=80.0)
    assert not bench.report([(1, run("fixed"), smart)], customers=10_000)
    assert "attempts ratio 1.020 (MISSED)" in capsys.readouterr().out


def test_the_money_goal_holds_in_every_currency(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    fixed = run("fixed", recovered={"THB": 100_000, "USD": 1_000})
    smart = run(
        "smart",
        recovered={"THB": 200_000, "USD": 1_050},
        attempts=40,
        median_hours_to_recovery=80.0,
    )
    assert not bench.report([(1, fixed, smart)], customers=10_000)
    assert "THB 2.000 USD 1.050  (goal >= 1.1: MISSED)" in capsys.readouterr().out
