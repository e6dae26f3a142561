"""Golden answers of the policy parser: a large corpus and what the engine answered, to prove a speed change
changes no result.

The corpus (``golden_corpus.tsv``) is every message of the question sets in tests/policy, the n-gram model's
training file and the knowledge base's example questions and names, plus generated variants of them
(homophone typos, noise: emoji, punctuation, spaces, full width, fillers, traditional script; clipped and
doubled messages; English questions) and follow-ups answered with the previous answer's context (fresh and
expired). Each case runs on one of four engines: national figures in Chinese, the example county in English,
the keyword parser alone (no n-gram model) and triage only. ``golden_answers.tsv`` holds, per case, a digest
of the whole answer (topic, confidence and every float to the last bit, decision, text, detail, options,
context, kind) and its topic and decision in clear.

Both files are written from the implementation being trusted, BEFORE changing it. The committed ones come
from main at e029843 plus commit 844d180 (sorted typo candidates: before it, about one case in 3,000 changed
with the process's string hashing), before any speed work. Regenerate from a trusted checkout (not from the
code under test) with:

    cd <trusted checkout> && PYTHONPATH=$PWD python3 <your worktree>/tests/policy/golden.py --out <your worktree>/tests/policy

(``--keep-corpus`` re-answers the committed corpus instead of building it again from the repo's files.)
After a deliberate change of behaviour (knowledge base, locales, n-gram weights, thresholds), re-record from
the changed checkout itself, in the same commit: ``PYTHONPATH=$PWD python3 tests/policy/golden.py
--keep-corpus``, and read the diff of golden_answers.tsv.

tests/policy/test_golden.py then checks the current code gives the same digests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SEED = 16
HERE = Path(__file__).resolve().parent
CORPUS = "golden_corpus.tsv"
ANSWERS = "golden_answers.tsv"
# Engines a case runs on (the corpus's first column).
ENGINES = ("zh", "county_en", "keywords", "triage")

FOLLOWUPS = (
    "那县医院呢",
    "市医院的话",
    "乡镇卫生院呢",
    "三万呢",
    "那5000块呢",
    "那大病呢",
    "要带什么材料",
    "去哪里办",
    "什么时候截止",
    "是不是弄错了？",
    "谢谢",
    "好的",
    "那低保呢",
    "还有呢",
    "如果是两万八呢",
    "换成省医院呢",
    "那我妈呢",
    "what about the county hospital",
)
NOISE_EMOJI = ("😭", "🙏", "👍", "！！", "？？", "。。。", "~~", "，", " ", "…", "【】", "（急）")
FILLERS = ("请问", "你好", "麻烦问下", "老师", "啊", "呀", "嘛", "哦", "谢谢", "领导", "我想问一下")
ENGLISH = (
    "how much does the hospital reimburse",
    "How do I apply for dibao?",
    "what is the rain dew plan",
    "my mother was in hospital, 20000 yuan, how much back",
    "pension for old people over 60",
    "Where do I apply for a small loan",
    "hello",
    "thanks a lot!",
    "is there a subsidy for a tractor",
    "road is broken who fixes it",
    "medical insurance fee this year",
    "WIFI password",
    "disability allowance",
    "housing repair subsidy for poor families",
)


def _messages() -> list[str]:
    """Every distinct message of the repo's sets, training file and knowledge base, in a stable order."""
    out: list[str] = []
    for path in sorted(HERE.glob("*.tsv")):
        if path.name in (CORPUS, ANSWERS):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                out.append(line.split("\t")[-1].strip())
    train = HERE.parents[1] / "bot" / "policy" / "data" / "train.tsv"
    lines = [
        ln for ln in train.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")
    ]
    out.extend(ln.split("\t", 2)[-1].strip() for ln in lines[::3])  # a third: the fixture stays small
    import yaml

    for path in sorted((HERE.parents[1] / "knowledge" / "policies").glob("*.yaml")):
        entry = yaml.safe_load(path.read_text(encoding="utf-8"))
        for key in ("examples", "keywords", "synonyms", "objects", "terms"):
            out.extend(str(x) for x in entry.get(key) or ())
        out.extend(str(v) for v in (entry.get("title") or {}).values())
    out.extend(ENGLISH)
    out.extend(["", " ", "😭😭", "？", "123", "8000", "a", "医", "保", "低保", "两万", "谢谢"])
    seen: set[str] = set()
    return [m for m in out if not (m in seen or seen.add(m))]  # type: ignore[func-returns-value]


