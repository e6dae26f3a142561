"""The monitoring board and the villagers' cases on the web (aiohttp's test client), on SQLite and
PostgreSQL: columns and counts per step with overdue in red, scope (another team's case by URL is 404),
CSRF, wrong role / stale step refused with nothing changed, and actions shared with the chat both ways."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, update

from bot.buttons import CASE_RESOLVE, MON_APPROVE, MON_OPEN
from bot.core.bootstrap import App
from bot.core.types import Reply
from bot.store.models import (
    Account,
    AuditLog,
    Case,
    CheckIn,
    MonitorCase,
    MonitorEvent,
    Outbox,
    Person,
    TeamFigure,
    Visit,
)
from bot.web.app import WEB, make_app
from tests.conftest import Chat, World, bind
from tests.web.helpers import add_monitor_case, add_villager_case, other_team, token_of

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def sign_in(app: App, web: TestClient, person_id: int, user_id: str, chat: Chat | None = None) -> tuple[Chat, str]:
    """Bind a chat to the person (unless given one bound already), ask /web, open the link; returns the
    chat and the page's CSRF token."""
    if chat is None:
        chat = Chat(app, user_id, "web")
        await bind(app, chat, person_id=person_id)
    await chat.send("/web")
    r = await web.get(f"/login/{token_of(chat.last_text)}", allow_redirects=False)
    assert r.status == 303
    found = CSRF.search(await (await web.get("/")).text())
    assert found
    return chat, found.group(1)


async def township(app: App, world: World) -> int:
    async with app.core.sessions() as s, s.begin():
        p = Person(name="孙乡镇", phone="13700000001", role="township", village_id=world.village_id)
        s.add(p)
        await s.flush()
        return p.id


def column(page: str, step: str) -> str:
    found = re.search(rf'<section class="column[^"]*" data-step="{step}">(.*?)</section>', page)
    assert found, step
    return found.group(1)


def count(col: str) -> int:
    found = re.search(r'<span class="count">(\d+)</span>', col)
    assert found
    return int(found.group(1))


async def step_of(app: App, cid: int) -> str:
    async with app.core.sessions() as s:
        c = await s.get(MonitorCase, cid)
        assert c is not None
        return c.step


async def test_board_columns_counts_and_overview(app: App, world: World, web: TestClient) -> None:
    other = await other_team(app)
    today = app.core.clock.now().date()
    hh = world.households
    late = await add_monitor_case(app, world.village_id, hh["张大山"], "张大山", "assess",
                                  started=today - timedelta(days=9), due=today - timedelta(days=2))
    await add_monitor_case(app, world.village_id, hh["张小山"], "张小山", "assess",
                           started=today - timedelta(days=1), due=today + timedelta(days=3))
    await add_monitor_case(app, world.village_id, hh["刘老四"], "刘老四", "accept", source="self_report",
                           started=today, due=today + timedelta(days=2))
    await add_monitor_case(app, world.village_id, hh["陈秀英"], "陈秀英", "closed", open_=False,
                           started=today, due=None)
    async with app.core.sessions() as s:
        other_village = (await s.get(Person, other["leader"])).village_id  # type: ignore[union-attr]
    await add_monitor_case(app, other_village, other["household"], "周外村", "assess",
                           started=today - timedelta(days=9), due=today - timedelta(days=2))
    await sign_in(app, web, world.leader_id, "700")
    page = await (await web.get("/monitoring")).text()
    assess, accept = column(page, "assess"), column(page, "accept")
    assert count(assess) == 2 and "逾期 1" in assess  # the other team's case is not counted
    assert "张大山" in assess and "张小山" in assess and "刘老四" in accept and count(accept) == 1
    assert count(column(page, "verify")) == 0
    assert re.search(rf'class="mcard late" href="/monitoring/{late}"', page)  # overdue in red
    assert "逾期 2 天" in assess and "本环节已 9 天" in assess
    assert "周外村" not in page and "陈秀英" not in page  # out of scope; closed
    assert "民主评议" in page and "乡镇受理" in page  # columns named in Chinese
    # Filtered: overdue only, one step.
    page = await (await web.get("/monitoring?step=assess&overdue=1")).text()
    assert "张大山" in page and "张小山" not in page and 'data-step="accept"' not in page
    assert count(column(page, "assess")) == 1
    # The overview: per step, overdue in red, click-through to the filtered board.
    ov = await (await web.get("/")).text()
    card = ov[ov.index('id="monitoring"'):]
    assert "防返贫监测" in card and 'href="/monitoring?step=assess"' in card
    assert 'href="/monitoring?step=assess&amp;overdue=1">逾期 1</a>' in card and 'class="bar late"' in card
    assert (await web.get("/monitoring?step=assess&amp;overdue=1")).status == 200
    # English on request: the same board, every label from the catalogs.
    await web.get("/lang/en")
    page = await (await web.get("/monitoring")).text()
    assert "Monitoring" in page and "1 overdue" in page and "逾期" not in page and "民主评议" not in page
    page = await (await web.get(f"/monitoring/{late}")).text()
    assert "Timeline" in page and "逾期" not in page


