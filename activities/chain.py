"""The audit log's hash chain: the exact bytes each row's SHA-256 is taken over.

Written once at append and recomputed by `dunning audit verify`, so both sides must
produce identical bytes from different inputs: the event model at append, the jsonb
column at verify (jsonb reorders keys and drops whitespace). Both therefore go
through `canonical`: sorted keys, compact separators, UTF-8 as is. Events hold no
floats (amounts are Decimals, serialised as strings), so a JSON round trip through
PostgreSQL gives back the same values.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64  # prev_hash of a case's first chained row


def canonical(value: Any) -> str:
    """Sorted-keys compact JSON: one text for one value, whatever produced it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def timestamp(moment: datetime) -> str:
    """UTC, microseconds: what a timestamptz round trip gives back."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def row_hash(
    *,
    case_id: str,
    seq: int,
    event_type: str,
    occurred_at: datetime,
    actor: str,
    workflow_id: str,
    run_id: str,
    payload: Any,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of one row's content and its predecessor's hash.

    `payload` is the event as a JSON value (a dict), not text: it is canonicalised
    together with the other fields.
    """
    document = {
        "case_id": case_id,
        "seq": seq,
        "event_type": event_type,
        "occurred_at": timestamp(occurred_at),
        "actor": actor,
        "workflow_id": workflow_id,
        "run_id": run_id,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical(document).encode("utf-8")).hexdigest()
