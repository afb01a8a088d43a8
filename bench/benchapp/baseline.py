"""The baseline for bench/ingest.py: the same body, the same schema, one INSERT.

`POST /bench/baseline-invoice` is served by the same gunicorn, the same
settings and middleware as `POST /api/v1/invoices`.  It parses the body with
ninja into `dunning.api.schemas.InvoiceIn` (the same pydantic validation) and
does a single INSERT into `bench_baseline_invoice`, a copy of ledger_invoice's
columns, indexes and checks (`CREATE TABLE ... (LIKE ledger_invoice INCLUDING
ALL)`, made by bench/ingest.py).  No auth, no customer lookup, no event, no
transaction beyond the INSERT's own: the least an ingest endpoint can do.
"""

from __future__ import annotations

import json
import os

from django.db import connection
from django.http import HttpRequest
from django.utils import timezone
from ninja import NinjaAPI

from dunning.api.schemas import InvoiceIn

TABLE = "bench_baseline_invoice"
# The bench customer's id, so the row looks like a real one; the copied table
# has no foreign key, so nothing is looked up.
CUSTOMER_ID = int(os.environ.get("BENCH_CUSTOMER_ID", "0"))

api = NinjaAPI(title="bench baseline", urls_namespace="bench", docs_url=None, openapi_url=None)

INSERT = f"""
INSERT INTO {TABLE} (external_id, number, customer_id, currency, amount_due, amount_paid,
    amount_remaining, issued_at, due_at, status, collection_method, lines, context, paid_at,
    created_at, updated_at)
VALUES (%s, %s, %s, %s, %s, 0, %s, %s, %s, %s, %s, %s, %s, NULL, %s, %s)
RETURNING id
"""  # noqa: S608 (a constant table name)


@api.post("/baseline-invoice", response={201: dict})
def baseline_invoice(request: HttpRequest, payload: InvoiceIn) -> tuple[int, dict[str, object]]:
    now = timezone.now()
    lines = [
        {"description": ln.description, "quantity": ln.quantity, "amount": ln.amount}
        for ln in payload.lines
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT,
            [
                payload.external_id,
                payload.number,
                CUSTOMER_ID,
                payload.currency,
                payload.amount_due,
                payload.amount_due,
                payload.issued_at,
                payload.due_at or payload.issued_at,
                payload.status,
                payload.collection_method,
                json.dumps(lines),
                json.dumps(payload.context),
                now,
                now,
            ],
        )
        (row_id,) = cursor.fetchone()
    return 201, {"id": row_id, "external_id": payload.external_id}
