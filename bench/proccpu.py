"""CPU time of processes on this machine, from /proc (Linux): the bot's, and the local PostgreSQL server's.

On a machine whose cores the bot shares with its database, the server's CPU per update is as much the
bot's cost as its own: every statement and round trip is paid for there too.
"""

from __future__ import annotations

import os

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (its own threads; not its children)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def postgres_cpu_s() -> float | None:
    """CPU seconds used so far by every process of a PostgreSQL server running on this machine (the
    postmaster, its backends and background workers; a backend that has exited since is not counted), or
    None when there is none here (or /proc is not readable)."""
    total, seen = 0, False
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        head, _, rest = stat.rpartition(")")
        if not head.split("(", 1)[-1].startswith("postgres"):
            continue
        fields = rest.split()
        total += int(fields[11]) + int(fields[12])
        seen = True
    return total / _TICK if seen else None
