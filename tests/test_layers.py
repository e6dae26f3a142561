"""Who may import whom (HACKING.md, "The map"): parse every module's imports (including imports inside
functions and under TYPE_CHECKING) and fail on a forbidden one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "bot"

FEATURES = ("bot.handlers", "bot.dialogs", "bot.notices")
ENTRY = ("bot.cli", "bot.runners", "bot.channels", "bot.demo", "bot.__main__")

# package -> (forbidden import prefixes, allowed exceptions). The most specific package wins.
RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # The framework knows no feature; only the composition root wires them in.
    "bot.core": ((*FEATURES, *ENTRY, "bot.io", "bot.services", "bot.scheduler", "bot.policy", "bot.buttons"),
                 ("bot.scheduler.rules", "bot.policy.engine")),
    "bot.core.bootstrap": ((*ENTRY, "bot.io"), ()),
    "bot.store": ((*FEATURES, *ENTRY, "bot.core", "bot.io", "bot.services", "bot.scheduler", "bot.policy"), ()),
    "bot.policy": ((*FEATURES, *ENTRY, "bot.core", "bot.io", "bot.services", "bot.scheduler", "bot.store"), ()),
    "bot.services": ((*FEATURES, *ENTRY, "bot.io", "bot.core.engine", "bot.core.bootstrap"),
                     ("bot.core.context", "bot.core.types")),
    "bot.notices": ((*ENTRY, "bot.handlers", "bot.dialogs", "bot.core.engine", "bot.core.bootstrap"), ()),
    "bot.dialogs": ((*ENTRY, "bot.handlers", "bot.core.engine", "bot.core.bootstrap"), ()),
    "bot.handlers": ((*ENTRY, "bot.core.engine", "bot.core.bootstrap"), ()),
    "bot.buttons": ((*FEATURES, *ENTRY, "bot.io", "bot.services", "bot.scheduler", "bot.store"), ()),
    # The scheduler's CLI sends through every configured channel.
    "bot.scheduler": ((*FEATURES, *ENTRY), ("bot.runners.http_transport", "bot.channels.wecom.api",
                                            "bot.channels.wecom.transport",
                                            "bot.channels.wechat_kf.transport", "bot.channels.sms.sender",
                                            "bot.channels.sms.transport")),
    "bot.io": ((*FEATURES, *ENTRY, "bot.core.engine"), ()),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, wherever it stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def rule_for(module: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    owners = [p for p in RULES if _under(module, p)]
    return RULES[max(owners, key=len)] if owners else None


def violations(path: Path) -> list[str]:
    module = module_name(path)
    rule = rule_for(module)
    if rule is None:
        return []
    forbidden, allowed = rule
    bad = []
    for line, name in imports(path):
        if any(_under(name, a) for a in allowed) or _under(name, module):
            continue
        if any(_under(name, f) for f in forbidden):
            bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {name}")
    return bad


def test_no_forbidden_imports() -> None:
    bad = [v for path in sorted(ROOT.rglob("*.py")) for v in violations(path)]
    assert not bad, "forbidden imports (see HACKING.md, The map):\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("module", "source", "refused"),
    [
        ("core/engine.py", "from bot.handlers.menu import commands_for\n", True),
        ("core/context.py", "def f():\n    from bot.dialogs.visit import VisitDialog\n", True),
        ("dialogs/visit.py", "from bot.handlers.visits import after_save\n", True),
        ("dialogs/visit.py", "from bot import handlers\n", True),
        ("dialogs/visit.py", "from bot.notices.visits import FarVisit\n", False),
        ("core/bootstrap.py", "from bot.handlers import all_routers\n", False),
        ("services/texts.py", "from bot.dialogs.pickers import ask_household\n", True),
    ],
)
def test_the_checker_catches_what_it_should(tmp_path: Path, module: str, source: str, refused: bool) -> None:
    fake = ROOT / module  # judged as if it were this module, written elsewhere
    path = tmp_path / "bot" / module
    path.parent.mkdir(parents=True)
    path.write_text(source, encoding="utf-8")
    name = module_name(fake)
    rule = rule_for(name)
    assert rule is not None
    forbidden, allowed = rule
    hits = [n for _, n in imports(path) if not any(_under(n, a) for a in allowed)
            and any(_under(n, f) for f in forbidden)]
    assert bool(hits) is refused
