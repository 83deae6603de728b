"""Hand the memory a large request freed back to the system, and tell how much the process holds.

glibc's malloc keeps freed pages in its arenas for reuse, so a process that once ran a query over
every annotation stays at that size; ``malloc_trim(0)`` returns the free pages of every arena. Where
the C library has no malloc_trim (musl, macOS), ``trim`` does nothing.
"""

from __future__ import annotations

import ctypes
import os
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


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident() -> int:
    """The bytes of memory the process holds now (its resident set); 0 where /proc cannot tell."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0
