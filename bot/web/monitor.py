"""防返贫监测 on the dashboard: the board (open cases in the scope as columns per step, overdue in red), a
case page (its facts, measures and timeline of events) with the actions the signed-in person may take at
the case's step, and the overview's figure (`monitoring_figures`).

Every action goes through bot/services/monitoring.py exactly as the chat's buttons do (`check_actor`: the
role owns the step, the case is in the person's area, the form was made for the current step) and tells
the same people through the same notices (bot/dialogs/monitor_common.tell_after), whose messages go out
through the outbox. A case outside the dashboard scope, or a forged id, answers 404; a refused action is
explained on the page and changes nothing (the refusal is audited by the service, as in the chat).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from html import escape
from typing import Any, NamedTuple

from aiohttp import web
from sqlalchemy import String, and_, bindparam, case, func, select, true, union_all
from sqlalchemy.dialects.postgresql import ARRAY

from bot.core.router import parse_id
from bot.dialogs.monitor_common import tell_after
from bot.i18n import Translator
from bot.notices.monitoring import TOPICS
from bot.services import monitoring as mon
from bot.store.enums import MonitorStep, Role
from bot.store.models import Household, MonitorCase, Person, Village
from bot.web import svg
from bot.web.app import TREND_WEEKS, Req, _ctx, _id, _not_found, _page, _redirect, _week_label
from bot.web.idset import in_ids
from bot.web.relay import relay

S = MonitorStep
# The board's columns: the steps a case waits at, in the state machine's order (closing walks VERIFY ..
# ANNOUNCE again, so a closing case shows in those columns, marked).
BOARD_STEPS: tuple[MonitorStep, ...] = tuple(s for s in MonitorStep if s not in (S.CLOSED, S.REJECTED))
COLUMN_CARDS = 50  # cards drawn per column; the header counts them all
ACTIONS = ("approve", "back", "reject", "measure", "close")


def in_scope(req: Req) -> Any:
    """A WHERE clause: the monitoring case's village is in the dashboard scope (the scope's villages as one
    id set: bot/web/idset.py)."""
    villages = None if req.scope.county else req.scope.village_ids or ()
    return in_ids(req.w.engine.dialect.name, MonitorCase.village_id, villages)


def _overdue(today: date) -> Any:
    return and_(MonitorCase.step_due.is_not(None), MonitorCase.step_due < today)


@dataclass(frozen=True)
class MonitoringFigures:
    steps: list[tuple[str, int, int]]  # (step, open cases, overdue) per column of the board, in order
    weeks: list[tuple[date, int, int]]  # (monday, open at the week's end, opened in the week), oldest first


async def step_counts(req: Req, village_id: int | None = None) -> list[tuple[str, int, int]]:
    """(step, open cases, overdue) for every column of the board, in order, in the request's scope (and
    village): one grouped query. Overdue: the step's due date (bot/scheduler/monitor_rules.py clocks) is past."""
    late = func.sum(case((_overdue(req.today), 1), else_=0))
    q = select(MonitorCase.step, func.count(), late).where(MonitorCase.open.is_(True), in_scope(req))
    if village_id is not None:
        q = q.where(MonitorCase.village_id == village_id)
    rows = (await req.s.execute(q.group_by(MonitorCase.step))).all()
    found = {r[0]: (int(r[1]), int(r[2] or 0)) for r in rows}
    return [(st.value, *found.get(st.value, (0, 0))) for st in BOARD_STEPS]


async def monitoring_figures(req: Req) -> MonitoringFigures:
    """The overview's monitoring figure in the request's scope, in two queries: `step_counts`, and the
    trend of the last TREND_WEEKS weeks (open at each week's end, opened in it; from opened_at/closed_at)."""
    steps = await step_counts(req)
    tz = req.w.rules.tz
    monday = req.today - timedelta(days=req.today.weekday())
    mondays = [monday - timedelta(weeks=k) for k in range(TREND_WEEKS - 1, -1, -1)]

    def midnight(d: date) -> datetime:
        return datetime.combine(d, time(0), tzinfo=tz)

    sums = []
    for m in mondays:
        start, end = midnight(m), midnight(min(m + timedelta(days=6), req.today) + timedelta(days=1))
        open_then = and_(MonitorCase.opened_at < end,
                         (MonitorCase.closed_at.is_(None)) | (MonitorCase.closed_at >= end))
        sums += [func.sum(case((open_then, 1), else_=0)),
                 func.sum(case((and_(MonitorCase.opened_at >= start, MonitorCase.opened_at < end), 1), else_=0))]
    first = midnight(mondays[0])
    row = (await req.s.execute(select(*sums).where(
        in_scope(req), (MonitorCase.closed_at.is_(None)) | (MonitorCase.closed_at >= first)))).one()
    weeks = [(m, int(row[2 * i] or 0), int(row[2 * i + 1] or 0)) for i, m in enumerate(mondays)]
    return MonitoringFigures(steps, weeks)


