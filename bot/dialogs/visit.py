"""/visit (记录走访): household → date → kind → what was done → needs → photos → location → summary.

Every entered value lives in the dialog's persisted data, so a wrong answer (Retry), a restart or a
parked draft loses nothing. The summary's save button is handled by the visits router
(SAVE_VISIT, "vs:<nonce>") rather than as a dialog button, so that a second press after saving can be told
"已保存过了" instead of "button expired".
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, ClassVar

from bot.buttons import SAVE_VISIT
from bot.core.context import Ctx
from bot.core.dialog import Dialog, Finish, Goto, Next, Replace, Retry, State, StepEnum, reply_keyboard
from bot.core.router import STAFF
from bot.core.types import Button, KeyButton, RemoveKeyboard
from bot.dialogs.inputs import text_input
from bot.dialogs.pickers import ask_household, cadre_rows, pick_household
from bot.notices.visits import ConfirmRequest, FarVisit
from bot.services import visits as vs
from bot.services.dates import parse_date
from bot.services.households import OwnHousehold, household_since, match_households, own_from_rows
from bot.services.media import fetch_photo
from bot.services.stray import is_number
from bot.services.texts import distance_text, fmt_date, kinds_text
from bot.store.enums import LocationStatus, Role, VisitKind
from bot.store.models import Household, Visit

_NO_NEEDS = {"没有", "无", "没", "暂无", "none", "no"}
MAX_PHOTOS = 10


class Step(StepEnum):
    HOUSEHOLD = "household"
    DATE = "date"
    KIND = "kind"
    DONE = "done"
    NEEDS = "needs"
    PHOTOS = "photos"
    LOCATION = "location"
    SUMMARY = "summary"


EDITABLE = (Step.HOUSEHOLD, Step.DATE, Step.KIND, Step.DONE, Step.NEEDS, Step.PHOTOS, Step.LOCATION)


# ------------------------------------------------------------------ the dialog
class VisitDialog(Dialog):
    """记录走访."""

    name = "visit"
    roles: ClassVar[frozenset[Role]] = STAFF
    first_step = Step.HOUSEHOLD.value
    title_key = "visit.title"

    async def on_start(self, ctx: Ctx, st: State, args: dict[str, Any]) -> str | None:
        assert ctx.person is not None
        # The rows the household prompt lists (kept for it in st.scratch): one read for both.
        households = own_from_rows(await cadre_rows(ctx, st))
        if not households:
            ctx.reply("cadre.no_households")
            return None
        hid = args.get("household_id")
        chosen = next((h for h in households if h.id == hid), None)
        query = str(args.get("query") or "").strip()[:64]
        if chosen is None and query:
            # "/visit 张大山": the name typed with the command.
            found = match_households(households, query)
            if len(found) == 1:
                chosen = found[0]
            elif found:
                st.set(matches=[h.id for h in found], page=0)
                ctx.reply("cadre.hh_ambiguous", text=query, n=len(found))
            else:
                ctx.reply("cadre.hh_not_found", text=query)
        if chosen is None and len(households) == 1:
            chosen = households[0]
        if chosen is not None:
            self._set_household(ctx, st, chosen)
            # Back from the date step can still change the household.
            st.row.history = [Step.HOUSEHOLD.value]
            return Step.DATE.value
        return self.first_step

    def _set_household(self, ctx: Ctx, st: State, h: OwnHousehold) -> None:
        # h.since: the current pairing's start, read with the household (vs.pairing_start's answer).
        st.set(hh=h.id, hh_name=h.head_name, since=h.since.isoformat())
        st.drop("matches", "page")

    def _next(self, st: State, step: Step) -> Goto:
        """The following step, or straight back to the summary when a field was being edited."""
        if st.data.get("editing"):
            st.drop("editing")
            return Goto(Step.SUMMARY.value)
        return Goto(step.value)

    # -------------------------------------------------------------- prompts
    async def ask(self, ctx: Ctx, st: State) -> None:
        step = Step(st.step)
        name = st.data.get("hh_name", "")
        if step is Step.HOUSEHOLD:
            await ask_household(ctx, st, "visit.ask_household")
        elif step is Step.DATE:
            rows = [[st.btn(ctx.t(f"visit.rel.{n}"), f"rel:{n}") for n in (0, 1, 2)]]
            ctx.reply("visit.ask_date", st.keyboard(ctx, rows), name=name)
        elif step is Step.KIND:
            await self._ask_kinds(ctx, st)
        elif step is Step.DONE:
            ctx.reply("visit.ask_done", st.keyboard(ctx, []), name=name)
        elif step is Step.NEEDS:
            ctx.reply("visit.ask_needs", st.keyboard(ctx, [[st.btn(ctx.t("visit.btn_no_needs"), "none")]]))
        elif step is Step.PHOTOS:
            n = len(st.data.get("photos", []))
            ctx.reply(self._photo_key(ctx, n), self._photo_keyboard(ctx, st, n), n=n)
        elif step is Step.LOCATION:
            ctx.reply(
                "visit.ask_location",
                reply_keyboard(
                    ctx,
                    KeyButton(ctx.t("cadre.btn_send_location"), request_location=True),
                    KeyButton(ctx.t("cadre.btn_no_signal")),
                ),
            )
        elif step is Step.SUMMARY:
            await self._summary(ctx, st)

    async def _ask_kinds(self, ctx: Ctx, st: State) -> None:
        """Kind buttons that toggle (✅ on the chosen ones; a visit can be several kinds) and 选好了."""
        kinds = list(VisitKind)
        season = vs.current_season(ctx.core.services.rules, self._date(st) or ctx.today)
        if season is not None:
            # The season's own kind first: it is the likely answer inside a window.
            kinds.sort(key=lambda k: k.value != season.name)
        chosen = _chosen_kinds(st)

        def label(kind: str) -> str:
            # Button labels are plain text, not HTML: format without escaping.
            name = ctx.t.raw(f"visit.kind.{kind}")
            return ctx.t.raw("visit.kind_chosen").format(kind=name) if kind in chosen else name

        rows = [
            [st.btn(label(k.value), f"kind:{k.value}") for k in kinds[i : i + 2]]
            for i in range(0, len(kinds), 2)
        ]
        rows.append([st.btn(ctx.t("visit.btn_kinds_done"), "kinds_done")])
        if not chosen:
            ctx.reply("visit.ask_kind", st.keyboard(ctx, rows))
        else:
            key = "visit.ask_kinds_more_editing" if st.data.get("editing") else "visit.ask_kinds_more"
            ctx.reply(key, st.keyboard(ctx, rows), kinds=kinds_text(ctx.t, chosen))

    def _photo_key(self, ctx: Ctx, n: int) -> str:
        if n:
            return "visit.ask_photos_more"
        return "visit.ask_photos_required" if ctx.core.settings.visit_photo_required else "visit.ask_photos"

    def _photo_keyboard(self, ctx: Ctx, st: State, n: int) -> Any:
        rows: list[list[Button]] = []
        if n:
            rows.append([st.btn(ctx.t("visit.btn_photos_done"), "done")])
            rows.append([st.btn(ctx.t("visit.btn_photos_clear"), "clear")])
        elif not ctx.core.settings.visit_photo_required:
            rows.append([st.btn(ctx.t("visit.btn_photos_skip"), "done")])
        return st.keyboard(ctx, rows)

    def _date(self, st: State) -> date | None:
        raw = st.data.get("date")
        return date.fromisoformat(raw) if raw else None

    async def _summary(self, ctx: Ctx, st: State) -> None:
        d = st.data
        household = await ctx.session.get(Household, d["hh"])
        loc = d.get("loc")
        if loc is None:
            where = ctx.t("visit.loc.none")
        else:
            status, dist = (
                vs.locate(household, loc[0], loc[1], ctx.core.settings.visit_far_meters)
                if household
                else (LocationStatus.OK.value, None)
            )
            if status == LocationStatus.FAR.value:
                where = ctx.t("visit.loc.far", distance=distance_text(ctx.t, dist or 0))
            elif dist is not None:
                where = ctx.t("visit.loc.ok_dist", distance=distance_text(ctx.t, dist))
            else:
                where = ctx.t("visit.loc.ok")
        visit_date = self._date(st)
        card = ctx.t(
            "visit.summary",
            name=d.get("hh_name", ""),
            date=fmt_date(ctx, visit_date) if visit_date else "",
            kind=kinds_text(ctx.t, _chosen_kinds(st)),
            done=d.get("done", ""),
            needs=d.get("needs") or ctx.t("visit.no_needs"),
            photos=len(d.get("photos", [])),
            where=where,
        )
        edits = [st.btn(ctx.t(f"visit.edit.{s.value}"), f"edit:{s.value}") for s in EDITABLE]
        rows = [
            [Button(ctx.t("visit.btn_save"), SAVE_VISIT.pack(st.nonce))],
            edits[0:3],
            edits[3:5],
            edits[5:7],
        ]
        ctx.reply_text(card, st.keyboard(ctx, rows))

    # -------------------------------------------------------------- input
    async def on_input(self, ctx: Ctx, st: State) -> Next:
        step = Step(st.step)
        if ctx.inc.files and step not in (Step.HOUSEHOLD, Step.PHOTOS):
            # Photos sent ahead of their step are kept, not refused: taking them is the hard part.
            photos = await self._add_photos(ctx, st)
            if isinstance(photos, Retry):
                return photos
            return Retry("visit.photo_early", {"n": len(photos)})
        if step is Step.HOUSEHOLD:
            picked = await pick_household(ctx, st, self.ask)
            if not isinstance(picked, OwnHousehold):
                return picked
            self._set_household(ctx, st, picked)
            visit_date = self._date(st)
            if st.data.get("editing") and visit_date and not self._date_ok(st, visit_date):
                # The new pairing began after the date entered: the date must be asked again.
                st.drop("date")
                ctx.reply("visit.date_reask_after_household")
                return Goto(Step.DATE.value)
            return self._next(st, Step.DATE)
        if step is Step.DATE:
            return self._on_date(ctx, st)
        if step is Step.KIND:
            return await self._on_kind(ctx, st)
        if step is Step.DONE:
            text, retry = text_input(ctx)
            if retry:
                return retry
            st.set(done=text)
            return self._next(st, Step.NEEDS)
        if step is Step.NEEDS:
            typed = (ctx.inc.text or "").strip().lower()
            if st.value(ctx) == "none" or typed in _NO_NEEDS or typed == ctx.t("visit.btn_no_needs").lower():
                st.set(needs="")
                return self._next(st, Step.PHOTOS)
            text, retry = text_input(ctx)
            if retry:
                return retry
            st.set(needs=text)
            return self._next(st, Step.PHOTOS)
        if step is Step.PHOTOS:
            return await self._on_photos(ctx, st)
        if step is Step.LOCATION:
            return self._on_location(ctx, st)
        return self._on_summary(ctx, st)

    def _date_ok(self, st: State, d: date) -> bool:
        since = st.data.get("since")
        return since is None or d >= date.fromisoformat(since)

    def _on_date(self, ctx: Ctx, st: State) -> Next:
        value = st.value(ctx)
        today = ctx.today
        if value is not None and value.startswith("rel:") and value[4:] in ("0", "1", "2"):
            d: date | None = today - timedelta(days=int(value[4:]))
        elif value is not None:
            return Retry("visit.date_invalid")
        else:
            d = parse_date(ctx.inc.text or "", today)
        if d is None:
            return Retry("visit.date_invalid", {"text": (ctx.inc.text or "")[:30]})
        if d > today:
            return Retry("visit.date_future", {"date": fmt_date(ctx, d)})
        if not self._date_ok(st, d):
            since = date.fromisoformat(st.data["since"])
            return Retry(
                "visit.date_before_pairing", {"date": fmt_date(ctx, d), "since": fmt_date(ctx, since)}
            )
        st.set(date=d.isoformat())
        return self._next(st, Step.KIND)

    async def _on_kind(self, ctx: Ctx, st: State) -> Next:
        """A kind button (or its label typed) toggles that kind; 选好了 goes on. Text typed once a kind is
        chosen is taken as the answer to the next question (what was done), as a cadre in a hurry means."""
        value = st.value(ctx)
        typed = (ctx.inc.text or "").strip()
        kind: str | None = None
        if value is not None and value.startswith("kind:") and value[5:] in {k.value for k in VisitKind}:
            kind = value[5:]
        elif value is None:
            for k in VisitKind:
                if typed and typed in (ctx.t(f"visit.kind.{k.value}"), k.value):
                    kind = k.value
        chosen = _chosen_kinds(st)
        if kind is not None:
            chosen = [k for k in chosen if k != kind] if kind in chosen else [*chosen, kind]
            st.set(kinds=vs.normalize_kinds(chosen))  # shown and stored in one order
            st.drop("kind")
            await self.ask(ctx, st)
            return Replace()
        if value == "kinds_done" or (value is None and typed.lower() in _typed_kinds_done(ctx)):
            return self._next(st, Step.DONE) if chosen else Retry("visit.kind_pick")
        if value is None and is_number(typed):
            return Retry("core.stray.pick", {"text": typed[:20]})
        if value is not None or not chosen or st.data.get("editing"):
            return Retry("visit.kind_pick")
        text, retry = text_input(ctx)
        if retry:
            return retry
        st.set(done=text)
        st.row.history = [*st.row.history, Step.KIND.value]  # back from the needs step returns here
        st.row.step = Step.DONE.value
        return self._next(st, Step.NEEDS)

    async def _add_photos(self, ctx: Ctx, st: State) -> list[dict[str, Any]] | Retry:
        """Download and keep the photos of this update (at most MAX_PHOTOS in all)."""
        photos: list[dict[str, Any]] = list(st.data.get("photos", []))
        for ref in ctx.inc.files:
            if len(photos) >= MAX_PHOTOS:
                st.set(photos=photos)
                return Retry("visit.photos_max", {"max": MAX_PHOTOS})
            if any(p["file_id"] == ref.file_id for p in photos):
                continue  # the same message redelivered by the client
            photos.append(await fetch_photo(ctx.core.file_source, ctx.core.settings.media_dir, ref, ctx.now))
        st.set(photos=photos)
        return photos

    async def _on_photos(self, ctx: Ctx, st: State) -> Next:
        if ctx.inc.files:
            added = await self._add_photos(ctx, st)
            if isinstance(added, Retry):
                return added
            n = len(added)
            ctx.reply("visit.photo_received", self._photo_keyboard(ctx, st, n), n=n)
            return Replace()
        photos = st.data.get("photos", [])
        value = st.value(ctx)
        typed = (ctx.inc.text or "").strip().lower()
        if value is None and typed in _typed_done(ctx):
            value = "done"
        if value == "clear":
            st.set(photos=[])
            ctx.reply("visit.photos_cleared")
            await self.ask(ctx, st)
            return Replace()
        if value == "done":
            if not photos and ctx.core.settings.visit_photo_required:
                return Retry("visit.photo_required")
            return self._next(st, Step.LOCATION)
        return Retry("visit.photos_hint")

    def _on_location(self, ctx: Ctx, st: State) -> Next:
        loc = ctx.inc.location
        if loc is not None:
            if not vs.valid_coordinates(loc.lat, loc.lon):
                return Retry("cadre.location_invalid")
            st.set(loc=[loc.lat, loc.lon])
            ctx.reply("visit.location_got", RemoveKeyboard())
            return self._next(st, Step.SUMMARY)
        text = (ctx.inc.text or "").strip()
        if text and text == ctx.t("cadre.btn_no_signal"):
            st.set(loc=None)
            ctx.reply("visit.location_skipped", RemoveKeyboard())
            return self._next(st, Step.SUMMARY)
        return Retry("cadre.location_hint")

    def _on_summary(self, ctx: Ctx, st: State) -> Next:
        value = st.value(ctx)
        if value is not None and value.startswith("edit:") and value[5:] in {s.value for s in EDITABLE}:
            st.set(editing=True)
            return Goto(value[5:])
        return Retry("visit.summary_hint")

    # -------------------------------------------------------------- save
    async def save(self, ctx: Ctx, st: State) -> Finish:
        """Save the visit (idempotent on the dialog nonce), tell the leader about a far location and
        ask a bound villager to confirm."""
        assert ctx.person is not None
        d = st.data
        household, since = await household_since(ctx.session, d.get("hh"), ctx.person.id)  # one statement
        visit_date = self._date(st)
        if household is None or since is None:
            ctx.reply("cadre.hh_not_yours_anymore", RemoveKeyboard())
            return Finish()
        kinds = _chosen_kinds(st)
        if visit_date is None or not kinds or "done" not in d:
            ctx.reply("visit.incomplete")
            return Finish()
        loc = d.get("loc")
        visit, created = await vs.save_visit(
            ctx.session,
            idem_key(ctx.account.id, st.nonce),
            ctx.person.id,
            household,
            vs.VisitInput(
                household_id=household.id,
                visit_date=visit_date,
                kind=vs.main_kind(kinds, vs.current_season(ctx.core.services.rules, visit_date)),
                kinds=kinds,
                done=d["done"],
                needs=d.get("needs", ""),
                lat=loc[0] if loc else None,
                lon=loc[1] if loc else None,
                photos=list(d.get("photos", [])),
            ),
            ctx.core.settings.visit_far_meters,
            ctx.now,
        )
        if not created:
            ctx.reply("visit.already_saved")
            return Finish()
        await after_save(ctx, visit, household)
        return Finish()


async def after_save(ctx: Ctx, visit: Visit, household: Household) -> None:
    """Confirm to the cadre; flag a far location to the leader; ask the household to confirm."""
    assert ctx.person is not None
    ctx.answer_callback("visit.saved_toast")
    key = {
        LocationStatus.FAR.value: "visit.saved_far",
        LocationStatus.NONE.value: "visit.saved_no_location",
    }.get(visit.location_status, "visit.saved")
    ctx.reply(
        key,
        RemoveKeyboard(),
        name=household.head_name,
        date=fmt_date(ctx, visit.visit_date),
        distance=distance_text(ctx.t, visit.distance_m or 0),
    )
    ctx.audit("visit.saved", "visit", visit.id, household=household.id, location=visit.location_status)
    if visit.location_status == LocationStatus.FAR.value:
        await ctx.notify(FarVisit(ctx.person, household, visit))
    await ctx.notify(ConfirmRequest(visit, ctx.person))


def _chosen_kinds(st: State) -> list[str]:
    """The kinds chosen so far (a draft from before kinds were a list: its one kind)."""
    kinds = st.data.get("kinds")
    if kinds is None:
        kinds = [st.data["kind"]] if st.data.get("kind") else []
    return [k for k in kinds if k in VisitKind._value2member_map_]


def _typed_kinds_done(ctx: Ctx) -> set[str]:
    """Words a cadre may type instead of pressing 选好了 at the kind step."""
    return {ctx.t("visit.btn_kinds_done").lower(), "选好了", "好了", "完成", "done"}


def _typed_done(ctx: Ctx) -> set[str]:
    """Words a cadre may type instead of pressing 完成 / 跳过 at the photo step."""
    labels = (ctx.t("visit.btn_photos_done"), ctx.t("visit.btn_photos_skip"))
    return {x.lower() for x in labels} | {"完成", "好了", "跳过", "不拍", "不拍照", "done", "skip"}


def idem_key(account_id: int, nonce: str) -> str:
    """The idempotency key of the visit a dialog instance saves."""
    return f"visit:{account_id}:{nonce}"
