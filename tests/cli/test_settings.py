from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dunning.settings import kept_secret_key

DUNNING = [sys.executable, "-m", "dunning"]


def run(args: list[str], *, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DUNNING_", "DATABASE_URL", "TEST_DATABASE_URL"))
    }
    return subprocess.run(
        [*DUNNING, *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_without_a_secret_key_stops_with_a_clear_error(tmp_path: Path) -> None:
    result = run(["check"], cwd=tmp_path, DUNNING_ENV="production")

    assert result.returncode == 2
    assert "DUNNING_SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_outside_production_a_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = run(["check"], cwd=tmp_path)
    key = (tmp_path / ".dunning-secret-key").read_text()
    second = run(["check"], cwd=tmp_path)

    assert first.returncode == second.returncode == 0, first.stderr
    assert len(key) >= 50
    assert (tmp_path / ".dunning-secret-key").read_text() == key
    assert oct((tmp_path / ".dunning-secret-key").stat().st_mode & 0o777) == "0o600"


def test_the_default_database_is_a_sqlite_file_in_wal_mode(tmp_path: Path) -> None:
    result = run(["migrate", "--verbosity", "0"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    mode = run(
        [
            "shell",
            "--no-imports",
            "-c",
            "from django.db import connection; c = connection.cursor(); "
            "print(c.execute('PRAGMA journal_mode').fetchone()[0], "
            "c.execute('PRAGMA busy_timeout').fetchone()[0])",
        ],
        cwd=tmp_path,
    )

    assert (tmp_path / "dunning.sqlite3").exists()
    assert mode.stdout.split() == ["wal", "20000"]


def test_postgres_urls_get_persistent_checked_connections(tmp_path: Path) -> None:
    result = run(
        [
            "shell",
            "--no-imports",
            "-c",
            "from django.conf import settings; d = settings.DATABASES['default'];"
            " print(d['ENGINE'], d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'])",
        ],
        cwd=tmp_path,
        DATABASE_URL="postgres://someone@127.0.0.1:5432/anything",
    )

    assert result.stdout.split() == ["django.db.backends.postgresql", "600", "True"]


def test_sqlite_urls_use_djangos_backend_converting_placeholders_once(tmp_path: Path) -> None:
    result = run(
        [
            "shell",
            "--no-imports",
            "-c",
            "from django.db import connection; c = connection.cursor();"
            " print(connection.settings_dict['ENGINE'], connection.vendor,"
            " c.execute('SELECT %s', [1]).fetchone()[0])",
        ],
        cwd=tmp_path,
        DATABASE_URL=f"sqlite:///{tmp_path / 'a.sqlite3'}",
    )

    assert result.stdout.split() == ["dunning.sqlite", "sqlite", "1"]


def test_processes_started_together_on_a_fresh_directory_all_read_one_whole_key(
    tmp_path: Path,
) -> None:
    """Four workers started at once on a fresh directory: one read the key file
    between another's create and write, found it empty, and stopped (CI, stop 15)."""
    for round_ in range(40):
        path = tmp_path / str(round_) / ".dunning-secret-key"

        keys = read_at_once(path, readers=8)

        assert len(set(keys)) == 1, f"round {round_}: {len(set(keys))} different keys"
        assert len(keys[0]) >= 50, f"round {round_}: a key of {len(keys[0])} characters"
        assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
        assert oct(path.stat().st_mode & 0o777) == "0o600"


def read_at_once(path: Path, *, readers: int) -> list[str]:
    start = threading.Barrier(readers)

    def read() -> str:
        start.wait()
        return kept_secret_key(path)

    with ThreadPoolExecutor(readers) as pool:
        futures = [pool.submit(read) for _ in range(readers)]
    return [future.result() for future in futures]


def test_where_the_file_system_has_no_hard_links_the_key_is_still_made_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: object, target: object) -> None:
        raise PermissionError(1, "Operation not permitted")  # vfat, some network shares

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / ".dunning-secret-key"

    key = kept_secret_key(path)

    assert len(key) >= 50 and kept_secret_key(path) == key
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
