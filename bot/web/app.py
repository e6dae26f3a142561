"""The dashboard's aiohttp application: sign-in by one-time link, scoped pages, actions, downloads.

One database transaction per request. Rules come from `county_rules(settings)` (the same loaded rules as
the bot and the scheduler); the overview's aggregate figures are precomputed per team by
bot/scheduler/figures.py (from bot/scheduler/due.py) and read in one statement; lists are live SQL, paged;
reports from bot/io; difficulty actions through
bot/services/difficulties.py and the same notices as the chat, whose messages go out through the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.clock import Clock, SystemClock, local_today
from bot.core.context import Ctx
from bot.core.engine import Core
from bot.core.router import parse_id, parse_number
from bot.core.services import Services, county_rules
from bot.core.types import Incoming, Reply, User
from bot.i18n import Catalogs, Translator
from bot.io.export import export_workbook
from bot.io.report import monthly_figures, monthly_report, parse_month
from bot.notices.difficulties import AssignedToYou, StatusChanged
from bot.scheduler import due, figures
from bot.scheduler.outbox import OutMessage, enqueue
from bot.scheduler.rules import Rules
from bot.services import difficulties as dsvc
from bot.services.weblinks import (
    generation,
    person_and_generation,
    sign,
    sign_out_everywhere,
    signing_key,
    use_link,
)
from bot.settings import Settings
from bot.store.db import create_engine, session_factory
from bot.store.enums import DifficultyStatus, Role
from bot.store.models import (
    Account,
    CheckIn,
    Difficulty,
    Household,
    Pairing,
    Person,
    Team,
    Village,
    Visit,
)
from bot.web import svg
from bot.web.scope import Scope, scope_for

log = logging.getLogger(__name__)
COOKIE = "bangfu_web"
LANG_COOKIE = "bangfu_lang"
WEB_ROLES = (Role.LEADER, Role.TOWNSHIP, Role.COUNTY, Role.ADMIN)
TREND_WEEKS = 6
PAGE = 50
STATIC = Path(__file__).parent / "static"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT_KINDS = ("visits", "difficulties", "households", "villagedays")
DIFF_PAGE = 50
REFRESH_EVERY = 60.0  # seconds between the web's own checks of the county's figures (PostgreSQL)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Web:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    core: Core  # a core without routes: what notices need (translators per account, the clock)
    catalogs: Catalogs
    rules: Rules
    key: bytes | None = None
    inflight: dict[Any, asyncio.Task[Any]] = dataclasses.field(default_factory=dict)
    refreshing: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)  # one figure refresh at a time

    def __post_init__(self) -> None:
        self.sessions = session_factory(self.engine)

    @property
    def secure(self) -> bool:
        s = self.settings.web_secure_cookies
        return self.settings.web_url.startswith("https://") if s is None else s


@dataclass
class Req:
    """One signed-in request: its transaction, who, their scope and language."""

    w: Web
    s: AsyncSession
    person: Person
    scope: Scope
    t: Translator
    csrf: str
    today: date


WEB: web.AppKey[Web] = web.AppKey("web", Web)


def make_app(settings: Settings, clock: Clock | None = None, engine: AsyncEngine | None = None) -> web.Application:
    clock = clock or SystemClock(settings.timezone)
    if engine is None:
        # On asyncpg its connections start with PostgreSQL's JIT off (`create_engine`), as the bot's do.
        engine = create_engine(settings.database_url)
    catalogs = Catalogs(settings.locales_dir, settings.default_language)
    rules = county_rules(settings)
    core = Core(settings, clock, session_factory(engine), catalogs, [], [], Services(rules=rules))
    app = web.Application(middlewares=[_headers])
    app[WEB] = Web(settings, clock, engine, core, catalogs, rules)
    r = app.router
    r.add_get("/login/{token}", login)
    r.add_get("/signed-out", signed_out)
    r.add_get("/static/style.css", style)
    r.add_get("/favicon.ico", favicon)
    r.add_get("/lang/{lang}", set_lang)
    for path, fn in [
        ("/", overview), ("/households", households), ("/households/{id}", household),
        ("/cadres", cadres), ("/cadres/{id}", cadre), ("/difficulties", difficulties),
        ("/difficulties/{id}", difficulty), ("/map", village_map), ("/export", export),
        ("/report", report_page), ("/report.xlsx", report_xlsx),
    ]:
        r.add_get(path, signed_in(fn))
    r.add_post("/difficulties/{id}/{action}", signed_in(difficulty_action, post=True))
    from bot.web import cases, monitor  # their own modules; imported here, as they import this one

    monitor.register(r, signed_in)
    cases.register(r, signed_in)
    r.add_post("/logout", signed_in(logout, post=True))
    r.add_post("/logout-all", signed_in(logout_all, post=True))

    async def close(_: web.Application) -> None:
        await engine.dispose()

    app.cleanup_ctx.append(_refresher)
    app.on_cleanup.append(close)
    return app


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    resp = await handler(request)
    resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")  # the sign-in link never leaks onwards
    resp.headers.setdefault(
        "Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'"
    )
    return resp


# ------------------------------------------------------------------------------------------ sessions
def _translator(w: Web, request: web.Request) -> Translator:
    lang = request.cookies.get(LANG_COOKIE)
    return w.catalogs.get(lang if lang in ("zh_CN", "en") else w.settings.default_language)


async def _key(w: Web, s: AsyncSession) -> bytes:
    if w.key is None:
        w.key = await signing_key(s)
    return w.key


def _cookie_value(key: bytes, person_id: int, gen: int, expires: int) -> str:
    body = f"{person_id}.{gen}.{expires}"
    return f"{body}.{sign(key, 'session', body)}"


async def _session_person(w: Web, s: AsyncSession, value: str | None) -> Person | None:
    if not value or len(value) > 200:
        return None
    parts = value.split(".")
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() for p in parts[:3]):
        return None
    pid, gen, exp = int(parts[0]), int(parts[1]), int(parts[2])
    if not hmac.compare_digest(sign(await _key(w, s), "session", ".".join(parts[:3])), parts[3]):
        return None
    if exp < w.clock.now().timestamp():
        return None
    person, current = await person_and_generation(s, pid)
    if gen != current or person is None or not person.active or Role(person.role) not in WEB_ROLES:
        return None
    return person


def signed_in(fn: Callable[[Req, web.Request], Awaitable[web.StreamResponse]], post: bool = False) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        w = request.app[WEB]
        t = _translator(w, request)
        async with w.sessions() as s, s.begin():
            cookie = request.cookies.get(COOKIE)
            person = await _session_person(w, s, cookie)
            if person is None:
                raise web.HTTPSeeOther("/signed-out")
            csrf = sign(await _key(w, s), "csrf", cookie or "")
            if post:
                form = await request.post()
                if not hmac.compare_digest(str(form.get("csrf", "")), csrf):
                    return _page(t, t("web.csrf_refused"), f'<p class="msg">{t("web.csrf_refused")}</p>',
                                 status=403)
            req = Req(w, s, person, await scope_for(s, person), t, csrf, local_today(w.clock))
            return await fn(req, request)

    return handler


async def login(request: web.Request) -> web.StreamResponse:
    w = request.app[WEB]
    t = _translator(w, request)
    async with w.sessions() as s, s.begin():
        person = await use_link(s, request.match_info["token"], w.clock.now())
        if person is None or Role(person.role) not in WEB_ROLES:
            return _page(t, t("web.link_refused"), f'<p class="msg">{t("web.link_refused")}</p>', status=403)
        hours = w.settings.web_session_hours
        expires = int(w.clock.now().timestamp()) + hours * 3600
        value = _cookie_value(await _key(w, s), person.id, await generation(s, person.id), expires)
    resp = web.HTTPSeeOther("/")
    resp.set_cookie(COOKIE, value, max_age=hours * 3600, httponly=True, samesite="Lax", secure=w.secure, path="/")
    if person.language in ("zh_CN", "en"):
        resp.set_cookie(LANG_COOKIE, person.language, max_age=365 * 86400, samesite="Lax", path="/")
    raise resp


async def signed_out(request: web.Request) -> web.StreamResponse:
    t = _translator(request.app[WEB], request)
    return _page(t, t("web.signed_out_title"), f'<p class="msg">{t("web.signed_out")}</p>')


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def logout(req: Req, request: web.Request) -> web.StreamResponse:
    resp = _redirect("/signed-out")
    resp.del_cookie(COOKIE, path="/")
    return resp


async def logout_all(req: Req, request: web.Request) -> web.StreamResponse:
    await sign_out_everywhere(req.s, req.person.id)
    resp = _redirect("/signed-out")
    resp.del_cookie(COOKIE, path="/")
    return resp


async def style(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "style.css", headers={"Cache-Control": "max-age=3600"})


async def favicon(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204, headers={"Cache-Control": "max-age=86400"})


async def set_lang(request: web.Request) -> web.StreamResponse:
    lang = request.match_info["lang"]
    resp = web.HTTPSeeOther("/")
    if lang in ("zh_CN", "en"):
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="Lax", path="/")
    raise resp


# ------------------------------------------------------------------------------------------ layout
def _page(t: Translator, title: str, body: str, req: Req | None = None, status: int = 200) -> web.Response:
    nav = ""
    if req is not None:
        links = [("/", "web.nav.overview"), ("/households", "web.nav.households"), ("/cadres", "web.nav.cadres"),
                 ("/difficulties", "web.nav.difficulties"), ("/cases", "web.nav.cases"),
                 ("/monitoring", "web.nav.monitoring"), ("/map", "web.nav.map"), ("/report", "web.nav.report")]
        nav = "<nav>" + "".join(f'<a href="{h}">{t(k)}</a>' for h, k in links) + "</nav>"
        nav += (
            f'<span class="who">{escape(req.person.name)} · {t("web.role." + req.person.role)} · '
            f'<a href="/lang/zh_CN">中文</a> | <a href="/lang/en">English</a> · '
            f'<form method="post" action="/logout"><input type="hidden" name="csrf" value="{req.csrf}">'
            f'<button type="submit">{t("web.sign_out")}</button></form> '
            f'<form method="post" action="/logout-all"><input type="hidden" name="csrf" value="{req.csrf}">'
            f'<button type="submit">{t("web.sign_out_all")}</button></form></span>'
        )
    lang = "zh-CN" if t.lang == "zh_CN" else "en"
    html = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)} · {t("web.app_name")}</title><link rel="stylesheet" href="/static/style.css">'
        f'</head><body><header><a href="/"><b>{t("web.app_name")}</b></a>{nav}</header>'
        f"<main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return web.Response(text=html, content_type="text/html", status=status,
                        headers={"Cache-Control": "no-store"})


def _not_found(req: Req) -> web.Response:
    return _page(req.t, req.t("web.not_found"), f'<p class="msg">{req.t("web.not_found")}</p>', req, status=404)


def _id(request: web.Request) -> int | None:
    raw = request.match_info.get("id", "")
    return parse_id(raw)


def _table(head: list[str], rows: list[list[str]], row_class: list[str] | None = None) -> str:
    th = "".join(f"<th>{h}</th>" for h in head)
    trs = []
    for i, row in enumerate(rows):
        cls = f' class="{row_class[i]}"' if row_class and row_class[i] else ""
        trs.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{"".join(trs)}</tbody></table></div>'


def _week_label(t: Translator, monday: date) -> str:
    return t("web.week_label", week=monday.isocalendar()[1])


# ------------------------------------------------------------------------------------------ figures
# Aggregate figures are precomputed per team (bot/scheduler/figures.py) and read here in one statement;
# lists are always live. A stale figure is shown with its "as of" time while a refresh runs in the background.
SMALL_SCOPE = 3  # a leader's few teams: a missing figure is computed in the request (a few ms per team)


async def _figures(req: Req, weeks: list[date]) -> figures.Figures:
    w, now = req.w, req.w.clock.now()
    f = await figures.read(req.s, req.scope.team_ids, weeks, req.today, now)
    if not f.stale:
        return f
    small = req.scope.team_ids is not None and len(req.scope.team_ids) <= SMALL_SCOPE
    if w.engine.dialect.name == "sqlite" or (small and not all(f.complete.values())):
        # SQLite (a small install, one connection) or a leader's first look: computed here, in a savepoint.
        try:
            async with req.s.begin_nested():
                await figures.refresh_stale(req.s, w.rules, req.today, now, team_ids=req.scope.team_ids)
        except Exception:  # a concurrent refresh of the same rows: the stored values are shown
            log.warning("inline figure refresh failed", exc_info=True)
        return await figures.read(req.s, req.scope.team_ids, weeks, req.today, now)
    _refresh_later(w, req.scope.team_ids, req.today)
    return f


def _refresh_later(w: Web, team_ids: tuple[int, ...] | None, today: date) -> None:
    """Refresh a scope's stale figures on a session of its own (one at a time per scope in this process)."""
    key = ("figures", team_ids, today)
    if key in w.inflight:
        return

    async def run() -> None:
        async with w.refreshing:
            async with w.sessions() as s, s.begin():
                await figures.refresh_stale(s, w.rules, today, w.clock.now(), team_ids=team_ids)

    task = asyncio.create_task(run())
    w.inflight[key] = task

    def done(t: asyncio.Task[Any]) -> None:
        w.inflight.pop(key, None)
        if not t.cancelled() and t.exception() is not None:
            log.warning("web figure refresh failed", exc_info=t.exception())

    task.add_done_callback(done)