async def test_scope_csrf_and_forged_ids(app: App, world: World, web: TestClient) -> None:
    other = await other_team(app)
    today = app.core.clock.now().date()
    async with app.core.sessions() as s:
        other_village = (await s.get(Person, other["leader"])).village_id  # type: ignore[union-attr]
    theirs = await add_monitor_case(app, other_village, other["household"], "周外村", "assess",
                                    started=today, due=today)
    mine = await add_monitor_case(app, world.village_id, world.households["张大山"], "张大山", "assess",
                                  started=today, due=today)
    villager = Chat(app, "710", "村民")
    await bind(app, villager, household_id=world.villager_household)
    outsider = Chat(app, "711", "外村村民")
    await bind(app, outsider, household_id=other["household"])
    async with app.core.sessions() as s:
        acc = {a.external_id: a.id for a in (await s.execute(select(Account))).scalars()}
    my_case = await add_villager_case(app, acc["710"], "低保什么时候发")
    their_case = await add_villager_case(app, acc["711"], "外村的诉求")
    _, csrf = await sign_in(app, web, world.leader_id, "700")
    # Another team's cases by URL: 404, never the data; posting to them changes nothing.
    for path, secret in ((f"/monitoring/{theirs}", "周外村"), (f"/cases/{their_case}", "外村的诉求")):
        r = await web.get(path)
        assert r.status == 404 and secret not in await r.text(), path
    assert "外村的诉求" not in await (await web.get("/cases?status=all")).text()
    r = await web.post(f"/monitoring/{theirs}/approve", data={"csrf": csrf, "step": "assess"}, allow_redirects=False)
    assert r.status == 404 and await step_of(app, theirs) == "assess"
    r = await web.post(f"/cases/{their_case}/reply", data={"csrf": csrf, "text": "x"}, allow_redirects=False)
    assert r.status == 404
    for path in ("/monitoring/²", "/monitoring/999999", "/cases/３", "/cases/999999", f"/monitoring/{mine}/delete"):
        assert (await web.get(path)).status in (404, 405), path
    assert (await web.post(f"/monitoring/{mine}/delete", data={"csrf": csrf})).status == 404
    # CSRF: a missing or forged token is refused and nothing changes.
    for data in ({"step": "assess"}, {"csrf": "forged", "step": "assess"}):
        r = await web.post(f"/monitoring/{mine}/approve", data=data, allow_redirects=False)
        assert r.status == 403
    for data in ({"text": "好的"}, {"csrf": "forged", "text": "好的"}):
        r = await web.post(f"/cases/{my_case}/reply", data=data, allow_redirects=False)
        assert r.status == 403
    assert await step_of(app, mine) == "assess"
    async with app.core.sessions() as s:
        assert (await s.get(Case, my_case)).status == "open"  # type: ignore[union-attr]
        assert (await s.scalar(select(func.count()).select_from(Outbox))) == 0


