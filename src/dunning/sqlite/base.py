"""Django's SQLite backend, converting each distinct statement's placeholders once.

Django writes SQL with "%s" placeholders, which Python's sqlite3 module does not
know: its SQLite cursor rewrites every statement to "?" with a regular
expression before running it, at each run.  The engine runs the same few
hundred statements (`dunning.db.Prepared`) hundreds of thousands of times in
a simulation, and the rewrite of a claim's long SELECT costs as much as SQLite
takes to run it.  Here the rewrite is Django's own, kept per statement text.

Everything else is Django's backend: `DATABASES["default"]["ENGINE"]` names
this module instead of "django.db.backends.sqlite3" (`dunning.settings`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.db.backends.sqlite3 import base

KEPT_UP_TO = 8_000  # characters: a claim's SELECT is 2,000; longer ones are rare and vary


@lru_cache(maxsize=2048)
def _qmark(query: str) -> str:
    # Django's "format" to "qmark" rewrite, which reads nothing off the cursor.
    return base.SQLiteCursorWrapper.convert_query(None, query)  # type: ignore[arg-type]


class SQLiteCursorWrapper(base.SQLiteCursorWrapper):
    def convert_query(self, query: str, *, param_names: list[str] | None = None) -> str:
        if param_names is None and len(query) <= KEPT_UP_TO:
            return _qmark(query)
        return super().convert_query(query, param_names=param_names)  # type: ignore[no-any-return]


class DatabaseWrapper(base.DatabaseWrapper):
    def create_cursor(self, name: Any = None) -> SQLiteCursorWrapper:
        return self.connection.cursor(factory=SQLiteCursorWrapper)  # type: ignore[no-any-return]
