"""`bangfu ask` and `bangfu policies check`: the policy parser from the command line."""

from __future__ import annotations

import argparse
import html
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.policy.engine import PolicyAnswer, PolicyEngine


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `ask` and `policies` subcommands to the bangfu parser."""
    ask = subparsers.add_parser("ask", help="answer a villager's policy question (政策问答)")
    ask.add_argument("question", nargs="?", help="the question, e.g. 我妈住院花了两万能报多少")
    ask.add_argument("--json", action="store_true", help="print JSON (one object per question)")
    ask.add_argument("--batch", type=Path, metavar="FILE", help="one question per line; loads the KB once")
    ask.add_argument("--county", help="county code for local figures (knowledge/counties/<code>.yaml)")
    ask.add_argument("--lang", default="zh_CN", choices=["zh_CN", "en"], help="answer language")
    ask.add_argument(
        "--knowledge-dir", type=Path, help="knowledge base folder (default: Settings.knowledge_dir)"
    )
    ask.set_defaults(func=_ask)

    pol = subparsers.add_parser("policies", help="policy knowledge base tools")
    actions = pol.add_subparsers(dest="policies_action", required=True)
    check = actions.add_parser("check", help="validate the knowledge base")
    check.add_argument(
        "--knowledge-dir", type=Path, help="knowledge base folder (default: Settings.knowledge_dir)"
    )
    check.set_defaults(func=_check)


def _settings_defaults(args: argparse.Namespace) -> tuple[Path, str | None]:
    from bot.settings import Settings

    settings = Settings()
    knowledge_dir = args.knowledge_dir or settings.knowledge_dir
    county = getattr(args, "county", None) or settings.county
    return knowledge_dir, county


def _load(args: argparse.Namespace) -> PolicyEngine | None:
    knowledge_dir, county = _settings_defaults(args)
    try:
        return PolicyEngine.load(knowledge_dir, county=county)
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return None


def _print(answer: PolicyAnswer, as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer.to_json(), ensure_ascii=False), flush=False)
        return
    print(f"[{answer.decision}] {answer.topic} ({answer.confidence:.2f}) kind={answer.kind}")
    if answer.alternatives:
        print("alternatives: " + ", ".join(answer.alternatives))
    print(html.unescape(answer.text))
    if answer.detail:
        print("\n--- 详细说明 / details ---")
        print(html.unescape(answer.detail))
    for topic_id, label in answer.options:
        print(f"  ▸ {label}  ({topic_id})")


def _ask(args: argparse.Namespace) -> int:
    try:
        return _ask_inner(args)
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error. Keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _ask_inner(args: argparse.Namespace) -> int:
    if args.batch is None and not args.question:
        print("give a question, or --batch FILE", file=sys.stderr)
        return 2
    engine = _load(args)
    if engine is None:
        return 2
    if args.batch is not None:
        path: Path = args.batch
        stream = sys.stdin if str(path) == "-" else path.open(encoding="utf-8")
        try:
            for line in stream:
                question = line.rstrip("\r\n")
                if not question.strip():
                    continue
                answer = engine.answer(question, lang=args.lang)
                if args.json:
                    record = answer.to_json()
                    record["question"] = question
                    print(json.dumps(record, ensure_ascii=False))
                else:
                    print(
                        f"{question}\t{answer.decision}\t{answer.topic}\t{answer.confidence:.2f}\t{answer.kind}"
                    )
        finally:
            if stream is not sys.stdin:
                stream.close()
        return 0
    _print(engine.answer(args.question, lang=args.lang), args.json)
    return 0


def _check(args: argparse.Namespace) -> int:
    engine = _load(args)
    if engine is None:
        return 2
    problems = engine.check()
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s) in the knowledge base", file=sys.stderr)
        return 1
    kb = engine.kb
    print(f"knowledge base OK: {len(kb.topics)} topics, {len(kb.counties)} county file(s)")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Standalone entry point: python -m bot.policy.cli ask "问题" / policies check."""
    parser = argparse.ArgumentParser(prog="bangfu-policy", description="帮扶通 policy questions")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    sys.exit(args.func(args) or 0)


if __name__ == "__main__":
    main()
