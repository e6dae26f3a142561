"""The roster template (`bangfu import --template`) and a fictional sample roster built from the format.

Run `python -m bot.io.template` to regenerate bot/io/templates/*.xlsx. All names, phone numbers and
ID numbers in the sample are invented; ID numbers use the non-existent area code 999999.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from bot.io.format import HOUSEHOLDS, MEMBERS, PAIRINGS, PEOPLE, SHEETS, TEAMS, VILLAGES, Sheet
from bot.io.validate import ID_CHECK, ID_WEIGHTS, ROLE_ZH
from bot.store.enums import HOUSEHOLD_STATUS_ZH, POVERTY_CAUSE_ZH, Role

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
REQUIRED_FILL = PatternFill("solid", fgColor="F8CBAD")


def style_header(ws: Any, widths: Iterable[int]) -> None:
    """Bold, filled, frozen header row and column widths: what inspectors expect of a ledger."""
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        if cell.fill is None or cell.fill.fgColor.rgb in (None, "00000000"):
            cell.fill = HEADER_FILL
    ws.freeze_panes = "A2"


# Columns with a closed list of values get a drop-down in the template, so nobody has to guess spelling.
CHOICES: dict[str, tuple[str, ...]] = {
    "status": tuple(HOUSEHOLD_STATUS_ZH.values()),
    "role": tuple(ROLE_ZH.values()),
    "registered_poor": ("是", "否"),
    "active": ("是", "否"),
    "gender": ("男", "女"),
}
TEMPLATE_ROWS = 5000


def _data_sheet(wb: Workbook, sheet: Sheet, rows: Iterable[list[Any]] = ()) -> None:
    ws = wb.create_sheet(sheet.title)
    ws.append([c.header for c in sheet.columns])
    for i, col in enumerate(sheet.columns, start=1):
        cell = ws.cell(1, i)
        if col.required:
            cell.fill = REQUIRED_FILL
        if col.note:
            cell.comment = Comment(col.note, "帮扶通")
        if col.key in CHOICES:
            dv = DataValidation(
                type="list", formula1='"' + ",".join(CHOICES[col.key]) + '"', allow_blank=True
            )
            letter = get_column_letter(i)
            dv.add(f"{letter}2:{letter}{TEMPLATE_ROWS}")
            ws.add_data_validation(dv)
    style_header(ws, (max(c.width, len(c.header) * 2 + 2) for c in sheet.columns))
    for r in rows:
        ws.append(r)


def _guide(wb: Workbook) -> None:
    ws = wb.create_sheet("说明", 0)
    ws.append(["工作表", "列名", "必填", "说明", "也认这些写法", "示例"])
    for sheet in SHEETS:
        for col in sheet.columns:
            ws.append(
                [
                    sheet.title,
                    col.header,
                    "必填" if col.required else "",
                    col.note,
                    "、".join(col.aliases),
                    "" if col.example is None else str(col.example),
                ]
            )
        if sheet.note:
            ws.append([sheet.title, "", "", sheet.note, "", ""])
    style_header(ws, (10, 14, 6, 48, 48, 20))
    ws.append([])
    for line in (
        "填写方法：每张表第一行是列名，从第二行起一行一条。橙色列名必须填。",
        "再次导入同一份表会按 户编号、手机号、村编码、工作队名称 更新，不会重复新建。",
        "换帮扶责任人时直接改成新的责任人，系统会自动结束旧的结对并保留历史。",
        "身份证号会检查校验位，默认只保存后4位。",
    ):
        ws.append([line])


def _save(wb: Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def template_workbook() -> bytes:
    """An empty roster workbook: a 说明 sheet describing every column, then one sheet per kind."""
    wb = Workbook()
    wb.remove(wb.active)
    _guide(wb)
    for sheet in SHEETS:
        _data_sheet(wb, sheet)
    return _save(wb)


# ---------------------------------------------------------------------------------------------------
# Fictional sample data

SURNAMES = "李王张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = [
    "大山",
    "秀兰",
    "建国",
    "桂英",
    "明华",
    "小梅",
    "德福",
    "玉珍",
    "春生",
    "冬梅",
    "有才",
    "金凤",
    "永强",
    "红霞",
    "志刚",
    "翠花",
    "长青",
    "海燕",
    "树林",
    "丽芳",
]
CADRE_NAMES = ["王一帆", "李思远", "赵晓晴", "孙立新", "周雨桐", "吴建业", "郑可心", "钱文博"]
RELATIONS = ["配偶", "之子", "之女", "之母", "之父", "之孙子", "之孙女"]
HEALTH = ["健康", "健康", "健康", "长期慢性病", "残疾", "大病"]
EDUCATION = ["小学", "初中", "初中", "高中", "文盲或半文盲", "大专"]
WORK = ["务农", "务工", "在校生", "学龄前儿童", "无劳动力", "务农"]


def fake_id_number(rng: random.Random, birth: date) -> str:
    """A checksum-valid ID number in the non-existent area 999999, so it is nobody's."""
    body = f"999999{birth:%Y%m%d}{rng.randrange(1000):03d}"
    return body + ID_CHECK[sum(int(c) * w for c, w in zip(body, ID_WEIGHTS, strict=True)) % 11]


