"""The household picker dialogs share: paged household buttons, name matching, page turns."""

from __future__ import annotations

from typing import Any

from bot.core.context import Ctx
from bot.core.dialog import Next, Replace, Retry, State, dialog_rows_unflushed
from bot.core.router import parse_id
from bot.core.types import Button
from bot.services.households import (
    HouseholdRow,
    OwnHousehold,
    match_households,
    own_from_rows,
    own_households,
    pairing_rows,
)
from bot.services.stray import is_number

PAGE_SIZE = 8
ROWS = "pairing_rows"  # State.scratch: the cadre's pairing_rows read earlier in this update


async def cadre_rows(ctx: Ctx, st: State) -> list[HouseholdRow]:
    """The speaker's current pairings as the picker lists them (most overdue first), read once per update:
    kept in `st.scratch` for the prompt that follows in the same update."""
    assert ctx.person is not None
    rows: list[HouseholdRow] | None = st.scratch.get(ROWS)
    if rows is None:
        with dialog_rows_unflushed(ctx.session):
            rows = await pairing_rows(ctx.session, ctx.today, ctx.core.services.rules, cadre_ids=[ctx.person.id])
        st.scratch[ROWS] = rows
    return rows


async def ask_household(ctx: Ctx, st: State, key: str, extra: list[list[Button]] | None = None) -> None:
    """Household buttons (paged, or the matches of an ambiguous name), plus any extra rows."""
    # Most overdue first: the household a cadre is about to log is usually near the top. Rows this update
    # read already (a typed name matched against them) are not read again.
    rows_now = await cadre_rows(ctx, st)
    st.scratch.pop(ROWS, None)
    households = [r.as_own() for r in rows_now]
    matches = st.data.get("matches")
    if matches:
        households = [h for h in households if h.id in set(matches)]
    page = int(st.data.get("page", 0))
    pages = max(1, -(-len(households) // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    shown = households[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    rows: list[list[Button]] = []
    for i in range(0, len(shown), 2):
        rows.append([st.btn(_hh_label(ctx, h), f"hh:{h.id}") for h in shown[i : i + 2]])
    nav = []
    if page > 0:
        nav.append(st.btn(ctx.t("cadre.btn_prev"), f"page:{page - 1}"))
    if page < pages - 1:
        nav.append(st.btn(ctx.t("cadre.btn_next"), f"page:{page + 1}"))
    rows.append(nav)
    if matches:
        rows.append([st.btn(ctx.t("cadre.btn_show_all"), "all")])
    rows.extend(extra or [])
    ctx.reply(key, st.keyboard(ctx, rows), page=page + 1, pages=pages)


def _hh_label(ctx: Ctx, h: OwnHousehold) -> str:
    # Button labels are plain text, not HTML: format without escaping.
    if h.group_no:
        return ctx.t.raw("cadre.hh_button_group").format(name=h.head_name, group=h.group_no)
    return h.head_name


async def pick_household(ctx: Ctx, st: State, ask: Any) -> OwnHousehold | Next:
    """Interpret input at a household step: a button, a page turn, or part of a head's name.

    Returns the chosen household, or what the step should do next (Retry / Replace).
    """
    assert ctx.person is not None
    value = st.value(ctx)
    if value is not None and (value.startswith("page:") or value == "all"):
        page = 0 if value == "all" else (parse_id(value[5:]) or 0)
        st.set(page=page)
        if value == "all":
            st.drop("matches")
        await ask(ctx, st)
        return Replace()
    if value is not None and value.startswith("hh:"):
        hid = parse_id(value[3:])
        chosen = next((h for h in await own_households(ctx.session, ctx.person.id) if h.id == hid), None)
        if chosen is None:
            return Retry("cadre.hh_not_yours")
        return chosen
    if value is not None:
        return Retry("cadre.hh_pick")
    text = (ctx.inc.text or "").strip()
    if not text:
        return Retry("cadre.hh_pick")
    if len(text) > 64:
        return Retry("cadre.hh_not_found", {"text": text[:20] + "…"})
    # Matched against the rows the prompt lists: on a Retry the prompt shows them without reading again.
    found = match_households(own_from_rows(await cadre_rows(ctx, st)), text)
    if not found and is_number(text):
        return Retry("core.stray.pick", {"text": text})  # a button's position typed, not a name
    if not found:
        return Retry("cadre.hh_not_found", {"text": text})
    if len(found) > 1:
        st.set(matches=[h.id for h in found], page=0)
        return Retry("cadre.hh_ambiguous", {"text": text, "n": len(found)})
    return found[0]
