"""Statements run at every change or every pass read an index, never the whole table.

A table scan is invisible on a test database and costs in production, where the
case table holds every case ever opened: these ask each database for its plan.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, transaction

from dunning.db import ParamList
from dunning.engine import retries

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 20, 3, 0, tzinfo=UTC)


def _bound(sql: str, params: Any) -> tuple[str, list[Any]]:
    """The compiled statement with three ids for a list and NOW for each other value."""
    values: list[Any] = []
    for param in params:
        if isinstance(param, ParamList):
            sql = sql.replace(param.marker, "%s, %s, %s", 1)
            values += [1, 2, 3]
        elif hasattr(param, "prepare"):
            values.append(param.prepare(NOW, connection))
        else:
            values.append(param)
    return sql, values


def _plan(sql: str, params: list[Any]) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # An empty table is cheaper to scan: ask what it would do with rows.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def _scans_cases(plan: str) -> bool:
    if connection.vendor == "postgresql":
        return "Seq Scan on engine_case" in plan
    return "SCAN engine_case" in plan


def test_asking_about_the_charges_in_doubt_for_changed_invoices_reads_an_index() -> None:
    compiler = retries._ASK_NOW_INVOICES().query.clone().get_compiler(using="default")
    plan = _plan(*_bound(*compiler.as_sql()))
    assert not _scans_cases(plan), plan
    assert "case_doubt_invoice_idx" in plan, plan