async def _refresher(app: web.Application) -> AsyncIterator[None]:
    """On PostgreSQL the web keeps the county's figures fresh itself too (the scheduler tick does the same;
    an advisory lock lets one process at a time do it), so `bangfu web` alone never shows old figures."""
    w = app[WEB]
    task = None
    if w.engine.dialect.name == "postgresql":
        async def loop() -> None:
            while True:
                try:
                    async with w.refreshing:
                        async with w.sessions() as s, s.begin():
                            await figures.refresh_stale(s, w.rules, local_today(w.clock), w.clock.now())
                except Exception:
                    log.warning("web figure refresh failed", exc_info=True)
                await asyncio.sleep(REFRESH_EVERY)

        task = asyncio.create_task(loop())
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _open_ages(req: Req, at: datetime) -> list[int]:
    """Difficulties open now by age, live (an action on the web or in the chat shows on the next load)."""
    out = [0] * len(due.AGE_BUCKETS)
    for b in (await due.open_difficulty_ages(req.s, at, team_ids=req.scope.team_ids)).values():
        out = [x + y for x, y in zip(out, b, strict=True)]
    return out


async def overview(req: Req, request: web.Request) -> web.StreamResponse:
    t, today, rules = req.t, req.today, req.w.rules
    target = rules.village_days.target
    monday = today - timedelta(days=today.weekday())
    mondays = figures.trend_mondays(today, TREND_WEEKS)
    labels = [_week_label(t, m) for m in mondays]
    f = await _figures(req, mondays)
    pending = f'<p class="msg">{t("webfig.pending")}</p>'
    past_ok = all(f.has(m) for m in mondays)

    def met(m: date) -> float:
        return figures.days_met(f.value(m, "week", "cadres"), f.value(m, "week", "days_capped"), target)

    days_t = [met(m) for m in mondays] if past_ok else None
    overdue_t = [f.value(m, "overdue") for m in mondays] if past_ok else None
    ages = await _open_ages(req, req.w.clock.now())
    open_t = ([sum(f.keys(m, "difficulties").values()) for m in mondays[:-1]] + [float(sum(ages))]
              if past_ok else None)
    cases_t = [f.value(m, "cases_open", "open") for m in mondays] if past_ok else None
    questions_t = [f.value(m, "questions", "n") for m in mondays] if past_ok else None
    now_ok = f.has(monday)
    shortfall = await due.cadre_weeks(req.s, monday, upto=today, team_ids=req.scope.team_ids,
                                      far_m=rules.village_days.far_meters, shortfall_first=12)
    week_rows = [[f'<a href="/cadres/{w.cadre_id}">{escape(w.cadre_name)}</a>',
                  t("web.days_of", done=w.checkin_days, target=target)
                  + (f' <span class="far">{t("web.far_n", n=w.far_checkins)}</span>' if w.far_checkins else ""),
                  str(w.visits)] for w in shortfall]
    if not now_ok:
        season_card = f'<div class="card"><h2>{t("web.ov.season", season="")}</h2>{pending}</div>'
    else:
        kind, first, last = figures.current_season(rules, today)
        missing, paired = int(f.value(monday, "season", "missing")), int(f.value(monday, "season", "paired"))
        season_card = (
            f'<div class="card"><h2>{t("web.ov.season", season=t("web.season." + kind.value))}</h2>'
            f'<div class="big">{paired - missing}/{paired}</div>'
            f'<p>{t("web.ov.season_note", first=first.isoformat(), last=last.isoformat(), missing=missing)}</p>'
            f'<a class="more" href="/households?season=1">{t("web.more")}</a></div>'
        )
    cases = [(st, int(f.value(monday, "cases", st))) for st in figures.OPEN_CASE_STATUSES]
    topics = sorted(((k, int(v)) for k, v in f.keys(monday, "topics").items() if k != "_all" and v > 0),
                    key=lambda kv: (-kv[1], kv[0]))[:8]
    age_labels = [t("web.age.0_3"), t("web.age.3_7"), t("web.age.8_30"), t("web.age.30_")]
    big_days = f'{met(monday):.0f}%' if now_ok else "…"
    big_overdue = str(int(f.value(monday, "overdue"))) if now_ok else "…"
    cards = [
        f'<div class="card"><h2>{t("web.ov.village_days")}</h2>'
        f'<div class="big" id="fig-days">{big_days}</div>'
        f'<p>{t("web.ov.village_days_note", target=target)}</p>'
        f'{svg.bars(labels, days_t, title=t("web.ov.village_days"), unit="%") if days_t else pending}'
        f'{_table([t("web.col.cadre"), t("web.col.days"), t("web.col.visits")], week_rows)}'
        f'<a class="more" href="/cadres">{t("web.more")}</a></div>',
        f'<div class="card"><h2>{t("web.ov.overdue")}</h2><div class="big late" id="fig-overdue">{big_overdue}</div>'
        f'<p>{t("web.ov.overdue_note", days=rules.visits.cadence_days)}</p>'
        f'{svg.bars(labels, overdue_t, title=t("web.ov.overdue")) if overdue_t else pending}'
        f'<a class="more" href="/households?overdue=1">{t("web.more")}</a></div>',
        season_card,
        f'<div class="card"><h2>{t("web.ov.difficulties")}</h2><div class="big" id="fig-open">{sum(ages)}</div>'
        f'{svg.bars(age_labels, [float(a) for a in ages], title=t("web.ov.difficulties_age"), highlight_last=False)}'
        f'{svg.bars(labels, open_t, title=t("web.ov.difficulties")) if open_t else pending}'
        f'<a class="more" href="/difficulties">{t("web.more")}</a></div>',
        f'<div class="card"><h2>{t("web.ov.cases")}</h2><div class="big">{sum(n for _, n in cases)}</div>'
        f'{svg.bars([t("case.status." + st) for st, _ in cases], [float(n) for _, n in cases], title=t("web.ov.cases"), highlight_last=False)}'
        f'{svg.bars(labels, cases_t, title=t("web.ov.cases_trend")) if cases_t else pending}'
        f'<a class="more" href="/cases">{t("web.more")}</a></div>',
        f'<div class="card"><h2>{t("web.ov.topics")}</h2>'
        + (svg.bars([_topic_label(t, k) for k, _ in topics], [float(n) for _, n in topics],
                    title=t("web.ov.topics"), highlight_last=False) if topics else f'<p>{t("web.none")}</p>')
        + (svg.bars(labels, questions_t, title=t("web.ov.questions_trend")) if questions_t else pending)
        + "</div>",
    ]
    from bot.web.monitor import monitoring_card, monitoring_figures

    # Monitoring cases are few and indexed by step: read live in the scope (two statements), never stale.
    cards.append(monitoring_card(t, await monitoring_figures(req)))
    as_of = f.computed_at.get(monday)
    stamp = ""
    if as_of is not None:
        local = as_of.astimezone(rules.tz)
        stamp = (f'<p class="asof" id="asof">{t("webfig.as_of", time=f"{local:%H:%M}", minutes=int(figures.FRESH_SECONDS // 60))}'
                 + (f' · {t("webfig.updating")}' if f.stale else "") + "</p>")
    return _page(t, t("web.ov.title", date=today.isoformat()),
                 f'{stamp}<div class="cards">{"".join(cards)}</div>', req)


