"""The dashboard's aiohttp application: sign-in by one-time link, scoped pages, actions, downloads.

One database transaction per request. Rules come from `county_rules(settings)` (the same loaded rules as
the bot and the scheduler); figures from bot/scheduler/due.py and bot/io; difficulty actions through
bot/services/difficulties.py and the same notices as the chat, whose messages go out through the outbox.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.clock import Clock, SystemClock, local_today
from bot.core.context import Ctx
from bot.core.engine import Core
from bot.core.router import parse_id, parse_number
from bot.core.services import Services, county_rules
from bot.core.types import Incoming, Reply, User
from bot.i18n import Catalogs, Translator
from bot.io.export import export_workbook
from bot.io.report import monthly_figures, monthly_report, parse_month, season_for
from bot.notices.difficulties import AssignedToYou, StatusChanged
from bot.scheduler import due
from bot.scheduler.outbox import OutMessage, enqueue
from bot.scheduler.rules import Rules
from bot.services import difficulties as dsvc
from bot.services.weblinks import generation, sign, sign_out_everywhere, signing_key, use_link
from bot.settings import Settings
from bot.store.db import create_engine, session_factory
from bot.store.enums import CaseStatus, DifficultyStatus, Role, VisitKind
from bot.store.models import (
    Account,
    Case,
    CheckIn,
    Difficulty,
    Household,
    Pairing,
    Person,
    PolicyQuestion,
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
CACHE_SECONDS = 60.0  # this week's figures
TREND_CACHE_SECONDS = 600.0  # past weeks: they change only by late entries

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
    cache: dict[Any, tuple[float, Any]] | None = None
    inflight: dict[Any, asyncio.Task[Any]] = dataclasses.field(default_factory=dict)

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
    engine = engine or create_engine(settings.database_url)
    catalogs = Catalogs(settings.locales_dir, settings.default_language)
    rules = county_rules(settings)
    core = Core(settings, clock, session_factory(engine), catalogs, [], [], Services(rules=rules))
    app = web.Application(middlewares=[_headers])
    app[WEB] = Web(settings, clock, engine, core, catalogs, rules, cache={})
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
    if exp < w.clock.now().timestamp() or gen != await generation(s, pid):
        return None
    person = await s.get(Person, pid)
    if person is None or not person.active or Role(person.role) not in WEB_ROLES:
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
async def _cached(req: Req, name: str, compute: Callable[[Req], Awaitable[Any]], ttl: float = CACHE_SECONDS,
                  wait: float = 30.0) -> Any:
    """Figures of a scope, kept for `ttl` seconds: the overview is opened often and changes slowly.

    On PostgreSQL computed by a background task on its own session (one per scope and figure at a time, however many
    people ask); a stale value is served while it is refreshed. Waits at most `wait` seconds for a first
    value, then answers None (the page says the figure is being computed), so one scope's slow first
    computation never holds a request for long.
    """
    cache = req.w.cache if req.w.cache is not None else {}
    key = (name, req.scope.team_ids, req.today)
    hit = cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < ttl:
        return hit[1]
    if req.w.engine.dialect.name == "sqlite":
        # One connection (the request holds it): computed in the request, as a small install needs.
        value = await compute(req)
        if len(cache) > 2000:
            cache.clear()
        cache[key] = (time.monotonic(), value)
        return value
    task = req.w.inflight.get(key)
    if task is None:
        task = asyncio.create_task(_compute(req, compute))
        req.w.inflight[key] = task

        def done(t: asyncio.Task[Any], key: Any = key) -> None:
            req.w.inflight.pop(key, None)
            if not t.cancelled() and t.exception() is None:
                if len(cache) > 2000:
                    cache.clear()
                cache[key] = (time.monotonic(), t.result())
            elif not t.cancelled():
                log.warning("web figure %s failed", key[0], exc_info=t.exception())

        task.add_done_callback(done)
    if hit is not None:
        return hit[1]
    try:
        return await asyncio.wait_for(asyncio.shield(task), wait)
    except TimeoutError:
        return None


async def _compute(req: Req, compute: Callable[[Req], Awaitable[Any]]) -> Any:
    async with req.w.sessions() as s, s.begin():
        return await compute(dataclasses.replace(req, s=s))


async def _overdue(req: Req, on: date) -> list[due.HouseholdDue]:
    out: list[due.HouseholdDue] = []
    for team in req.scope.teams_for_queries():
        out += await due.overdue_households(req.s, on, req.w.rules.visits.cadence_days, team_id=team)
    return out


async def _weeks(req: Req, monday: date, upto: date) -> list[due.CadreWeek]:
    out: list[due.CadreWeek] = []
    far = req.w.rules.village_days.far_meters
    for team in req.scope.teams_for_queries():
        out += await due.cadre_weeks(req.s, monday, upto=upto, team_id=team, far_m=far)
    return out


def _days_met(weeks: list[due.CadreWeek], target: int) -> float:
    """Per cent of the cadres' weekly village-day target met (days beyond the target do not count)."""
    counted = [w for w in weeks if not w.on_leave]
    if not counted or target <= 0:
        return 100.0
    return 100.0 * sum(min(w.checkin_days, target) for w in counted) / (len(counted) * target)


