"""Shared fixtures for the policy parser tests: the real knowledge base, loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.policy.engine import PolicyEngine

REPO = Path(__file__).resolve().parents[2]
KNOWLEDGE = REPO / "knowledge"
HERE = Path(__file__).resolve().parent


def read_set(name: str) -> list[tuple[str, str]]:
    """(topic id, question) rows of a question set in tests/policy/."""
    rows: list[tuple[str, str]] = []
    for line in (HERE / name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, question = line.split("\t", 1)
        rows.append((label.strip(), question.strip()))
    return rows


@pytest.fixture(scope="session")
def engine() -> PolicyEngine:
    return PolicyEngine.load(KNOWLEDGE)


@pytest.fixture(scope="session")
def county_engine() -> PolicyEngine:
    return PolicyEngine.load(KNOWLEDGE, county="example")