def sample_rows(households: int = 30, seed: int = 7) -> dict[str, list[list[Any]]]:
    """Rows for every sheet of a small fictional county: 2 villages, 2 teams, cadres and households."""
    rng = random.Random(seed)
    villages: list[list[Any]] = [
        ["999999101201", "石桥村", "平安镇", "示例县", "999999", 6, 25.0412, 102.7123],
        ["999999101202", "青山村", "平安镇", "示例县", "999999", 4, 25.0855, 102.6540],
    ]
    teams = [["石桥村驻村工作队", "999999101201"], ["青山村驻村工作队", "青山村"]]
    people: list[list[Any]] = []
    cadre_by_team: dict[str, list[list[Any]]] = {t[0]: [] for t in teams}
    for i, name in enumerate(CADRE_NAMES):
        team = teams[i % 2][0]
        role = ROLE_ZH[Role.LEADER] if i < 2 else ROLE_ZH[Role.CADRE]
        row = [
            name,
            f"1700000{1001 + i:04d}",
            role,
            team,
            "示例县农业农村局" if i % 3 else "示例县教育局",
            None,
            "是",
        ]
        people.append(row)
        cadre_by_team[team].append(row)
    people.append(
        ["孟乡联", "0871-5550101", ROLE_ZH[Role.TOWNSHIP], teams[0][0], "平安镇人民政府", None, "是"]
    )
    hh_rows: list[list[Any]] = []
    member_rows: list[list[Any]] = []
    pairing_rows: list[list[Any]] = []
    causes = list(POVERTY_CAUSE_ZH.values())
    for n in range(households):
        v = villages[n % 2]
        team = teams[n % 2][0]
        code = f"{v[0]}{n + 1:04d}"
        head = rng.choice(SURNAMES) + GIVEN[n % len(GIVEN)]
        birth = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 45))
        size = rng.randint(1, 5)
        status = rng.choice(list(HOUSEHOLD_STATUS_ZH))
        cadre = cadre_by_team[team][(n // 2) % len(cadre_by_team[team])]
        hh_rows.append(
            [
                code,
                v[0],
                v[1],
                v[2],
                v[3],
                rng.randint(1, v[5]),
                head,
                fake_id_number(rng, birth),
                size,
                f"1710000{n + 1:04d}" if n % 5 else f"0871-555{n + 1:04d}",
                f"{v[1]}{rng.randint(1, v[5])}组{n + 1}号",
                round(v[6] + rng.uniform(-0.01, 0.01), 6) if n % 4 else None,
                round(v[7] + rng.uniform(-0.01, 0.01), 6) if n % 4 else None,
                "、".join(rng.sample(causes, rng.randint(1, 2))),
                HOUSEHOLD_STATUS_ZH[status],
                "是",
                f"{rng.randint(3000, 15000)}.00",
                2025,
                "发展养殖，安排公益岗位" if n % 2 else "落实医疗救助，技能培训",
                cadre[0],
                cadre[1],
                f"2026-0{1 + n % 6}-01",
            ]
        )
        member_rows.append(
            [
                code,
                head,
                "户主",
                rng.choice("男女"),
                birth.year,
                rng.choice(HEALTH),
                rng.choice(EDUCATION),
                "务农",
                hh_rows[-1][7],
            ]
        )
        ids = random.Random(seed * 100_003 + n)  # members' ID numbers: their own stream, the rest stays as it was
        for m in range(size - 1):
            member: list[Any] = [
                code,
                head[0] + GIVEN[(n + m + 3) % len(GIVEN)],
                rng.choice(RELATIONS),
                rng.choice("男女"),
                born := rng.randint(1940, 2022),
                rng.choice(HEALTH),
                rng.choice(EDUCATION),
                rng.choice(WORK),
            ]
            member.append(fake_id_number(ids, date(born, 1, 1) + timedelta(days=ids.randrange(365))))
            member_rows.append(member)
        if n % 7 == 0:  # an earlier cadre, handed over at the start of 2026: pairing history
            prev = cadre_by_team[team][(n // 2 + 1) % len(cadre_by_team[team])]
            pairing_rows.append([code, head, prev[0], prev[1], "2024-03-01", "2025-12-31", "工作调整"])
    return {
        "villages": villages,
        "teams": teams,
        "people": people,
        "households": hh_rows,
        "members": member_rows,
        "pairings": pairing_rows,
    }


def sample_roster(households: int = 30, seed: int = 7) -> bytes:
    """A complete fictional roster workbook in the import format."""
    rows = sample_rows(households, seed)
    wb = Workbook()
    wb.remove(wb.active)
    for sheet in (VILLAGES, TEAMS, PEOPLE, HOUSEHOLDS, MEMBERS, PAIRINGS):
        _data_sheet(wb, sheet, rows[sheet.key])
    return _save(wb)


def large_roster(households: int, seed: int = 11) -> bytes:
    """A big fictional roster (write-only workbook) for the import benchmark: one 农户 sheet with pairings."""
    rows = sample_rows(0, seed)
    wb = Workbook(write_only=True)
    for sheet in (VILLAGES, TEAMS, PEOPLE):
        ws = wb.create_sheet(sheet.title)
        ws.append([c.header for c in sheet.columns])
        for r in rows[sheet.key]:
            ws.append(r)
    ws = wb.create_sheet(HOUSEHOLDS.title)
    ws.append([c.header for c in HOUSEHOLDS.columns])
    rng = random.Random(seed)
    villages = rows["villages"]
    cadres = [p for p in rows["people"] if p[1].startswith("1")]
    causes = list(POVERTY_CAUSE_ZH.values())
    statuses = list(HOUSEHOLD_STATUS_ZH.values())
    for n in range(households):
        v = villages[n % 2]
        cadre = cadres[n % len(cadres)]
        birth = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 45))
        ws.append(
            [
                f"{v[0]}{n + 1:07d}",
                v[0],
                v[1],
                v[2],
                v[3],
                1 + n % 6,
                SURNAMES[n % 20] + GIVEN[n % 20],
                fake_id_number(rng, birth),
                1 + n % 5,
                f"17{n % 10}{n:08d}",
                f"{v[1]}{1 + n % 6}组",
                None,
                None,
                causes[n % len(causes)],
                statuses[n % 3],
                "是",
                f"{3000 + n % 9000}.00",
                2025,
                "",
                cadre[0],
                cadre[1],
                "2026-01-01",
            ]
        )
    return _save(wb)


def write_shipped(directory: Path = TEMPLATES_DIR) -> list[Path]:
    """(Re)write the shipped template and sample roster."""
    directory.mkdir(parents=True, exist_ok=True)
    out = [directory / "roster_template.xlsx", directory / "sample_roster.xlsx"]
    out[0].write_bytes(template_workbook())
    out[1].write_bytes(sample_roster())
    return out


if __name__ == "__main__":
    for p in write_shipped():
        print(p)