async def _season(req: Req) -> tuple[VisitKind, date, date, int, int]:
    windows = {VisitKind(n): win for n, win in req.w.rules.seasons.windows().items()}
    kind, first, last = season_for(req.today, windows)
    upto = min(last, req.today)
    missing = 0
    for team in req.scope.teams_for_queries():
        missing += len(await due.season_missing(
            req.s, first, upto, req.today, team_id=team,
            kind=kind.value if req.w.rules.visits.require_seasonal_kind else None,
        ))
    paired = await req.s.scalar(
        select(func.count(func.distinct(Pairing.household_id)))
        .join(Person, Person.id == Pairing.cadre_id)
        .where(Pairing.end_date.is_(None), req.scope.team_filter(Person.team_id))
    ) or 0
    return kind, first, last, missing, int(paired)


async def _open_difficulty_ages(req: Req, at: datetime) -> list[int]:
    """Unresolved difficulties at `at` by age: under 3 days, 3–7, 8–30, over 30."""
    rows = (await req.s.execute(
        select(Difficulty.created_at).where(
            req.scope.team_filter(Difficulty.team_id),
            Difficulty.created_at <= at,
            (Difficulty.resolved_at.is_(None)) | (Difficulty.resolved_at > at),
        )
    )).scalars()
    buckets = [0, 0, 0, 0]
    for created in rows:
        age = (at - created).days
        buckets[0 if age < 3 else 1 if age <= 7 else 2 if age <= 30 else 3] += 1
    return buckets


async def _cases(req: Req) -> list[tuple[str, int]]:
    """Villagers' cases (bot/services/cases) of the scope's teams that are not resolved, per status."""
    rows = (await req.s.execute(
        select(Case.status, func.count()).where(req.scope.team_filter(Case.team_id),
                                                Case.status != CaseStatus.RESOLVED.value)
        .group_by(Case.status)
    )).all()
    found = {r[0]: int(r[1]) for r in rows}
    return [(st.value, found.get(st.value, 0)) for st in CaseStatus if st is not CaseStatus.RESOLVED]


async def _topics(req: Req) -> list[tuple[str, int]]:
    since = req.w.clock.now() - timedelta(days=30)
    q = select(PolicyQuestion.topic, func.count()).where(PolicyQuestion.created_at >= since,
                                                         PolicyQuestion.topic != "none")
    if not req.scope.county:
        in_scope = select(Account.id).join(Household, Household.id == Account.household_id).where(
            req.scope.households())
        q = q.where(PolicyQuestion.account_id.in_(in_scope))
    rows = (await req.s.execute(q.group_by(PolicyQuestion.topic).order_by(func.count().desc()).limit(8))).all()
    return [(r[0], int(r[1])) for r in rows]


