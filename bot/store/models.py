"""SQLAlchemy 2 models: the whole schema. Alembic migrations in bot/store/migrations own it in databases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use an aware UTC datetime from the clock")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Timestamps are stored as aware UTC datetimes.
TS = UTCDateTime()
# BigInteger ids on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
ID = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON, datetime: TS}


class Village(Base):
    __tablename__ = "villages"
    # The web's household lists sorted by village walk this (then each village's households) and stop after a page.
    __table_args__ = (Index("ix_villages_name_id", "name", "id"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    township: Mapped[str] = mapped_column(String(64), default="")
    county: Mapped[str] = mapped_column(String(64), default="")
    county_code: Mapped[str | None] = mapped_column(String(16))
    groups_count: Mapped[int] = mapped_column(Integer, default=0)  # 村民小组
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)


class Team(Base):
    """A work team (工作队) stationed in a village."""

    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    leader_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", use_alter=True, name="fk_teams_leader_id_people")
    )
    township_contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", use_alter=True, name="fk_teams_township_contact_id_people")
    )
    village: Mapped[Village | None] = relationship(lazy="raise")


class Person(Base):
    """Someone on the roster: cadre, team leader, township contact, admin, or villager."""

    __tablename__ = "people"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    role: Mapped[str] = mapped_column(String(16), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    work_unit: Mapped[str] = mapped_column(String(128), default="")  # 派出单位
    language: Mapped[str | None] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime | None] = mapped_column(TS)
    # The channel reminders go to when the person is bound on several ("wecom", "telegram"); None: all.
    preferred_channel: Mapped[str | None] = mapped_column(String(16))


class Household(Base):
    """一户一档: the household file."""

    __tablename__ = "households"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # stable roster key (户编号)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    group_no: Mapped[int | None] = mapped_column(Integer)  # 村民小组
    head_name: Mapped[str] = mapped_column(String(64), index=True)
    head_id_number: Mapped[str | None] = mapped_column(String(18))  # masked unless full storage is on
    # HMAC-SHA256 of the full ID number keyed by Settings.id_hash_key (branch "monitoring"): matches
    # department lists without keeping the number.
    head_id_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    members_count: Mapped[int] = mapped_column(Integer, default=1)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    address: Mapped[str] = mapped_column(String(255), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    poverty_causes: Mapped[list[Any]] = mapped_column(JSON, default=list)  # PovertyCause values
    status: Mapped[str] = mapped_column(String(16), default="lifted")  # HouseholdStatus
    registered_poor: Mapped[bool] = mapped_column(Boolean, default=True)  # 建档立卡
    income_per_head: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    income_year: Mapped[int | None] = mapped_column(Integer)
    plan: Mapped[str] = mapped_column(Text, default="")  # 一户一策
    updated_at: Mapped[datetime | None] = mapped_column(TS)
    members: Mapped[list[HouseholdMember]] = relationship(
        back_populates="household", lazy="raise", cascade="all, delete-orphan", order_by="HouseholdMember.id"
    )


class HouseholdMember(Base):
    __tablename__ = "household_members"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    relation: Mapped[str] = mapped_column(String(16), default="")  # 与户主关系
    gender: Mapped[str | None] = mapped_column(String(4))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    health: Mapped[str] = mapped_column(String(32), default="")  # 健康状况
    education: Mapped[str] = mapped_column(String(32), default="")
    occupation: Mapped[str] = mapped_column(String(64), default="")
    id_number: Mapped[str | None] = mapped_column(String(18))  # always masked (last four)
    # HMAC-SHA256 of the full ID number (Settings.id_hash_key), as households.head_id_hash: a department list
    # naming a member (a patient, a pupil, a disabled person) finds the household (branch "members_id").
    id_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    household: Mapped[Household] = relationship(back_populates="members", lazy="raise")


class Pairing(Base):
    """Cadre ↔ household with start and end, so history survives a hand-over."""

    __tablename__ = "pairings"
    __table_args__ = (Index("ix_pairings_cadre_active", "cadre_id", "end_date"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)  # None: current
    note: Mapped[str] = mapped_column(String(255), default="")


def _kinds_default(context: Any) -> list[str]:
    """A visit inserted with only `kind` (older code, the demo, imports) has that one kind."""
    return [context.get_current_parameters()["kind"]]


class Visit(Base):
    """走访: one visit to a household."""

    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_household_date", "household_id", "visit_date"),
        # scheduler: recent visits by date (overdue anti-join, visits per cadre per week), index-only
        Index("ix_visits_date_household_cadre", "visit_date", "household_id", "cadre_id"),
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    idem_key: Mapped[str] = mapped_column(String(64), unique=True)  # one draft saves at most one visit
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    cadre_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    visit_date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))  # VisitKind: the main one (the season's when chosen)
    # Every kind the visit was (a visit can be 春耕走访 and 政策宣讲 at once); always includes `kind`.
    kinds: Mapped[list[Any]] = mapped_column(JSON, default=_kinds_default)
    done: Mapped[str] = mapped_column(Text, default="")
    needs: Mapped[str] = mapped_column(Text, default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    location_status: Mapped[str] = mapped_column(String(8), default="none")  # LocationStatus
    distance_m: Mapped[float | None] = mapped_column(Float)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    villager_confirmed: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(TS)


class Photo(Base):
    """A photo attached to a visit or a difficulty: the channel's file id plus a local copy."""

    __tablename__ = "photos"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"), index=True)
    difficulty_id: Mapped[int | None] = mapped_column(
        ForeignKey("difficulties.id", ondelete="CASCADE"), index=True
    )
    file_id: Mapped[str] = mapped_column(String(255))
    file_unique_id: Mapped[str | None] = mapped_column(String(128))
    local_path: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TS)


