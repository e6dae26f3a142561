"""The web dashboard at the HTTP level (aiohttp's test client), on SQLite and PostgreSQL: sign-in by a
one-time link from /web, scope (404 outside it), CSRF, and difficulty actions shared with the chat."""

from __future__ import annotations

import re

from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.buttons import DIFFICULTY_ACK
from bot.clock import FixedClock
from bot.core.bootstrap import App
from bot.store.models import Difficulty, Outbox, WebLink
from bot.web.app import make_app
from tests.conftest import Chat, World, bind
from tests.web.helpers import add_difficulty, other_team, token_of

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def leader_link(app: App, world: World) -> tuple[Chat, str]:
    chat = Chat(app, "500", "赵队长")
    await bind(app, chat, person_id=world.leader_id)
    await chat.send("/web")
    return chat, token_of(chat.last_text)


async def sign_in(web: TestClient, token: str) -> None:
    r = await web.get(f"/login/{token}", allow_redirects=False)
    assert r.status == 303, await r.text()
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


async def test_link_signs_in_once_and_pages_answer(app: App, world: World, web: TestClient) -> None:
    _, token = await leader_link(app, world)
    assert (await web.get("/", allow_redirects=False)).status == 303  # not signed in yet
    await sign_in(web, token)
    page = await web.get("/")
    text = await page.text()
    assert page.status == 200 and "总览" in text and "逾期未走访农户" in text and "<svg" in text
    assert "群众诉求" in text and "待回复" in text  # villagers' cases per status (none yet: zeros)
    async with app.core.sessions() as s:
        assert (await s.execute(select(WebLink.used_at))).scalar_one() is not None  # the use is recorded
    # The same link again: refused, in a fresh browser too.
    fresh = TestClient(TestServer(make_app(app.core.settings, app.core.clock)), cookie_jar=CookieJar(unsafe=True))
    await fresh.start_server()
    try:
        r = await fresh.get(f"/login/{token}", allow_redirects=False)
        assert r.status == 403 and "已经用过" in await r.text()
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        assert (await fresh.get(f"/login/{forged}", allow_redirects=False)).status == 403
    finally:
        await fresh.close()
    for path in ("/households", "/households?overdue=1&sort=name", "/households?q=张", "/cadres",
                 f"/cadres/{world.cadre_ids[0]}", "/difficulties", "/map", "/report"):
        r = await web.get(path)
        assert r.status == 200, path
    r = await web.get("/households?q=张大山")
    assert "张大山" in await r.text() and "陈秀英" not in await r.text()
    r = await web.get("/export?kind=households")
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/vnd.openxml")
    assert (await r.read())[:2] == b"PK"


async def test_expired_link_refused(app: App, world: World, web: TestClient, clock: FixedClock) -> None:
    _, token = await leader_link(app, world)
    clock.advance(minutes=11)
    r = await web.get(f"/login/{token}", allow_redirects=False)
    assert r.status == 403


async def test_scope_other_team_is_404(app: App, world: World, web: TestClient) -> None:
    other = await other_team(app)
    _, token = await leader_link(app, world)
    await sign_in(web, token)
    own = await web.get(f"/households/{world.households['张大山']}")
    assert own.status == 200 and "张大山" in await own.text()
    r = await web.get(f"/households/{other['household']}")
    assert r.status == 404 and "周外村" not in await r.text()
    r = await web.get(f"/difficulties/{other['difficulty']}")
    assert r.status == 404 and "外村的问题" not in await r.text()
    assert "外村的问题" not in await (await web.get("/difficulties?status=all")).text()
    assert "周外村" not in await (await web.get("/households")).text()
    assert (await web.get(f"/export?kind=visits&team={other['team']}")).status == 404
    page = await web.get(f"/difficulties/{other['difficulty']}")
    csrf = CSRF.search(await (await web.get("/")).text())
    assert csrf and page.status == 404
    r = await web.post(f"/difficulties/{other['difficulty']}/ack", data={"csrf": csrf.group(1)},
                       allow_redirects=False)
    assert r.status == 404
    async with app.core.sessions() as s:
        assert (await s.get(Difficulty, other["difficulty"])).status == "open"  # type: ignore[union-attr]


