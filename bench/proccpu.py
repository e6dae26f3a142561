"""CPU time of processes on this machine, from /proc (Linux): the bot's, and the local PostgreSQL server's.

On a machine whose cores the bot shares with its database, the server's CPU per update is as much the
bot's cost as its own: every statement and round trip is paid for there too.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (its own threads; not its children)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def postgres_cpu_s() -> float | None:
    """CPU seconds used so far by every process of a PostgreSQL server running on this machine (the
    postmaster, its backends and background workers), or None when there is none here (or /proc is not
    readable). A backend that has exited is counted too, through the postmaster's reaped children's time:
    without it a connection closed during a measurement would take its CPU time out of the total."""
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
        # utime + stime, and cutime + cstime: the children it has waited for (the postmaster's exited backends)
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        seen = True
    return total / _TICK if seen else None


class CpuCap:
    """Processes held to a share of one core each (a Linux cgroup per process, CPU bandwidth `share` × the
    period): as if each ran on a core of its own of that size, on a machine whose cores the benchmark's other
    processes (PostgreSQL, the fake servers) share. Needs root and the cgroup CPU controller (v1's
    /sys/fs/cgroup/cpu or v2's unified tree); `CpuCap.available()` says whether this machine has them."""

    V1 = Path("/sys/fs/cgroup/cpu")
    V2 = Path("/sys/fs/cgroup")
    PERIOD_US = 100_000

    def __init__(self, share: float, tag: str) -> None:
        self.share = share
        self.tag = tag
        self.groups: list[Path] = []

    @classmethod
    def root(cls) -> Path | None:
        if (cls.V2 / "cgroup.controllers").exists() and "cpu" in (cls.V2 / "cgroup.controllers").read_text().split():
            return cls.V2
        if (cls.V1 / "cpu.cfs_quota_us").exists():
            return cls.V1
        return None

    @classmethod
    def available(cls) -> bool:
        root = cls.root()
        return root is not None and os.access(root, os.W_OK)

    def hold(self, pid: int) -> None:
        """Move the process (all its threads) into a cgroup of its own with the cap."""
        root = self.root()
        if root is None:
            raise RuntimeError("no cgroup CPU controller here")
        group = root / f"{self.tag}_{len(self.groups)}"
        group.mkdir()
        self.groups.append(group)
        quota = max(1000, int(self.share * self.PERIOD_US))
        if root == self.V2:
            (group / "cpu.max").write_text(f"{quota} {self.PERIOD_US}")
        else:
            (group / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        (group / "cgroup.procs").write_text(str(pid))

    def throttled_s(self) -> float:
        """Seconds the held processes were kept waiting by their caps so far (all groups together)."""
        total = 0.0
        for group in self.groups:
            for line in (group / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "throttled_time":  # v1: nanoseconds
                    total += int(value) / 1e9
                elif key == "throttled_usec":  # v2
                    total += int(value) / 1e6
        return total

    def release(self) -> None:
        """Remove the groups (their processes gone or moved back to the root group first)."""
        root = self.root()
        for group in reversed(self.groups):
            try:
                if root is not None:
                    for pid in (group / "cgroup.procs").read_text().split():
                        try:
                            (root / "cgroup.procs").write_text(pid)
                        except OSError:
                            pass
                group.rmdir()
            except OSError:
                pass
        self.groups.clear()