class CheckIn(Base):
    """驻村打卡: a village-day check-in, at most one per cadre per day."""

    __tablename__ = "checkins"
    __table_args__ = (
        UniqueConstraint("cadre_id", "day"),
        Index("ix_checkins_day_cadre", "day", "cadre_id"),  # scheduler: check-ins per cadre in a week
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    day: Mapped[date] = mapped_column(Date, index=True)
    at: Mapped[datetime] = mapped_column(TS)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    # Metres from the village's recorded point (None: no location, or the village has no point).
    distance_m: Mapped[float | None] = mapped_column(Float)


class Difficulty(Base):
    """问题台账: a difficulty that needs someone above the cadre."""

    __tablename__ = "difficulties"
    # The web's difficulty list (oldest / newest first) walks this instead of sorting the county's rows.
    __table_args__ = (Index("ix_difficulties_created_id", "created_at", "id"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    idem_key: Mapped[str] = mapped_column(String(64), unique=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    category: Mapped[str] = mapped_column(String(16))  # DifficultyCategory
    description: Mapped[str] = mapped_column(Text)
    urgency: Mapped[str] = mapped_column(String(8), default="normal")  # Urgency
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # DifficultyStatus
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    resolution_note: Mapped[str] = mapped_column(Text, default="")
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)  # 0 leader, 1 township
    created_at: Mapped[datetime] = mapped_column(TS)
    acknowledged_at: Mapped[datetime | None] = mapped_column(TS)
    resolved_at: Mapped[datetime | None] = mapped_column(TS)


class MonitorCase(Base):
    """防止返贫动态监测: one household's case, from the first clue to risk elimination (branch "monitoring").

    Nothing is deleted: every change is a MonitorEvent row; a rejected or closed case stays."""

    __tablename__ = "monitor_cases"
    __table_args__ = (
        Index("ix_monitor_cases_open_due", "open", "step_due"),
        # the dashboard's board: each column's first cards (open, step, soonest due first) as an index range
        Index("ix_monitor_cases_board", "open", "step", "step_due", "id"),
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # MonitorSource
    department: Mapped[str] = mapped_column(String(16), default="")  # 医保/民政/残联/教育 for department data
    kind: Mapped[str | None] = mapped_column(String(16))  # MonitorKind, decided at the home check
    risks: Mapped[list[Any]] = mapped_column(JSON, default=list)  # MonitorRisk values
    phase: Mapped[str] = mapped_column(String(8), default="identify")  # MonitorPhase
    step: Mapped[str] = mapped_column(String(16))  # MonitorStep
    open: Mapped[bool] = mapped_column(Boolean, default=True)  # False once CLOSED or REJECTED
    step_started: Mapped[date] = mapped_column(Date)
    step_due: Mapped[date | None] = mapped_column(Date)
    identify_due: Mapped[date | None] = mapped_column(Date)  # first clue + the identification clock
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)  # 0 owner, 1 next level, 2 county
    head_name: Mapped[str] = mapped_column(String(64), default="")
    phone: Mapped[str | None] = mapped_column(String(20))
    id_masked: Mapped[str | None] = mapped_column(String(18))
    id_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    photo_file_id: Mapped[str | None] = mapped_column(String(255))
    reporter_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    reporter_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    screening: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the form as filled at the home check
    income_per_head: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    labour_count: Mapped[int | None] = mapped_column(Integer)  # working-age labour in the household
    income_above_since: Mapped[date | None] = mapped_column(Date)  # first follow-up above the line, in a row
    expense_solved: Mapped[bool] = mapped_column(Boolean, default=False)  # rigid-expense problem solved
    guarantees_secured: Mapped[bool] = mapped_column(Boolean, default=False)  # 三保障 + drinking water
    opened_at: Mapped[datetime] = mapped_column(TS)
    identified_on: Mapped[date | None] = mapped_column(Date)  # entered monitoring (县级确认)
    last_follow_up: Mapped[date | None] = mapped_column(Date)
    closed_at: Mapped[datetime | None] = mapped_column(TS)


class MonitorEvent(Base):
    """The case's history: who did what, when, with what result. Only ever appended."""

    __tablename__ = "monitor_events"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("monitor_cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(TS)
    actor_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    phase: Mapped[str] = mapped_column(String(8))
    step: Mapped[str] = mapped_column(String(16))  # the step acted on
    action: Mapped[str] = mapped_column(String(16))  # open/advance/send_back/reject/measure/follow_up/close...
    result: Mapped[str] = mapped_column(Text, default="")  # the reason, the finding, the meeting record
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class MonitorMeasure(Base):
    """帮扶措施: one measure for a monitored household, tied to a policy topic id (policy-topics.yaml)."""

    __tablename__ = "monitor_measures"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("monitor_cases.id"), index=True)
    topic: Mapped[str] = mapped_column(String(48))
    note: Mapped[str] = mapped_column(Text, default="")
    started_on: Mapped[date] = mapped_column(Date)
    actor_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(TS)


class Leave(Base):
    """A cadre's recorded leave; who covers their households meanwhile."""

    __tablename__ = "leaves"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    covered_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    reason: Mapped[str] = mapped_column(String(255), default="")


class Account(Base):
    """A chat account on one channel (Telegram today; WeCom, SMS later), bound to a person or not."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    language: Mapped[str | None] = mapped_column(String(8))
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    commands_scope: Mapped[str | None] = mapped_column(String(32))  # last menu set, to avoid resending
    created_at: Mapped[datetime] = mapped_column(TS)
    bound_at: Mapped[datetime | None] = mapped_column(TS)
    # A small per-account conversation memory that features keep between updates (Ctx.memo / Ctx.remember),
    # e.g. the last policy question's follow-up context: loaded with the account, written with the update.
    memo: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class WeComToken(Base):
    """A WeCom access token shared by every process of one app (corp + agent), and who is refreshing it."""

    __tablename__ = "wecom_tokens"
    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    token: Mapped[str | None] = mapped_column(String(512))
    expires_at: Mapped[datetime | None] = mapped_column(TS)
    refreshing_until: Mapped[datetime | None] = mapped_column(TS)  # a refresh lease (one process at a time)


class WebLink(Base):
    """A one-time sign-in link to the web dashboard (bangfu web): stored by the hash of its token; used once."""

    __tablename__ = "web_links"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    expires_at: Mapped[datetime] = mapped_column(TS)
    used_at: Mapped[datetime | None] = mapped_column(TS)


class WebPerson(Base):
    """A person's web sessions: bumping `generation` signs every session of theirs out."""

    __tablename__ = "web_people"
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)


class TeamFigure(Base):
    """A precomputed dashboard figure of one team for one ISO week (bot/scheduler/figures.py): e.g.
    ("overdue", "n") or ("week", "days_capped"). Refreshed by the scheduler tick and by the web when older
    than its allowed age; a township's or the county's figure is the SUM over its teams' rows."""

    __tablename__ = "team_figures"
    week: Mapped[date] = mapped_column(Date, primary_key=True)  # the Monday
    team_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(48), primary_key=True)
    value: Mapped[float] = mapped_column(Float, default=0.0)
    computed_at: Mapped[datetime] = mapped_column(TS)
    dirty: Mapped[bool] = mapped_column(Boolean, default=False)  # an action changed it: recompute on next read


class WebKey(Base):
    """The key the web dashboard signs links and session cookies with (made once, shared by every process)."""

    __tablename__ = "web_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret: Mapped[str] = mapped_column(String(128))
class KfCursor(Base):
    """微信客服: the sync_msg cursor of one 客服账号, saved only after the pulled messages are handled."""

    __tablename__ = "kf_cursors"
    open_kfid: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[str] = mapped_column(String(128), default="")
    updated_at: Mapped[datetime] = mapped_column(TS)


class KfWindow(Base):
    """微信客服: a villager's reply window (5 messages within 48 hours of their last message), and
    messages held for them while it is closed."""

    __tablename__ = "kf_windows"
    external_userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    open_kfid: Mapped[str] = mapped_column(String(64), default="")
    last_inbound_at: Mapped[datetime | None] = mapped_column(TS)
    last_msg_time: Mapped[int] = mapped_column(BigInteger, default=0)  # WeChat's send_time of their last message
    last_msgid: Mapped[str] = mapped_column(String(128), default="")  # and its msgid
    sent_since: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[list[Any]] = mapped_column(JSON, default=list)  # serialised Replies waiting for a window
    undeliverable: Mapped[int] = mapped_column(Integer, default=0)  # held with no phone to tell them by
    sms_told_at: Mapped[datetime | None] = mapped_column(TS)


class KfScene(Base):
    """微信客服: the scene_param of a printed door-card QR, naming a household (or only a village)."""

    __tablename__ = "kf_scenes"
    scene: Mapped[str] = mapped_column(String(32), primary_key=True)  # random: not guessable
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(TS)


class SmsSend(Base):
    """One SMS handed to the provider (or refused by our per-number limits before it): the limits
    count these rows."""

    __tablename__ = "sms_sends"
    __table_args__ = (Index("ix_sms_sends_phone_at", "phone", "at"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))
    template: Mapped[str] = mapped_column(String(48))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    segments: Mapped[int] = mapped_column(Integer, default=1)
    at: Mapped[datetime] = mapped_column(TS)
    status: Mapped[str] = mapped_column(String(12), default="sending")  # sending, sent, failed
    provider_id: Mapped[str] = mapped_column(String(64), default="")
    error: Mapped[str] = mapped_column(Text, default="")


class Invite(Base):
    """A one-time invite code binding a chat account to a person or a household."""

    __tablename__ = "invites"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"))
    created_at: Mapped[datetime] = mapped_column(TS)
    expires_at: Mapped[datetime | None] = mapped_column(TS)
    used_at: Mapped[datetime | None] = mapped_column(TS)
    used_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))


