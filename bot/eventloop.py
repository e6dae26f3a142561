"""The event loop and the garbage collector of the long-running processes (`bangfu run`, `bangfu scheduler`,
`bangfu web`).

uvloop (libuv under asyncio's API) when it is installed and BANGFU_UVLOOP is on; asyncio's own loop
otherwise (uvloop does not exist on Windows, and the dependency is left out there). Measured on a raw
asyncpg round trip: about 105 µs of process CPU under uvloop against 140 µs on asyncio's loop. On the
whole update (a busy shared 2-core machine, A/B in one run: `--loop uvloop asyncio` of bench/core_bench.py
and bench/e2e_bench.py) the gain is small: PostgreSQL core CPU per update 2-7% lower in one run, the same in
another (2.35 vs 2.34 ms one at a time, 1.77 vs 1.76 with 8 in flight), e2e bot CPU per reply ~10% lower
on PostgreSQL (the HTTP side: aiohttp), SQLite within noise; RSS the same.

Each process builds its loop through `run()`, an `asyncio.Runner` with uvloop's loop factory: no global
event-loop policy is set (policies are deprecated from Python 3.14 on, and so is `uvloop.install()`),
and every library the bot uses (aiogram, python-telegram-bot, aiohttp, asyncpg, APScheduler) runs on
whichever loop is running: none of them creates its own, since the runners never call aiogram's
`run_polling` or PTB's `Application.run_polling` / `run_webhook` (those get or make a loop themselves; ours
start the Application inside the running one).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(use_uvloop: bool = True) -> LoopFactory | None:
    """uvloop's `new_event_loop` when wanted and installed; None: asyncio's default loop."""
    if not use_uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def loop_kind(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """"uvloop" or "asyncio": which loop runs (the running one by default), for logs and benchmarks."""
    loop = loop or asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool = True) -> T:
    """`asyncio.run(main)` on uvloop when `use_uvloop` and it is installed (see the module docstring)."""
    with asyncio.Runner(loop_factory=loop_factory(use_uvloop)) as runner:
        return runner.run(main)


def set_gc_gen0_threshold(threshold: int) -> None:
    """Collect generation 0 after `threshold` net allocations of tracked objects instead of Python's 700
    (BANGFU_GC_GEN0_THRESHOLD); 0 leaves the threshold as it is. Generations 1 and 2 keep theirs."""
    if threshold > 0:
        _, g1, g2 = gc.get_threshold()
        gc.set_threshold(threshold, g1, g2)