def _topic_label(t: Translator, topic: str) -> str:
    key = f"web.topic.{topic}"
    return t(key) if t.has(key) else topic


# ------------------------------------------------------------------------------------------ households
async def households(req: Req, request: web.Request) -> web.StreamResponse:
    """Households of the scope, live: search by name or code, overdue / season filters, offset paging in SQL
    (households.code / head_name indexes; the overdue rule from bot/scheduler/due.py)."""
    t, q = req.t, request.query
    text = q.get("q", "").strip()[:40]
    overdue_only, season_only = q.get("overdue") == "1", q.get("season") == "1"
    sort = q.get("sort", "code")
    page = parse_number(q.get("page"), 5) or 0
    cadence = req.w.rules.visits.cadence_days
    like_filter = None
    if text:
        like = "%" + text.replace("\\", "").replace("%", "").replace("_", "") + "%"
        like_filter = Household.head_name.like(like) | Household.code.like(like)
    shown: list[tuple[int, str, str, str, date | None, int | None]]  # id, code, head, village, last, days
    if overdue_only:
        # Overdue by the pairing cadre's team, as the figure and the chat's /overdue count them.
        shown = await due.overdue_page(req.s, req.today, cadence, where=req.scope.team_filter(Person.team_id),
                                       order=sort, offset=page * PAGE, limit=PAGE + 1, text_filter=like_filter)
    else:
        stmt = select(Household.id, Household.code, Household.head_name, Village.name).join(
            Village, Village.id == Household.village_id).where(req.scope.households())
        if like_filter is not None:
            stmt = stmt.where(like_filter)
        if season_only:
            kind, first, last = figures.current_season(req.w.rules, req.today)
            missing = await due.season_missing(
                req.s, first, min(last, req.today), req.today, team_ids=req.scope.team_ids,
                kind=kind.value if req.w.rules.visits.require_seasonal_kind else None)
            stmt = stmt.where(Household.id.in_([d.household_id for d in missing][:20000]))
        order = {"name": Household.head_name, "village": Village.name}.get(sort, Household.code)
        rows = (await req.s.execute(stmt.order_by(order, Household.id).offset(page * PAGE).limit(PAGE + 1))).all()
        late = await due.overdue_of(req.s, req.today, cadence, [r[0] for r in rows], team_ids=req.scope.team_ids)
        shown = [(hid, code, head, vname, late[hid][0] if hid in late else None,
                  late[hid][1] if hid in late else None) for hid, code, head, vname in rows]
    body = (
        f'<form class="filters" method="get"><input name="q" value="{escape(text)}" '
        f'placeholder="{t("web.hh.search")}"><label><input type="checkbox" name="overdue" value="1"'
        f'{" checked" if overdue_only else ""}> {t("web.hh.overdue_only")}</label>'
        f'<button type="submit">{t("web.filter")}</button></form>'
    )
    base = f"/households?q={escape(text)}&overdue={int(overdue_only)}&season={int(season_only)}"
    head = [f'<a href="{base}&sort=code">{t("web.col.code")}</a>', f'<a href="{base}&sort=name">{t("web.col.head")}</a>',
            f'<a href="{base}&sort=village">{t("web.col.village")}</a>', t("web.col.last_visit"),
            t("web.col.overdue_days")]
    out, classes = [], []
    for hid, code, head_name, vname, last_visit, days in shown[:PAGE]:
        out.append([escape(code), f'<a href="/households/{hid}">{escape(head_name)}</a>', escape(vname),
                    last_visit.isoformat() if last_visit else "", str(days) if days is not None else ""])
        classes.append("late" if days is not None else "")
    body += _table(head, out, classes)
    if len(shown) > PAGE:
        body += f'<p><a href="{base}&sort={escape(sort)}&page={page + 1}">{t("web.next_page")}</a></p>'
    return _page(t, t("web.nav.households"), body, req)