def _variants(messages: list[str], pinyin: dict[str, str], rng: random.Random) -> Iterator[str]:
    """Typos, noise, traditional script, clipped and doubled messages."""
    from opencc import OpenCC

    s2t = OpenCC("s2t")
    by_sound: dict[str, list[str]] = {}
    for ch, py in sorted(pinyin.items()):
        by_sound.setdefault(py, []).append(ch)
    for m in messages:
        chars = [i for i, ch in enumerate(m) if ch in pinyin]
        if chars:
            i = rng.choice(chars)
            homophones = [c for c in by_sound[pinyin[m[i]]] if c != m[i]]
            if homophones:
                yield m[:i] + rng.choice(homophones) + m[i + 1 :]
        if rng.random() < 0.5:
            pos = rng.randrange(len(m) + 1)
            yield m[:pos] + rng.choice(NOISE_EMOJI) + m[pos:] + rng.choice(NOISE_EMOJI)
        if rng.random() < 0.3:
            yield rng.choice(FILLERS) + m + rng.choice(FILLERS)
        if rng.random() < 0.2:
            yield s2t.convert(m)
        if rng.random() < 0.15:
            yield "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in m) + "ＡＢＣ１２"
        if rng.random() < 0.15 and len(m) > 4:
            yield m[: len(m) // 2]
        if rng.random() < 0.1:
            yield f"{m} {rng.choice(messages)}"
        if rng.random() < 0.1:
            yield f"{m}{rng.choice(('花了两万', '3千5', '一万二', '住院2.5万', '五十亩地', '60岁', '百分之三十'))}"


def build_corpus() -> list[tuple[str, str, str]]:
    """(engine, previous message or "", message) cases; the previous message's answer is the context."""
    from bot.policy.engine import PolicyEngine

    engine = PolicyEngine.load(HERE.parents[1] / "knowledge")
    rng = random.Random(SEED)
    messages = _messages()
    variants = list(dict.fromkeys(_variants(messages, engine.matcher._pinyin, rng)))
    every = [m.replace("\t", " ").replace("\n", " ") for m in messages + variants]
    every = list(dict.fromkeys(every))
    cases: list[tuple[str, str, str]] = []
    for i, m in enumerate(every):
        cases.append(("zh", "", m))
        if i % 4 == 0:
            cases.append(("county_en", "", m))
        if i % 5 == 0:
            cases.append(("keywords", "", m))
        if i % 7 == 0:
            cases.append(("triage", "", m))
    for i, m in enumerate(messages):
        if i % 3 == 0:
            cases.append(("zh", m, rng.choice(FOLLOWUPS)))
        if i % 11 == 0:
            cases.append(("county_en", m, rng.choice(FOLLOWUPS)))
        if i % 13 == 0:
            cases.append(("zh", m, rng.choice(every)))
        if i % 17 == 0:
            cases.append(("zh", "!" + m, rng.choice(FOLLOWUPS)))  # "!": the context is expired
    return cases


def engines() -> dict[str, Any]:
    """The engines the cases run on, with a clock fixed at NOW (the stale-figure year depends on it)."""
    from bot.clock import FixedClock
    from bot.policy.engine import PolicyEngine

    knowledge = HERE.parents[1] / "knowledge"
    clock = FixedClock(NOW)
    keywords = PolicyEngine.load(knowledge, clock=clock)
    keywords.ngram = None
    return {
        "zh": PolicyEngine.load(knowledge, clock=clock),
        "county_en": PolicyEngine.load(knowledge, county="example", clock=clock),
        "keywords": keywords,
    }


def run_case(engines: dict[str, Any], engine: str, previous: str, message: str) -> tuple[str, str, str]:
    """(digest, topic, decision) of one case: the digest covers every field, floats to the last bit."""
    if engine == "triage":
        kind, p = engines["zh"].triage(message)
        return hashlib.sha1(f"{kind} {p!r}".encode()).hexdigest()[:16], kind, "triage"
    e = engines[engine]
    lang = "en" if engine == "county_en" else "zh_CN"
    context = None
    if previous:
        expired = previous.startswith("!")
        first = e.answer(previous[1:] if expired else previous, lang, now=NOW)
        context = first.context
        at = NOW + (timedelta(minutes=10) if expired else timedelta(minutes=1))
    else:
        at = NOW
    a = e.answer(message, lang, context, now=at)
    blob = json.dumps(a.to_json(), sort_keys=True, ensure_ascii=False, default=repr)
    # json writes floats with repr(): the shortest string that reads back as the same double.
    return hashlib.sha1(blob.encode()).hexdigest()[:16], a.topic, a.decision


def read_corpus(folder: Path = HERE) -> list[tuple[str, str, str]]:
    rows = []
    for line in (folder / CORPUS).read_text(encoding="utf-8").split("\n")[1:]:
        if line:
            engine, previous, message = line.split("\t")
            rows.append((engine, previous, message))
    return rows


def read_answers(folder: Path = HERE) -> list[tuple[str, str, str]]:
    rows = []
    for line in (folder / ANSWERS).read_text(encoding="utf-8").split("\n")[1:]:
        if line:
            digest, topic, decision = line.split("\t")
            rows.append((digest, topic, decision))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE, help="folder for the two files")
    ap.add_argument("--keep-corpus", action="store_true", help="re-answer the existing corpus only")
    args = ap.parse_args()
    cases = read_corpus(args.out) if args.keep_corpus else build_corpus()
    built = engines()
    with (args.out / CORPUS).open("w", encoding="utf-8", newline="\n") as f:
        f.write(
            "# engine\tprevious message (! = expired context)\tmessage — written by tests/policy/golden.py\n"
        )
        for row in cases:
            f.write("\t".join(row) + "\n")
    with (args.out / ANSWERS).open("w", encoding="utf-8", newline="\n") as f:
        f.write(
            "# digest\ttopic\tdecision — one line per line of golden_corpus.tsv, by tests/policy/golden.py\n"
        )
        for engine, previous, message in cases:
            f.write("\t".join(run_case(built, engine, previous, message)) + "\n")
    print(f"{len(cases)} cases -> {args.out / CORPUS}, {args.out / ANSWERS}", file=sys.stderr)


if __name__ == "__main__":
    main()