class RebindRequest(Base):
    """A shared phone asking to bind a person or household already bound to another account: it waits
    for the team leader's confirmation (issue 10 #1)."""

    __tablename__ = "rebind_requests"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"))
    created_at: Mapped[datetime] = mapped_column(TS)
    decided_at: Mapped[datetime | None] = mapped_column(TS)
    decision: Mapped[str | None] = mapped_column(String(8))  # "ok" | "no"
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))


class RateLimit(Base):
    """A counter per key (a chat account's messages per minute, its invite-code failures), shared by every
    process through the database: count in the window that started at window_start, and a lock-out."""

    __tablename__ = "rate_limits"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(TS)
    count: Mapped[int] = mapped_column(Integer, default=0)
    strikes: Mapped[int] = mapped_column(Integer, default=0)  # lock-outs so far (each one longer)
    locked_until: Mapped[datetime | None] = mapped_column(TS)


class DialogState(Base):
    """A dialog in progress (or a parked draft): step, entered data and the back-stack, per account."""

    __tablename__ = "dialog_states"
    __table_args__ = (UniqueConstraint("account_id", "dialog"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    dialog: Mapped[str] = mapped_column(String(32))
    nonce: Mapped[str] = mapped_column(String(16))  # ties buttons to this dialog instance
    step: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


class ProcessedUpdate(Base):
    """Updates already handled, so a redelivered update does nothing twice."""

    __tablename__ = "processed_updates"
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    # The bot of the channel that received it (migration branch "delivery"): update ids are per bot.
    bot_id: Mapped[str] = mapped_column(String(32), primary_key=True, default="", server_default="")
    update_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(TS, index=True)


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    at: Mapped[datetime] = mapped_column(TS, index=True)
    actor_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32), default="")
    entity_id: Mapped[int | None] = mapped_column(ID)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Outbox(Base):
    """A message written before it is sent; the sender marks it sent only after the channel accepts it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "not_before"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(191), unique=True)  # recipient + rule + period
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16), default="telegram")
    chat_id: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # a serialised Reply
    status: Mapped[str] = mapped_column(String(8), default="pending")  # OutboxStatus
    not_before: Mapped[datetime] = mapped_column(TS)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(TS)
    sent_at: Mapped[datetime | None] = mapped_column(TS)


class PolicyQuestion(Base):
    """A villager's policy question: what the parser decided, and any forwarding to a person."""

    __tablename__ = "policy_questions"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    topic: Mapped[str] = mapped_column(String(48), default="none")
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    answered: Mapped[bool] = mapped_column(Boolean, default=False)
    forwarded_to_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    reply_text: Mapped[str] = mapped_column(Text, default="")
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # follow-up context from the parser
    created_at: Mapped[datetime] = mapped_column(TS)
    replied_at: Mapped[datetime | None] = mapped_column(TS)


