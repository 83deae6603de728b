"""The one timestamp format: UTC, whole seconds, Z."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from enricher.clock import now


def test_now_is_utc_to_the_second_ending_in_z():
    stamp = now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    assert datetime.fromisoformat(stamp).tzinfo == timezone.utc
