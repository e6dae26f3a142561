"""Policy parser benchmark: this parser (keyword parser + n-gram model + triage) vs the keyword parser
alone vs a BM25 baseline vs char n-gram TF-IDF + logistic regression, in one run.

Run: python bench/policy_bench.py [--set tests/policy/heldout_posts.tsv] [--repeat 20]

Sets are `topic TAB question` (the older sets) or `kind TAB topic TAB message` (the held-out sets).
Per set and method: right topic (of messages labelled with a topic: answered, clarified or forwarded with
that topic), confidently wrong (answered with another topic, of all messages), decline rate (out of
scope: declined or routed, never answered), triage accuracy per kind (this parser only), questions per
second (CPU time, one pinned core) and p99 latency. Then the parser's cold start (time, RSS) in a fresh
interpreter and the whole `bangfu ask --json --batch` process's questions per second.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.policy.engine import PolicyEngine  # noqa: E402

NONE = "none"
Predict = Callable[[str], str]  # question -> topic id or "none"


Outcome = tuple[str, str, str]  # (decision, topic, kind); kind "" when the method does not triage
Full = Callable[[str], Outcome]


@dataclass
class Result:
    name: str
    right: float  # of messages labelled with a topic
    wrong: float  # answered with a wrong topic, of all messages
    decline_rate: float  # out of scope (other, chat) declined or routed
    kinds: dict[str, tuple[int, int]]  # kind -> (right, total); empty when the method does not triage
    qps: float
    p99_ms: float  # wall clock: includes waiting for the CPU on a busy machine
    p99_cpu_ms: float  # CPU time of the call itself
    note: str = ""


def as_full(predict: Predict) -> Full:
    """A topic-or-none baseline as (decision, topic, kind)."""

    def full(q: str) -> Outcome:
        topic = predict(q)
        return ("decline", NONE, "") if topic == NONE else ("answer", topic, "")

    return full


def read_set(path: Path) -> list[tuple[str, str]]:
    """(topic, message) rows of either format."""
    return [(topic, q) for _, topic, q in read_labelled(path)]


def read_labelled(path: Path) -> list[tuple[str, str, str]]:
    """(kind, topic, message) rows; the older two-column sets have kind "question" or "other" (topic none)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            parts = line.split("\t")
            if len(parts) >= 3:
                rows.append((parts[0].strip(), parts[1].strip(), "\t".join(parts[2:]).strip()))
            else:
                label = parts[0].strip()
                rows.append(("question" if label != NONE else "other", label, parts[1].strip()))
    return rows


def evaluate(name: str, full: Full, rows: list[tuple[str, str, str]], repeat: int, note: str = "") -> Result:
    right = n_topic = wrong = declined = n_out = 0
    kinds: dict[str, list[int]] = {}
    for kind, label, q in rows:
        decision, topic, got_kind = full(q)
        if label != NONE:
            n_topic += 1
            right += decision in ("answer", "clarify", "forward") and topic == label
        wrong += decision == "answer" and topic != label
        if kind in ("other", "chat") or (label == NONE and kind == "question"):
            n_out += 1
            declined += decision in ("decline", "forward")
        if got_kind:
            k = kinds.setdefault(kind, [0, 0])
            k[0] += got_kind == kind
            k[1] += 1
    questions = [q for _, _, q in rows]
    latencies: list[float] = []
    cpu_latencies: list[float] = []
    for _ in range(3):  # timed passes per question for the latency distribution
        for q in questions:
            t, c = time.perf_counter(), time.thread_time()
            full(q)
            cpu_latencies.append(time.thread_time() - c)
            latencies.append(time.perf_counter() - t)
    cpu = time.process_time()
    for _ in range(repeat):
        for q in questions:
            full(q)
    cpu = time.process_time() - cpu
    return Result(
        name,
        right / max(n_topic, 1),
        wrong / len(rows),
        declined / max(n_out, 1),
        {k: (v[0], v[1]) for k, v in kinds.items()},
        repeat * len(questions) / cpu,
        _p99(latencies) * 1000,
        _p99(cpu_latencies) * 1000,
        note,
    )


def _p99(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, math.ceil(0.99 * len(values)) - 1)]


def best_threshold(scored: list[tuple[str, str, float]]) -> float:
    """The decline threshold that maximises (accuracy + decline rate) / 2 on the set itself.

    Tuned on the evaluation set, which flatters the baselines: they get their best possible cut-off.
    """
    candidates = sorted({s for _, _, s in scored})
    best, best_value = 0.0, -1.0
    n_in = sum(1 for label, _, _ in scored if label != NONE) or 1
    n_out = sum(1 for label, _, _ in scored if label == NONE) or 1
    for th in [0.0, *candidates]:
        acc = sum(1 for label, top, s in scored if label != NONE and top == label and s >= th) / n_in
        dec = sum(1 for label, _, s in scored if label == NONE and s < th) / n_out
        value = (acc + dec) / 2
        if value > best_value:
            best, best_value = th, value
    return best