async def test_wrong_role_and_stale_step_refused(app: App, world: World, web: TestClient) -> None:
    today = app.core.clock.now().date()
    accept = await add_monitor_case(app, world.village_id, world.households["张大山"], "张大山", "accept",
                                    source="self_report", started=today, due=today)
    assess = await add_monitor_case(app, world.village_id, world.households["张小山"], "张小山", "assess",
                                    started=today, due=today)
    _, csrf = await sign_in(app, web, world.leader_id, "700")
    # The township accepts a self-report: the leader sees it, with no form, and a forged post is refused.
    page = await (await web.get(f"/monitoring/{accept}")).text()
    assert 'id="waiting"' in page and 'action="/monitoring/' not in page
    r = await web.post(f"/monitoring/{accept}/approve", data={"csrf": csrf, "step": "accept"})
    assert r.status == 409 and 'id="refused"' in await r.text()
    assert await step_of(app, accept) == "accept"
    # A form made for another step (a stale page): refused, nothing changed.
    r = await web.post(f"/monitoring/{assess}/approve", data={"csrf": csrf, "step": "publicize"})
    assert r.status == 409 and await step_of(app, assess) == "assess"
    # A reason is required to send back.
    r = await web.post(f"/monitoring/{assess}/back", data={"csrf": csrf, "step": "assess", "text": " "})
    assert r.status == 409 and await step_of(app, assess) == "assess"
    async with app.core.sessions() as s:
        actions = set((await s.execute(select(AuditLog.action))).scalars())
        events = (await s.scalar(select(func.count()).select_from(MonitorEvent).where(
            MonitorEvent.action != "open")))
    assert {"monitor.refused_role", "monitor.out_of_order"} <= actions and events == 0
    # A villager's case the person may not handle (a township officer of the same township, not the team's
    # contact): seen in scope, but refused politely, unchanged.
    villager = Chat(app, "710", "村民")
    await bind(app, villager, household_id=world.villager_household)
    async with app.core.sessions() as s:
        acc = (await s.execute(select(Account.id).where(Account.external_id == "710"))).scalar_one()
    cid = await add_villager_case(app, acc, "补贴没到")
    town = await township(app, world)
    await web.post("/logout", data={"csrf": csrf})
    _, csrf2 = await sign_in(app, web, town, "701")
    page = await (await web.get(f"/cases/{cid}")).text()
    assert "补贴没到" in page and 'id="reply"' not in page
    r = await web.post(f"/cases/{cid}/reply", data={"csrf": csrf2, "text": "我来看看"})
    assert r.status == 403 and 'id="refused"' in await r.text()
    async with app.core.sessions() as s:
        c = await s.get(Case, cid)
        assert c is not None and c.status == "open" and c.reply_text == ""


