"""`bangfu qr`: door-card QR codes pointing at the 微信客服 contact link.

    bangfu qr --village V001                  one poster QR for the village (opens the chat; binds nothing)
    bangfu qr --village V001 --households     one door-card QR per household of the village
    bangfu qr --household H001 --format pdf   one household

A household's QR carries `scene_param=<scene>`: a random 16-character token (kf_scenes), not the
household's code or id, so a QR cannot be guessed from another. Scanning it binds the WeChat user to that
household as a villager (that household's own file only; never over an existing binding) and the
household's cadre is told. A lost or photographed card: `--rotate` gives the household a new scene (the
old QR then binds nobody) — print and hang the new card.
PNG: one file per QR (label under the code); PDF: one page per QR (matplotlib, the CJK font).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bot.settings import Settings


@dataclass(frozen=True)
class Card:
    name: str  # file name stem
    label: str  # printed under the code
    url: str


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("qr", help="print 微信客服 QR codes (per village, or per household for door cards)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--village", metavar="CODE", help="village code (户籍 roster)")
    who.add_argument("--household", metavar="CODE", help="household code (户编号)")
    p.add_argument("--households", action="store_true", help="with --village: one door-card QR per household")
    p.add_argument("--format", choices=("png", "pdf"), default="pdf")
    p.add_argument("--out", type=Path, default=Path("qr"), help="folder (png) or file (pdf); default ./qr")
    p.add_argument("--rotate", action="store_true", help="new scenes: the households' old QR codes stop binding")
    p.set_defaults(func=_cmd_qr)


def _cmd_qr(args: argparse.Namespace) -> int:
    return asyncio.run(make_qr(Settings(), village=args.village, household=args.household,
                               per_household=args.households, fmt=args.format, out=args.out, rotate=args.rotate))


def with_scene(link: str, scene: str) -> str:
    return f"{link}{'&' if '?' in link else '?'}scene_param={quote(scene, safe='')}"


async def contact_link(settings: Settings, sessions: Any) -> str | None:
    if settings.wechat_kf_contact_url:
        return settings.wechat_kf_contact_url
    if not settings.wechat_kf_open_kfid or not settings.wecom_corp_id:
        return None
    from bot.channels.wechat_kf.api import add_contact_way
    from bot.channels.wecom.api import make_api

    api = make_api(settings, sessions)
    try:
        return await add_contact_way(api, settings.wechat_kf_open_kfid)
    finally:
        await api.close()


async def cards(session: Any, now: Any, link: str, *, village: str | None, household: str | None,
                per_household: bool, rotate: bool) -> list[Card]:
    from sqlalchemy import select

    from bot.store.models import Household, KfScene, Village

    if household is not None:
        households = list((await session.execute(select(Household).where(Household.code == household))).scalars())
    else:
        v = (await session.execute(select(Village).where(Village.code == village))).scalar_one_or_none()
        if v is None:
            return []
        if not per_household:
            scene = "v" + secrets.token_urlsafe(12)[:15]
            session.add(KfScene(scene=scene, village_id=v.id, household_id=None, created_at=now))
            return [Card(v.code, f"{v.name} · 帮扶通", with_scene(link, scene))]
        households = list((await session.execute(
            select(Household).where(Household.village_id == v.id).order_by(Household.code))).scalars())
    out = []
    for h in households:
        sc = (await session.execute(select(KfScene).where(KfScene.household_id == h.id))).scalar_one_or_none()
        if sc is not None and rotate:
            await session.delete(sc)
            await session.flush()
            sc = None
        if sc is None:
            sc = KfScene(scene=secrets.token_urlsafe(12)[:16], village_id=h.village_id, household_id=h.id,
                         created_at=now)
            session.add(sc)
        out.append(Card(h.code, f"{h.head_name}户 · {h.code}", with_scene(link, sc.scene)))
    await session.flush()
    return out


def png(card: Card) -> bytes:
    """The QR with its label underneath (Pillow, the CJK font when there is one)."""
    import segno
    from PIL import Image, ImageDraw, ImageFont

    from bot.fonts import cjk_font

    buf = io.BytesIO()
    segno.make(card.url, error="m").save(buf, kind="png", scale=10, border=4)
    qr = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    font_info = cjk_font()
    font: Any = ImageFont.truetype(font_info.path, 28) if font_info else ImageFont.load_default()
    img = Image.new("RGB", (qr.width, qr.height + 60), "white")
    img.paste(qr, (0, 0))
    draw = ImageDraw.Draw(img)
    w = draw.textlength(card.label, font=font)
    draw.text(((img.width - w) / 2, qr.height + 10), card.label, fill="black", font=font)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def pdf(cards_: list[Card], path: Path) -> None:
    """One A6 page per QR: the code and its label (matplotlib, the CJK font)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import segno
    from matplotlib.backends.backend_pdf import PdfPages

    from bot.fonts import cjk_font

    font = cjk_font()
    family = font.families() if font else ["DejaVu Sans"]
    with PdfPages(path) as pages:
        for c in cards_:
            fig = plt.figure(figsize=(4.13, 5.83))  # A6
            ax = fig.add_axes((0.1, 0.25, 0.8, 0.8 * 4.13 / 5.83))
            matrix = [[1 - int(bit) for bit in row] for row in segno.make(c.url, error="m").matrix]
            ax.imshow(matrix, cmap="gray", interpolation="nearest")
            ax.set_axis_off()
            fig.text(0.5, 0.15, c.label, ha="center", fontsize=14, family=family)
            fig.text(0.5, 0.08, "微信扫一扫 · 帮扶通", ha="center", fontsize=10, family=family)
            pages.savefig(fig)
            plt.close(fig)


def write_cards(made: list[Card], fmt: str, out: Path) -> Path:
    """PNG files into the folder `out`, or one PDF; where they went."""
    if fmt == "png":
        out.mkdir(parents=True, exist_ok=True)
        for c in made:
            (out / f"{c.name}.png").write_bytes(png(c))
        return out
    where = out if out.suffix == ".pdf" else out.with_suffix(".pdf")
    where.parent.mkdir(parents=True, exist_ok=True)
    pdf(made, where)
    return where


async def make_qr(settings: Settings, *, village: str | None, household: str | None, per_household: bool,
                  fmt: str, out: Path, rotate: bool = False) -> int:
    from bot.clock import SystemClock
    from bot.i18n import Catalogs, Safe
    from bot.store.db import create_engine, session_factory

    t = Catalogs(settings.locales_dir).get(settings.default_language)
    engine = create_engine(settings.database_url)
    try:
        sessions = session_factory(engine)
        link = await contact_link(settings, sessions)
        if link is None:
            print(t("kf.qr.no_link"))
            return 2
        async with sessions() as s, s.begin():
            made = await cards(s, SystemClock(settings.timezone).now(), link, village=village, household=household,
                               per_household=per_household, rotate=rotate)
    finally:
        await engine.dispose()
    if not made:
        print(t("kf.qr.none"))
        return 1
    where = await asyncio.to_thread(write_cards, made, fmt, out)
    print(t("kf.qr.written", n=len(made), path=Safe(str(where))))
    return 0