def bm25_method(engine: PolicyEngine, rows: list[tuple[str, str]]) -> tuple[Predict, str]:
    from rank_bm25 import BM25Okapi

    matcher, norm = engine.matcher, engine.normalizer
    ids = list(engine.kb.topics)
    docs = []
    for tid in ids:
        t = engine.kb.topics[tid]
        text = " ".join([t.title["zh"], *t.keywords, *t.synonyms, *t.terms, *t.examples, t.answer["zh"]])
        docs.append(matcher.tokens(norm.normalize(text).text))
    bm25 = BM25Okapi(docs)

    def raw(q: str) -> tuple[str, float]:
        tokens = matcher.tokens(norm.normalize(q).text)
        if not tokens:
            return NONE, 0.0
        scores = bm25.get_scores(tokens)
        i = max(range(len(ids)), key=lambda k: scores[k])
        return ids[i], float(scores[i])

    scored = [(label, *raw(q)) for label, q in rows]
    th = best_threshold(scored)

    def predict(q: str) -> str:
        top, s = raw(q)
        return top if s >= th and s > 0 else NONE

    return predict, f"decline below BM25 {th:.2f} (tuned on this set)"


def tfidf_method(engine: PolicyEngine, rows: list[tuple[str, str]]) -> tuple[Predict, str]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    norm = engine.normalizer
    texts, labels = [], []
    for tid, t in engine.kb.topics.items():
        for ex in t.examples:
            texts.append(norm.normalize(ex).text)
            labels.append(tid)
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
    x = vec.fit_transform(texts)
    clf = LogisticRegression(max_iter=2000, C=10.0)
    clf.fit(x, labels)
    classes = list(clf.classes_)

    def raw(q: str) -> tuple[str, float]:
        probs = clf.predict_proba(vec.transform([norm.normalize(q).text]))[0]
        i = int(probs.argmax())
        return classes[i], float(probs[i])

    scored = [(label, *raw(q)) for label, q in rows]
    th = best_threshold(scored)

    def predict(q: str) -> str:
        top, p = raw(q)
        return top if p >= th else NONE

    return predict, f"{len(texts)} KB example questions; decline below p={th:.3f} (tuned on this set)"


COLD_START = r"""
import json, sys, time
t0 = time.perf_counter()
c0 = time.process_time()
trace = sys.argv[2] == "mem"
if trace:
    # tracemalloc slows start-up many times over, so memory is measured in a separate run from time.
    import tracemalloc
    tracemalloc.start()
import psutil
rss0 = psutil.Process().memory_info().rss
from pathlib import Path
from bot.policy.engine import PolicyEngine
e = PolicyEngine.load(Path(sys.argv[1]))
t1 = time.perf_counter()
c1 = time.process_time()
peak = tracemalloc.get_traced_memory()[1] if trace else 0
rss1 = psutil.Process().memory_info().rss
e.answer("我妈住院花了两万能报多少")
t2 = time.perf_counter()
print(json.dumps({"start_s": t1 - t0, "start_cpu_s": c1 - c0, "first_answer_ms": (t2 - t1) * 1000, "peak_mb": peak / 2**20,
                  "rss_mb": rss1 / 2**20, "rss_delta_mb": (rss1 - rss0) / 2**20}))
"""


def cold_start(cache_dir: str | None, runs: int, mode: str = "time") -> dict[str, float]:
    env = dict(os.environ)
    if cache_dir:
        env["BANGFU_POLICY_CACHE"] = cache_dir
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", COLD_START, str(REPO / "knowledge"), mode],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def batch_process(rows: list[tuple[str, str, str]], lines: int) -> dict[str, float]:
    """The whole `bangfu ask --json --batch FILE` process (start-up included) over `lines` messages."""
    questions = [q for _, _, q in rows]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        for i in range(lines):
            f.write(questions[i % len(questions)] + "\n")
        path = f.name
    try:
        t = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bot.policy.cli",
                "ask",
                "--json",
                "--batch",
                path,
                "--knowledge-dir",
                str(REPO / "knowledge"),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - t
    finally:
        os.unlink(path)
    n = sum(1 for line in out.stdout.splitlines() if line.startswith("{"))
    return {"lines": n, "wall_s": wall, "qps": n / wall}