async def test_monitoring_web_and_chat_both_ways(app: App, world: World, web: TestClient) -> None:
    today = app.core.clock.now().date()
    cadre = Chat(app, "702", "王建国")
    await bind(app, cadre, person_id=world.cadre_ids[0])  # paired with 张大山
    villager = Chat(app, "703", "张大山")
    await bind(app, villager, household_id=world.households["张大山"])
    async with app.core.sessions() as s:
        acc = (await s.execute(select(Account.id).where(Account.external_id == "703"))).scalar_one()
    reported = await add_monitor_case(app, world.village_id, world.households["张大山"], "张大山", "accept",
                                      source="self_report", started=today, due=today, reporter_account_id=acc)
    town = await township(app, world)
    _, csrf = await sign_in(app, web, town, "704")
    page = await (await web.get(f"/monitoring/{reported}")).text()
    assert 'id="approve"' in page and "受理" in page
    r = await web.post(f"/monitoring/{reported}/approve", data={"csrf": csrf, "step": "accept", "text": "情况属实"},
                       allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == f"/monitoring/{reported}?done=approve"
    assert await step_of(app, reported) == "verify"
    page = await (await web.get(r.headers["Location"])).text()
    assert '<span id="step">入户核实</span>' in page and "情况属实" in page and "孙乡镇" in page
    # The next owner (the paired cadre) and the reporting villager are told, through the outbox.
    async with app.core.sessions() as s:
        rows = {o.chat_id: o.payload["text"] for o in (await s.execute(select(Outbox))).scalars()}
    assert "入户核实" in rows["702"] and str(reported) in rows["702"] and "703" in rows
    # The chat sees the web's move: the cadre's /monitor lists the case at the home check.
    await cadre.send("/monitor")
    assert f"#{reported}" in cadre.last_text and "入户核实" in cadre.last_text
    # Done in the chat, seen on the web: the leader approves an assessment by button.
    assess = await add_monitor_case(app, world.village_id, world.households["张小山"], "张小山", "assess",
                                    started=today, due=today)
    leader = Chat(app, "705", "赵队长")
    await bind(app, leader, person_id=world.leader_id)
    await leader.press(MON_APPROVE.pack(assess, "assess"))
    await web.post("/logout", data={"csrf": csrf})
    _, csrf = await sign_in(app, web, world.leader_id, "705", chat=leader)
    page = await (await web.get(f"/monitoring/{assess}")).text()
    assert '<span id="step">村内公示</span>' in page and "民主评议" in page and "赵队长" in page
    # The web's stale form for the old step is refused; the chat's stale button likewise after a web move.
    r = await web.post(f"/monitoring/{assess}/approve", data={"csrf": csrf, "step": "assess"})
    assert r.status == 409 and await step_of(app, assess) == "publicize"
    sb = await add_monitor_case(app, world.village_id, world.households["刘老四"], "刘老四", "assess",
                                started=today, due=today)
    r = await web.post(f"/monitoring/{sb}/back", data={"csrf": csrf, "step": "assess",
                                                       "text": "收入材料不全，身份证 11010519491231002X 对不上"},
                       allow_redirects=False)
    assert r.status == 303 and await step_of(app, sb) == "verify"
    await leader.press(MON_APPROVE.pack(sb, "assess"))  # the chat's button from before the web's move
    assert await step_of(app, sb) == "verify" and leader.toasts()[-1] != ""
    await leader.press(MON_OPEN.pack(sb))
    assert "收入材料不全" in leader.last_text and "入户核实" in leader.last_text
    # The ID number typed into the web form is stored (and shown) masked, as in the chat.
    assert "11010519491231002X" not in leader.last_text and "11010519491231002X" not in await (
        await web.get(f"/monitoring/{sb}")).text()


async def test_villager_cases_web_and_chat_both_ways(app: App, world: World, web: TestClient) -> None:
    villager = Chat(app, "710", "村民")
    await bind(app, villager, household_id=world.villager_household)
    async with app.core.sessions() as s:
        acc = (await s.execute(select(Account.id).where(Account.external_id == "710"))).scalar_one()
    old = await add_villager_case(app, acc, "去年的医保报销还没到", topic="medical.assistance", days_ago=10)
    new = await add_villager_case(app, acc, "想问问养老金", topic="welfare.pension")
    leader, csrf = await sign_in(app, web, world.leader_id, "700")
    page = await (await web.get("/cases")).text()
    assert f'href="/cases/{old}"' in page and f'href="/cases/{new}"' in page and "超时未回复" in page
    page = await (await web.get("/cases?overdue=1")).text()
    assert f'href="/cases/{old}"' in page and f'href="/cases/{new}"' not in page
    page = await (await web.get("/cases?topic=welfare.pension")).text()
    assert f'href="/cases/{new}"' in page and f'href="/cases/{old}"' not in page and "养老" in page
    # Reply on the web: the villager gets it (outbox), the chat shows it replied.
    r = await web.post(f"/cases/{old}/reply", data={"csrf": csrf, "text": "已催办，下周到账"}, allow_redirects=False)
    assert r.status == 303
    async with app.core.sessions() as s:
        out = (await s.execute(select(Outbox).where(Outbox.chat_id == "710"))).scalars().all()
        c = await s.get(Case, old)
        assert c is not None and c.status == "replied" and c.first_reply_at is not None
    assert len(out) == 1 and "已催办，下周到账" in out[0].payload["text"]
    await leader.send("/cases")
    assert f"{old}" in leader.last_text and "已回复" in leader.last_text
    assert "超时未回复" not in await (await web.get("/cases")).text()  # answered: no longer late to reply
    # Resolved in the chat, seen on the web, no forms left.
    await leader.press(CASE_RESOLVE.pack(new))
    page = await (await web.get(f"/cases/{new}")).text()
    assert '<span id="status">已办结</span>' in page and 'id="resolve"' not in page
    # Resolve with a note on the web; a second post changes nothing.
    assert (await web.get("/")).status == 200  # the overview computes the team's figures (inline on SQLite)
    w = web.server.app[WEB]
    for _ in range(200):  # on PostgreSQL in the background
        if not w.inflight and not w.refreshing.locked():
            break
        await asyncio.sleep(0.05)
    async with app.core.sessions() as s, s.begin():
        assert (await s.execute(update(TeamFigure).where(TeamFigure.team_id == world.team_id)
                                .values(dirty=False))).rowcount
    r = await web.post(f"/cases/{old}/resolve", data={"csrf": csrf, "note": "已到账"}, allow_redirects=False)
    assert r.headers["Location"] == f"/cases/{old}?done=resolve"
    async with app.core.sessions() as s:  # the overview's case counts are recomputed on their next read
        assert any((await s.execute(select(TeamFigure.dirty).where(TeamFigure.team_id == world.team_id))).scalars())
    r = await web.post(f"/cases/{old}/resolve", data={"csrf": csrf, "note": "again"}, allow_redirects=False)
    assert r.headers["Location"] == f"/cases/{old}?done=nochange"
    async with app.core.sessions() as s:
        c = await s.get(Case, old)
        assert c is not None and c.status == "resolved" and c.resolution_note == "已到账"
        told = (await s.execute(select(Outbox).where(Outbox.chat_id == "710"))).scalars().all()
    assert len(told) == 2 and all(str(old) in o.payload["text"] for o in told)  # the web's reply and this resolution
    # (the chat's own resolution went to the villager as the chat's update result, not through the outbox)
    assert any(isinstance(a, Reply) and a.chat_id == "710" and str(new) in (a.text or "") for a in leader.replies)


async def test_cadre_timeline_chart(app: App, world: World, web: TestClient) -> None:
    """Weeks on x: this week two visits, two check-in days (one far), last week one visit; older ones out."""
    today = app.core.clock.now().date()  # Saturday
    monday = today - timedelta(days=today.weekday())
    cadre = world.cadre_ids[0]
    async with app.core.sessions() as s, s.begin():
        for i, (hh, day) in enumerate([("张大山", monday), ("张小山", monday + timedelta(days=1)),
                                        ("刘老四", monday - timedelta(days=3)), ("张大山", today - timedelta(days=70))]):
            s.add(Visit(idem_key=f"t{i}", household_id=world.households[hh], cadre_id=cadre, visit_date=day,
                        kind="routine", done="看望", created_at=app.core.clock.now()))
        for day, dist in ((monday, 120.0), (monday + timedelta(days=2), 9000.0)):
            s.add(CheckIn(cadre_id=cadre, day=day, at=app.core.clock.now(), village_id=world.village_id,
                          distance_m=dist))
    await sign_in(app, web, world.leader_id, "700")
    page = await (await web.get(f"/cadres/{cadre}")).text()
    chart = page[page.index('id="timeline"'):page.index("</svg>", page.index('id="timeline"'))]
    labels = re.findall(r'<text class="lbl" [^>]*>(第\d+周)</text>', chart)
    assert len(labels) == 8 and labels[-1] == f"第{today.isocalendar()[1]}周"
    bars = re.findall(r'<rect class="bar ([a-z]*)"[^>]*><title>[^<]* (\d+)</title>', chart)
    per_series = {cls: [int(v) for c, v in bars if c == cls] for cls in ("", "days", "late")}
    assert per_series[""] == [0, 0, 0, 0, 0, 0, 1, 2]  # visits per week
    assert per_series["days"] == [0, 0, 0, 0, 0, 0, 0, 2]  # days checked in
    assert per_series["late"] == [0, 0, 0, 0, 0, 0, 0, 1]  # far check-ins, in red
    assert "走访" in chart and "远距离打卡" in chart


async def test_county_officer_acts_on_the_county_steps(app: App, world: World, web: TestClient) -> None:
    """A county officer signs in by /web, sees the county's cases (not another county's) and moves the
    information comparison (信息比对), which only the county owns; the team leader is told next."""
    from bot.store.models import Village

    today = app.core.clock.now().date()
    async with app.core.sessions() as s, s.begin():
        county = Person(name="钱县级", phone="13700000002", role="county", village_id=world.village_id)
        far = Village(code="V777", name="别县村", township="别镇", county="别县")
        s.add_all([county, far])
        await s.flush()
        county_id, far_id = county.id, far.id
    compare = await add_monitor_case(app, world.village_id, world.households["张大山"], "张大山", "compare",
                                     started=today, due=today)
    elsewhere = await add_monitor_case(app, far_id, None, "别县户", "compare", started=today, due=today)
    leader = Chat(app, "720", "赵队长")
    await bind(app, leader, person_id=world.leader_id)
    _, csrf = await sign_in(app, web, county_id, "721")
    page = await (await web.get("/monitoring")).text()
    assert "张大山" in page and "别县户" not in page and count(column(page, "compare")) == 1
    assert (await web.get(f"/monitoring/{elsewhere}")).status == 404
    r = await web.post(f"/monitoring/{compare}/approve", data={"csrf": csrf, "step": "compare"},
                       allow_redirects=False)
    assert r.status == 303 and await step_of(app, compare) == "assess"
    async with app.core.sessions() as s:
        told = (await s.execute(select(Outbox).where(Outbox.chat_id == "720"))).scalars().all()
    assert len(told) == 1 and "民主评议" in told[0].payload["text"]
    await leader.send("/monitor")
    assert f"#{compare}" in leader.last_text and "民主评议" in leader.last_text


async def test_a_full_column_does_not_crowd_out_the_others(app: App, world: World, web: TestClient) -> None:
    """Each column draws its first cards (soonest due first) and counts them all."""
    from bot.web.monitor import COLUMN_CARDS

    today = app.core.clock.now().date()
    for i in range(COLUMN_CARDS + 3):
        await add_monitor_case(app, world.village_id, None, f"早到期{i}", "assess", started=today,
                               due=today - timedelta(days=1))
    await add_monitor_case(app, world.village_id, None, "晚到期", "announce", started=today,
                           due=today + timedelta(days=30))
    await sign_in(app, web, world.leader_id, "700")
    page = await (await web.get("/monitoring")).text()
    assess = column(page, "assess")
    assert count(assess) == COLUMN_CARDS + 3 and assess.count('class="mcard') == COLUMN_CARDS
    assert "还有 3 件" in assess and "晚到期" in column(page, "announce")


async def test_each_column_draws_its_soonest_due_cards_in_order(app: App, world: World, web: TestClient) -> None:
    """Several columns in one page: each draws its COLUMN_CARDS soonest-due cards (no due date last, the
    latest-due left out when the column is full), in due order; a closed case and other steps never
    leak into a column; the overdue filter keeps only the overdue cards of each column."""
    from bot.web.monitor import COLUMN_CARDS

    today = app.core.clock.now().date()
    undated = await add_monitor_case(app, world.village_id, None, "无期限", "compare", started=today, due=None)
    latest = await add_monitor_case(app, world.village_id, None, "最晚", "compare", started=today,
                                    due=today + timedelta(days=90))
    for i in range(COLUMN_CARDS - 2):
        await add_monitor_case(app, world.village_id, None, f"比对{i}", "compare", started=today,
                               due=today + timedelta(days=COLUMN_CARDS - i))  # added latest-first
    late = await add_monitor_case(app, world.village_id, None, "逾期户", "compare", started=today,
                                  due=today - timedelta(days=3))
    await add_monitor_case(app, world.village_id, None, "已关闭", "compare", started=today,
                           due=today - timedelta(days=9), open_=False)
    pub = await add_monitor_case(app, world.village_id, None, "公示户", "publicize", started=today,
                                 due=today + timedelta(days=2))
    await sign_in(app, web, world.leader_id, "760")
    page = await (await web.get("/monitoring")).text()
    compare = column(page, "compare")
    drawn = [int(x) for x in re.findall(r'data-case="(\d+)"', compare)]
    assert count(compare) == COLUMN_CARDS + 1 and len(drawn) == COLUMN_CARDS
    assert drawn[0] == late and drawn[-1] == latest and undated not in drawn and "已关闭" not in compare
    assert "还有 1 件" in compare
    assert [int(x) for x in re.findall(r'data-case="(\d+)"', column(page, "publicize"))] == [pub]
    page = await (await web.get("/monitoring?overdue=1")).text()
    assert [int(x) for x in re.findall(r'data-case="(\d+)"', column(page, "compare"))] == [late]
    assert 'data-case=' not in column(page, "publicize")


async def test_township_contact_hands_a_case_to_the_leader(app: App, world: World, web: TestClient) -> None:
    """The team's township contact may handle its cases (as in the chat) and hand one to the team leader:
    the leader gets it with the chat's buttons, the villager is told; the leader's /cases shows it."""
    from bot.store.models import Team

    town = await township(app, world)
    async with app.core.sessions() as s, s.begin():
        team = await s.get(Team, world.team_id)
        assert team is not None
        team.township_contact_id = town
    villager = Chat(app, "730", "村民")
    await bind(app, villager, household_id=world.villager_household)
    leader = Chat(app, "731", "赵队长")
    await bind(app, leader, person_id=world.leader_id)
    async with app.core.sessions() as s:
        acc = (await s.execute(select(Account.id).where(Account.external_id == "730"))).scalar_one()
    cid = await add_villager_case(app, acc, "宅基地纠纷")
    _, csrf = await sign_in(app, web, town, "732")
    page = await (await web.get(f"/cases/{cid}")).text()
    assert 'id="lead"' in page and "赵队长" in page
    r = await web.post(f"/cases/{cid}/lead", data={"csrf": csrf}, allow_redirects=False)
    assert r.headers["Location"] == f"/cases/{cid}?done=lead"
    page = await (await web.get(r.headers["Location"])).text()
    assert '<span id="status">队长处理中</span>' in page
    assert 'id="lead"' not in page  # with the leader now: no second hand-over
    async with app.core.sessions() as s:
        c = await s.get(Case, cid)
        assert c is not None and c.status == "leader"
        rows = {o.chat_id: o.payload for o in (await s.execute(select(Outbox))).scalars()}
    assert "宅基地纠纷" in rows["731"]["text"] and f"cs:res:{cid}" in str(rows["731"])  # with buttons
    assert str(cid) in rows["730"]["text"]
    await leader.send("/cases")
    assert f"{cid}" in leader.last_text


async def test_monitoring_trend_by_week(app: App, world: World, web: TestClient) -> None:
    """The overview's trend: cases open at each week's end and opened in it, from opened_at / closed_at."""
    from bot.web.app import WEB, Req
    from bot.web.monitor import monitoring_figures
    from bot.web.scope import scope_for

    now = app.core.clock.now()  # Saturday 28 Nov 2026
    hh = world.households
    weeks = [now - timedelta(weeks=k) for k in (5, 3, 1)]
    await add_monitor_case(app, world.village_id, hh["张大山"], "甲", "follow_up", started=now.date(), due=None,
                           opened_at=weeks[0])  # open all along
    await add_monitor_case(app, world.village_id, hh["张小山"], "乙", "closed", started=now.date(), due=None,
                           open_=False, opened_at=weeks[0], closed_at=weeks[1])  # closed three weeks ago
    await add_monitor_case(app, world.village_id, hh["刘老四"], "丙", "verify", started=now.date(), due=None,
                           opened_at=weeks[2])
    await add_monitor_case(app, world.village_id, hh["陈秀英"], "丁", "accept", started=now.date(), due=None)
    other = await other_team(app)
    async with app.core.sessions() as s:
        other_village = (await s.get(Person, other["leader"])).village_id  # type: ignore[union-attr]
    await add_monitor_case(app, other_village, other["household"], "外", "verify", started=now.date(), due=None,
                           opened_at=weeks[0])
    server = TestServer(make_app(app.core.settings, app.core.clock))
    async with app.core.sessions() as s:
        person = await s.get(Person, world.leader_id)
        assert person is not None
        w = server.app[WEB]
        req = Req(w, s, person, await scope_for(s, person), w.catalogs.get("zh_CN"), "", now.date())
        figures = await monitoring_figures(req)
    await server.close()
    assert [n for _, n, _ in figures.weeks] == [2, 2, 1, 1, 2, 3]
    assert [k for _, _, k in figures.weeks] == [2, 0, 0, 0, 1, 1]
    assert sum(n for _, n, _ in figures.steps) == 3 and figures.weeks[-1][0] == now.date() - timedelta(days=5)
    await sign_in(app, web, world.leader_id, "700")
    ov = await (await web.get("/")).text()
    card = ov[ov.index('id="monitoring"'):]
    assert "在办监测案件（每周末）" in card and ">第48周</text>" in card


async def test_township_board_by_village_and_cases_sorted(app: App, world: World, web: TestClient) -> None:
    """A township officer sees both villages of the township; the board filters by village (a village
    outside the scope in the URL is ignored, never shown); the cases list sorts newest first on request."""
    from bot.store.models import Village

    other = await other_team(app)  # 河口村, the same township (平安镇)
    today = app.core.clock.now().date()
    async with app.core.sessions() as s, s.begin():
        other_village = (await s.get(Person, other["leader"])).village_id  # type: ignore[union-attr]
        far = Village(code="V888", name="远镇村", township="远镇", county="示例县")
        s.add(far)
        await s.flush()
        far_id = far.id
    await add_monitor_case(app, world.village_id, world.households["张大山"], "张大山", "verify", started=today,
                           due=today)
    await add_monitor_case(app, other_village, other["household"], "周外村", "verify", started=today, due=today)
    await add_monitor_case(app, far_id, None, "远镇户", "verify", started=today, due=today)
    town = await township(app, world)
    _, _ = await sign_in(app, web, town, "740")
    page = await (await web.get("/monitoring")).text()
    assert count(column(page, "verify")) == 2 and "周外村" in page and "远镇户" not in page
    assert f'<option value="{other_village}">河口村</option>' in page and "远镇村" not in page
    page = await (await web.get(f"/monitoring?village={other_village}")).text()
    assert count(column(page, "verify")) == 1 and "周外村" in page and "张大山" not in page
    page = await (await web.get(f"/monitoring?village={far_id}")).text()  # outside: the whole scope instead
    assert count(column(page, "verify")) == 2 and "远镇户" not in page
    villager = Chat(app, "741", "村民")
    await bind(app, villager, household_id=world.villager_household)
    async with app.core.sessions() as s:
        acc = (await s.execute(select(Account.id).where(Account.external_id == "741"))).scalar_one()
    older = await add_villager_case(app, acc, "旧事", days_ago=5)
    newer = await add_villager_case(app, acc, "新事", days_ago=1)
    page = await (await web.get("/cases")).text()
    assert page.index(f'href="/cases/{older}"') < page.index(f'href="/cases/{newer}"')
    page = await (await web.get("/cases?sort=new")).text()
    assert page.index(f'href="/cases/{newer}"') < page.index(f'href="/cases/{older}"')


async def test_public_notice_pdf(app: App, world: World, web: TestClient) -> None:
    """At the public-notice step the case page offers the village's printable notice (the chat's page)."""
    today = app.core.clock.now().date()
    pub = await add_monitor_case(app, world.village_id, world.households["张大山"], "张大山", "publicize",
                                 started=today, due=today + timedelta(days=6))
    other = await add_monitor_case(app, world.village_id, world.households["张小山"], "张小山", "assess",
                                   started=today, due=today)
    await sign_in(app, web, world.leader_id, "700")
    assert f'href="/monitoring/{pub}/notice.pdf"' in await (await web.get(f"/monitoring/{pub}")).text()
    r = await web.get(f"/monitoring/{pub}/notice.pdf")
    assert r.status == 200 and r.headers["Content-Type"] == "application/pdf"
    assert (await r.read())[:5] == b"%PDF-"
    assert (await web.get(f"/monitoring/{other}/notice.pdf")).status == 404  # not at the notice step