async def _household_in_scope(req: Req, hid: int) -> Household | None:
    return (await req.s.execute(select(Household).where(Household.id == hid, req.scope.households()))).scalar()


async def household(req: Req, request: web.Request) -> web.StreamResponse:
    hid = _id(request)
    h = await _household_in_scope(req, hid) if hid is not None else None
    if h is None:
        return _not_found(req)
    t = req.t
    visits = (await req.s.execute(
        select(Visit, Person.name).join(Person, Person.id == Visit.cadre_id)
        .where(Visit.household_id == h.id).order_by(Visit.visit_date.desc()).limit(30)
    )).all()
    cadre = (await req.s.execute(
        select(Person).join(Pairing, Pairing.cadre_id == Person.id)
        .where(Pairing.household_id == h.id, Pairing.end_date.is_(None))
    )).scalars().first()
    body = (f"<p>{t('web.hh.card', code=h.code, members=h.members_count, address=h.address)}</p>"
            f"<p>{t('web.col.cadre')}: {escape(cadre.name) if cadre else '—'}</p>")
    rows = [[v.visit_date.isoformat(), escape(name), t(f"visit.kind.{v.kind}") if t.has(f"visit.kind.{v.kind}")
             else escape(v.kind), escape(v.done),
             f'<span class="far">{int(v.distance_m or 0)} m</span>' if v.flagged else ""] for v, name in visits]
    body += _table([t("web.col.date"), t("web.col.cadre"), t("web.col.kind"), t("web.col.done"),
                    t("web.col.far")], rows)
    return _page(t, escape(h.head_name), body, req)