def monitoring_card(t: Translator, figures: MonitoringFigures | None) -> str:
    """The overview's card: open cases per step (overdue part in red), each step linking to its column,
    and the weekly trend of open cases."""
    title = t("web.ov.monitoring")
    if figures is None:
        return f'<div class="card"><h2>{title}</h2><p class="msg">{t("web.trend_pending")}</p></div>'
    total, late = sum(n for _, n, _ in figures.steps), sum(k for _, _, k in figures.steps)
    shown = [f for f in figures.steps if f[1]]
    trend = svg.bars([_week_label(t, m) for m, _, _ in figures.weeks], [float(n) for _, n, _ in figures.weeks],
                     title=t("web.mon.trend"))
    chart = svg.stacked([t(f"mon.step.{s}") for s, _, _ in shown], [float(n) for _, n, _ in shown],
                        [float(k) for _, _, k in shown], title=title) if shown else f'<p>{t("web.none")}</p>'
    links = "".join(
        f'<li><a href="/monitoring?step={s}">{t(f"mon.step.{s}")} {n}</a>'
        + (f' · <a class="late" href="/monitoring?step={s}&amp;overdue=1">{t("web.mon.overdue_n", n=k)}</a>'
           if k else "") + "</li>"
        for s, n, k in shown)
    return (f'<div class="card" id="monitoring"><h2>{title}</h2><div class="big">{total}</div>'
            f'<p>{t("web.mon.overview_note", late=late)}</p>{chart}<ul class="steps">{links}</ul>{trend}'
            f'<a class="more" href="/monitoring">{t("web.more")}</a>'
            + (f' · <a class="more late" href="/monitoring?overdue=1">{t("web.mon.only_overdue")}</a>' if late else "")
            + "</div>")


# ------------------------------------------------------------------------------------------ the board
async def board(req: Req, request: web.Request) -> web.StreamResponse:
    t, q = req.t, request.query
    step = q.get("step", "")
    step = step if step in {s.value for s in BOARD_STEPS} else ""
    overdue_only = q.get("overdue") == "1"
    # The scope's villages with open cases (a township or the county has many): a village filter.
    # A semi-join (each village stops at its first open case), not a grouping of every open case.
    has_open = select(MonitorCase.id).where(MonitorCase.open.is_(True), MonitorCase.village_id == Village.id).exists()
    scoped = in_ids(req.w.engine.dialect.name, Village.id, None if req.scope.county else req.scope.village_ids or ())
    villages = (await req.s.execute(
        select(Village.id, Village.name).where(scoped, has_open).order_by(Village.name).limit(500))).all()
    village = parse_id(q.get("village", ""))
    village = village if village in {v for v, _ in villages} else None
    figures = await step_counts(req, village)
    rows = await _first_cards(req, [s for s, n, late in figures if (late if overdue_only else n)
                                    and (not step or s == step)], village, overdue_only)
    per_step: dict[str, list[Card]] = {}
    for c in rows:
        per_step.setdefault(c.step, []).append(c)
    options = "".join(f'<option value="{s.value}"{" selected" if s.value == step else ""}>{t(f"mon.step.{s.value}")}'
                      f"</option>" for s in BOARD_STEPS)
    pick = "".join(f'<option value="{v}"{" selected" if v == village else ""}>{escape(name)}</option>'
                   for v, name in villages)
    village_select = (f'<select name="village"><option value="">{t("web.mon.all_villages")}</option>{pick}</select>'
                      if len(villages) > 1 else "")
    body = (f'<form class="filters" method="get"><select name="step"><option value="">{t("web.mon.all_steps")}'
            f'</option>{options}</select>{village_select}<label><input type="checkbox" name="overdue" value="1"'
            f'{" checked" if overdue_only else ""}> {t("web.mon.only_overdue")}</label>'
            f'<button type="submit">{t("web.filter")}</button></form>')
    role = Role(req.person.role)
    columns = []
    seen: dict[tuple[Any, ...], tuple[bool, str, str]] = {}
    for s, n, late in figures:
        if step and s != step:
            continue
        count = late if overdue_only else n
        cards = per_step.get(s, [])[:COLUMN_CARDS]
        mine = role in mon.OWNERS.get(S(s), frozenset())
        head = (f'<h2>{t(f"mon.step.{s}")} <span class="count">{count}</span>'
                + (f' <span class="late">{t("web.mon.overdue_n", n=late)}</span>' if late and not overdue_only else "")
                + "</h2>")
        drawn = "".join(_card(t, c, req.today, seen) for c in cards)
        more = f'<p class="more">{t("web.mon.more_cards", n=count - len(cards))}</p>' if count > len(cards) else ""
        columns.append(f'<section class="column{" mine" if mine else ""}" data-step="{s}">{head}{drawn}{more}'
                       + ("" if cards else f'<p class="empty">{t("web.none")}</p>') + "</section>")
    body += f'<div class="board">{"".join(columns)}</div>'
    return _page(t, t("web.nav.monitoring"), body, req)


