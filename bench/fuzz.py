"""The long fuzz run: 100,000 generated inputs (by default) through the date parser, the roster
validators, reader and import, the policy parser and the dialog steps of the core (tests/fuzz/), then
the count per target and the outcome.

    python bench/fuzz.py                 # 100,000 inputs (SQLite, and PostgreSQL too when reachable)
    python bench/fuzz.py --inputs 20000
    python bench/fuzz.py -k "not postgres"   # extra arguments go to pytest

Any crash fails the run with hypothesis's shrunk example; 0 crashes means every target passed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", type=int, default=100_000)
    args, extra = p.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "fuzz.json"
        env = {
            **os.environ,
            "BANGFU_FUZZ_EXAMPLES": str(args.inputs),
            "BANGFU_FUZZ_REPORT": str(report),
            "PYTHONPATH": str(ROOT),
        }
        t0 = time.perf_counter()
        rc = subprocess.call(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/fuzz", *extra], cwd=ROOT, env=env
        )
        elapsed = time.perf_counter() - t0
        counts = json.loads(report.read_text()) if report.exists() else {"inputs": {}, "total": 0}
    for target, n in sorted(counts["inputs"].items()):
        print(f"{target:>10}: {n:>8,} inputs")
    print(f"{'total':>10}: {counts['total']:>8,} inputs in {elapsed:.0f} s; crashes: {0 if rc == 0 else 'see above'}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
