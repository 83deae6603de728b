"""heap.trim hands the pages a freed heap keeps back to the system (glibc), and does nothing elsewhere;
heap.resident tells what the process holds."""

from __future__ import annotations

import ctypes

import psutil

from enricher import heap

MIB = 2**20


def test_trim_returns_the_pages_freed_blocks_left_in_the_heap():
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "malloc_trim"):  # not glibc: nothing to call
        assert heap.trim() is False
        return
    libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    blocks = [libc.malloc(1024) for _ in range(100_000)]  # about 100 MiB, each page written by malloc
    for block in blocks[:-1]:  # the last one stays, so free() cannot shrink the heap from its top
        libc.free(block)
    process = psutil.Process()
    try:
        before = process.memory_info().rss
        assert heap.trim() is True
        assert before - process.memory_info().rss > 50 * MIB
    finally:
        libc.free(blocks[-1])


def test_resident_counts_the_pages_the_process_holds():
    before = heap.resident()
    held = bytearray(64 * MIB)  # zeroed: every page written
    assert heap.resident() - before > 32 * MIB
    assert abs(heap.resident() - psutil.Process().memory_info().rss) < 16 * MIB
    del held