class Case(Base):
    """A villager's personal matter (a benefit that never arrived, a grievance), a hardship, or a
    call-back request, tracked to an answer by their paired cadre (migration branch "cases").

    The id is the number the villager is told. Text is stored with ID numbers masked."""

    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_status_created", "status", "created_at"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    # One press of "pass it on" / "call me back" makes at most one case: "q<question id>", "f<file id>"…
    idem_key: Mapped[str] = mapped_column(String(191), unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)  # the villager
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    cadre_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)  # paired cadre then
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    question_id: Mapped[int | None] = mapped_column(ForeignKey("policy_questions.id"))
    kind: Mapped[str] = mapped_column(String(16))  # CaseKind
    hardship: Mapped[bool] = mapped_column(Boolean, default=False)
    topic: Mapped[str] = mapped_column(String(48), default="none")  # policy contract topic id, or "none"
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")  # CaseStatus
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)  # 0 leader told, 1 township
    reply_text: Mapped[str] = mapped_column(Text, default="")  # the latest reply to the villager
    resolution_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(TS)
    first_reply_at: Mapped[datetime | None] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)
    resolved_at: Mapped[datetime | None] = mapped_column(TS)


class SchedulerMark(Base):
    """Scheduler bookkeeping (migration branch "scheduler"): a rule already run for a period
    ("run:<rule>:<period>"), or the hash of the last alert a leader got ("snap:<rule>:<person>")
    so an unchanged list is not sent again."""

    __tablename__ = "scheduler_marks"
    key: Mapped[str] = mapped_column(String(191), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(TS)
