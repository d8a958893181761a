"""One structured JSON audit line per record, written to stdout (Lambda ships it to CloudWatch Logs)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

AUDIT_MARKER = "s3-self-healing.audit"


def audit(
    *,
    key: str | None,
    action: str,
    outcome: str,
    event_name: str | None = None,
    event_time: datetime | None = None,
    healed_at: datetime | None = None,
    detail: str = "",
    request_id: str | None = None,
) -> dict[str, Any]:
    """Print one audit line and return it as a dict."""
    healed_at = healed_at or datetime.now(UTC)
    line: dict[str, Any] = {
        "type": AUDIT_MARKER,
        "key": key,
        "event": event_name,
        "event_time": event_time.isoformat() if event_time else None,
        "action": action,
        "outcome": outcome,
        "time_to_heal_ms": _millis_between(event_time, healed_at) if outcome == "healed" else None,
        "detail": detail,
        "request_id": request_id,
    }
    sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return line


def _millis_between(start: datetime | None, end: datetime) -> int | None:
    if start is None:
        return None
    return round((end - start).total_seconds() * 1000)
