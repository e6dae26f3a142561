"""Fuzzing with hypothesis: generated input through the date parser, the policy parser, the roster
validators and reader, and the dialog steps of the real core. A crash is any exception the code does
not mean to raise (and, for the core, an update answered with core.error).

The default run is short: each target gets its share of FUZZ_DEFAULT_INPUTS. For a long run set
BANGFU_FUZZ_EXAMPLES to the total number of inputs wanted (bench/fuzz.py runs 100,000 and prints what
each target pushed through); BANGFU_FUZZ_REPORT names a JSON file the counts are written to.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tests.fuzz.budget import INPUTS


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    if not INPUTS:
        return
    report = os.environ.get("BANGFU_FUZZ_REPORT")
    if report:
        with open(report, "w", encoding="utf-8") as f:
            json.dump({"inputs": dict(INPUTS), "total": sum(INPUTS.values()), "exitstatus": exitstatus}, f)
