"""`bangfu wecom check` (the settings against the API: gettoken and agent/get) and
`bangfu wecom import-contacts` (bind members to roster staff by phone)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bot.i18n import Catalogs, Safe, Translator
from bot.settings import Settings


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("wecom", help="WeCom (企业微信) app: check the settings, import contacts")
    sub = p.add_subparsers(dest="wecom_command", required=True)
    check = sub.add_parser("check", help="validate BANGFU_WECOM_* against the WeCom API (gettoken, agent/get)")
    check.set_defaults(func=_cmd_check)
    imp = sub.add_parser("import-contacts", help="bind WeCom members to roster staff by exact phone number")
    imp.add_argument("--department", type=int, default=1, help="department id to read (with children; default 1)")
    imp.add_argument("--prefer", action="store_true", help="also make WeCom their channel for reminders")
    imp.set_defaults(func=_cmd_import)


def _t(settings: Settings) -> Translator:
    return Catalogs(settings.locales_dir).get(settings.default_language)


def _say(t: Translator, key: str, **args: Any) -> None:
    print(t(key, **{k: Safe(str(v)) for k, v in args.items()}))


def _cmd_check(args: argparse.Namespace) -> int:
    return asyncio.run(check(Settings()))


def _cmd_import(args: argparse.Namespace) -> int:
    return asyncio.run(import_contacts(Settings(), args.department, args.prefer))


async def check(settings: Settings) -> int:
    """gettoken with the corp id and secret, then agent/get with the agent id; the callback crypto
    settings are checked locally (the EncodingAESKey must decode). 0 when all is well."""
    from bot.channels.wecom.api import DEFAULT_URL, WeComAPI
    from bot.channels.wecom.crypto import CallbackCrypto
    from bot.channels.wecom.token import MemoryTokenStore, TokenCache
    from bot.core.types import SendError

    t = _t(settings)
    cfg = settings.require_wecom()
    try:
        CallbackCrypto(cfg.token, cfg.aes_key, cfg.corp_id)
    except ValueError:
        _say(t, "wecom.check.bad_aes_key")
        return 1
    async with WeComAPI(settings.wecom_api_url or DEFAULT_URL, cfg.corp_id, cfg.secret, cfg.agent_id) as api:
        api.tokens = TokenCache(MemoryTokenStore(), api.token_key, api.fetch_token)
        try:
            await api.tokens.token()
        except SendError as e:
            _say(t, "wecom.check.token_failed", error=e)
            return 1
        _say(t, "wecom.check.token_ok", seconds=int(api.tokens.expires_in()))
        try:
            agent = await api.agent()
        except SendError as e:
            _say(t, "wecom.check.agent_failed", agent=cfg.agent_id, error=e)
            return 1
        _say(t, "wecom.check.agent_ok", agent=cfg.agent_id, name=agent.get("name", ""))
    _say(t, "wecom.check.callback", path=cfg.path, listen=settings.wecom_listen)
    return 0


async def import_contacts(settings: Settings, department: int = 1, prefer: bool = False) -> int:
    from bot.channels.wecom.api import make_api
    from bot.channels.wecom.contacts import bind_members, members_with_mobile
    from bot.clock import SystemClock
    from bot.core.types import SendError
    from bot.store.db import create_engine, session_factory
    from bot.store.migrate import upgrade_async

    t = _t(settings)
    await upgrade_async(settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    api = make_api(settings, sessions)
    try:
        try:
            members = await members_with_mobile(api, department)
        except SendError as e:
            _say(t, "wecom.import.failed", error=e)
            return 1
        async with sessions() as s, s.begin():
            r = await bind_members(s, members, SystemClock(settings.timezone).now(), prefer)
    finally:
        await api.close()
        await engine.dispose()
    for userid, name in r.bound:
        _say(t, "wecom.import.bound", userid=userid, name=name)
    _say(t, "wecom.import.summary", members=len(members), bound=len(r.bound), already=r.already,
         unmatched=len(r.unmatched), no_phone=len(r.no_phone), conflicts=len(r.conflicts))
    if r.conflicts:
        _say(t, "wecom.import.conflicts", userids=", ".join(r.conflicts))
    return 0
