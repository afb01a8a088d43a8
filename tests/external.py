"""Where the shared external fixtures (Stripe, Twilio, LINE ...) are read from.

The team's shared folder when it sits beside the project or where
DUNNING_SHARED_FIXTURES points; else the copy in tests/fixtures/external/,
so a clone on its own still runs every test.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_COPY = PROJECT_ROOT / "tests" / "fixtures" / "external"


def external_fixtures() -> Path:
    configured = os.environ.get("DUNNING_SHARED_FIXTURES")
    if configured:
        return Path(configured)
    beside = PROJECT_ROOT.parent / "shared" / "fixtures" / "external"
    return beside if (beside / "stripe").is_dir() else _COPY


STRIPE_FIXTURES = external_fixtures() / "stripe"
