"""The roster file format: sheets, columns, the Chinese headers townships write and their variants.

The headers are part of the file format (what the township's spreadsheet says), not interface text, so
they live here rather than in a catalog: an English-speaking admin imports the same Chinese files.
bot/io/README.md documents the same tables for people.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.io import validate as v


@dataclass(frozen=True)
class Column:
    """One column: the attribute it fills, its canonical header, accepted variants and its parser."""

    key: str
    header: str
    parse: Callable[[Any], Any] = v.text
    aliases: tuple[str, ...] = ()
    required: bool = False  # the column must be present and the cell filled
    width: int = 12
    note: str = ""  # shown in the template's 说明 sheet
    example: Any = None


@dataclass(frozen=True)
class Sheet:
    """One sheet of the roster workbook."""

    key: str
    title: str
    aliases: tuple[str, ...]
    columns: tuple[Column, ...]
    note: str = ""
    by_key: dict[str, Column] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_key", {c.key: c for c in self.columns})


def _text_max(n: int) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        s = v.text(value)
        if len(s) > n:
            raise v.BadValue("io.err.too_long", value=s[:20], max=n)
        return s

    return parse


VILLAGES = Sheet(
    "villages",
    "村庄",
    ("村", "行政村", "村庄信息", "村信息", "villages"),
    (
        Column(
            "code",
            "村编码",
            _text_max(32),
            ("村代码", "行政村代码", "村编号", "行政区划代码"),
            True,
            16,
            "村的唯一编码（建议用12位行政区划代码）",
            "999999101201",
        ),
        Column(
            "name", "村名称", _text_max(64), ("村名", "行政村", "行政村名称", "村"), True, 12, "", "石桥村"
        ),
        Column(
            "township",
            "乡镇",
            _text_max(64),
            ("乡（镇）", "乡镇名称", "所属乡镇", "乡(镇)"),
            False,
            12,
            "",
            "平安镇",
        ),
        Column(
            "county",
            "县",
            _text_max(64),
            ("县（区）", "县区", "所属县", "县(区)", "县（市、区）"),
            False,
            10,
            "",
            "示例县",
        ),
        Column(
            "county_code",
            "县代码",
            _text_max(16),
            ("县区划代码", "县编码"),
            False,
            10,
            "6位区划代码",
            "999999",
        ),
        Column(
            "groups_count", "村民小组数", lambda x: v.integer(x, hi=500), ("小组数", "组数"), False, 10, "", 6
        ),
        Column("lat", "纬度", v.latitude, ("村委会纬度",), False, 10, "十进制度数，可不填", 25.0412),
        Column("lon", "经度", v.longitude, ("村委会经度",), False, 10, "十进制度数，可不填", 102.7123),
    ),
)

TEAMS = Sheet(
    "teams",
    "工作队",
    ("驻村工作队", "工作队信息", "teams"),
    (
        Column(
            "name",
            "工作队名称",
            _text_max(64),
            ("工作队", "队名", "驻村工作队", "工作队名"),
            True,
            20,
            "",
            "石桥村驻村工作队",
        ),
        Column(
            "village",
            "驻村村编码",
            v.text,
            ("驻村村", "驻村村名称", "所驻村", "村编码", "村名称", "驻村"),
            False,
            14,
            "驻哪个村：填村编码或村名称",
            "999999101201",
        ),
    ),
    note="队长、乡镇联系人在『干部』表里用角色标明。",
)

PEOPLE = Sheet(
    "people",
    "干部",
    ("帮扶干部", "人员", "干部信息", "帮扶责任人", "people"),
    (
        Column("name", "姓名", _text_max(64), ("干部姓名", "帮扶干部", "帮扶责任人"), True, 10, "", "王一"),
        Column(
            "phone",
            "手机号",
            v.phone,
            ("手机号码", "联系电话", "电话", "联系方式"),
            True,
            14,
            "每人唯一，用来认人；换号等于换人",
            "13900000001",
        ),
        Column(
            "role",
            "角色",
            v.role,
            ("职务", "身份", "类别"),
            False,
            12,
            "帮扶干部 / 工作队长 / 乡镇联系人 / 管理员；不填为帮扶干部",
            "帮扶干部",
        ),
        Column("team", "所属工作队", v.text, ("工作队", "工作队名称"), False, 20, "", "石桥村驻村工作队"),
        Column(
            "work_unit",
            "派出单位",
            _text_max(128),
            ("单位", "工作单位", "所在单位"),
            False,
            20,
            "",
            "示例县农业农村局",
        ),
        Column("village", "所在村编码", v.text, ("所在村", "村编码"), False, 14, "可不填", None),
        Column("active", "在岗", v.yes_no, ("是否在岗",), False, 6, "是 / 否；不填为是", "是"),
    ),
)

_PAIRING_IN_HOUSEHOLD = (
    Column(
        "cadre_name",
        "帮扶责任人",
        _text_max(64),
        ("帮扶干部", "帮扶人", "结对干部", "帮扶责任人姓名", "帮扶干部姓名", "结对帮扶责任人"),
        False,
        10,
        "当前结对的干部；必须在『干部』表或系统里",
        "王一",
    ),
    Column(
        "cadre_phone",
        "责任人电话",
        v.phone,
        ("帮扶责任人电话", "帮扶干部电话", "帮扶人电话", "帮扶责任人手机号", "干部电话", "责任人手机号"),
        False,
        14,
        "有同名干部时必填",
        "13900000001",
    ),
    Column(
        "pairing_start",
        "结对日期",
        v.day,
        ("结对时间", "帮扶开始日期", "结对开始日期"),
        False,
        12,
        "不填为导入当天",
        "2026-03-01",
    ),
)

HOUSEHOLDS = Sheet(
    "households",
    "农户",
    ("贫困户", "建档立卡户", "户信息", "农户信息", "花名册", "脱贫户", "监测户", "households"),
    (
        Column(
            "code",
            "户编号",
            _text_max(32),
            ("户编码", "户码", "农户编号", "户号", "编号", "户主编号"),
            True,
            18,
            "每户唯一；再次导入按它更新",
            "9999991012010001",
        ),
        Column(
            "village_code",
            "村编码",
            _text_max(32),
            ("村代码", "行政村代码", "村编号"),
            False,
            14,
            "填村编码或村名称之一",
            "999999101201",
        ),
        Column(
            "village_name",
            "村名称",
            _text_max(64),
            ("村名", "行政村", "所在村", "村"),
            False,
            10,
            "",
            "石桥村",
        ),
        Column(
            "township",
            "乡镇",
            _text_max(64),
            ("乡（镇）", "乡镇名称", "所属乡镇", "乡(镇)"),
            False,
            10,
            "只在没有『村庄』表时用来新建村",
            "平安镇",
        ),
        Column(
            "county", "县", _text_max(64), ("县（区）", "县区", "所属县", "县(区)"), False, 8, "", "示例县"
        ),
        Column(
            "group_no",
            "村民小组",
            lambda x: v.integer(x, hi=500),
            ("组", "小组", "所在组", "村组", "组别"),
            False,
            8,
            "数字，如 3",
            3,
        ),
        Column("head_name", "户主姓名", _text_max(64), ("户主", "户主名称", "姓名"), True, 10, "", "李大山"),
        Column(
            "head_id_number",
            "身份证号",
            v.text,
            ("身份证号码", "户主身份证号", "证件号码", "公民身份号码", "户主身份证号码"),
            False,
            20,
            "18位，校验位会检查；默认只保存后4位",
            None,
        ),
        Column(
            "members_count",
            "家庭人口",
            lambda x: v.integer(x, lo=1, hi=99),
            ("家庭人口数", "人口数", "家庭人数", "人口", "家庭成员数", "户人口数"),
            False,
            8,
            "",
            4,
        ),
        Column(
            "phone",
            "联系电话",
            v.phone,
            ("电话", "手机号", "手机号码", "联系方式", "户主电话", "户主联系电话"),
            False,
            14,
            "手机或座机（如 0871-1234567）",
            "13800000001",
        ),
        Column(
            "address",
            "住址",
            _text_max(255),
            ("家庭住址", "详细地址", "地址", "住址详情"),
            False,
            20,
            "",
            None,
        ),
        Column("lat", "纬度", v.latitude, ("GPS纬度", "住户纬度"), False, 10, "可不填", None),
        Column("lon", "经度", v.longitude, ("GPS经度", "住户经度"), False, 10, "可不填", None),
        Column(
            "poverty_causes",
            "致贫原因",
            v.poverty_causes,
            ("主要致贫原因", "致贫原因（可多选）", "致贫原因(可多选)", "其他致贫原因"),
            False,
            14,
            "可多个，用、隔开：" + "、".join(v.POVERTY_CAUSE_ZH.values()),
            "因病、缺劳力",
        ),
        Column(
            "status",
            "脱贫状态",
            v.status,
            ("贫困户状态", "户状态", "状态", "脱贫属性", "户类型", "户类别"),
            False,
            10,
            "脱贫户 / 监测户 / 一般户；不填为脱贫户",
            "脱贫户",
        ),
        Column(
            "registered_poor",
            "建档立卡",
            v.yes_no,
            ("是否建档立卡", "建档立卡户", "是否建档立卡户"),
            False,
            8,
            "是 / 否；不填为是",
            "是",
        ),
        Column(
            "income_per_head",
            "人均纯收入",
            v.money,
            ("人均收入", "家庭人均纯收入", "年人均纯收入", "人均纯收入（元）", "人均纯收入(元)"),
            False,
            12,
            "元",
            "8650.00",
        ),
        Column(
            "income_year",
            "收入年度",
            lambda x: v.integer(x, lo=1990, hi=2100),
            ("收入年份", "年度"),
            False,
            8,
            "",
            2025,
        ),
        Column(
            "plan",
            "帮扶措施",
            v.text,
            ("一户一策", "帮扶计划", "帮扶规划", "帮扶措施及计划"),
            False,
            30,
            "",
            None,
        ),
        *_PAIRING_IN_HOUSEHOLD,
    ),
    note="一户一行。可直接在本表填写当前的帮扶责任人，也可以单独用『结对』表。",
)

MEMBERS = Sheet(
    "members",
    "家庭成员",
    ("成员", "家庭成员信息", "成员信息", "members"),
    (
        Column(
            "household",
            "户编号",
            v.text,
            ("户编码", "户码", "农户编号", "户号"),
            True,
            18,
            "",
            "9999991012010001",
        ),
        Column("name", "姓名", _text_max(64), ("成员姓名",), True, 10, "", "李大山"),
        Column("relation", "与户主关系", _text_max(16), ("关系", "与户主的关系"), False, 10, "", "户主"),
        Column("gender", "性别", v.gender, (), False, 6, "男 / 女", "男"),
        Column("birth_year", "出生年份", v.year, ("出生年月", "出生日期", "出生年"), False, 10, "", 1968),
        Column("health", "健康状况", _text_max(32), ("健康情况",), False, 10, "", "健康"),
        Column("education", "文化程度", _text_max(32), ("学历", "文化"), False, 10, "", "初中"),
        Column(
            "occupation",
            "从业情况",
            _text_max(64),
            ("职业", "务工情况", "劳动技能", "就业情况"),
            False,
            14,
            "",
            "务农",
        ),
        Column(
            "id_number",
            "身份证号",
            v.text,
            ("身份证号码", "成员身份证号", "证件号码", "公民身份号码"),
            False,
            20,
            "18位，校验位会检查；只保存后4位（部门名单按密钥散列比对）",
            None,
        ),
    ),
    note="一人一行；一户的成员一起替换。",
)

PAIRINGS = Sheet(
    "pairings",
    "结对",
    ("结对帮扶", "帮扶关系", "结对关系", "结对信息", "pairings"),
    (
        Column(
            "household",
            "户编号",
            v.text,
            ("户编码", "户码", "农户编号", "户号"),
            True,
            18,
            "",
            "9999991012010001",
        ),
        Column("head_name", "户主姓名", v.text, ("户主",), False, 10, "只供核对", "李大山"),
        Column(
            "cadre_name",
            "帮扶责任人",
            _text_max(64),
            ("帮扶干部", "帮扶人", "结对干部", "帮扶责任人姓名", "干部姓名"),
            False,
            10,
            "填姓名或电话，至少一项",
            "王一",
        ),
        Column(
            "cadre_phone",
            "责任人电话",
            v.phone,
            ("帮扶责任人电话", "帮扶干部电话", "帮扶人电话", "干部电话", "责任人手机号"),
            False,
            14,
            "",
            "13900000001",
        ),
        Column(
            "start",
            "开始日期",
            v.day,
            ("结对日期", "结对时间", "帮扶开始日期", "开始时间"),
            False,
            12,
            "不填为导入当天",
            "2026-03-01",
        ),
        Column(
            "end",
            "结束日期",
            v.day,
            ("结束时间", "帮扶结束日期", "调整日期"),
            False,
            12,
            "空＝仍在结对",
            None,
        ),
        Column("note", "备注", _text_max(255), ("说明",), False, 20, "", None),
    ),
    note="没有结束日期的一行是当前结对；换人时写新的责任人，系统自动结束旧的结对并保留历史。",
)

SHEETS: tuple[Sheet, ...] = (VILLAGES, TEAMS, PEOPLE, HOUSEHOLDS, MEMBERS, PAIRINGS)
SHEET_BY_KEY = {s.key: s for s in SHEETS}

_STRIP = re.compile(r"[\s*＊:：]|[（(]\s*(必填|选填|可选|必须)\s*[）)]")
_BRACKET = re.compile(r"[（(][^）)]*[）)]$")


def normalize_header(h: Any) -> str:
    """Header text without spaces, stars, colons and (必填) marks, full-width letters folded."""
    s = v.text(h)
    s = _STRIP.sub("", s)
    return s.translate(str.maketrans("０１２３４５６７８９", "0123456789"))


def column_index(sheet: Sheet) -> dict[str, Column]:
    """Normalised header or alias → column, canonical headers winning over aliases."""
    out: dict[str, Column] = {}
    for col in sheet.columns:
        for name in col.aliases:
            out.setdefault(normalize_header(name), col)
    for col in sheet.columns:
        out[normalize_header(col.header)] = col
    return out


def match_header(index: dict[str, Column], header: Any) -> Column | None:
    """The column a header names: exact, then without a trailing bracket (人均纯收入（元）)."""
    h = normalize_header(header)
    if not h:
        return None
    col = index.get(h)
    if col is None:
        stripped = _BRACKET.sub("", h)
        if stripped != h:
            col = index.get(stripped)
    return col


def match_sheet(title: str) -> Sheet | None:
    """The sheet a tab title names (村庄, 农户, 结对 or a variant)."""
    t = normalize_header(title)
    for sheet in SHEETS:
        if t == sheet.title or t in (normalize_header(a) for a in sheet.aliases):
            return sheet
    for sheet in SHEETS:  # titles like "石桥村农户花名册"
        if sheet.title in t:
            return sheet
    return None
