"""The knowledge-base check, and the command line (batch JSON through a real subprocess)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from bot.policy.engine import PolicyEngine
from tests.policy.conftest import KNOWLEDGE, REPO


def test_shipped_knowledge_base_passes_check(engine: PolicyEngine) -> None:
    assert engine.check() == []
    assert set(engine.kb.topics) == set(engine.kb.contract_ids)
    assert len(engine.kb.contract_ids) == 23


def test_check_finds_problems(tmp_path: Path) -> None:
    kb = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, kb)
    (kb / "policies" / "subsidy.biogas.yaml").unlink()
    path = kb / "policies" / "welfare.dibao.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "当地标准：{local_standard}", "当地标准：{no_such_figure}"
    )
    path.write_text(text, encoding="utf-8")
    tekun = kb / "policies" / "welfare.tekun.yaml"
    raw = tekun.read_text(encoding="utf-8")
    en_start = raw.index("  en: |", raw.index("answer:"))
    tekun.write_text(raw[:en_start] + '  en: ""\n' + raw[raw.index("how_to_apply:") :], encoding="utf-8")
    county = kb / "counties" / "example.yaml"
    county.write_text(
        county.read_text(encoding="utf-8")
        .replace("      per_mu:", "      per_acre:")
        .replace("ratio: 85", "ratio: 850"),
        encoding="utf-8",
    )
    problems = PolicyEngine.load(kb).check()
    assert any("subsidy.farmland has no parameter per_acre" in p for p in problems)
    assert any("township.ratio must be a percentage" in p for p in problems)
    assert any("subsidy.biogas has no knowledge-base entry" in p for p in problems)
    assert any("{no_such_figure}" in p for p in problems)
    assert any("welfare.tekun.yaml: empty answer.en" in p for p in problems)


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.policy.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
        check=False,
    )


def test_cli_batch_json(tmp_path: Path) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("我妈住院花了两万能报多少\n明天天气怎么样\n\n底保咋办\n", encoding="utf-8")
    done = _cli("ask", "--json", "--batch", str(questions), "--county", "example")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["topic"] for r in lines] == ["medical.inpatient", "none", "welfare.dibao"]
    for r in lines:
        assert {"topic", "confidence", "answer", "alternatives", "decision"} <= set(r)
        assert 0.0 <= r["confidence"] <= 1.0
    assert "14625" in lines[0]["answer"]


def test_cli_check_and_single_question() -> None:
    done = _cli("policies", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    one = _cli("ask", "--json", "雨露计划一年补多少钱")
    assert json.loads(one.stdout)["topic"] == "education.rain_dew"
    bad = _cli("ask", "--county", "nowhere", "低保")
    assert bad.returncode == 2
