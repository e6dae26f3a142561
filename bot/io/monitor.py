"""Monitoring (issue 14) files: department lists matched to households (部门筛查预警), the public
notice page (公示), and the xlsx ledgers (监测对象名单, 帮扶措施台账, 风险消除名单).

A department list's ID numbers are never stored: each is turned into the keyed hash
(HMAC-SHA256, `Settings.id_hash_key`) and compared with the households' `head_id_hash` and the members'
`id_hash` (one case per household however many of its people are listed); an
unmatched row is reported with the masked number only.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduler.rules import Rules
from bot.services.monitoring import IDENTIFY_ORDER, step_due
from bot.store.enums import MonitorPhase, MonitorSource, MonitorStep
from bot.store.idhash import id_hash, mask_id, normalize_id
from bot.store.models import Household, HouseholdMember, MonitorCase, MonitorEvent

DEPARTMENTS = ("医保", "民政", "残联", "教育", "人社", "住建", "水利", "应急")
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 400 * 1024 * 1024  # a zip bomb is refused before anything is inflated
MAX_RATIO = 200
CHUNK = 2000
ID_HEADERS = ("身份证", "证件号码", "公民身份号码")
NAME_HEADERS = ("姓名", "户主")
NOTE_HEADERS = ("原因", "类别", "情况", "备注", "救助", "险种", "残疾")


class ListError(Exception):
    def __init__(self, key: str, **args: object) -> None:
        super().__init__(key)
        self.key = key
        self.args_ = args


def _zip_guard(data: bytes) -> None:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise ListError("mon.import.not_table") from e
    from bot.io import limits  # the roster reader's guards (members, sizes, ratio) first

    try:
        limits.check_zip(zf)
    except limits.LimitError as e:
        raise ListError("mon.import.too_big") from e
    total = sum(i.file_size for i in zf.infolist())
    packed = max(sum(i.compress_size for i in zf.infolist()), 1)
    if total > MAX_UNZIPPED_BYTES or total / packed > MAX_RATIO:
        raise ListError("mon.import.too_big")


def read_rows(data: bytes, filename: str) -> list[list[Any]]:
    """The first sheet of an xlsx, or a CSV (UTF-8 or GB18030), as rows of cells."""
    if len(data) > MAX_FILE_BYTES:
        raise ListError("mon.import.too_big")
    if data[:2] == b"PK":
        _zip_guard(data)
        from bot.io.xlsx import XlsxReader

        reader = XlsxReader(data)
        try:
            if not reader.sheets:
                return []
            return reader.sheet_rows(reader.sheets[0][1])
        finally:
            reader.close()
    if b"\x00" in data[:4096]:
        raise ListError("mon.import.not_table")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ListError("mon.import.not_table")
    return [list(r) for r in csv.reader(io.StringIO(text))]


def _columns(rows: Sequence[Sequence[Any]]) -> tuple[int, int, int | None, int | None]:
    """(header row, ID column, name column, note column)."""
    for r, row in enumerate(rows[:10]):
        cells = [str(c or "").strip() for c in row]
        idc = next((i for i, c in enumerate(cells) if any(h in c for h in ID_HEADERS)), None)
        if idc is None:
            continue
        name = next((i for i, c in enumerate(cells) if any(h in c for h in NAME_HEADERS)), None)
        note = next((i for i, c in enumerate(cells) if i not in (idc, name) and any(h in c for h in NOTE_HEADERS)),
                    None)
        return r, idc, name, note
    raise ListError("mon.import.no_id_column")


@dataclass
class DeptResult:
    rows: int = 0
    matched: int = 0
    opened: int = 0
    already_open: int = 0
    new_cases: dict[int, list[tuple[int, str]]] = field(default_factory=dict)  # village -> [(case id, name)]
    bad: list[int] = field(default_factory=list)  # row numbers without a valid ID number
    unmatched: list[tuple[int, str, str]] = field(default_factory=list)  # (row, name, masked ID)


async def import_department(session: AsyncSession, rows: Sequence[Sequence[Any]], department: str, *, id_key: str,
                            rules: Rules, now: datetime, today: date) -> DeptResult:
    """Match rows to households by the keyed hash of the ID number; open a case (at the home check) for
    each matched household without an open case. Never commits."""
    if not id_key:
        raise ListError("mon.import.no_key")
    head, idc, namec, notec = _columns(rows)
    res = DeptResult()
    wanted: dict[str, tuple[int, str, str, str]] = {}  # hash -> (row number, name, note, masked ID)
    for n, row in enumerate(rows[head + 1 :], start=head + 2):
        cells = list(row)
        if not any(c not in (None, "") for c in cells):
            continue
        res.rows += 1
        raw = str(cells[idc] if idc < len(cells) and cells[idc] is not None else "")
        full = normalize_id(raw)
        name = str(cells[namec] or "").strip() if namec is not None and namec < len(cells) else ""
        note = str(cells[notec] or "").strip() if notec is not None and notec < len(cells) else ""
        keyed = id_hash(full, id_key) if full else None
        if keyed is None or full is None:
            res.bad.append(n)
            continue
        if keyed not in wanted:  # a person listed twice opens one case
            wanted[keyed] = (n, name, note, mask_id(full))
    found: dict[str, tuple[int, int, str]] = {}
    keys = list(wanted)
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i : i + CHUNK]
        heads = select(Household.head_id_hash, Household.id, Household.village_id, Household.head_name).where(
            Household.head_id_hash.in_(chunk))
        # A department lists the person it helped: often a member (a patient, a pupil), not the head.
        members = (
            select(HouseholdMember.id_hash, Household.id, Household.village_id, Household.head_name)
            .join(Household, Household.id == HouseholdMember.household_id)
            .where(HouseholdMember.id_hash.in_(chunk))
        )
        for q in (heads, members):
            for h, hid, vid, hname in (await session.execute(q)).all():
                if h is not None:
                    found.setdefault(h, (hid, vid, hname))
    for h, (n, name, _, shown) in wanted.items():
        if h not in found:
            res.unmatched.append((n, name, shown))
    res.unmatched.sort()
    hids = [v[0] for v in found.values()]
    open_ids: set[int] = set()
    for i in range(0, len(hids), CHUNK):
        q2 = select(MonitorCase.household_id).where(MonitorCase.household_id.in_(hids[i : i + CHUNK]),
                                                     MonitorCase.open.is_(True))
        open_ids.update(x for x in (await session.execute(q2)).scalars() if x is not None)
    res.matched = len(found)
    # One case per household, however many of its people the list names; each listed person's line is kept.
    per_household: dict[int, list[str]] = {}
    for h, (hid, _, hname) in found.items():
        _, listed, note, _ = wanted[h]
        line = note if not listed or listed == hname else f"{listed}：{note}" if note else listed
        per_household.setdefault(hid, []).append(line)
    new_cases: list[MonitorCase] = []
    for h, (hid, vid, hname) in found.items():
        if hid in open_ids:  # an open case, or one this list opened for another of the household's people
            res.already_open += 1
            continue
        open_ids.add(hid)
        note = "；".join(x for x in per_household[hid] if x)
        c = MonitorCase(household_id=hid, village_id=vid, source=MonitorSource.DEPARTMENT.value, department=department,
                        risks=[], phase=MonitorPhase.IDENTIFY.value, step=MonitorStep.VERIFY.value, open=True,
                        step_started=today, escalation_level=0, head_name=hname, id_hash=h, description=note,
                        screening={}, expense_solved=False, guarantees_secured=False, opened_at=now)
        c.identify_due = rules.monitoring.identify_due(today, rules.calendar.is_working_day)
        c.step_due = step_due(rules, c, IDENTIFY_ORDER[1], today)
        new_cases.append(c)
    session.add_all(new_cases)
    await session.flush()
    session.add_all([MonitorEvent(case_id=c.id, at=now, actor_person_id=None, phase=c.phase, step=c.step,
                                  action="open", result=c.description, detail={"department": department})
                     for c in new_cases])
    await session.flush()
    res.opened = len(new_cases)
    for c in new_cases:
        res.new_cases.setdefault(c.village_id, []).append((c.id, c.head_name))
    return res


def read_file(path: Path) -> list[list[Any]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise ListError("mon.import.no_file", file=str(path)) from e
    return read_rows(data, path.name)


# --------------------------------------------------------------------------- the public notice (公示)
@dataclass(frozen=True)
class NoticeRow:
    """What a public notice may show of a household: never an ID, phone, bank account or health detail."""

    name: str
    group: str
    kind: str
    measures: str


RISK_ZH = {"illness": "因病", "disability": "因残", "schooling": "因学", "disaster": "因灾", "accident": "因意外事故",
           "jobless": "务工就业不稳", "income_drop": "收入骤减", "housing": "住房安全", "water": "饮水安全",
           "other": "其他"}
KIND_ZH = {"unstable": "脱贫不稳定户", "marginal": "边缘易致贫户", "sudden": "突发严重困难户"}
TOPIC_ZH = {
    "medical.assistance": "医疗救助", "medical.serious_illness": "大病保险", "welfare.dibao": "低保",
    "welfare.temporary": "临时救助", "welfare.tekun": "特困供养", "welfare.disability": "残疾人两项补贴",
    "welfare.pension": "城乡居民养老保险", "employment.support": "就业帮扶", "industry.support": "产业帮扶",
    "education.student_aid": "学生资助", "education.rain_dew": "雨露计划", "finance.microcredit": "小额信贷",
    "subsidy.housing": "危房改造",
}


async def notice_rows(session: AsyncSession, village_id: int, phase: str = "identify") -> list[NoticeRow]:
    """Households of the village whose case is in its public-notice step (识别 or 风险消除)."""
    from bot.store.models import MonitorMeasure

    q = (select(MonitorCase.id, MonitorCase.head_name, MonitorCase.kind, Household.group_no)
         .join(Household, Household.id == MonitorCase.household_id, isouter=True)
         .where(MonitorCase.village_id == village_id, MonitorCase.open.is_(True),
                MonitorCase.step == MonitorStep.PUBLICIZE.value, MonitorCase.phase == phase)
         .order_by(Household.group_no, MonitorCase.id))
    cases = (await session.execute(q)).all()
    ids = [c[0] for c in cases]
    measures: dict[int, list[str]] = {}
    if ids:
        mq = select(MonitorMeasure.case_id, MonitorMeasure.topic).where(MonitorMeasure.case_id.in_(ids))
        for cid, topic in (await session.execute(mq.order_by(MonitorMeasure.id))).all():
            measures.setdefault(cid, []).append(TOPIC_ZH.get(topic, topic))
    return [NoticeRow(name=name or "", group=f"{group}组" if group else "", kind=KIND_ZH.get(kind or "", ""),
                      measures="、".join(measures.get(cid, [])) or "拟制定")
            for cid, name, kind, group in cases]


def notice_lines(village: str, rows: Sequence[NoticeRow], start: date, end: date, phase: str) -> list[list[str]]:
    """Every text the page draws, in order: title, header, one row per household, the period."""
    what = "识别纳入" if phase == "identify" else "风险消除"
    out = [[f"{village}防止返贫监测对象{what}公示"], ["序号", "户主姓名", "村民小组", "监测类型", "帮扶措施"]]
    out += [[str(i), r.name, r.group, r.kind, r.measures] for i, r in enumerate(rows, 1)]
    out.append([f"公示期：{start.isoformat()} 至 {end.isoformat()}。如有异议，请在公示期内向村委会或乡镇反映。"])
    return out


def notice_image(lines: list[list[str]], fmt: str = "PNG") -> bytes:
    """A printable A4 page (150 dpi) as PNG or PDF, drawn with the CJK font."""
    from PIL import Image, ImageDraw, ImageFont

    from bot.fonts import cjk_font

    font_info = cjk_font()
    def font(size: int) -> Any:
        if font_info is None:
            return ImageFont.load_default()
        return ImageFont.truetype(font_info.path, size)

    w, h = 1240, 1754
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    title, header, *body = lines
    period = body.pop() if body else [""]
    d.text((w // 2, 110), title[0], font=font(44), fill="black", anchor="mm")
    xs = [80, 170, 420, 600, 860, 1160]
    y = 200
    f = font(26)
    for row in [header, *body[:40]]:
        d.rectangle((xs[0], y, xs[-1], y + 44), outline="black", width=1)
        for i, cell in enumerate(row):
            d.line((xs[i], y, xs[i], y + 44), fill="black")
            d.text((xs[i] + 8, y + 22), cell[:14], font=f, fill="black", anchor="lm")
        y += 44
    d.text((80, y + 40), period[0], font=font(24), fill="black")
    buf = io.BytesIO()
    img.save(buf, format=fmt, resolution=150.0) if fmt == "PDF" else img.save(buf, format=fmt)
    return buf.getvalue()


# --------------------------------------------------------------------------- xlsx ledgers
async def ledgers_workbook(session: AsyncSession) -> bytes:
    """监测对象名单, 帮扶措施台账, 风险消除名单: one workbook, Chinese headers, masked IDs only."""
    from openpyxl import Workbook

    from bot.store.models import MonitorMeasure, Person, Village

    villages = {v.id: v for v in (await session.execute(select(Village))).scalars()}
    wb = Workbook()
    roster = wb.active
    assert roster is not None
    roster.title = "监测对象名单"
    roster.append(["序号", "县", "乡镇", "村", "村民小组", "户主姓名", "身份证号（脱敏）", "家庭人口", "监测类型",
                   "风险类型", "信息来源", "当前环节", "纳入日期", "人均纯收入（元）"])
    q = (select(MonitorCase, Household).join(Household, Household.id == MonitorCase.household_id, isouter=True)
         .order_by(MonitorCase.village_id, MonitorCase.id))
    all_cases = (await session.execute(q)).all()
    step_zh = {"accept": "乡镇受理", "verify": "入户核实", "compare": "信息比对", "assess": "民主评议",
               "publicize": "村内公示", "township": "乡镇审核", "county": "县级审批", "announce": "结果公告",
               "measures": "帮扶措施", "follow_up": "监测帮扶中", "closed": "风险已消除", "rejected": "未纳入"}
    source_zh = {"self_report": "农户自主申报", "cadre_check": "干部排查", "department": "部门筛查预警"}
    n = 0
    for c, hh in all_cases:
        if not c.open:
            continue
        v = villages.get(c.village_id)
        n += 1
        roster.append([n, v.county if v else "", v.township if v else "", v.name if v else "",
                       hh.group_no if hh else None, c.head_name, c.id_masked or (hh.head_id_number if hh and
                       (hh.head_id_number or "").startswith("*") else "") or "",
                       hh.members_count if hh else None, KIND_ZH.get(c.kind or "", ""), "、".join(RISK_ZH.get(r, r) for r in c.risks or []),
                       source_zh.get(c.source, c.source) + (f"（{c.department}）" if c.department else ""),
                       step_zh.get(c.step, c.step), c.identified_on, float(c.income_per_head)
                       if c.income_per_head is not None else None])
    ms = wb.create_sheet("帮扶措施台账")
    ms.append(["序号", "村", "户主姓名", "帮扶措施", "政策编号", "开始日期", "登记人", "备注"])
    mq = (select(MonitorMeasure, MonitorCase, Person).join(MonitorCase, MonitorCase.id == MonitorMeasure.case_id)
          .join(Person, Person.id == MonitorMeasure.actor_person_id, isouter=True).order_by(MonitorMeasure.id))
    for i, (m, c, p) in enumerate((await session.execute(mq)).all(), 1):
        v = villages.get(c.village_id)
        ms.append([i, v.name if v else "", c.head_name, TOPIC_ZH.get(m.topic, m.topic), m.topic, m.started_on,
                   p.name if p else "", m.note])
    cl = wb.create_sheet("风险消除名单")
    cl.append(["序号", "村", "村民小组", "户主姓名", "监测类型", "纳入日期", "风险消除日期"])
    k = 0
    for c, hh in all_cases:
        if c.step != MonitorStep.CLOSED.value:
            continue
        v = villages.get(c.village_id)
        k += 1
        cl.append([k, v.name if v else "", hh.group_no if hh else None, c.head_name, KIND_ZH.get(c.kind or "", ""),
                   c.identified_on, c.closed_at.date() if c.closed_at else None])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