class Card(NamedTuple):
    """What a card on the board shows: columns, not the case entity (a county's board draws 600)."""

    id: int
    head_name: str
    phase: str
    step: str
    step_started: date
    step_due: date | None
    village: str


_CARD = (MonitorCase.id, MonitorCase.head_name, MonitorCase.phase, MonitorCase.step, MonitorCase.step_started,
         MonitorCase.step_due, MonitorCase.village_id)


async def _first_cards(req: Req, steps: list[str], village: int | None, overdue_only: bool) -> list[Card]:
    """The first COLUMN_CARDS cards of each of `steps` (soonest due first, no due date last) and their
    villages' names, in one statement whose every column is an index range of ix_monitor_cases_board
    (open, step, step_due, id) stopped after COLUMN_CARDS rows: the scope is never sorted as a whole.
    On PostgreSQL a LATERAL subquery over the steps (planned once, however large the scope's id set);
    elsewhere one LIMITed branch per step under UNION ALL (SQLite has no LATERAL)."""
    if not steps:
        return []

    def column(step: Any) -> Any:
        q = select(*_CARD).where(MonitorCase.open.is_(True), MonitorCase.step == step, in_scope(req))
        if village is not None:
            q = q.where(MonitorCase.village_id == village)
        if overdue_only:
            q = q.where(_overdue(req.today))
        return q.order_by(MonitorCase.step_due.asc().nulls_last(), MonitorCase.id).limit(COLUMN_CARDS)

    if req.w.engine.dialect.name == "postgresql" and len(steps) > 1:
        # The steps as one array parameter (a VALUES list would make the statement uncacheable: compiled
        # again on every request).
        wanted = func.unnest(bindparam("steps", list(steps), type_=ARRAY(String))).table_valued("step").render_derived(name="wanted")
        cards = column(wanted.c.step).lateral("cards")
        stmt = select(*(cards.c[col.key] for col in _CARD[:-1]), Village.name).select_from(wanted).join(
            cards, true()).join(Village, Village.id == cards.c.village_id)
    else:
        branches = [select(column(st).subquery()) for st in steps]
        both = (branches[0] if len(branches) == 1 else union_all(*branches)).subquery()
        stmt = select(*(both.c[col.key] for col in _CARD[:-1]), Village.name).join(
            Village, Village.id == both.c.village_id)
    out = [Card._make(r) for r in (await req.s.execute(stmt)).all()]
    out.sort(key=lambda c: (c.step_due is None, c.step_due or date.min, c.id))
    return out


