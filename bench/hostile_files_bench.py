"""Hostile spreadsheets against the reader's limits (bot/io/limits.py): time, peak traced memory and
the process's peak RSS while each is refused, and the same for `bangfu import` as a subprocess.

    python bench/hostile_files_bench.py
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "io")]

from hostile_files import (  # noqa: E402
    bzip2_member,
    deflate_bomb,
    long_cell,
    lying_bomb,
    many_members,
    sparse_rows,
)

from bot.io.reader import RosterError, read_roster  # noqa: E402


def main() -> None:
    cases = {
        "deflate bomb (2 GiB sheet XML)": deflate_bomb(2048),
        "deflate bomb (1 GiB)": deflate_bomb(1024),
        "lying directory (1 GiB inside, 4 KiB declared)": lying_bomb(1024),
        "row numbered 2,000,000,000": sparse_rows(),
        "40,000-character cell": long_cell(),
        "5,000 zip members": many_members(),
        "bzip2 member": bzip2_member(),
    }
    print(f"{'file':<48} {'size':>9} {'refused as':<24} {'time':>8} {'peak traced':>12}")
    for name, data in cases.items():
        tracemalloc.start()
        t0 = time.perf_counter()
        try:
            read_roster(data, "x.xlsx")
            key = "(read!)"
        except RosterError as e:
            key = e.key
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"{name:<48} {len(data) / 2**20:>7.2f}MB {key:<24} {elapsed * 1000:>6.1f}ms {peak / 2**20:>10.2f}MB")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")

    with tempfile.TemporaryDirectory() as tmp:
        bomb = Path(tmp) / "roster.xlsx"
        bomb.write_bytes(cases["deflate bomb (2 GiB sheet XML)"])
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BANGFU_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/b.sqlite3"}
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "bot", "import", str(bomb)], env=env, capture_output=True,
                              text=True, cwd=tmp)
        elapsed = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"bangfu import of the 2 GiB bomb: exit {proc.returncode} in {elapsed:.2f} s "
              f"(interpreter start-up included), peak RSS {rss:.0f} MB: {proc.stderr.strip()[:120]}")


if __name__ == "__main__":
    main()
