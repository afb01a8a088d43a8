"""`dunning import customers|invoices FILE`: exit code, errors on stderr, a summary on stdout."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from dunning.ledger.models import Customer, Event, Invoice

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "csv"
HEADER = "external_id,customer,number,currency,amount_due,issued_at,due_at,collection_method"


def dunning_import(*args: str) -> tuple[int, str, str]:
    """Run the command in this process; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import", *args, stdout=out, stderr=err)
    except SystemExit as exit:
        return int(exit.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def counts() -> tuple[int, int, int]:
    return Customer.objects.count(), Invoice.objects.count(), Event.objects.count()


def test_it_imports_and_prints_the_totals_per_currency(db: None) -> None:
    dunning_import("customers", str(FIXTURES / "customers_jp_kw.csv"))

    code, out, err = dunning_import("invoices", str(FIXTURES / "invoices_jpy_kwd.csv"))

    assert (code, err) == (0, "")
    assert out == "Imported 3 invoices (JPY 5,000, KWD 12.845).\n"


def test_thai_baht_totals_are_grouped_with_two_decimals(db: None) -> None:
    dunning_import("customers", str(FIXTURES / "customers_th_bom.csv"))

    code, out, _ = dunning_import("invoices", str(FIXTURES / "invoices_th_bom.csv"))

    assert (code, out) == (0, "Imported 3 invoices (THB 26,235.00).\n")


def test_the_customers_summary_counts_created_updated_and_unchanged(
    make_customer: Callable[..., Any],
) -> None:
    make_customer("cus_th_1", name="Somchai")

    code, out, _ = dunning_import("customers", str(FIXTURES / "customers_th_bom.csv"))

    assert code == 0
    assert out == "Imported 3 customers: 2 created, 1 updated, 0 unchanged.\n"


def test_bad_rows_exit_non_zero_list_every_error_and_write_nothing(
    make_customer: Callable[..., Any],
) -> None:
    make_customer("cus_1")
    before = counts()

    code, out, err = dunning_import("invoices", str(FIXTURES / "invoices_bad.csv"))

    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "line 3, column currency: unknown currency: use an ISO 4217 code such as THB",
        "line 4, column amount_due: must not be negative",
        "line 5, column customer: no customer with this external_id (import customers first)",
        "line 6, column issued_at: not a date: use 2026-03-15 or 2026-03-15T09:30:00+07:00",
        "line 7, column amount_due: JPY has no minor unit: write the amount without decimals",
        "line 8, column external_id: repeated in the file (first on line 2)",
        f"Nothing was imported: 6 errors in {FIXTURES / 'invoices_bad.csv'}.",
    ]
    assert counts() == before


def test_past_a_hundred_errors_it_says_how_many_more(db: None, tmp_path: Path) -> None:
    path = tmp_path / "invoices.csv"
    path.write_text(
        "\n".join([HEADER, *(f"in_{n},cus_1,INV-{n},THB,-1,2026-03-01,," for n in range(250))])
    )

    code, _, err = dunning_import("invoices", str(path))

    lines = err.splitlines()
    assert code == 1
    assert len(lines) == 102
    assert lines[0] == "line 2, column amount_due: must not be negative"
    assert lines[99].startswith("line 101, ")
    assert lines[100:] == ["... and 150 more", f"Nothing was imported: 250 errors in {path}."]


def test_a_missing_column_is_reported_on_line_one(db: None, tmp_path: Path) -> None:
    path = tmp_path / "invoices.csv"
    path.write_text(HEADER.replace(",collection_method", "") + "\n")

    code, _, err = dunning_import("invoices", str(path))

    assert code == 1
    assert err.splitlines()[0] == "line 1, column collection_method: missing"


def test_a_file_that_does_not_exist_is_a_command_error(db: None) -> None:
    with pytest.raises(CommandError, match=r"no such file: nowhere\.csv"):
        call_command("import", "invoices", "nowhere.csv")


def test_a_dash_reads_the_file_from_standard_input(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (FIXTURES / "customers_th_bom.csv").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    code, out, _ = dunning_import("customers", "-")

    assert (code, out) == (0, "Imported 3 customers: 3 created, 0 updated, 0 unchanged.\n")


def test_dunning_import_runs_as_a_console_command(tmp_path: Path) -> None:
    """The real entry point, in its own process, on its own SQLite file."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DUNNING_", "DATABASE_URL", "TEST_DATABASE_URL"))
    }
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DUNNING_DATA_DIR": str(tmp_path),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dunning", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert run("migrate", "--verbosity", "0").returncode == 0
    customers = run("import", "customers", str(FIXTURES / "customers_th_bom.csv"))
    refused = run("import", "invoices", str(FIXTURES / "invoices_bad.csv"))

    assert (customers.returncode, customers.stderr) == (0, "")  # no progress bar off a terminal
    assert customers.stdout == "Imported 3 customers: 3 created, 0 updated, 0 unchanged.\n"
    assert refused.returncode == 1
    assert refused.stderr.startswith("line 2, column customer: no customer with this external_id")
    assert "Traceback" not in refused.stderr