DEFAULT_SETS = (
    "heldout_titles.tsv",
    "heldout_posts.tsv",
    "heldout_fresh.tsv",
    "calibset.tsv",
    "devset.tsv",
    "freshset.tsv",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--set",
        type=Path,
        action="append",
        dest="sets",
        help="question set(s); default: the held-out, calibration, dev and fresh sets in tests/policy/",
    )
    ap.add_argument("--repeat", type=int, default=20, help="timed passes over the set for questions/s")
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument("--batch-lines", type=int, default=3000, help="messages for the --batch process timing")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    sets = args.sets or [REPO / "tests" / "policy" / name for name in DEFAULT_SETS]
    engine = PolicyEngine.load(REPO / "knowledge")
    keywords = PolicyEngine.load(REPO / "knowledge")
    keywords.ngram = None  # the keyword parser alone: no n-gram voice, no triage

    def parser(q: str) -> Outcome:
        a = engine.answer(q)
        return a.decision, a.topic, a.kind

    def keyword_parser(q: str) -> Outcome:
        a = keywords.answer(q)
        return a.decision, a.topic, ""

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(load average {load:.1f} on {os.cpu_count()} CPUs; q/s counts CPU time on one pinned core)")
    first_results: list[Result] = []
    all_rows: list[tuple[str, str, str]] = []
    for path in sets:
        rows = read_labelled(path)
        all_rows += rows
        n_topic = sum(1 for r in rows if r[1] != NONE)
        label = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        print(f"\nset: {label} — {len(rows)} messages, {n_topic} with a topic, {len(rows) - n_topic} without")
        clarified = sum(1 for _, lab, q in rows if lab != NONE and engine.answer(q).decision == "clarify")
        results = [
            evaluate(
                "this parser",
                parser,
                rows,
                args.repeat,
                f"{clarified} messages with a topic got a question back",
            ),
            evaluate("keyword parser alone", keyword_parser, rows, args.repeat),
        ]
        topic_rows = [(t, q) for _, t, q in rows]
        pred, note = bm25_method(engine, topic_rows)
        results.append(
            evaluate("BM25 (rank-bm25, jieba tokens)", as_full(pred), rows, max(1, args.repeat // 4), note)
        )
        pred, note = tfidf_method(engine, topic_rows)
        results.append(
            evaluate("char 1-3gram TF-IDF + LogReg", as_full(pred), rows, max(1, args.repeat // 4), note)
        )
        print(
            f"{'method':32} {'right topic':>11} {'conf. wrong':>11} {'OOS declined':>12} {'q/s (1 core)':>12} "
            f"{'p99 ms':>7} {'p99 CPU':>8}"
        )
        for r in results:
            print(
                f"{r.name:32} {r.right:11.1%} {r.wrong:11.1%} {r.decline_rate:12.1%} {r.qps:12,.0f} "
                f"{r.p99_ms:7.3f} {r.p99_cpu_ms:8.3f}"
            )
        kinds = results[0].kinds
        print("  triage (this parser): " + ", ".join(f"{k} {a}/{n}" for k, (a, n) in sorted(kinds.items())))
        for r in results:
            if r.note:
                print(f"  {r.name}: {r.note}")
        first_results = first_results or results
    results = first_results

    warm = cold_start(None, args.cold_runs)
    mem = cold_start(None, 1, "mem")
    with tempfile.TemporaryDirectory() as empty:
        first = cold_start(empty, 1)
    batch = batch_process(all_rows, args.batch_lines)
    print(
        "\nparser cold start (fresh interpreter: imports + knowledge base + jieba dictionary + n-gram weights), "
        f"median of {args.cold_runs}:"
    )
    print(
        f"  start-up {warm['start_s']:.3f} s ({warm['start_cpu_s']:.3f} s CPU), first answer {warm['first_answer_ms']:.1f} ms, "
        f"RSS {warm['rss_mb']:.1f} MiB (+{warm['rss_delta_mb']:.1f} MiB for the parser); "
        f"tracemalloc peak while loading {mem['peak_mb']:.1f} MiB"
    )
    print(
        f"  very first start on a machine (builds the trimmed dictionary and pinyin caches): "
        f"{first['start_s']:.3f} s"
    )
    print(
        f"  bangfu ask --json --batch: {batch['lines']:.0f} messages in {batch['wall_s']:.2f} s wall "
        f"(start-up included) = {batch['qps']:,.0f} q/s"
    )
    targets = [
        ("wrong answers below both baselines", results[0].wrong < min(r.wrong for r in results[2:])),
        (">= 2,000 questions/s in process on one core", results[0].qps >= 2000),
        (">= 300 questions/s for the whole --batch process", batch["qps"] >= 300),
        ("start-up <= 1.5 s", warm["start_s"] <= 1.5),
        ("RSS <= 400 MB", warm["rss_mb"] <= 400),
    ]
    print("\ntargets: " + "; ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in targets))


if __name__ == "__main__":
    main()