def _card(t: Translator, c: Card, today: date, seen: dict[tuple[Any, ...], tuple[bool, str, str]]) -> str:
    """One card; `seen` keeps the translated parts per (step start, due date, phase) for the page (a
    county's board draws hundreds of cards with a few dozen distinct dates)."""
    key = (c.step_started, c.step_due, c.phase)
    parts = seen.get(key)
    if parts is None:
        late = c.step_due is not None and c.step_due < today
        due = (t("web.mon.overdue_days", n=(today - c.step_due).days) if late and c.step_due
               else t("web.mon.due", date=c.step_due.isoformat()) if c.step_due else "")
        phase = f' <span class="tag">{t("mon.phase.close")}</span>' if c.phase == "close" else ""
        tail = (f'{t("web.mon.at_step", n=(today - c.step_started).days)} · '
                f'<span class="{"late" if late else ""}">{due}</span></a>')
        parts = seen[key] = (late, phase, tail)
    late, phase, tail = parts
    return (f'<a class="mcard{" late" if late else ""}" href="/monitoring/{c.id}" data-case="{c.id}">'
            f'<b>#{c.id} {escape(c.head_name or "-")}</b>{phase}<br>{escape(c.village)}<br>{tail}')


# ------------------------------------------------------------------------------------------ one case
async def _case_in_scope(req: Req, cid: int, lock: bool = False) -> MonitorCase | None:
    q = select(MonitorCase).where(MonitorCase.id == cid, in_scope(req))
    if lock:
        q = q.with_for_update()
    return (await req.s.execute(q)).scalar()


async def case_page(req: Req, request: web.Request) -> web.StreamResponse:
    cid = _id(request)
    if cid is None:
        return _not_found(req)
    # The case with its village's name and household's head in one statement (the page's other reads are
    # the services' measures_of / history and the actors' names).
    found = (await req.s.execute(
        select(MonitorCase, Village.name, Household.id, Household.head_name)
        .join(Village, Village.id == MonitorCase.village_id)
        .outerjoin(Household, Household.id == MonitorCase.household_id)
        .where(MonitorCase.id == cid, in_scope(req)))).first()
    if found is None:
        return _not_found(req)
    done = request.query.get("done", "")
    msg = f'<p class="msg" id="done">{req.t("web.mon.done." + done)}</p>' if done in ACTIONS else ""
    return await _render(req, found[0], msg, known=(found[1], found[2], found[3]))


async def _render(req: Req, c: MonitorCase, msg: str = "", status: int = 200,
                  known: tuple[str, int | None, str | None] | None = None) -> web.Response:
    """The case page; `known`: (village name, household id, head name) when the caller read them already."""
    t, today = req.t, req.today
    if known is None:
        village = await req.s.get(Village, c.village_id)
        hh = await req.s.get(Household, c.household_id) if c.household_id else None
        known = (village.name if village else "", hh.id if hh else None, hh.head_name if hh else None)
    village_name, hh_id, hh_head = known
    late = c.open and c.step_due is not None and c.step_due < today
    name = escape(c.head_name or hh_head or "-")
    if hh_id is not None:
        name = f'<a href="/households/{hh_id}">{name}</a>'
    due = "—"
    if c.step_due is not None:
        due = c.step_due.isoformat() + (f' <span class="late">{t("web.mon.overdue_days", n=(today - c.step_due).days)}'
                                        "</span>" if late else "")
    info = [
        (t("web.col.head"), name),
        (t("web.col.village"), escape(village_name)),
        (t("web.mon.phase"), t(f"mon.phase.{c.phase}")),
        (t("web.mon.step"), f'<span id="step">{t(f"mon.step.{c.step}")}</span>'),
        (t("web.mon.since"), f'{c.step_started.isoformat()} ({t("web.days", n=(today - c.step_started).days)})'),
        (t("web.mon.step_due"), due),
        (t("web.mon.kind"), t(f"mon.kind.{c.kind}") if c.kind else t("mon.kind.none")),
        (t("web.mon.source"), t(f"mon.source.{c.source}")),
        (t("web.mon.risks"), "、".join(t(f"mon.risk.{r}") for r in c.risks) or "—"),
        (t("web.col.description"), escape(c.description) or "—"),
        (t("web.mon.income"), f"{c.income_per_head}" if c.income_per_head is not None else "—"),
    ]
    body = msg + '<table class="facts">' + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in info) + "</table>"
    measures = await mon.measures_of(req.s, c.id)
    if measures:
        body += f'<h2>{t("web.mon.measures")}</h2><ul>' + "".join(
            f'<li>{m.started_on.isoformat()} {t(f"mon.topic.{m.topic}") if t.has(f"mon.topic.{m.topic}") else escape(m.topic)}'
            f"</li>" for m in measures) + "</ul>"
    if c.step == S.PUBLICIZE.value:
        body += f'<p><a id="notice" href="/monitoring/{c.id}/notice.pdf">{t("web.mon.notice_pdf")}</a></p>'
    body += await _actions(req, c)
    events = await mon.history(req.s, c.id)
    ids = {e.actor_person_id for e in events if e.actor_person_id is not None}
    names = dict((await req.s.execute(select(Person.id, Person.name).where(Person.id.in_(ids)))).all()) if ids else {}
    tz = req.w.clock.tz
    items = "".join(
        f'<li><time>{e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M")}</time> '
        f'<b>{t(f"mon.step.{e.step}")}</b> · {t(f"mon.action.{e.action}") if t.has(f"mon.action.{e.action}") else escape(e.action)}'
        f' · {escape(names.get(e.actor_person_id, "—") if e.actor_person_id else t("web.mon.system"))}'
        + (f'<br><span class="result">{escape(e.result)}</span>' if e.result else "") + "</li>"
        for e in events)
    body += f'<h2>{t("web.mon.timeline")}</h2><ol class="timeline" id="timeline">{items}</ol>'
    body += f'<p><a href="/monitoring">{t("web.mon.back_to_board")}</a></p>'
    return _page(t, t("web.mon.case_title", id=c.id), body, req, status=status)


