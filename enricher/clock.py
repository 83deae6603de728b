"""The one way the enricher writes the current time."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> str:
    """The current UTC time to the second, as an xsd:dateTime ending in Z (``2026-01-01T12:00:00Z``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
