"""Policy parser speed: CPU µs per PolicyEngine.answer over a realistic mix, this code against a baseline.

Run: python bench/policy_speed.py --bot-path /work/main [--rounds 15]

The mix is what villagers send: every message of the question sets in tests/policy (questions, cases,
hardship, out-of-scope and chit-chat, as typed), and one in five followed by a short follow-up answered with
the previous answer's context ("那县医院呢", "三万呢"). The national engine answers in Chinese, one message in
six goes to the example county in English. No message is asked twice in a round, so no cache of whole
answers could flatter the figure (there is none).

Each implementation runs in its own process (the baseline with PYTHONPATH=--bot-path, this one with this
checkout), both loaded once; the parent then alternates rounds between them, one at a time, so machine load
hits both alike. Each round reports the process CPU time (time.process_time) of one pass over the mix; the
bench prints the median and the best round per implementation, and the ratio of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FOLLOWUPS = ("那县医院呢", "三万呢", "要带什么材料", "那大病呢", "去哪里办", "是不是弄错了？", "谢谢")

WORKER = r"""
import json, sys, time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from bot.policy.engine import PolicyEngine

repo, mix_file = Path(sys.argv[1]), sys.argv[2]
mix = json.loads(Path(mix_file).read_text(encoding="utf-8"))
national = PolicyEngine.load(repo / "knowledge")
county = PolicyEngine.load(repo / "knowledge", county="example")
now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
later = now + timedelta(minutes=1)


def one_pass():
    for i, (message, followup) in enumerate(mix):
        engine, lang = (county, "en") if i % 6 == 5 else (national, "zh_CN")
        a = engine.answer(message, lang, now=now)
        if followup:
            engine.answer(followup, lang, a.context, now=later)


one_pass()  # warm up
print("ready", flush=True)
for line in sys.stdin:
    c = time.process_time()
    one_pass()
    print(json.dumps(time.process_time() - c), flush=True)
"""


def build_mix() -> list[tuple[str, str]]:
    """(message, follow-up or "") pairs: the question sets' messages, one in five with a follow-up."""
    messages: list[str] = []
    for path in sorted((REPO / "tests" / "policy").glob("*.tsv")):
        if path.name.startswith("golden"):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                messages.append(line.split("\t")[-1].strip())
    return [(m, FOLLOWUPS[i % len(FOLLOWUPS)] if i % 5 == 4 else "") for i, m in enumerate(messages)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bot-path", type=Path, required=True, help="checkout of the baseline (e.g. /work/main)")
    ap.add_argument("--rounds", type=int, default=15, help="timed passes over the mix per implementation")
    args = ap.parse_args()
    mix = build_mix()
    answers = len(mix) + sum(1 for _, f in mix if f)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(mix, f, ensure_ascii=False)
    mix_file = Path(f.name)
    impls = {"baseline": args.bot_path.resolve(), "this": REPO}
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, path in impls.items():
            env = {**os.environ, "PYTHONPATH": str(path)}
            procs[name] = subprocess.Popen(
                [sys.executable, "-c", WORKER, str(REPO), str(mix_file)],
                cwd=path,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        for p in procs.values():
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        times: dict[str, list[float]] = {name: [] for name in procs}
        for r in range(args.rounds):
            order = list(procs) if r % 2 == 0 else list(reversed(procs))
            for name in order:
                p = procs[name]
                assert p.stdin is not None and p.stdout is not None
                p.stdin.write("go\n")
                p.stdin.flush()
                times[name].append(json.loads(p.stdout.readline()) / answers * 1e6)
    finally:
        for p in procs.values():
            if p.stdin:
                p.stdin.close()
            p.wait(timeout=30)
        mix_file.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    print(
        f"policy answers: {len(mix)} messages + {answers - len(mix)} follow-ups per round, {args.rounds} "
        f"rounds each, alternated (load average {load:.1f} on {os.cpu_count()} CPUs)"
    )
    med = {name: statistics.median(v) for name, v in times.items()}
    for name, v in times.items():
        print(f"  {name:8} {impls[name]!s:28} CPU µs/answer: median {med[name]:6.1f}, best {min(v):6.1f}")
    print(f"  speed-up (median baseline / median this): {med['baseline'] / med['this']:.2f}x")


if __name__ == "__main__":
    main()
