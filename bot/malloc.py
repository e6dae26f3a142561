"""glibc's allocator told to keep large buffers out of its heap: a long-running process's memory stays flat.

glibc serves a request of at least `M_MMAP_THRESHOLD` bytes (128 KiB at start) with its own mmap, given back
to the system when freed. But by default the threshold is dynamic: each time such a block is freed, the
threshold rises to its size (up to 32 MiB). After the first few large buffers (a getUpdates body holding
dozens of updates, its JSON, a connection's read buffer, a report) every later one is carved from the
heap instead, between small long-lived objects, and the holes it leaves are never returned: measured with
bench/soak_bench.py --statements (mallinfo2), the heap's bytes in use stayed flat while its free-but-kept
bytes grew ~2.7 MB a minute, all of the bot's RSS growth. A fixed threshold (setting it switches the
dynamic one off, as MALLOC_MMAP_THRESHOLD_ does) keeps those buffers in mmaps: the same soak grew 0.3 MB a
minute (bench/soak_bench.py's docstring has the numbers).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_MMAP_THRESHOLD = -3  # mallopt parameter number (malloc.h)
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, kept from then on


def pin_mmap_threshold(nbytes: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at `nbytes` (its dynamic raising off); True when done. Nothing is done off
    glibc (another OS, musl) or when the operator set the threshold (MALLOC_MMAP_THRESHOLD_, GLIBC_TUNABLES)."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    if "glibc.malloc.mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if not hasattr(libc, "gnu_get_libc_version"):  # not glibc (musl has a mallopt that does nothing)
            return False
        return bool(libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(nbytes)))
    except (OSError, AttributeError):
        return False
