"""The fuzz budget: how many inputs each target gets, and the count of what was pushed through (a plain
module, so the tests and tests/fuzz/conftest.py share one counter)."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings

FUZZ_DEFAULT_INPUTS = 2000
TOTAL = int(os.environ.get("BANGFU_FUZZ_EXAMPLES") or FUZZ_DEFAULT_INPUTS)
# Each target's share of the inputs, and how many inputs one hypothesis example pushes through.
SHARES = {"dates": 0.25, "validators": 0.25, "reader": 0.05, "import": 0.02, "policy": 0.18, "dialogs": 0.25}
PER_EXAMPLE = {"dates": 1, "validators": 1, "reader": 1, "import": 3, "policy": 2, "dialogs": 6}
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