# ------------------------------------------------------------------------------------------ cadres
async def cadres(req: Req, request: web.Request) -> web.StreamResponse:
    t, today = req.t, req.today
    monday = today - timedelta(days=today.weekday())
    # Live, the shortfall first, sorted and cut in SQL (bot/scheduler/due.py, as the chat's /week).
    page = parse_number(request.query.get("page"), 5) or 0
    weeks = await due.cadre_weeks(req.s, monday, upto=today, team_ids=req.scope.team_ids,
                                  far_m=req.w.rules.village_days.far_meters, shortfall_first=PAGE + 1,
                                  skip=page * PAGE)
    target = req.w.rules.village_days.target
    rows, classes = [], []
    for w in weeks[:PAGE]:
        rows.append([f'<a href="/cadres/{w.cadre_id}">{escape(w.cadre_name)}</a>',
                     t("web.days_of", done=w.checkin_days, target=target), str(w.visits),
                     f'<span class="far">{w.far_checkins}</span>' if w.far_checkins else "0",
                     t("web.on_leave") if w.on_leave else ""])
        classes.append("late" if w.checkin_days < target and not w.on_leave else "")
    body = _table([t("web.col.cadre"), t("web.col.days"), t("web.col.visits"), t("web.col.far_checkins"), ""],
                  rows, classes)
    if len(weeks) > PAGE:
        body += f'<p><a href="/cadres?page={page + 1}">{t("web.next_page")}</a></p>'
    return _page(t, t("web.nav.cadres"), body, req)


async def cadre(req: Req, request: web.Request) -> web.StreamResponse:
    cid = _id(request)
    person = await req.s.get(Person, cid) if cid is not None else None
    if person is None or person.team_id is None or (
            not req.scope.county and person.team_id not in (req.scope.team_ids or ())):
        return _not_found(req)
    t = req.t
    since = req.today - timedelta(days=60)
    visits = (await req.s.execute(
        select(Visit, Household.head_name).join(Household, Household.id == Visit.household_id)
        .where(Visit.cadre_id == person.id, Visit.visit_date >= since).order_by(Visit.visit_date.desc())
    )).all()
    checkins = (await req.s.execute(
        select(CheckIn).where(CheckIn.cadre_id == person.id, CheckIn.day >= since).order_by(CheckIn.day.desc())
    )).scalars().all()
    far_m = req.w.rules.village_days.far_meters
    body = _cadre_timeline(t, req.today, [v.visit_date for v, _ in visits],
                           [(c.day, c.distance_m is not None and c.distance_m > far_m) for c in checkins])
    body += f"<h2>{t('web.cadre.visits')}</h2>" + _table(
        [t("web.col.date"), t("web.col.head"), t("web.col.done"), t("web.col.far")],
        [[v.visit_date.isoformat(), escape(head), escape(v.done),
          f'<span class="far">{int(v.distance_m or 0)} m</span>' if v.flagged else ""] for v, head in visits])
    body += f"<h2>{t('web.cadre.checkins')}</h2>" + _table(
        [t("web.col.date"), t("web.col.distance")],
        [[c.day.isoformat(), (f'<span class="far">{int(c.distance_m)} m</span>' if c.distance_m > far_m
                              else f"{int(c.distance_m)} m") if c.distance_m is not None else "—"]
         for c in checkins])
    body += f'<p><a href="/map?cadre={person.id}">{t("web.nav.map")}</a></p>'
    return _page(t, escape(person.name), body, req)


