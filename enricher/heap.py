"""Hand the memory a large request freed back to the system.

glibc's malloc keeps freed pages in its arenas for reuse, so a process that once ran a query over
every annotation stays at that size; ``malloc_trim(0)`` returns the free pages of every arena. Where
the C library has no malloc_trim (musl, macOS), ``trim`` does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def trim() -> bool:
    """Return freed heap pages to the system; whether anything could be returned (False where the C
    library offers no way)."""
    return bool(_TRIM(0)) if _TRIM is not None else False
