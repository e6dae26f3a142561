"""Villagers' cases on the dashboard: the list (open / overdue / topic filters) and a case page with the
chat's actions — reply to the villager, resolve with a note, hand to the team leader (for a township
officer or admin; the chat offers it to cadres) — through bot/services/cases.py and the same
notices as the chat (the villager is told through the outbox). A case outside the scope, or a forged id,
answers 404; a person in scope who may not handle the case (`can_handle`, as the chat's buttons) is
refused politely and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Any, NamedTuple

from aiohttp import web
from sqlalchemy import func, or_, select

from bot.i18n import Translator
from bot.notices.cases import CaseReplied, CaseResolved, CaseWithLeader, HandedToLeader, leader_of
from bot.scheduler import figures
from bot.scheduler.cases_due import late_conditions
from bot.services import cases as csvc
from bot.store.enums import CaseStatus, Role
from bot.store.models import Account, Case, Household, Person
from bot.web.app import Req, _ctx, _id, _not_found, _page, _redirect, _table
from bot.web.idset import in_ids
from bot.web.relay import relay

LIMIT = 200
_STATUSES = tuple(s.value for s in CaseStatus)
ACTIONS = ("reply", "resolve", "lead")


def topic_label(t: Translator, topic: str) -> str:
    """A policy topic's name: the catalogs know the monitoring measures' topics; others show their id."""
    if topic in ("", "none"):
        return t("case.topic_none")
    key = f"mon.topic.{topic}"
    return t(key) if t.has(key) else topic


class _Row(NamedTuple):
    """A line of the list: columns, not the Case entity."""

    id: int
    hardship: bool
    kind: str
    topic: str
    status: str
    created_at: datetime


_ROW = (Case.id, Case.hardship, Case.kind, Case.topic, Case.status, Case.created_at)


def _villager() -> Any:
    return func.coalesce(Household.head_name, Account.display_name, "")


async def cases_list(req: Req, request: web.Request) -> web.StreamResponse:
    t, q = req.t, request.query
    status = q.get("status", "unresolved")
    status = status if status in ("unresolved", "all", *_STATUSES) else "unresolved"
    overdue_only = q.get("overdue") == "1"
    topic = q.get("topic", "")[:48]
    sort = "new" if q.get("sort") == "new" else "old"
    reply_late, resolve_late = late_conditions(req.today, req.w.rules)
    unresolved = Case.status != CaseStatus.RESOLVED.value
    scoped = in_ids(req.w.engine.dialect.name, Case.team_id, req.scope.team_ids)  # one id set: bot/web/idset.py
    stmt = select(*_ROW, Case.household_id, Case.account_id, (reply_late & unresolved).label("r_late"),
                  (resolve_late & unresolved).label("s_late")).where(scoped)
    if status == "unresolved":
        stmt = stmt.where(unresolved)
    elif status != "all":
        stmt = stmt.where(Case.status == status)
    if overdue_only:
        stmt = stmt.where(unresolved, or_(reply_late, resolve_late))
    topics = [r[0] for r in (await req.s.execute(
        select(Case.topic).where(scoped).group_by(Case.topic).order_by(func.count().desc()).limit(40))).all()]
    if topic in topics:
        stmt = stmt.where(Case.topic == topic)
    else:
        topic = ""
    order = (Case.created_at.desc(), Case.id.desc()) if sort == "new" else (Case.hardship.desc(), Case.created_at, Case.id)
    # The page's LIMIT rows are picked from the cases alone; only they are joined to their villagers
    # (joined first, a county's list read every household).
    page = stmt.order_by(*order).limit(LIMIT).subquery()
    rows = (await req.s.execute(
        select(*(page.c[col.key] for col in _ROW), _villager(), page.c.r_late, page.c.s_late)
        .outerjoin(Household, Household.id == page.c.household_id)
        .outerjoin(Account, Account.id == page.c.account_id)
        .order_by(*((page.c.created_at.desc(), page.c.id.desc()) if sort == "new"
                    else (page.c.hardship.desc(), page.c.created_at, page.c.id))))).all()
    status_opts = "".join(
        f'<option value="{s}"{" selected" if s == status else ""}>'
        f'{t(("case.status." if s in _STATUSES else "web.status.") + s)}</option>'
        for s in ("unresolved", *_STATUSES, "all"))
    topic_opts = "".join(f'<option value="{escape(k)}"{" selected" if k == topic else ""}>{escape(topic_label(t, k))}'
                         "</option>" for k in topics)
    body = (f'<form class="filters" method="get"><select name="status">{status_opts}</select>'
            f'<select name="topic"><option value="">{t("web.cases.all_topics")}</option>{topic_opts}</select>'
            f'<label><input type="checkbox" name="overdue" value="1"{" checked" if overdue_only else ""}> '
            f'{t("web.cases.only_overdue")}</label><select name="sort"><option value="old">{t("web.cases.sort_old")}'
            f'</option><option value="new"{" selected" if sort == "new" else ""}>{t("web.sort.newest")}</option>'
            f'</select><button type="submit">{t("web.filter")}</button></form>')
    tz = req.w.clock.tz
    out, classes = [], []
    for *cols, villager, r_late, s_late in rows:
        c = _Row(*cols)
        marks = []
        if c.hardship:
            marks.append(f'<span class="far">{t("web.cases.hardship")}</span>')
        if r_late:
            marks.append(f'<span class="late">{t("web.cases.reply_late")}</span>')
        elif s_late:
            marks.append(f'<span class="late">{t("web.cases.resolve_late")}</span>')
        out.append([f'<a href="/cases/{c.id}">#{c.id}</a>', escape(villager or "—"), t(f"case.kind.{c.kind}"),
                    escape(topic_label(t, c.topic)), t(f"case.status.{c.status}"),
                    t("web.days", n=(req.today - c.created_at.astimezone(tz).date()).days), " ".join(marks)])
        classes.append("late" if r_late or s_late else "")
    body += _table(["#", t("web.cases.villager"), t("web.cases.kind"), t("web.cases.topic"), t("web.col.status"),
                    t("web.col.age"), ""], out, classes)
    if not out:
        body += f'<p>{t("web.none")}</p>'
    return _page(t, t("web.nav.cases"), body, req)


async def _case_in_scope(req: Req, cid: int, lock: bool = False) -> Case | None:
    q = select(Case).where(Case.id == cid, req.scope.team_filter(Case.team_id))
    if lock:
        q = q.with_for_update()
    return (await req.s.execute(q)).scalar()


async def case_page(req: Req, request: web.Request) -> web.StreamResponse:
    cid = _id(request)
    c = await _case_in_scope(req, cid) if cid is not None else None
    if c is None:
        return _not_found(req)
    done = request.query.get("done", "")
    msg = f'<p class="msg" id="done">{req.t("web.cases.done." + done)}</p>' if done in (*ACTIONS, "nochange") else ""
    return await _render(req, c, msg)


async def _render(req: Req, c: Case, msg: str = "", status: int = 200) -> web.Response:
    t = req.t
    tz = req.w.clock.tz
    # The villager, the cadre's name and whether the case is late (cases_due's conditions), in one
    # statement; the household comes as an entity so can_handle below finds it in the session.
    reply_late, resolve_late = late_conditions(req.today, req.w.rules)
    hh, account_name, cadre_name, late_now = (await req.s.execute(
        select(Household, Account.display_name, Person.name, reply_late | resolve_late)
        .select_from(Case).outerjoin(Household, Household.id == Case.household_id)
        .outerjoin(Account, Account.id == Case.account_id).outerjoin(Person, Person.id == Case.cadre_id)
        .where(Case.id == c.id))).one()
    late = c.status != CaseStatus.RESOLVED.value and bool(late_now)
    villager = escape(hh.head_name if hh else account_name if account_name is not None else "—")
    if hh is not None:
        villager = f'<a href="/households/{hh.id}">{villager}</a>'
    info = [
        (t("web.cases.villager"), villager),
        (t("web.cases.kind"), t(f"case.kind.{c.kind}") + (f' <span class="far">{t("web.cases.hardship")}</span>'
                                                          if c.hardship else "")),
        (t("web.cases.topic"), escape(topic_label(t, c.topic))),
        (t("web.col.status"), f'<span id="status">{t(f"case.status.{c.status}")}</span>'
         + (f' <span class="late">{t("web.cases.overdue")}</span>' if late else "")),
        (t("web.col.cadre"), escape(cadre_name) if cadre_name is not None else "—"),
        (t("web.col.date"), c.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")),
        (t("web.col.description"), f'<span class="pre">{escape(c.text) or "—"}</span>'),
        (t("web.cases.reply"), f'<span id="reply_text">{escape(c.reply_text) or "—"}</span>'),
        (t("web.col.note"), escape(c.resolution_note) or "—"),
    ]
    body = msg + '<table class="facts">' + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in info) + "</table>"
    if c.status != CaseStatus.RESOLVED.value and await csvc.can_handle(req.s, req.person.id, Role(req.person.role), c):
        hidden = f'<input type="hidden" name="csrf" value="{req.csrf}">'
        body += (f'<div class="actions">'
                 f'<form method="post" action="/cases/{c.id}/reply">{hidden}<textarea name="text" rows="2" '
                 f'maxlength="1000" required placeholder="{t("web.cases.reply_hint")}"></textarea> '
                 f'<button id="reply" type="submit">{t("case.btn_reply")}</button></form>'
                 f'<form method="post" action="/cases/{c.id}/resolve">{hidden}<textarea name="note" rows="2" '
                 f'maxlength="1000" required placeholder="{t("web.note_hint")}"></textarea> '
                 f'<button id="resolve" type="submit">{t("case.btn_resolve")}</button></form>')
        leader = await leader_of(await _ctx(req), c)
        if c.status != CaseStatus.LEADER.value and leader is not None and leader.id != req.person.id:
            body += (f'<form method="post" action="/cases/{c.id}/lead">{hidden}<button id="lead" type="submit">'
                     f'{t("web.cases.to_leader", leader=leader.name)}</button></form>')
        body += "</div>"
    body += f'<p><a href="/cases">{t("web.cases.back")}</a></p>'
    return _page(t, t("web.cases.title", id=c.id), body, req, status=status)


async def case_action(req: Req, request: web.Request) -> web.StreamResponse:
    """Reply to the villager or resolve with a note, as the chat's cs:rep / cs:res (same services, notices)."""
    cid, action = _id(request), request.match_info["action"]
    c = await _case_in_scope(req, cid, lock=True) if cid is not None else None
    if c is None or action not in ACTIONS:
        return _not_found(req)
    ctx = await _ctx(req)
    if not await csvc.can_handle(req.s, req.person.id, Role(req.person.role), c):
        ctx.audit("case.refused", "case", c.id, via="web")
        return await _render(req, c, f'<p class="msg refused" id="refused">{req.t("web.cases.not_yours")}</p>',
                             status=403)
    form = await request.post()
    limit = req.w.settings.max_text_length
    now, done = req.w.clock.now(), "nochange"
    if c.status == CaseStatus.RESOLVED.value:
        return _redirect(f"/cases/{c.id}?done=nochange")
    if action == "reply":
        text = csvc.storable_text(str(form.get("text", "")).strip()[:limit])
        if text:
            csvc.record_reply(c, text, now)
            ctx.audit("case.replied", "case", c.id, via="web")
            await ctx.notify(CaseReplied(c, req.person.name, text))
            done = "reply"
    elif action == "lead":
        leader = await leader_of(ctx, c)
        if leader is not None and leader.id != req.person.id and csvc.hand_to_leader(c, now):
            ctx.audit("case.to_leader", "case", c.id, to=leader.id, via="web")
            await ctx.notify(HandedToLeader(c, leader, req.person.name))
            await ctx.notify(CaseWithLeader(c, leader.name))
            done = "lead"
    else:
        note = csvc.storable_text(str(form.get("note", "")).strip()[:limit])
        if note and csvc.resolve(c, note, now):
            ctx.audit("case.resolved", "case", c.id, via="web")
            await ctx.notify(CaseResolved(c))
            done = "resolve"
    if done != "nochange":  # the overview's case counts: the team's figures recomputed on the next read
        await figures.mark_dirty(req.s, c.team_id, req.today)
    await relay(req.s, ctx)
    return _redirect(f"/cases/{c.id}?done={done}")  # returned, not raised: the transaction commits


def register(router: web.UrlDispatcher, signed_in: Callable[..., Any]) -> None:
    router.add_get("/cases", signed_in(cases_list))
    router.add_get("/cases/{id}", signed_in(case_page))
    router.add_post("/cases/{id}/{action}", signed_in(case_action, post=True))