CADRE_WEEKS = 8


def _cadre_timeline(t: Translator, today: date, visit_days: list[date], checkins: list[tuple[date, bool]]) -> str:
    """The cadre's last weeks (weeks on x): visits, days checked in, far check-ins (red)."""
    monday = today - timedelta(days=today.weekday())
    mondays = [monday - timedelta(weeks=k) for k in range(CADRE_WEEKS - 1, -1, -1)]
    index = {m: i for i, m in enumerate(mondays)}
    visits, days, far = [0.0] * CADRE_WEEKS, [set[date]() for _ in mondays], [0.0] * CADRE_WEEKS
    for d in visit_days:
        if (i := index.get(d - timedelta(days=d.weekday()))) is not None:
            visits[i] += 1
    for d, is_far in checkins:
        if (i := index.get(d - timedelta(days=d.weekday()))) is not None:
            days[i].add(d)
            far[i] += 1 if is_far else 0
    title = t("web.cadre.timeline")
    chart = svg.timeline([_week_label(t, m) for m in mondays],
                         [(t("web.col.visits"), "", visits), (t("web.col.days"), "days", [float(len(x)) for x in days]),
                          (t("web.col.far_checkins"), "late", far)], title=title)
    return f'<h2>{title}</h2><div class="card" id="timeline">{chart}</div>'


# ------------------------------------------------------------------------------------------ map
async def village_map(req: Req, request: web.Request) -> web.StreamResponse:
    t = req.t
    vq = select(Village).where(Village.lat.is_not(None), Village.lon.is_not(None))
    if not req.scope.county:
        vq = vq.where(Village.id.in_(req.scope.village_ids or ()))
    villages = (await req.s.execute(vq.order_by(Village.name).limit(60))).scalars().all()
    cadre_q = request.query.get("cadre", "")
    cadre_id = parse_id(cadre_q)
    since_day = req.today - timedelta(days=30)
    far_m = float(req.w.rules.village_days.far_meters)
    maps = []
    for v in villages:
        assert v.lat is not None and v.lon is not None
        cq = select(CheckIn, Person.name).join(Person, Person.id == CheckIn.cadre_id).where(
            CheckIn.village_id == v.id, CheckIn.day >= since_day, CheckIn.lat.is_not(None))
        vq2 = select(Visit, Person.name).join(Person, Person.id == Visit.cadre_id).join(
            Household, Household.id == Visit.household_id).where(
            Household.village_id == v.id, Visit.visit_date >= since_day, Visit.lat.is_not(None))
        if cadre_id is not None:
            cq, vq2 = cq.where(CheckIn.cadre_id == cadre_id), vq2.where(Visit.cadre_id == cadre_id)
        points: list[tuple[float, float, bool, str]] = []
        for c, name in (await req.s.execute(cq.limit(500))).all():
            far = c.distance_m is not None and c.distance_m > far_m
            if c.lat is None or c.lon is None:
                continue
            points.append((c.lat, c.lon, far, t("web.map.checkin", name=name, date=c.day.isoformat())))
        for vis, name in (await req.s.execute(vq2.limit(500))).all():
            if vis.lat is None or vis.lon is None:
                continue
            points.append((vis.lat, vis.lon, bool(vis.flagged),
                           t("web.map.visit", name=name, date=vis.visit_date.isoformat())))
        n_far = sum(1 for p in points if p[2])
        maps.append(f'<div class="card"><h2>{escape(v.name)}</h2>'
                    f'{svg.village_map(v.lat, v.lon, far_m, points, title=t("web.map.title", village=v.name))}'
                    f'<p>{t("web.map.legend", n=len(points), far=n_far, meters=int(far_m))}</p></div>')
    body = f'<div class="cards">{"".join(maps)}</div>' if maps else f'<p>{t("web.none")}</p>'
    return _page(t, t("web.nav.map"), body, req)


# ------------------------------------------------------------------------------------------ difficulties
async def _difficulty_in_scope(req: Req, did: int, lock: bool = False) -> Difficulty | None:
    q = select(Difficulty).where(Difficulty.id == did, req.scope.team_filter(Difficulty.team_id))
    if lock:
        q = q.with_for_update()
    return (await req.s.execute(q)).scalar()


_STATUSES = tuple(s.value for s in DifficultyStatus)