async def overview(req: Req, request: web.Request) -> web.StreamResponse:
    t, today, rules = req.t, req.today, req.w.rules
    target = rules.village_days.target
    monday = today - timedelta(days=today.weekday())
    mondays = [monday - timedelta(weeks=k) for k in range(TREND_WEEKS - 1, -1, -1)]
    labels = [_week_label(t, m) for m in mondays]

    async def trends(r: Req) -> tuple[list[float], list[float], list[float]]:
        days, overdue, open_ = [], [], []
        for m in mondays:
            end = min(m + timedelta(days=6), today)
            days.append(_days_met(await _weeks(r, m, end), target))
            overdue.append(float(len(await _overdue(r, end))))
            at = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=rules.tz)
            open_.append(float(sum(await _open_difficulty_ages(r, at))))
        return days, overdue, open_

    trend = await _cached(req, "trends", trends, TREND_CACHE_SECONDS, wait=0.2)
    pending = f'<p class="msg">{t("web.trend_pending")}</p>'
    days_t, overdue_t, open_t = trend if trend is not None else (None, None, None)
    this_week = await _cached(req, "week", lambda r: _weeks(r, monday, today)) or []
    overdue_now = await _cached(req, "overdue", lambda r: _overdue(r, today)) or []
    season = await _cached(req, "season", _season)
    ages = await _open_difficulty_ages(req, req.w.clock.now())
    topics = await _cached(req, "topics", _topics) or []
    cases = await _cached(req, "cases", _cases) or []

    short = sorted(this_week, key=lambda w: (w.checkin_days, w.cadre_name))[:12]
    week_rows = [[f'<a href="/cadres/{w.cadre_id}">{escape(w.cadre_name)}</a>',
                  t("web.days_of", done=w.checkin_days, target=target)
                  + (f' <span class="far">{t("web.far_n", n=w.far_checkins)}</span>' if w.far_checkins else ""),
                  str(w.visits)] for w in short]
    if season is None:
        season_card = f'<div class="card"><h2>{t("web.ov.season", season="")}</h2>{pending}</div>'
    else:
        kind, first, last, missing, paired = season
        season_card = (
            f'<div class="card"><h2>{t("web.ov.season", season=t("web.season." + kind.value))}</h2>'
            f'<div class="big">{paired - missing}/{paired}</div>'
            f'<p>{t("web.ov.season_note", first=first.isoformat(), last=last.isoformat(), missing=missing)}</p>'
            f'<a class="more" href="/households?season=1">{t("web.more")}</a></div>'
        )
    age_labels = [t("web.age.0_3"), t("web.age.3_7"), t("web.age.8_30"), t("web.age.30_")]
    cards = [
        f'<div class="card"><h2>{t("web.ov.village_days")}</h2>'
        f'<div class="big">{_days_met(this_week, target):.0f}%</div>'
        f'<p>{t("web.ov.village_days_note", target=target)}</p>'
        f'{svg.bars(labels, days_t, title=t("web.ov.village_days"), unit="%") if days_t else pending}'
        f'{_table([t("web.col.cadre"), t("web.col.days"), t("web.col.visits")], week_rows)}'
        f'<a class="more" href="/cadres">{t("web.more")}</a></div>',
        f'<div class="card"><h2>{t("web.ov.overdue")}</h2><div class="big late">{len(overdue_now)}</div>'
        f'<p>{t("web.ov.overdue_note", days=rules.visits.cadence_days)}</p>'
        f'{svg.bars(labels, overdue_t, title=t("web.ov.overdue")) if overdue_t else pending}'
        f'<a class="more" href="/households?overdue=1">{t("web.more")}</a></div>',
        season_card,
        f'<div class="card"><h2>{t("web.ov.difficulties")}</h2><div class="big">{sum(ages)}</div>'
        f'{svg.bars(age_labels, [float(a) for a in ages], title=t("web.ov.difficulties_age"), highlight_last=False)}'
        f'{svg.bars(labels, open_t, title=t("web.ov.difficulties")) if open_t else pending}'
        f'<a class="more" href="/difficulties">{t("web.more")}</a></div>',
        f'<div class="card"><h2>{t("web.ov.cases")}</h2><div class="big">{sum(n for _, n in cases)}</div>'
        f'{svg.bars([t("case.status." + st) for st, _ in cases], [float(n) for _, n in cases], title=t("web.ov.cases"), highlight_last=False)}'
        f'<a class="more" href="/cases">{t("web.more")}</a></div>',
        f'<div class="card"><h2>{t("web.ov.topics")}</h2>'
        + (svg.bars([_topic_label(t, k) for k, _ in topics], [float(n) for _, n in topics],
                    title=t("web.ov.topics"), highlight_last=False) if topics else f'<p>{t("web.none")}</p>')
        + "</div>",
    ]
    from bot.web.monitor import monitoring_card, monitoring_figures

    cards.append(monitoring_card(t, await _cached(req, "monitoring", monitoring_figures)))
    return _page(t, t("web.ov.title", date=today.isoformat()), f'<div class="cards">{"".join(cards)}</div>', req)


def _topic_label(t: Translator, topic: str) -> str:
    key = f"web.topic.{topic}"
    return t(key) if t.has(key) else topic