async def _actions(req: Req, c: MonitorCase) -> str:
    """The forms for the person's role at the case's step (as the chat's buttons); none when the role does
    not own the step or the case is outside the person's monitoring area."""
    t = req.t
    if not c.open:
        return ""
    step, role = S(c.step), Role(req.person.role)
    owners = mon.OWNERS.get(step, frozenset())
    if role not in owners or not await mon.in_scope(req.s, req.person, c):
        who = "、".join(t(f"web.role.{r.value}") for r in sorted(owners, key=lambda r: list(Role).index(r)))
        return f'<p class="msg" id="waiting">{t("web.mon.waiting_for", who=who or "—")}</p>'
    hidden = (f'<input type="hidden" name="csrf" value="{req.csrf}">'
              f'<input type="hidden" name="step" value="{c.step}">')

    def form(action: str, inner: str, label: str) -> str:
        return (f'<form method="post" action="/monitoring/{c.id}/{action}">{hidden}{inner} '
                f'<button id="{action}" type="submit">{label}</button></form>')

    forms: list[str] = []
    if step is not S.FOLLOW_UP:
        forms.append(form("approve", f'<textarea name="text" rows="2" maxlength="1000" placeholder="'
                                     f'{t("web.mon.result_hint")}"></textarea>', t(f"mon.btn.approve.{step.value}")))
    if step in mon.REVIEW_STEPS:
        reason = (f'<textarea name="text" rows="2" maxlength="1000" required placeholder="{t("web.mon.reason_hint")}">'
                  "</textarea>")
        if step is not S.ACCEPT:
            forms.append(form("back", reason, t("mon.btn.send_back")))
        forms.append(form("reject", reason, t("mon.btn.reject")))
    if step in (S.MEASURES, S.FOLLOW_UP):
        opts = "".join(f'<option value="{k}">{t(f"mon.topic.{k}")}</option>' for k in TOPICS)
        forms.append(form("measure", f'<select name="topic">{opts}</select>', t("mon.btn.measure")))
    if step is S.FOLLOW_UP:
        forms.append(form("close", "", t("mon.btn.close")))
    note = f'<p class="hint">{t("web.mon.in_chat")}</p>' if step in (S.VERIFY, S.FOLLOW_UP) else ""
    return f'<h2>{t("web.mon.actions")}</h2><div class="actions">{"".join(forms)}</div>{note}'