async def difficulties(req: Req, request: web.Request) -> web.StreamResponse:
    t, q = req.t, request.query
    status = q.get("status", "unresolved")
    sort = q.get("sort", "age")
    stmt = select(Difficulty.id, Difficulty.category, Difficulty.urgency, Difficulty.status, Difficulty.created_at,
                  Household.head_name).outerjoin(Household, Household.id == Difficulty.household_id)
    stmt = stmt.where(req.scope.team_filter(Difficulty.team_id))
    if status == "unresolved":
        stmt = stmt.where(Difficulty.status != DifficultyStatus.RESOLVED.value)
    elif status in {s.value for s in DifficultyStatus}:
        stmt = stmt.where(Difficulty.status == status)
    page = parse_number(q.get("page"), 5) or 0
    # ix_difficulties_created_id: the county's list walks the index and stops after a page.
    order = (Difficulty.created_at.desc(), Difficulty.id.desc()) if sort == "new" else (Difficulty.created_at,
                                                                                       Difficulty.id)
    rows = (await req.s.execute(stmt.order_by(*order).offset(page * DIFF_PAGE).limit(DIFF_PAGE + 1))).all()
    more = len(rows) > DIFF_PAGE
    rows = rows[:DIFF_PAGE]
    now = req.w.clock.now()
    options = "".join(
        f'<option value="{s}"{" selected" if s == status else ""}>'
        f'{t(("difficulty.status." if s in _STATUSES else "web.status.") + s)}</option>'
        for s in ("unresolved", *_STATUSES, "all"))
    body = (f'<form class="filters" method="get"><select name="status">{options}</select>'
            f'<select name="sort"><option value="age">{t("web.sort.oldest")}</option>'
            f'<option value="new"{" selected" if sort == "new" else ""}>{t("web.sort.newest")}</option></select>'
            f'<button type="submit">{t("web.filter")}</button></form>')
    out = [[f'<a href="/difficulties/{d.id}">#{d.id}</a>', escape(d.head_name or t("problem.whole_village")),
            t(f"difficulty.category.{d.category}"), t(f"difficulty.urgency.{d.urgency}"),
            t(f"difficulty.status.{d.status}"), t("web.days", n=(now - d.created_at).days)] for d in rows]
    body += _table(["#", t("web.col.head"), t("web.col.category"), t("web.col.urgency"), t("web.col.status"),
                    t("web.col.age")], out)
    if more:
        body += (f'<p><a href="/difficulties?status={escape(status)}&sort={escape(sort)}&page={page + 1}">'
                 f'{t("web.next_page")}</a></p>')
    return _page(t, t("web.nav.difficulties"), body, req)


async def difficulty(req: Req, request: web.Request) -> web.StreamResponse:
    did = _id(request)
    d = await _difficulty_in_scope(req, did) if did is not None else None
    if d is None:
        return _not_found(req)
    t = req.t
    reporter = await req.s.get(Person, d.reporter_id)
    hh = await req.s.get(Household, d.household_id) if d.household_id else None
    assignee = await req.s.get(Person, d.assigned_to_id) if d.assigned_to_id else None
    info = [
        (t("web.col.head"), escape(hh.head_name) if hh else t("problem.whole_village")),
        (t("web.col.category"), t(f"difficulty.category.{d.category}")),
        (t("web.col.urgency"), t(f"difficulty.urgency.{d.urgency}")),
        (t("web.col.status"), f'<span id="status">{t(f"difficulty.status.{d.status}")}</span>'),
        (t("web.col.reporter"), escape(reporter.name) if reporter else ""),
        (t("web.col.assignee"), escape(assignee.name) if assignee else "—"),
        (t("web.col.description"), escape(d.description)),
        (t("web.col.note"), escape(d.resolution_note) or "—"),
    ]
    body = "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in info) + "</table>"
    msg = request.query.get("done", "")
    if msg in ("ack", "assign", "resolve", "nochange"):
        body = f'<p class="msg" id="done">{t("web.done." + msg)}</p>' + body
    can = await dsvc.can_manage(req.s, req.person, d)
    if can and d.status != DifficultyStatus.RESOLVED.value:
        hidden = f'<input type="hidden" name="csrf" value="{req.csrf}">'
        forms = []
        if d.status == DifficultyStatus.OPEN.value:
            forms.append(f'<form method="post" action="/difficulties/{d.id}/ack">{hidden}'
                         f'<button id="ack" type="submit">{t("difficulty.btn_ack")}</button></form>')
        members = await dsvc.team_members(req.s, d.team_id)
        opts = "".join(f'<option value="{p.id}">{escape(p.name)}</option>' for p in members)
        forms.append(f'<form method="post" action="/difficulties/{d.id}/assign">{hidden}<select name="to">{opts}'
                     f'</select> <button id="assign" type="submit">{t("difficulty.btn_assign")}</button></form>')
        forms.append(f'<form method="post" action="/difficulties/{d.id}/resolve">{hidden}'
                     f'<textarea name="note" rows="2" maxlength="1000" required placeholder="{t("web.note_hint")}">'
                     f'</textarea> <button id="resolve" type="submit">{t("difficulty.btn_resolve")}</button></form>')
        body += f'<div class="actions">{"".join(forms)}</div>'
    return _page(t, t("web.difficulty_title", id=d.id), body, req)


