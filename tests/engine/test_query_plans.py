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


def _bound(sql: str, params: Any, *, ids: int = 3) -> tuple[str, list[Any]]:
    """The compiled statement with `ids` ids for a list and NOW for each other value."""
    values: list[Any] = []
    for param in params:
        if isinstance(param, ParamList):
            sql = sql.replace(param.marker, ", ".join(["%s"] * ids), 1)
            values += list(range(1, ids + 1))
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


def _indexes() -> dict[str, list[tuple[str, tuple[str, ...], bool, bool]]]:
    """Each project table's indexes: (name, columns, unique, partial)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
        else:
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
        definitions = dict(cursor.fetchall())
        partial = {name for name, sql in definitions.items() if sql and " WHERE " in sql}
        # PostgreSQL's *_like indexes serve LIKE 'prefix%' (pattern operators), not equality.
        patterns = {name for name, sql in definitions.items() if sql and "_pattern_ops" in sql}
        tables = [
            table
            for table in connection.introspection.table_names(cursor)
            if table.startswith(("ledger_", "engine_", "api_"))
        ]
        found: dict[str, list[tuple[str, tuple[str, ...], bool, bool]]] = {}
        for table in tables:
            constraints = connection.introspection.get_constraints(cursor, table)
            found[table] = [
                (name, tuple(info["columns"]), bool(info["unique"]), name in partial)
                for name, info in constraints.items()
                if info["index"] or info["unique"]
                if info["columns"] and not info["primary_key"] and name not in patterns
            ]
    return found


def test_no_index_only_repeats_the_first_columns_of_another() -> None:
    """Every index is one more write per row: one that a wider index on the same
    leading columns already serves (a key's own index, typically) is dead weight."""
    redundant = []
    for table, indexes in _indexes().items():
        for name, columns, unique, partial in indexes:
            if unique or partial:
                continue
            wider = [
                other
                for other, others, _, other_partial in indexes
                if other != name and not other_partial and others[: len(columns)] == columns
            ]
            if wider:
                redundant.append(f"{table}.{name} {columns} (served by {wider})")
    assert not redundant, redundant


@pytest.mark.parametrize("read", ["attempts", "card_wide"])
def test_the_attempts_recorded_without_their_card_are_read_by_customer(read: str) -> None:
    """The retry stage reads a few customers' card-less attempts; an index of every
    attempt's card would have SQLite read all card-less ones for them."""
    query = getattr(retries._Reads, read)().queryset.query
    compiler = query.clone().get_compiler(using="default")
    plan = _plan(*_bound(*compiler.as_sql(), ids=30))  # a batch's customers and cards
    if connection.vendor == "sqlite":
        assert "attempt_customer_idx" in plan, plan
    assert (
        "Seq Scan on ledger_paymentattempt" not in plan and "SCAN ledger_paymentattempt" not in plan
    ), plan
