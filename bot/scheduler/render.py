"""Turning due rows into message text and buttons, in one recipient's language.

Shared by the tick (reminders, alerts) and the leaders' on-demand reports, so both read the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import groupby

from bot.buttons import CHECKIN_REMINDER, VISIT_REMINDER
from bot.core.types import Button, InlineKeyboard
from bot.i18n import Safe, Translator
from bot.scheduler.due import CadreWeek, HouseholdDue, LateDifficulty

# Telegram's limit is 4096 characters; keep headroom for the header and the "more" line.
MAX_TEXT = 3800
MAX_LINES = 60  # lines in one pushed alert; the on-demand report pages instead
MAX_BUTTONS = 8


def leave_note(t: Translator, on_leave: bool, covered_by: str | None) -> Safe:
    """" (on leave, covered by X)" or "" — what a leader needs to know about an absent cadre."""
    if not on_leave:
        return Safe("")
    if covered_by:
        return Safe(t("sched.leave_note", cover=covered_by))
    return Safe(t("sched.leave_note_nocover"))


def far_note(t: Translator, far_checkins: int) -> str:
    """" (2 check-ins far from the village)" or "": the leader sees where a check-in was not in the village."""
    return t("sched.far_note", n=far_checkins) if far_checkins else ""


def visit_buttons(t: Translator, rows: Sequence[HouseholdDue]) -> InlineKeyboard | None:
    """One "log a visit" button per household (the first few), callback rm:visit:<household_id>."""
    if not rows:
        return None
    return InlineKeyboard(
        rows=tuple(
            (Button(text=t("sched.btn.visit", head=r.head_name), data=VISIT_REMINDER.pack(r.household_id)),)
            for r in rows[:MAX_BUTTONS]
        )
    )


def checkin_button(t: Translator) -> InlineKeyboard:
    return InlineKeyboard(rows=((Button(text=t("sched.btn.checkin"), data=CHECKIN_REMINDER.pack()),),))


def join_limited(t: Translator, head: str, lines: Iterable[str], *, more_key: str = "sched.more.plain") -> str:
    """Header plus as many lines as fit one message; the rest summarised as "...and N more"."""
    out = [head]
    size = len(head)
    lines = list(lines)
    for i, line in enumerate(lines):
        if i >= MAX_LINES or size + len(line) + 1 > MAX_TEXT:
            out.append(t(more_key, n=len(lines) - i))
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def paginate(head: str, lines: Iterable[str]) -> list[str]:
    """Header and lines split into messages that each fit Telegram's limit (for full reports)."""
    pages: list[str] = []
    cur = [head]
    size = len(head)
    for line in lines:
        if size + len(line) + 1 > MAX_TEXT:
            pages.append("\n".join(cur))
            cur, size = [], 0
        cur.append(line)
        size += len(line) + 1
    pages.append("\n".join(cur))
    return pages


def household_lines(t: Translator, rows: Iterable[HouseholdDue], *, overdue: bool) -> list[str]:
    """One line per household for a cadre's own reminder."""
    key = "sched.line.overdue" if overdue else "sched.line.household"
    return [t(key, head=r.head_name, code=r.household_code, days=r.days_overdue) for r in rows]


def grouped_overdue_lines(t: Translator, rows: Sequence[HouseholdDue]) -> list[str]:
    """Lines for a leader: a heading per cadre (with leave note) and their overdue households."""
    out: list[str] = []
    for _cid, grp in groupby(rows, key=lambda r: r.cadre_id):
        items = list(grp)
        first = items[0]
        out.append(
            t(
                "sched.leader.cadre",
                name=first.cadre_name,
                count=len(items),
                note=leave_note(t, first.on_leave, first.covered_by),
            )
        )
        out.extend(
            t("sched.leader.household", head=r.head_name, code=r.household_code, days=r.days_overdue)
            for r in items
        )
    return out


def missed_lines(t: Translator, rows: Sequence[HouseholdDue]) -> list[str]:
    """Lines naming each missed household and its cadre (seasonal close alert)."""
    return [
        t(
            "sched.season.close.line",
            head=r.head_name,
            code=r.household_code,
            cadre=r.cadre_name,
            note=leave_note(t, r.on_leave, r.covered_by),
        )
        for r in rows
    ]


def week_lines(t: Translator, rows: Sequence[CadreWeek], target: int) -> list[str]:
    """One line per cadre: village days against target, visits, leave; a mark for short ones."""
    return [
        t(
            "sched.week.line",
            mark="✅" if r.checkin_days >= target else ("🟡" if r.on_leave else "⚠️"),
            name=r.cadre_name,
            days=r.checkin_days,
            target=target,
            visits=r.visits,
            note=Safe(leave_note(t, r.on_leave, r.covered_by) + far_note(t, r.far_checkins)),
        )
        for r in rows
    ]


def difficulty_line(t: Translator, d: LateDifficulty) -> str:
    """A late difficulty, in red (Telegram HTML has no colours, so a red mark)."""
    key = "sched.diff.line.decide" if d.decide_late else "sched.diff.line.ack"
    return t(
        key,
        desc=_short(d.description),
        reporter=d.reporter_name,
        head=d.head_name or "—",
        date=d.created_on.isoformat(),
    )


def _short(s: str, n: int = 60) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"