# ------------------------------------------------------------------------------------------ households
async def households(req: Req, request: web.Request) -> web.StreamResponse:
    t, q = req.t, request.query
    text = q.get("q", "").strip()[:40]
    overdue_only, season_only = q.get("overdue") == "1", q.get("season") == "1"
    sort = q.get("sort", "code")
    page = parse_number(q.get("page"), 5) or 0
    stmt = select(Household, Village.name).join(Village, Village.id == Household.village_id).where(
        req.scope.households())
    if text:
        like = "%" + text.replace("\\", "").replace("%", "").replace("_", "") + "%"
        stmt = stmt.where(Household.head_name.like(like) | Household.code.like(like))
    overdue_rows: list[due.HouseholdDue] = await _cached(req, "overdue", lambda r: _overdue(r, r.today)) or []
    overdue = {d.household_id: d for d in overdue_rows}
    if overdue_only and not text:
        # The overdue list is already known (cached): sort and page it here, then read only that page.
        key = {"name": lambda d: (d.head_name, d.household_id), "village": lambda d: (d.household_code,)}.get(
            sort, lambda d: (d.household_code,))
        chosen = sorted(overdue_rows, key=key)[page * PAGE: page * PAGE + PAGE + 1]
        stmt = stmt.where(Household.id.in_([d.household_id for d in chosen]))
    elif overdue_only:
        stmt = stmt.where(Household.id.in_(list(overdue)[:5000]))
    if season_only:
        _kind, first, last, _, _ = await _cached(req, "season", _season)
        ids: list[int] = []
        for team in req.scope.teams_for_queries():
            ids += [d.household_id for d in await due.season_missing(req.s, first, min(last, req.today),
                                                                   req.today, team_id=team)]
        stmt = stmt.where(Household.id.in_(ids[:20000]))
    order = {"name": Household.head_name, "village": Village.name}.get(sort, Household.code)
    offset = 0 if overdue_only and not text else page * PAGE
    rows = (await req.s.execute(stmt.order_by(order, Household.id).offset(offset).limit(PAGE + 1))).all()
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
    for h, vname in rows[:PAGE]:
        d = overdue.get(h.id)
        out.append([escape(h.code), f'<a href="/households/{h.id}">{escape(h.head_name)}</a>', escape(vname),
                    d.last_visit.isoformat() if d and d.last_visit else "", str(d.days_overdue) if d else ""])
        classes.append("late" if d else "")
    body += _table(head, out, classes)
    if len(rows) > PAGE:
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
    weeks = await _cached(req, "week", lambda r: _weeks(r, monday, today)) or []
    target = req.w.rules.village_days.target
    rows, classes = [], []
    for w in sorted(weeks, key=lambda w: (w.checkin_days, w.cadre_name))[:300]:  # the shortfall first
        rows.append([f'<a href="/cadres/{w.cadre_id}">{escape(w.cadre_name)}</a>',
                     t("web.days_of", done=w.checkin_days, target=target), str(w.visits),
                     f'<span class="far">{w.far_checkins}</span>' if w.far_checkins else "0",
                     t("web.on_leave") if w.on_leave else ""])
        classes.append("late" if w.checkin_days < target and not w.on_leave else "")
    body = _table([t("web.col.cadre"), t("web.col.days"), t("web.col.visits"), t("web.col.far_checkins"), ""],
                  rows, classes)
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
    stmt = select(Difficulty, Household.head_name).outerjoin(Household, Household.id == Difficulty.household_id)
    stmt = stmt.where(req.scope.team_filter(Difficulty.team_id))
    if status == "unresolved":
        stmt = stmt.where(Difficulty.status != DifficultyStatus.RESOLVED.value)
    elif status in {s.value for s in DifficultyStatus}:
        stmt = stmt.where(Difficulty.status == status)
    order = Difficulty.created_at.desc() if sort == "new" else Difficulty.created_at
    rows = (await req.s.execute(stmt.order_by(order, Difficulty.id).limit(200))).all()
    now = req.w.clock.now()
    options = "".join(
        f'<option value="{s}"{" selected" if s == status else ""}>'
        f'{t(("difficulty.status." if s in _STATUSES else "web.status.") + s)}</option>'
        for s in ("unresolved", *_STATUSES, "all"))
    body = (f'<form class="filters" method="get"><select name="status">{options}</select>'
            f'<select name="sort"><option value="age">{t("web.sort.oldest")}</option>'
            f'<option value="new"{" selected" if sort == "new" else ""}>{t("web.sort.newest")}</option></select>'
            f'<button type="submit">{t("web.filter")}</button></form>')
    out = [[f'<a href="/difficulties/{d.id}">#{d.id}</a>', escape(head or t("problem.whole_village")),
            t(f"difficulty.category.{d.category}"), t(f"difficulty.urgency.{d.urgency}"),
            t(f"difficulty.status.{d.status}"), t("web.days", n=(now - d.created_at).days)] for d, head in rows]
    body += _table(["#", t("web.col.head"), t("web.col.category"), t("web.col.urgency"), t("web.col.status"),
                    t("web.col.age")], out)
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
