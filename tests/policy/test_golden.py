"""The policy parser answers a large corpus exactly as the recorded implementation did (issue 16).

Speed work on bot/policy (precomputed tables, fewer passes over the text) must not change one result: same
topic, decision, confidence and every other float to the last bit, text, detail, options, context, kind.
golden_corpus.tsv and golden_answers.tsv were written by tests/policy/golden.py from main's code before the
speed work; see that file's docstring for how to regenerate them (from a trusted checkout, never from the
code under test). A deliberate change of behaviour (knowledge base, n-gram weights, thresholds) changes the
digests: regenerate them in the same commit and say why.
"""

from __future__ import annotations

import os
import subprocess
import sys

from bot.policy.ngram import prepare, prepare_words
from bot.policy.text import Normalizer
from tests.policy.conftest import REPO
from tests.policy.golden import engines, read_answers, read_corpus, run_case


def test_golden_corpus_answers_unchanged() -> None:
    cases = read_corpus()
    expected = read_answers()
    assert len(cases) == len(expected) > 20_000
    built = engines()
    diffs = []
    for (engine, previous, message), want in zip(cases, expected, strict=True):
        got = run_case(built, engine, previous, message)
        if got != want:
            diffs.append(f"{engine} {previous!r} -> {message!r}: {want} != {got}")
    assert not diffs, f"{len(diffs)} of {len(cases)} answers changed, e.g.:\n" + "\n".join(diffs[:20])


ANSWER_IN_A_FRESH_PROCESS = """
import json, sys
from pathlib import Path
from bot.policy.engine import PolicyEngine
e = PolicyEngine.load(Path("knowledge"))
print(json.dumps([[a.topic, a.confidence, a.alternatives, a.detail] for a in map(e.answer, sys.argv[1:])]))
"""


def test_answers_do_not_depend_on_the_process_string_hashing() -> None:
    # Homophone typos with two candidate words of the same sound: which one wins used to follow the
    # iteration order of a set of strings, so a restart could change the answer (here with seeds 1 and 3).
    questions = ["救蹐", "易地搬靬", "遭灾了有救緝没"]
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        run = subprocess.run(
            [sys.executable, "-c", ANSWER_IN_A_FRESH_PROCESS, *questions],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(run.stdout)
    assert len(outputs) == 1, outputs


def test_words_shared_with_the_ngram_model_give_the_same_prepared_text() -> None:
    # The engine folds digits into the normaliser's words instead of running prepare() on the message.
    norm = Normalizer()
    messages = [m for _, _, m in read_corpus()]
    messages += [
        "3.5万_元",
        "１２３，４５６",
        "a_b__c 9",
        "٣ 三千5",
        "医保…2026年\u3000交多少",
        "\x1c1\x1f2",
        "",
    ]
    for m in messages:
        simple = norm.simplify(m)
        assert prepare_words(norm.normalize_words(simple)[1]) == prepare(norm, m), m