def _refusal(t: Translator, e: mon.Refused) -> str:
    reasons = e.args_.get("reasons") or []
    args = {k: v for k, v in e.args_.items() if k != "reasons"}
    lines = "".join(f"<li>{t(r)}</li>" for r in reasons)
    return (f'<div class="msg refused" id="refused"><p>{t(e.key, **args)}</p>'
            + (f"<ul>{lines}</ul>" if lines else "") + "</div>")


async def case_action(req: Req, request: web.Request) -> web.StreamResponse:
    """approve / send back / reject / add a measure / start closing, through bot.services.monitoring."""
    cid, action = _id(request), request.match_info["action"]
    c = await _case_in_scope(req, cid, lock=True) if cid is not None else None
    if c is None or action not in ACTIONS:
        return _not_found(req)
    form = await request.post()
    step = str(form.get("step", ""))[:16]
    text = str(form.get("text", "")).strip()[: req.w.settings.max_text_length]
    rules, now, today, person = req.w.rules, req.w.clock.now(), req.today, req.person
    ctx = await _ctx(req)
    before = c.step
    calls: dict[str, Callable[[], Any]] = {
        "approve": lambda: mon.approve(req.s, rules, c, person, now, today, step=step, result=text),
        "back": lambda: mon.send_back(req.s, rules, c, person, now, today, step=step, reason=text),
        "reject": lambda: mon.reject(req.s, rules, c, person, now, today, step=step, reason=text),
        "close": lambda: _close(req, c, step, text),
        "measure": lambda: _measure(req, c, step, str(form.get("topic", ""))),
    }
    try:
        await calls[action]()
    except mon.Refused as e:
        # Nothing changed (the service refuses before it touches the case); its audit row is kept.
        return await _render(req, c, _refusal(req.t, e), status=409)
    ctx.audit(f"monitor.{action}", "monitor_case", c.id, via="web", step=before)
    if action == "approve":
        await tell_after(ctx, c, before, "approve")
    elif action in ("back", "reject"):
        await tell_after(ctx, c, before, "send_back" if action == "back" else "reject", text)
    elif action == "close":
        await tell_after(ctx, c, before, "request_close")
    await relay(req.s, ctx)
    return _redirect(f"/monitoring/{c.id}?done={action}")  # returned, not raised: the transaction commits


async def _close(req: Req, c: MonitorCase, step: str, text: str) -> None:
    if step != S.FOLLOW_UP.value:  # the form was made for another step: refused as the service would
        await mon.check_actor(req.s, c, req.person, req.w.clock.now(), step)
    await mon.request_close(req.s, req.w.rules, c, req.person, req.w.clock.now(), req.today, result=text)


async def _measure(req: Req, c: MonitorCase, step: str, topic: str) -> None:
    now = req.w.clock.now()
    await mon.check_actor(req.s, c, req.person, now, step)  # in order: the form's step is the case's
    await mon.add_measure(req.s, c, req.person, now, req.today, topic=topic,
                          note=req.t(f"mon.topic.{topic}") if topic in TOPICS else "", known_topics=TOPICS)


async def notice_pdf(req: Req, request: web.Request) -> web.StreamResponse:
    """The village's printable 公示 page (the chat's "公示名单" button, bot/io/monitor.py) as a PDF, while
    the case is at its public-notice step."""
    cid = _id(request)
    c = await _case_in_scope(req, cid) if cid is not None else None
    if c is None or c.step != S.PUBLICIZE.value:
        return _not_found(req)
    from bot.io.monitor import notice_image, notice_lines, notice_rows

    village = await req.s.get(Village, c.village_id)
    rows = await notice_rows(req.s, c.village_id, c.phase)
    end = c.step_started + timedelta(days=req.w.rules.monitoring.publicity_days)
    lines = notice_lines(village.name if village else "", rows, c.step_started, end, c.phase)
    pdf = await asyncio.to_thread(notice_image, lines, "PDF")
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="gongshi-{c.village_id}-{c.step_started:%Y%m%d}.pdf"'})


def register(router: web.UrlDispatcher, signed_in: Callable[..., Any]) -> None:
    router.add_get("/monitoring", signed_in(board))
    router.add_get("/monitoring/{id}", signed_in(case_page))
    router.add_get("/monitoring/{id}/notice.pdf", signed_in(notice_pdf))
    router.add_post("/monitoring/{id}/{action}", signed_in(case_action, post=True))