async def difficulty_action(req: Req, request: web.Request) -> web.StreamResponse:
    """Acknowledge, assign or resolve through the same services and notices as the chat's buttons."""
    did, action = _id(request), request.match_info["action"]
    d = await _difficulty_in_scope(req, did, lock=True) if did is not None else None
    if d is None or action not in ("ack", "assign", "resolve"):
        return _not_found(req)
    if not await dsvc.can_manage(req.s, req.person, d):
        return _not_found(req)
    form = await request.post()
    ctx = await _ctx(req)
    now, done = req.w.clock.now(), "nochange"
    if action == "ack":
        if dsvc.acknowledge(d, now):
            ctx.audit("difficulty.acknowledged", "difficulty", d.id, via="web")
            await ctx.notify(StatusChanged(d))
            done = "ack"
    elif action == "assign":
        raw = str(form.get("to", ""))
        by_id = {p.id: p for p in await dsvc.team_members(req.s, d.team_id)}
        person_id = parse_id(raw)
        person = by_id.get(person_id) if person_id is not None else None
        if person is None:
            return _not_found(req)
        if not (d.status == DifficultyStatus.ASSIGNED.value and d.assigned_to_id == person.id) and dsvc.assign(
                d, person, now):
            ctx.audit("difficulty.assigned", "difficulty", d.id, to=person.id, via="web")
            await ctx.notify(StatusChanged(d))
            await ctx.notify(AssignedToYou(d, person))
            done = "assign"
    else:
        note = str(form.get("note", "")).strip()[: req.w.settings.max_text_length]
        if note and dsvc.resolve(d, note, now):
            ctx.audit("difficulty.resolved", "difficulty", d.id, via="web")
            await ctx.notify(StatusChanged(d))
            done = "resolve"
    # Messages to other people go out through the outbox (the scheduler's sender delivers them).
    messages = [OutMessage(dedup_key=f"web:{uuid.uuid4().hex}", reply=a, rule="relay")
                for a in ctx.actions if isinstance(a, Reply)]
    await enqueue(req.s, messages, now=now)
    if done != "nochange":
        await figures.mark_dirty(req.s, d.team_id, req.today)  # the team's figures: recomputed on the next read
    return _redirect(f"/difficulties/{d.id}?done={done}")  # returned, not raised: the transaction commits


async def _ctx(req: Req) -> Ctx:
    """A Ctx for the person acting on the web, so notices and the audit log work as in the chat."""
    account = (await req.s.execute(
        select(Account).where(Account.person_id == req.person.id).order_by(Account.id.desc()).limit(1)
    )).scalar()
    if account is None:  # signed in by a link made in the chat, so an account exists; keep a safe default
        account = Account(id=None, channel="web", external_id="", chat_id="", person_id=req.person.id)
    inc = Incoming(channel="web", user=User(f"web:{req.person.id}", req.person.name), chat_id="")
    return Ctx(core=req.w.core, session=req.s, inc=inc, account=account, person=req.person, t=req.t)


# ------------------------------------------------------------------------------------------ downloads
def _team_param(req: Req, request: web.Request) -> tuple[bool, int | None]:
    """(allowed, team id) for a download: a team of the scope, or the whole county for an admin; a leader
    with one team gets that team without asking."""
    raw = request.query.get("team", "")
    tid = parse_id(raw)
    if tid is not None:
        return (req.scope.county or tid in (req.scope.team_ids or ())), tid
    if req.scope.county:
        return True, None
    teams = req.scope.team_ids or ()
    return (len(teams) == 1), (teams[0] if teams else None)


def _month(request: web.Request, today: date) -> date | None:
    raw = request.query.get("month", "")
    if not raw:
        return today.replace(day=1)
    try:
        return parse_month(raw[:10])
    except ValueError:
        return None


async def export(req: Req, request: web.Request) -> web.StreamResponse:
    kind = request.query.get("kind", "visits")
    ok, team = _team_param(req, request)
    month = _month(request, req.today)
    if kind not in EXPORT_KINDS or not ok or month is None:
        return _not_found(req)
    end = min((month + timedelta(days=32)).replace(day=1) - timedelta(days=1), req.today)
    data = await export_workbook(req.s, kind, month, max(end, month), team, tz=req.w.settings.timezone)
    return web.Response(body=data, content_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="{kind}-{month:%Y-%m}.xlsx"'})


async def report_xlsx(req: Req, request: web.Request) -> web.StreamResponse:
    ok, team = _team_param(req, request)
    month = _month(request, req.today)
    if not ok or month is None:
        return _not_found(req)
    _, xlsx = await monthly_report(req.s, month, team, rules=req.w.rules, today=req.today, t=req.t,
                                   latin=req.w.catalogs.get("en"))
    return web.Response(body=xlsx, content_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="report-{month:%Y-%m}.xlsx"'})


async def report_page(req: Req, request: web.Request) -> web.StreamResponse:
    """The monthly report, print-friendly (the same figures as the xlsx), with the downloads."""
    t = req.t
    ok, team = _team_param(req, request)
    month = _month(request, req.today)
    if month is None:
        return _not_found(req)
    teams = (await req.s.execute(select(Team.id, Team.name).where(req.scope.team_filter(Team.id))
                                 .order_by(Team.name))).all()
    pick = "".join(f'<option value="{i}"{" selected" if i == team else ""}>{escape(n)}</option>' for i, n in teams)
    body = (f'<form class="filters noprint" method="get"><input type="month" name="month" value="{month:%Y-%m}">'
            f'<select name="team">{"" if not req.scope.county else "<option value=>" + t("web.all_teams") + "</option>"}'
            f'{pick}</select><button type="submit">{t("web.filter")}</button></form>')
    if not ok:
        return _page(t, t("web.nav.report"), body + f'<p class="msg">{t("web.pick_team")}</p>', req)
    from bot.io.report import kpi_lines

    figures = await monthly_figures(req.s, month, team, rules=req.w.rules, today=req.today)
    q = f"month={month:%Y-%m}" + (f"&team={team}" if team is not None else "")
    links = " · ".join(f'<a href="/export?kind={k}&{q}">{t("web.export." + k)}</a>' for k in EXPORT_KINDS)
    body += (f'<p class="noprint"><a href="/report.xlsx?{q}">{t("web.report_xlsx")}</a> · {links}</p>'
             '<div class="card">' + "".join(f"<p>{line}</p>" for line in kpi_lines(figures, t)) + "</div>")
    return _page(t, t("web.report_title", month=f"{month:%Y-%m}"), body, req)


# ------------------------------------------------------------------------------------------ running
async def serve(settings: Settings) -> None:
    """Serve until cancelled (bangfu web; bangfu demo runs it beside the console chat)."""
    import asyncio

    host, _, port = settings.web_listen.rpartition(":")
    runner = web.AppRunner(make_app(settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
