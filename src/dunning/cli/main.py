"""Entry point of the `dunning` console script: `dunning migrate`, `dunning serve` ..."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dunning.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(["dunning", *(sys.argv[1:] if argv is None else argv)])
    except ImproperlyConfigured as error:
        # A configuration mistake deserves one clear line, not a traceback.
        sys.stderr.write(f"dunning: {error}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
