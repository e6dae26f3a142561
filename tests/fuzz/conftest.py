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
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings

FUZZ_DEFAULT_INPUTS = 2000
TOTAL = int(os.environ.get("BANGFU_FUZZ_EXAMPLES") or FUZZ_DEFAULT_INPUTS)
# Each target's share of the inputs, and how many inputs one hypothesis example pushes through.
SHARES = {"dates": 0.25, "validators": 0.25, "reader": 0.05, "import": 0.02, "policy": 0.18, "dialogs": 0.25}
PER_EXAMPLE = {"dates": 1, "validators": 1, "reader": 1, "import": 5, "policy": 2, "dialogs": 8}
INPUTS: Counter[str] = Counter()


def fuzz_settings(target: str) -> Any:
    """hypothesis settings for one target: its share of TOTAL, no deadline (the box is shared)."""
    examples = max(10, int(TOTAL * SHARES[target] / PER_EXAMPLE[target]))
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,  # no .hypothesis folder in the checkout
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # the app and its chats live across examples, on purpose
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    if not INPUTS:
        return
    report = os.environ.get("BANGFU_FUZZ_REPORT")
    if report:
        with open(report, "w", encoding="utf-8") as f:
            json.dump({"inputs": dict(INPUTS), "total": sum(INPUTS.values()), "exitstatus": exitstatus}, f)
