"""The command menu per role (Telegram setMyCommands per chat) and /help text."""

from __future__ import annotations

from bot.i18n import Translator
from bot.scheduler.rules import VillageDays
from bot.store.enums import Role

_CADRE = ["households", "visit", "checkin", "problem", "cases", "monitor"]
_LEADER = [*_CADRE, "overdue", "week", "digest", "difficulties", "export", "report", "web"]
MENU: dict[Role, list[str]] = {
    Role.VILLAGER: ["ask", "start", "hardship"],
    Role.CADRE: _CADRE,
    Role.LEADER: _LEADER,
    Role.TOWNSHIP: _LEADER,
    Role.COUNTY: ["monitor", "web"],
    Role.ADMIN: _LEADER,
}
COMMON = ["help", "lang", "cancel"]


def commands_for(role: Role, t: Translator) -> list[tuple[str, str]]:
    """(command, short description) pairs for the role's menu."""
    names = [*MENU[role], "ask", *COMMON] if role is not Role.VILLAGER else [*MENU[role], *COMMON]
    seen: list[str] = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return [(n, t(f"menu.{n}")) for n in seen]


def help_text(role: Role, t: Translator, village_days: int = VillageDays().target) -> str:
    """Plain-language help: one line per command of the role (village_days: the rules' weekly target)."""
    lines = [t(f"help.intro.{role.value}")]
    for name, _ in commands_for(role, t):
        lines.append(f"/{name} — {t(f'help.{name}', target=village_days)}")
    return "\n".join(lines)
