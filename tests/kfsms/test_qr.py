"""`bangfu qr`: door cards per household (random scenes, stable until rotated), a village poster."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from bot.channels.wechat_kf.cli import make_qr
from bot.core.bootstrap import App
from bot.settings import Settings
from bot.store.models import KfScene
from tests.conftest import World

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
LINK = "https://work.weixin.qq.com/kfid/kfc0123456789abcdef"


async def scenes(app: App) -> dict[int | None, str]:
    async with app.core.sessions() as s:
        return {r.household_id: r.scene for r in (await s.execute(select(KfScene))).scalars()}


async def test_door_cards_png_and_pdf(app: App, world: World, settings: Settings, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    st = settings.model_copy(update={"wechat_kf_contact_url": LINK})
    assert await make_qr(st, village="V001", household=None, per_household=True, fmt="png", out=tmp_path / "png") == 0
    pngs = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert pngs == ["H001.png", "H002.png", "H003.png", "H004.png"]
    assert all((tmp_path / "png" / n).read_bytes().startswith(b"\x89PNG") for n in pngs)
    first = await scenes(app)
    assert len(first) == 4 and len(set(first.values())) == 4 and all(len(s) == 16 for s in first.values())
    # Printing again keeps each household's scene (cards already on doors stay valid) ...
    assert await make_qr(st, village=None, household="H001", per_household=False, fmt="pdf", out=tmp_path / "h1") == 0
    assert (tmp_path / "h1.pdf").read_bytes().startswith(b"%PDF")
    assert await scenes(app) == first
    # ... until rotated: the old QR then binds nobody.
    await make_qr(st, village=None, household="H001", per_household=False, fmt="png", out=tmp_path / "r", rotate=True)
    after = await scenes(app)
    hh = world.households["张大山"]
    assert after[hh] != first[hh] and first[hh] not in after.values()
    assert "4" in capsys.readouterr().out


async def test_village_poster_binds_nobody(app: App, world: World, settings: Settings, tmp_path: Path) -> None:
    from bot.channels.wechat_kf.cli import cards

    async with app.core.sessions() as s, s.begin():
        [card] = await cards(s, app.core.clock.now(), LINK + "?x=1", village="V001", household=None,
                             per_household=False, rotate=False)
    q = parse_qs(urlparse(card.url).query)
    assert q["x"] == ["1"] and len(q["scene_param"][0]) == 16
    assert (await scenes(app)) == {None: q["scene_param"][0]}
    st = settings.model_copy(update={"wechat_kf_contact_url": None, "wechat_kf_open_kfid": None})
    assert await make_qr(st, village="V001", household=None, per_household=False, fmt="pdf", out=tmp_path / "x") == 2
