"""glibc's mmap threshold pinned for long-running processes (bot.malloc): large buffers in mmaps, given back
when freed, instead of fragmenting the heap."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import textwrap

import pytest

from bot.malloc import MMAP_THRESHOLD, pin_mmap_threshold

IS_GLIBC = sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "gnu_get_libc_version")
glibc = pytest.mark.skipif(not IS_GLIBC, reason="glibc only")

# In a fresh process: allocate and free a 1 MiB block (glibc raises its dynamic threshold to 1 MiB), then
# allocate 20 blocks of 512 KiB with a smaller one (40 KiB, from the heap either way) after each and free the
# large ones: the heap keeps them (free but not returned, held in place by the smaller ones) unless the
# threshold is pinned, when they were mmaps and went back.
PROBE = textwrap.dedent("""
    import ctypes, sys
    from bot.malloc import pin_mmap_threshold
    pinned = pin_mmap_threshold() if sys.argv[1] == "pin" else False
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                   "fsmblks", "uordblks", "fordblks", "keepcost")]
    libc.mallinfo2.restype = MallInfo2
    libc.free(libc.malloc(1 << 20))
    big, small = [], []
    for _ in range(20):
        big.append(libc.malloc(512 << 10))
        small.append(libc.malloc(40 << 10))
    for p in big:
        libc.free(p)
    print(int(pinned), libc.mallinfo2().fordblks)
""")


def _probe(mode: str) -> tuple[bool, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env, check=True)
    pinned, free_kept = out.stdout.split()
    return pinned == "1", int(free_kept)


@glibc
def test_pinned_threshold_gives_large_blocks_back() -> None:
    pinned, kept_pinned = _probe("pin")
    default, kept_default = _probe("default")
    assert pinned and not default
    assert kept_default >= 20 * (512 << 10)  # dynamic threshold: ten megabytes free but kept in the heap
    assert kept_pinned < 2 << 20  # pinned: they were mmaps, returned when freed


def test_the_operators_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD * 2))
    assert pin_mmap_threshold() is False
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536")
    assert pin_mmap_threshold() is False
