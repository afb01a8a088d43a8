"""Entry point of the `dunning` console script: `dunning migrate`, `dunning serve` ..."""

from __future__ import annotations

import os
import secrets
import sys

# Commands that sign nothing that must outlive them (no sessions, no pay links):
# they run with a key of their own rather than the one kept in DUNNING_DATA_DIR,
# which the settings would otherwise create there on first use.  `simulate` is
# promised to leave nothing behind in the user's folder (docs/simulator.md).
NO_KEPT_SECRET_KEY = frozenset({"simulate"})


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dunning.settings")
    if args[:1] and args[0] in NO_KEPT_SECRET_KEY:
        os.environ.setdefault("DUNNING_SECRET_KEY", secrets.token_urlsafe(50))
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(["dunning", *args])
    except ImproperlyConfigured as error:
        # A configuration mistake deserves one clear line, not a traceback.
        sys.stderr.write(f"dunning: {error}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
