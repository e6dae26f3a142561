"""`bangfu` as a separate process, as deployed: configured only by environment variables, started with
`python -m bot.cli`, stopped with SIGTERM. Shared by the tests that run it that way (and tests/delivery/cluster.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
STOP_TIMEOUT_S = 30


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it), for a server the test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bangfu_env(**settings: str) -> dict[str, str]:
    """This process's environment without its BANGFU_* variables (a developer's shell may have some), plus
    `settings`: the child is configured by exactly these. PYTHONPATH makes it run this checkout's code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGFU_")}
    env.update(PYTHONPATH=str(REPO), **settings)
    return env


async def start_bangfu(
    *args: str, cwd: Path, env: dict[str, str], stdout: int | IO[Any] = asyncio.subprocess.PIPE
) -> asyncio.subprocess.Process:
    """`bangfu *args` (`python -m bot.cli`), its stderr going where its stdout goes."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, cwd=cwd, env=env, stdout=stdout, stderr=asyncio.subprocess.STDOUT,
    )


@dataclass
class BangfuRun:
    proc: asyncio.subprocess.Process
    log: str = ""  # everything it wrote, once it has stopped


async def _stop(run: BangfuRun) -> None:
    if run.proc.returncode is None:
        run.proc.send_signal(signal.SIGTERM)
    out, _ = await asyncio.wait_for(run.proc.communicate(), STOP_TIMEOUT_S)
    run.log = out.decode(errors="replace")


@asynccontextmanager
async def bangfu_run(*args: str, cwd: Path, env: dict[str, str]) -> AsyncIterator[BangfuRun]:
    """`bangfu run *args` for the block. On leaving it the process gets SIGTERM (unless it has ended) and must
    stop cleanly: exit code 0, "bangfu stopped" logged, and no error logged by our code (`ERROR bot.`; the
    libraries log a long poll or a scheduler tick the stop cut short). Its log is then in `.log` for the test's
    own checks. When the block fails, the log is added to the failure, which is where it is needed."""
    run = BangfuRun(await start_bangfu("run", *args, cwd=cwd, env=env))
    try:
        yield run
    except BaseException as e:
        await _stop(run)
        e.add_note(f"bangfu log:\n{run.log}")
        raise
    await _stop(run)
    assert run.proc.returncode == 0, run.log
    assert "bangfu stopped" in run.log, run.log
    assert "ERROR bot." not in run.log, run.log