async def test_actions_shared_with_chat_and_csrf(app: App, world: World, web: TestClient) -> None:
    cadre = Chat(app, "501", "王建国")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    did = await add_difficulty(app, world.cadre_ids[0], world.team_id, world.households["张大山"], "房屋漏雨")
    leader, token = await leader_link(app, world)
    await sign_in(web, token)
    page = await (await web.get(f"/difficulties/{did}")).text()
    assert "房屋漏雨" in page and 'id="ack"' in page
    csrf = CSRF.search(page)
    assert csrf
    # Without the form's token, or with another: refused, nothing changes.
    for data in ({}, {"csrf": "forged"}):
        r = await web.post(f"/difficulties/{did}/ack", data=data, allow_redirects=False)
        assert r.status == 403
    async with app.core.sessions() as s:
        assert (await s.get(Difficulty, did)).status == "open"  # type: ignore[union-attr]
    r = await web.post(f"/difficulties/{did}/ack", data={"csrf": csrf.group(1)}, allow_redirects=False)
    assert r.status == 303
    async with app.core.sessions() as s:
        assert (await s.get(Difficulty, did)).status == "acknowledged"  # type: ignore[union-attr]
        rows = (await s.execute(select(Outbox).where(Outbox.chat_id == "501"))).scalars().all()
    assert len(rows) == 1 and "已受理" in rows[0].payload["text"]  # the reporter is told via the outbox
    # The chat sees the web's action.
    await leader.send("/difficulties")
    assert "已受理" in leader.last_text
    # And the web sees the chat's: the leader resolves a second one in the chat by button.
    did2 = await add_difficulty(app, world.cadre_ids[0], world.team_id, world.households["张小山"], "缺水")
    await leader.press(DIFFICULTY_ACK.pack(did2))
    page2 = await (await web.get(f"/difficulties/{did2}")).text()
    assert '<span id="status">已受理</span>' in page2
    # Resolve with a note on the web: the reporter is told the note.
    r = await web.post(f"/difficulties/{did2}/resolve", data={"csrf": csrf.group(1), "note": "已送水到户"},
                       allow_redirects=False)
    assert r.status == 303
    async with app.core.sessions() as s:
        d2 = await s.get(Difficulty, did2)
        assert d2 is not None and d2.status == "resolved" and d2.resolution_note == "已送水到户"


async def test_sign_out_everywhere(app: App, world: World, web: TestClient) -> None:
    _, token = await leader_link(app, world)
    await sign_in(web, token)
    csrf = CSRF.search(await (await web.get("/")).text())
    assert csrf
    cookie = web.session.cookie_jar.filter_cookies(web.make_url("/"))["bangfu_web"].value
    r = await web.post("/logout-all", data={"csrf": csrf.group(1)}, allow_redirects=False)
    assert r.status == 303
    # The old cookie (e.g. on another device) no longer works.
    r = await web.get("/", cookies={"bangfu_web": cookie}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/signed-out"


async def test_cadre_cannot_get_a_link(app: App, world: World) -> None:
    chat = Chat(app, "502", "王建国")
    await bind(app, chat, person_id=world.cadre_ids[0])
    await chat.send("/web")
    assert "/login/" not in chat.last_text


async def test_forged_numbers_in_urls_are_not_errors(app: App, world: World, web: TestClient) -> None:
    """Page numbers and ids from the URL: digits such as "²" or "３" pass str.isdigit() but not int();
    they are treated as absent (first page) or not found, never a server error."""
    _, token = await leader_link(app, world)
    await sign_in(web, token)
    for path in ("/households?page=²", "/households?page=３", "/map?cadre=²", "/difficulties?team=²"):
        r = await web.get(path)
        assert r.status == 200, (path, r.status)
    for path in ("/cadres/²", "/households/３"):
        assert (await web.get(path)).status == 404, path
