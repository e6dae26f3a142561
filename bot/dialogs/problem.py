"""/problem (反映困难): household or whole village → category → description → urgency → optional photo.

The difficulty is saved when the photo arrives or is skipped (idempotent on the dialog nonce), and
the team leader is told at once with buttons to acknowledge, assign or resolve.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from bot.core.context import Ctx
from bot.core.dialog import Dialog, Finish, Goto, Next, Retry, State, StepEnum
from bot.core.router import STAFF
from bot.dialogs.inputs import text_input
from bot.dialogs.pickers import ask_household, pick_household
from bot.notices.difficulties import NewDifficulty
from bot.services import difficulties as dsvc
from bot.services.households import OwnHousehold, own_households
from bot.services.media import fetch_photo
from bot.store.enums import DifficultyCategory, Role, Urgency

VILLAGE = "village"
_VILLAGE_WORDS = {"全村", "村里", "整个村", "全村的问题", "村"}


def _typed(ctx: Ctx, typed: str, prefix: str, enum: type[StrEnum]) -> str | None:
    """The enum value whose label the user typed instead of pressing its button."""
    for member in enum:
        if typed and typed in (ctx.t(f"{prefix}.{member.value}"), member.value):
            return member.value
    return None


class Step(StepEnum):
    SCOPE = "scope"
    CATEGORY = "category"
    DESCRIPTION = "description"
    URGENCY = "urgency"
    PHOTO = "photo"


class ProblemDialog(Dialog):
    """反映困难."""

    name = "problem"
    roles: ClassVar[frozenset[Role]] = STAFF
    first_step = Step.SCOPE.value
    title_key = "problem.title"

    async def on_start(self, ctx: Ctx, st: State, args: dict[str, Any]) -> str | None:
        assert ctx.person is not None
        hid = args.get("household_id")
        if hid is not None:
            own = {h.id: h for h in await own_households(ctx.session, ctx.person.id)}
            if hid in own:
                st.set(hh=hid, hh_name=own[hid].head_name)
                st.row.history = [Step.SCOPE.value]
                return Step.CATEGORY.value
        return self.first_step

    async def ask(self, ctx: Ctx, st: State) -> None:
        step = Step(st.step)
        if step is Step.SCOPE:
            extra = [[st.btn(ctx.t("problem.btn_village"), VILLAGE)]]
            await ask_household(ctx, st, "problem.ask_scope", extra)
        elif step is Step.CATEGORY:
            cats = list(DifficultyCategory)
            rows = [
                [st.btn(ctx.t(f"difficulty.category.{c.value}"), f"cat:{c.value}") for c in cats[i : i + 2]]
                for i in range(0, len(cats), 2)
            ]
            ctx.reply("problem.ask_category", st.keyboard(ctx, rows), scope=self._scope(ctx, st))
        elif step is Step.DESCRIPTION:
            ctx.reply("problem.ask_description", st.keyboard(ctx, []))
        elif step is Step.URGENCY:
            rows = [[st.btn(ctx.t(f"difficulty.urgency.{u.value}"), f"urg:{u.value}") for u in Urgency]]
            ctx.reply("problem.ask_urgency", st.keyboard(ctx, rows))
        else:
            ctx.reply(
                "problem.ask_photo", st.keyboard(ctx, [[st.btn(ctx.t("problem.btn_no_photo"), "skip")]])
            )

    def _scope(self, ctx: Ctx, st: State) -> str:
        return st.data.get("hh_name") or ctx.t("problem.whole_village")

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        step = Step(st.step)
        value = st.value(ctx)
        typed = (ctx.inc.text or "").strip()
        if step is Step.SCOPE:
            if value == VILLAGE or (value is None and typed in _VILLAGE_WORDS):
                st.set(hh=None, hh_name=None)
                st.drop("matches", "page")
                return Goto(Step.CATEGORY.value)
            picked = await pick_household(ctx, st, self.ask)
            if not isinstance(picked, OwnHousehold):
                return picked
            st.set(hh=picked.id, hh_name=picked.head_name)
            st.drop("matches", "page")
            return Goto(Step.CATEGORY.value)
        if step is Step.CATEGORY:
            cat = (
                value[4:]
                if value and value.startswith("cat:")
                else _typed(ctx, typed, "difficulty.category", DifficultyCategory)
            )
            if cat not in {c.value for c in DifficultyCategory}:
                return Retry("problem.category_pick")
            st.set(category=cat)
            return Goto(Step.DESCRIPTION.value)
        if step is Step.DESCRIPTION:
            text, retry = text_input(ctx)
            if retry:
                return retry
            st.set(description=text)
            return Goto(Step.URGENCY.value)
        if step is Step.URGENCY:
            urg = (
                value[4:]
                if value and value.startswith("urg:")
                else _typed(ctx, typed, "difficulty.urgency", Urgency)
            )
            if urg not in {u.value for u in Urgency}:
                return Retry("problem.urgency_pick")
            st.set(urgency=urg)
            return Goto(Step.PHOTO.value)
        photos: list[dict[str, Any]] = []
        if ctx.inc.files:
            ref = ctx.inc.files[0]
            photos.append(await fetch_photo(ctx.core.file_source, ctx.core.settings.media_dir, ref, ctx.now))
        elif value != "skip":
            return Retry("problem.photo_hint")
        await self._save(ctx, st, photos)
        return Finish()

    async def _save(self, ctx: Ctx, st: State, photos: list[dict[str, Any]]) -> None:
        assert ctx.person is not None
        d = st.data
        hid = d.get("hh")
        if hid is not None and hid not in {h.id for h in await own_households(ctx.session, ctx.person.id)}:
            ctx.reply("cadre.hh_not_yours_anymore")
            return
        row, created = await dsvc.report(
            ctx.session,
            f"problem:{ctx.account.id}:{st.nonce}",
            ctx.person,
            dsvc.DifficultyInput(hid, d["category"], d["description"], d["urgency"], photos),
            ctx.now,
        )
        if not created:
            ctx.reply("problem.already_saved")
            return
        ctx.audit("difficulty.reported", "difficulty", row.id)
        told = await ctx.notify(NewDifficulty(row))
        ctx.reply("problem.saved" if told else "problem.saved_no_leader", id=row.id)
